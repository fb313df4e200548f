"""Django management commands of the contracts app."""
