"""Management commands of the federated app."""
