#!/usr/bin/env bash
# Build pfwatch's container images from this checkout, without any registry:
#   pfwatch:dev               the sidecar (docker/pfwatch/Dockerfile)
#   pfwatch-postfix-test:dev  a real Postfix (docker/postfix-test/)
# First makes sure an engine runs and the base image exists (scripts/docker-setup.sh), then
# builds pfwatch and its dependencies as wheels on this host (`pip wheel`, which reaches the
# package index the way this host does) into .build/wheels; the image installs them with
# `pip install --no-index`. Debian packages come from Debian's mirror inside the builds
# (`docker build --network host`: no bridge, no private-range address).
# Prints each build's duration and each image's size.
#
# Usage: bash scripts/build-images.sh   Environment: PFWATCH_BASE_IMAGE (docker-setup.sh),
# PYTHON (the interpreter that builds the wheels; default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/docker-setup.sh
BASE_IMAGE=${PFWATCH_BASE_IMAGE:-debian:bookworm-slim}

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -m pip --version >/dev/null 2>&1; then
  [ -x .build/venv/bin/python ] || python3 -m venv .build/venv
  PY=.build/venv/bin/python
fi

seconds() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }'; }
report() { printf 'build-images: %-26s %6.1f s  %s\n' "$1" "$2" "$3" >&2; }
size_of() { docker image inspect -f '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1 / 1e6}'; }

t0=$(seconds)
rm -rf .build/wheels
mkdir -p .build/wheels
# Fixed zip time stamps: the same sources give the same wheel, so the image layers that
# install it stay cached.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800} \
  "$PY" -m pip wheel --quiet --disable-pip-version-check --wheel-dir .build/wheels . \
  >.build/wheels.log 2>&1 || { cat .build/wheels.log >&2; exit 1; }
report "wheels (pip wheel .)" "$(since "$t0")" "$(ls .build/wheels | wc -l) wheels"

build() {
  local tag=$1; shift
  local start; start=$(seconds)
  docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "$@" \
    >".build/$(echo "$tag" | tr ':/' '--').log" 2>&1 \
    || { tail -n 60 ".build/$(echo "$tag" | tr ':/' '--').log" >&2; exit 1; }
  report "$tag" "$(since "$start")" "$(size_of "$tag")"
}
build pfwatch-postfix-test:dev docker/postfix-test
build pfwatch:dev -f docker/pfwatch/Dockerfile .
