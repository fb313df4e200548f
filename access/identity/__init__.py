"""Identity: users and roles, hospitals and doctors (mirrored from the chain's Directory), managed keys,
Sign-In with Ethereum and API tokens."""
