"""HEALTHCHECK of the pfwatch image: exit 0 when /healthz on PFWATCH_LISTEN answers 200.

Input: ``PFWATCH_LISTEN`` (host:port, default 127.0.0.1:29125); a wildcard host is asked
on loopback. Output: exit status 0 (healthy) or 1, the reason on stderr.
"""

import os
import sys
import urllib.error
import urllib.request

host, _, port = os.environ.get("PFWATCH_LISTEN", "127.0.0.1:29125").rpartition(":")
host = host.strip("[]")
if host in ("", "0.0.0.0", "::"):  # noqa: S104 - a wildcard listener answers on loopback
    host = "127.0.0.1"
if ":" in host:
    host = f"[{host}]"
try:
    with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=4) as reply:  # noqa: S310
        sys.exit(0 if reply.status == 200 else 1)
except (OSError, urllib.error.URLError) as exc:
    print(f"pfwatch healthcheck: {exc}", file=sys.stderr)
    sys.exit(1)
