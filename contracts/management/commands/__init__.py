"""Commands: compile_contracts."""
