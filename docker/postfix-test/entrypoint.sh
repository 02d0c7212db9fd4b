#!/bin/sh
# Entry point of the pfwatch Postfix test image.
#
# With PFWATCH_INSTANCE_ROOT (the docker backend of the test fixture): that instance
# directory is mounted at the same path as on the host; give data/ to this image's
# mail_owner and vmail/ to nobody (the uids differ from the host's), then idle: Postfix is
# started by the backend with `docker exec`. Run with `docker run --init` so that the
# daemonized master's orphans are reaped.
#
# Otherwise, with arguments: run them. Without: the usual container start of a mail server:
# set maillog_file to $POSTFIX_MAILLOG (default /dev/stdout) unless main.cf names one,
# rebuild each table of $POSTFIX_POSTMAP (space-separated type:path) with postmap, then
# `exec postfix start-fg` - postmap and the master's start fall in the same second.
set -eu
if [ -n "${PFWATCH_INSTANCE_ROOT:-}" ]; then
  root="$PFWATCH_INSTANCE_ROOT"
  owner="$(postconf -dh mail_owner)"
  chown "$owner:" "$root/data"
  chown nobody:nogroup "$root/vmail"
  echo "pfwatch postfix test container ready: $root"
  exec sleep infinity
fi
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
if [ -z "$(postconf -nh maillog_file)" ]; then
  postconf -e "maillog_file=${POSTFIX_MAILLOG:-/dev/stdout}"
fi
for table in ${POSTFIX_POSTMAP:-}; do
  postmap "$table"
done
exec postfix start-fg
