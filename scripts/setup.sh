#!/usr/bin/env bash
# Set up Tracehound on a Debian 12 host (run as root): system packages, then a virtualenv in .venv.
#   scripts/setup.sh           what scans need
#   scripts/setup.sh --test    plus what the test suite needs (Redis, PostgreSQL, Chromium, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
for arg in "$@"; do
  case "$arg" in
    --test|--tests) want_tests=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 3 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh must run as root (it installs Debian packages)" >&2
  exit 3
fi

pkgs=(bubblewrap nftables iproute2 strace bpftrace ca-certificates git curl wget
      python3 python3-venv python3-dev build-essential ruby ruby-dev bundler)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
if [ "$want_tests" = 1 ]; then
  pkgs+=(redis-server postgresql chromium chromium-driver fonts-dejavu-core)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# tracefs is where eBPF tracepoints live; some hosts do not mount it by default
if [ ! -e /sys/kernel/tracing/events ] && [ -d /sys/kernel/tracing ]; then
  mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$want_tests" = 1 ]; then
  .venv/bin/python -m pip install -q -e '.[test,scale]'
else
  .venv/bin/python -m pip install -q -e .
fi
echo "tracehound is set up: .venv/bin/tracehound"
