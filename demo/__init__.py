"""The demo: the consortium's people, the Breast Cancer Wisconsin charts and the narrated story."""
