#!/usr/bin/env bash
# Set up everything the test suite needs on a Debian/Ubuntu machine, then run it:
# Postfix (with pcre, lmdb and cdb maps), pflogsumm and systemd-journal-remote (writes the
# journal files the journald tests read with the real journalctl), Prometheus with promtool and
# Alertmanager (alert-rule unit tests, the fleet test) from Debian, a virtualenv with
# pfwatch and its test extras, a Docker engine and pfwatch's images built locally
# (scripts/build-images.sh; PFWATCH_SKIP_CONTAINERS=1 leaves them out and the container
# tests skip), then ruff, mypy and pytest, and the real-Postfix fixture tests once more with
# Postfix in containers (--postfix-backend=docker). Safe to run again.
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

# The Postfix release matrix (tests/integration/test_releases_realpostfix.py): one cached
# Debian chroot per release, outside the checkout, built once (~30 s each).
if [ "$(id -u)" = 0 ]; then
  command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  chroots=${PFWATCH_CHROOT_DIR:-/var/cache/pfwatch-test/chroots}
  mkdir -p "$chroots"
  for suite in bullseye bookworm trixie; do
    if [ -x "$chroots/$suite/usr/sbin/postconf" ]; then
      [ -n "$(ls "$chroots/$suite"/usr/lib/postfix/postfix-pcre.so* 2>/dev/null)" ] || \
        DEBIAN_FRONTEND=noninteractive chroot "$chroots/$suite" apt-get install -y -qq postfix-pcre >/dev/null
      continue
    fi
    echo "pfwatch: building the $suite chroot in $chroots (log: $chroots/$suite.log) ..." >&2
    ( rm -rf "$chroots/$suite.tmp" \
      && debootstrap --variant=minbase --include=postfix,postfix-pcre "$suite" "$chroots/$suite.tmp" \
         > "$chroots/$suite.log" 2>&1 \
      && mv "$chroots/$suite.tmp" "$chroots/$suite" ) &
  done
  wait
  for suite in bullseye bookworm trixie; do
    if [ ! -x "$chroots/$suite/usr/sbin/postconf" ]; then
      echo "pfwatch: the $suite chroot could not be built; its log ends:" >&2
      tail -n 5 "$chroots/$suite.log" >&2 || true
    fi
  done
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "pfwatch: installing into .venv (log: .venv/install.log) ..." >&2
if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e ".[test]"; } \
    > .venv/install.log 2>&1; then
  cat .venv/install.log >&2
  exit 1
fi

containers=1
[ "${PFWATCH_SKIP_CONTAINERS:-}" = 1 ] && containers=0
if [ "$containers" = 1 ]; then
  bash scripts/build-images.sh
fi

.venv/bin/ruff check pfwatch grammars tests bench
.venv/bin/ruff format --check pfwatch grammars tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
if [ "$containers" = 1 ] && [ $# -eq 0 ]; then
  echo "pfwatch: the real-Postfix fixture tests with the docker backend" >&2
  .venv/bin/python -m pytest -q --postfix-backend=docker tests/integration/test_fixture.py \
    tests/integration/test_lifecycle_realpostfix.py
fi

# The lifecycle acceptance scenarios again on each release of the matrix (~2.5 min each), for
# a whole-suite run (no arguments) or when PFWATCH_RELEASE_MATRIX=1.
if [ $# -eq 0 ] || [ "${PFWATCH_RELEASE_MATRIX:-0}" = 1 ]; then
  for suite in bullseye bookworm trixie; do
    .venv/bin/python -m pytest tests/integration/test_lifecycle_realpostfix.py \
      --postfix-backend="chroot-$suite" -q -p no:cacheprovider
  done
fi
