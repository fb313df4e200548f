"""HTTP API of the access log and break-glass."""
