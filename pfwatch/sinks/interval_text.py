"""The human sentence for a change's ``live_interval`` (pfwatch.core.interval).

Inputs: the interval dict and a function that formats a moment. Output: one sentence, or
None when there is nothing to say (no interval, or an action is needed). Errors: none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def describe(interval: Mapping[str, Any] | None, stamp: Callable[[float], str]) -> str | None:
    """ "live between 10:04:12 and 10:04:40 (90%), most likely by 10:04:20; ..."."""
    if not interval or interval.get("earliest") is None:
        return None
    earliest = float(interval["earliest"])
    p50, p90, latest = (interval.get(k) for k in ("p50", "p90", "latest"))
    if p90 is None:
        text = (
            f"live no earlier than {stamp(earliest)}"
            + (f", most likely by {stamp(p50)}" if p50 is not None else "")
            + "; the current traffic may hold an old process for a long time (it is not "
            "live before the traffic pauses)"
        )
    else:
        text = (
            f"live between {stamp(earliest)} and {stamp(p90)} (90%), "
            f"most likely by {stamp(p50 if p50 is not None else p90)}"
        )
        if latest is None:
            text += "; as long as the current traffic continues it may take longer"
        elif latest > p90:
            text += (
                "; as long as the current traffic continues it may take until "
                f"{stamp(latest)} (each old process serves at most max_use clients)"
            )
    why = str(interval.get("why") or "")
    if why.startswith("too little traffic history"):
        text += f" ({why.split(':', 1)[0]})"
    return text
