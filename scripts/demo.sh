#!/usr/bin/env bash
# Set up pfwatch in a virtualenv and explain the built-in recorded Postfix scenario:
# a real Postfix log in which main.cf and a table were edited, replayed through pfwatch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "pfwatch: installing into .venv (log: .venv/install.log) ..." >&2
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e .; } \
    > .venv/install.log 2>&1; then
  cat .venv/install.log >&2
  exit 1
fi
exec .venv/bin/pfwatch explain --demo "$@"
