"""Secret rules: which table values and map-definition fields are never shown.

- Every table referenced by a parameter named ``*_sasl_password_maps`` (smtp(8)/lmtp(8)
  client credentials, ``user:password`` values).
- Password fields of SQL/LDAP/memcache map definitions (``password`` in mysql/pgsql/
  mongodb ``.cf`` files, ``bind_pw`` in ldap ``.cf`` files; postconf mysql_table(5),
  pgsql_table(5), ldap_table(5)).
- Legacy main.cf forms of the same fields (``ldapsource_bind_pw``) and anything whose name
  says it is a password or secret.

A redacted value is shown as ``sha256:`` plus 12 hex digits of a hash of the value, so a
diff still says *that* it changed without saying *what* it is. The snapshot stores only
redacted values for secrets, so they never reach the state database either.

Inputs: names and values. Outputs: booleans, redacted strings, and a structlog processor
(:func:`redact_event_dict`). Errors: none.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import MutableMapping
from typing import Any

#: Parameters whose tables hold secrets (postconf(5) smtp_sasl_password_maps).
SECRET_TABLE_PARAMETER = re.compile(r"_sasl_password_maps$")
#: Field names that are passwords in map definitions and main.cf (exact or as suffix).
SECRET_FIELD = re.compile(r"(^|_)(password|passwd|bind_pw|pw|secret|sasl_passwd)$", re.IGNORECASE)
REDACTED_PREFIX = "sha256:"
HASH_DIGITS = 12


def is_secret_parameter(name: str) -> bool:
    """True when the tables referenced by parameter ``name`` hold secrets."""
    return bool(SECRET_TABLE_PARAMETER.search(name))


def is_secret_field(name: str) -> bool:
    """True for a map-definition field or parameter that holds a password."""
    return bool(SECRET_FIELD.search(name))


def short_hash(value: str) -> str:
    """A short, stable fingerprint of ``value`` (``sha256:`` + 12 hex digits)."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    return REDACTED_PREFIX + digest[:HASH_DIGITS]


def redact(value: str) -> str:
    """``value`` as it may be shown: its short hash (idempotent on redacted values)."""
    if is_redacted(value):
        return value
    return short_hash(value)


def is_redacted(value: str) -> bool:
    """True for a value already produced by :func:`redact`."""
    return (
        value.startswith(REDACTED_PREFIX)
        and len(value) == len(REDACTED_PREFIX) + HASH_DIGITS
        and all(char in "0123456789abcdef" for char in value[len(REDACTED_PREFIX) :])
    )


def redact_entries(entries: MutableMapping[str, str], *, whole_table: bool) -> None:
    """Redact in place: every value of a secret table, or only the password fields."""
    for key, value in entries.items():
        if whole_table or is_secret_field(key):
            entries[key] = redact(value)


def redact_event_dict(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace values of password-like keys with their short hash."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str) and is_secret_field(key):
            event_dict[key] = redact(value)
    return event_dict
