"""HTTP API of consent and access requests."""
