"""Tracehound: catch malicious open-source dependencies by what they do."""

__version__ = "0.1.0"
