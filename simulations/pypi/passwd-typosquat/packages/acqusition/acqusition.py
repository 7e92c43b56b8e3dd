"""acquisition (typosquat)."""
