"""Consent: the one consent rule, signed grant/revoke payloads, the services that queue them for the
chain, the handlers that index them back, and doctors' access requests."""
