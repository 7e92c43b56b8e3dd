"""jwt helpers."""
