#!/usr/bin/env bash
# Make a Docker engine and the local base image available for the container tests.
#
# - Installs Debian's docker.io, docker-compose and debootstrap when missing.
# - Starts dockerd when no engine answers, without a bridge or iptables rules
#   (--bridge=none --iptables=false --ip-masq=false): every container of the tests runs with
#   host networking on 127.0.0.1 ports, so none ever gets a private-range address.
# - Builds the base image the Dockerfiles start FROM (debian:bookworm-slim) when missing:
#   no registry is contacted (never `docker pull`); `debootstrap --variant=minbase` from
#   Debian's mirror, then `docker import`. The root file system tarball is cached in
#   $PFWATCH_IMAGE_CACHE (default ~/.cache/pfwatch-images) so a wiped engine re-imports it.
#
# Usage: bash scripts/docker-setup.sh   (root or sudo). Safe to run again.
# Environment: PFWATCH_BASE_IMAGE (default debian:bookworm-slim), PFWATCH_BASE_SUITE
# (default bookworm), PFWATCH_DOCKERD_LOG (default /var/log/pfwatch-dockerd.log).
set -euo pipefail

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
BASE_IMAGE=${PFWATCH_BASE_IMAGE:-debian:bookworm-slim}
SUITE=${PFWATCH_BASE_SUITE:-bookworm}
CACHE=${PFWATCH_IMAGE_CACHE:-$HOME/.cache/pfwatch-images}
DOCKERD_LOG=${PFWATCH_DOCKERD_LOG:-/var/log/pfwatch-dockerd.log}

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
  || need_apt+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "docker-setup: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  # An engine still shutting down holds its pid file: wait for it to go (a stale file
  # whose process is gone is replaced by dockerd itself).
  for _ in $(seq 1 30); do
    old_pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    [ -n "$old_pid" ] && kill -0 "$old_pid" 2>/dev/null || break
    sleep 1
  done
  echo "docker-setup: starting dockerd (log: $DOCKERD_LOG)" >&2
  $SUDO sh -c 'exec setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false \
    >"$1" 2>&1 </dev/null' dockerd "$DOCKERD_LOG" &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    echo "docker-setup: dockerd did not answer within 30 s; its log:" >&2
    tail -n 40 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  tarball="$CACHE/$SUITE-minbase.tar"
  if [ ! -s "$tarball" ]; then
    echo "docker-setup: building $BASE_IMAGE with debootstrap ($SUITE, minbase)" >&2
    mkdir -p "$CACHE"
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap '$SUDO rm -rf "$root"' EXIT
    $SUDO debootstrap --variant=minbase "$SUITE" "$root" \
      >"$CACHE/debootstrap.log" 2>&1 || { tail -n 40 "$CACHE/debootstrap.log" >&2; exit 1; }
    # What the slim images leave out: apt lists and caches, man pages and docs.
    $SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
      "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/man/* "$root"/usr/share/doc/*
    $SUDO tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
  fi
  echo "docker-setup: importing $tarball as $BASE_IMAGE" >&2
  docker import \
    --change 'CMD ["bash"]' \
    --change 'LABEL org.opencontainers.image.description="debootstrap --variant=minbase, built locally by pfwatch scripts/docker-setup.sh"' \
    "$tarball" "$BASE_IMAGE" >/dev/null
fi
