"""The `tracehound` command: thin front ends over the library packages."""
