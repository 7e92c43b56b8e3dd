"""type helpers."""
