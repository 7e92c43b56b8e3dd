"""speed test helpers."""
