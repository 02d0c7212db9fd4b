#!/bin/sh
# Entry point of the pfwatch Postfix test container.
# Input: PFWATCH_INSTANCE_ROOT, the instance directory mounted at the same path as on the
# host. Gives data/ to this image's mail_owner and vmail/ to nobody (the uids differ from
# the host's), then idles; Postfix itself is started by the backend with `docker exec`.
# Run with `docker run --init` so that the daemonized master's orphans are reaped.
set -eu
root="${PFWATCH_INSTANCE_ROOT:?set PFWATCH_INSTANCE_ROOT to the mounted instance directory}"
owner="$(postconf -dh mail_owner)"
chown "$owner:" "$root/data"
chown nobody:nogroup "$root/vmail"
echo "pfwatch postfix test container ready: $root"
exec sleep infinity
