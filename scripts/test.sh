#!/usr/bin/env bash
# Set up everything the test suite needs and run it: lint, then pytest.
#   scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
