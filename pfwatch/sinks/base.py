"""The sink protocol: where findings go (stdout JSON lines, metrics, anything else).

Inputs: :class:`pfwatch.events.Finding` values from the engine, in order. Outputs: side
effects of the sink. Errors: a sink raises only :class:`pfwatch.errors.PfwatchError`
subclasses it documents; the watch loop reports them and keeps running.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from pfwatch.events import Finding


@runtime_checkable
class Sink(Protocol):
    """Receives findings one by one; ``close`` flushes and releases resources."""

    def emit(self, finding: Finding) -> None: ...

    def close(self) -> None: ...


class FanOut:
    """A sink that hands every finding to several sinks, in the order given."""

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks = tuple(sinks)

    def emit(self, finding: Finding) -> None:
        for sink in self.sinks:
            sink.emit(finding)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
