"""colorizr-utils: terminal colours."""
