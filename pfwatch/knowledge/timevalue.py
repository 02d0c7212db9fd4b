"""Postfix time values (``max_idle = 100s``, ``ipc_idle = 5m``) as Postfix reads them.

Postfix converts a time parameter with conv_time() (src/global/conv_time.c, called by
get_mail_conf_time() in src/global/mail_conf_time.c): a non-negative decimal integer
(strtol, so leading blanks are skipped), then at most one unit letter ``s``, ``m``, ``h``,
``d`` or ``w``; without a letter the parameter's default unit applies (``s`` for every
parameter pfwatch reads). Anything else is fatal to the daemon ("invalid ... parameter
value"), so pfwatch treats it as unusable and keeps its default.

Inputs: a parameter value. Outputs: :class:`PostfixTime` or None. Errors: none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["UNIT_SECONDS", "PostfixTime", "seconds"]

#: conv_time.c: the unit letters and their scale (lower case only).
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_VALUE = re.compile(r"[ \t\n\r\f\v]*\+?(\d+)([smhdw]?)")
_INT_MAX = 2**31 - 1  # conv_time.c rejects values that overflow an int


@dataclass(frozen=True, slots=True)
class PostfixTime:
    """A parsed time value: ``seconds`` and the text it came from."""

    seconds: int
    text: str

    @classmethod
    def parse(cls, text: str, default_unit: str = "s") -> PostfixTime | None:
        """The value of ``text`` (None when Postfix would refuse it)."""
        match = _VALUE.fullmatch(text)
        if match is None:
            return None
        number = int(match.group(1))
        scaled = number * UNIT_SECONDS[match.group(2) or default_unit]
        if number > _INT_MAX or scaled > _INT_MAX:
            return None
        return cls(scaled, text)


def seconds(text: str | None, default: float) -> float:
    """``text`` in seconds as a float, ``default`` when missing or unusable."""
    if text is None:
        return default
    value = PostfixTime.parse(text)
    return default if value is None else float(value.seconds)
