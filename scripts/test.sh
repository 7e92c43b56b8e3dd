#!/usr/bin/env bash
# Set up everything the test suite needs and run it: lint, then pytest.
#   scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# Redis and PostgreSQL on loopback for tests/server (multi-worker tests); setup.sh --test installs them,
# a fresh machine does not run them. A service that cannot start makes those tests skip with the reason.
if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no \
    --logfile /tmp/tracehound-test-redis.log || echo "warning: redis-server did not start" >&2
fi
if command -v pg_ctlcluster >/dev/null 2>&1; then
  (
    cd /tmp
    pgver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_lsclusters -h | grep -q "^$pgver main " || pg_createcluster "$pgver" main >/dev/null
    pg_lsclusters -h | grep -q "^$pgver main .*online" || pg_ctlcluster "$pgver" main start
    runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='tracehound'" | grep -q 1 \
      || runuser -u postgres -- psql -qc "CREATE ROLE tracehound LOGIN PASSWORD 'tracehound'"
    runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='tracehound_test'" | grep -q 1 \
      || runuser -u postgres -- createdb -O tracehound tracehound_test
  ) || echo "warning: PostgreSQL for the server tests did not start" >&2
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest "$@"
