"""HTTP API of identity: sign-in, tokens, the current user, the hospital and doctor directory."""
