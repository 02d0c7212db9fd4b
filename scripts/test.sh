#!/usr/bin/env bash
# Set up everything the test suite needs on a Debian/Ubuntu machine, then run it:
# Postfix (with pcre, lmdb and cdb maps), pflogsumm and systemd-journal-remote (writes the
# journal files the journald tests read with the real journalctl), Prometheus with promtool and
# Alertmanager (alert-rule unit tests, the fleet test) from Debian, a virtualenv with
# pfwatch and its test extras, then ruff, mypy and pytest. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v postconf >/dev/null 2>&1 || need_apt+=(postfix)
for pkg in postfix-pcre postfix-lmdb postfix-cdb pflogsumm systemd-journal-remote python3-venv \
    prometheus prometheus-alertmanager; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "pfwatch: installing into .venv (log: .venv/install.log) ..." >&2
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[test]"; } \
    > .venv/install.log 2>&1; then
  cat .venv/install.log >&2
  exit 1
fi

.venv/bin/ruff check pfwatch grammars tests bench
.venv/bin/ruff format --check pfwatch grammars tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
