"""A fast constructor of :class:`~pfwatch.events.LogEvent` for the replay hot path.

Inputs: the eleven LogEvent fields, positionally. Output: the LogEvent. Errors: none
(falls back to the class itself if its slots ever stop matching its fields).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields as dataclass_fields

from pfwatch.events import LogEvent

__all__ = ["make_log_event"]


def _event_factory() -> Callable[..., LogEvent]:
    """A LogEvent constructor that fills the slots directly (2-3x faster than __init__).

    The frozen dataclass' generated __init__ calls object.__setattr__ per field; the slot
    descriptors do the same work without the Python-level indirection. Falls back to the
    class itself if the slots ever stop matching the fields.
    """
    names = tuple(f.name for f in dataclass_fields(LogEvent))
    if names != tuple(getattr(LogEvent, "__slots__", ())) or len(names) != 11:
        return LogEvent
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = (
        getattr(LogEvent, name).__set__ for name in names
    )
    new = object.__new__

    def make(  # noqa: PLR0917 - positional on purpose: the replay hot path
        at: float, kind: str, program: str, instance: str, service: str, daemon: str,
        pid: int, fields: Mapping[str, str], source: str, line_no: int, position: str,
    ) -> LogEvent:  # fmt: skip
        event: LogEvent = new(LogEvent)
        s0(event, at)
        s1(event, kind)
        s2(event, program)
        s3(event, instance)
        s4(event, service)
        s5(event, daemon)
        s6(event, pid)
        s7(event, fields)
        s8(event, source)
        s9(event, line_no)
        s10(event, position)
        return event

    # named as the module attribute it becomes, so that pickle can refer to it
    make.__name__ = make.__qualname__ = "make_log_event"
    return make


make_log_event = _event_factory()
