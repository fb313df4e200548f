"""HTTP API of the access app: thin DRF views over the identity and consent services."""
