"""Prometheus metrics of ``pfwatch watch``: a custom collector plus finding counters.

Inputs: a :class:`MetricsSource` the watch loop implements (a consistent
:class:`MetricsSnapshot` of the engine and sources, read at scrape time), findings
(through :meth:`PfwatchMetrics.emit`, a :class:`pfwatch.sinks.base.Sink`), and log-line
counts from the follower (:meth:`PfwatchMetrics.count_log_lines`). Outputs: a
:class:`prometheus_client.CollectorRegistry` whose families are built fresh on every
scrape, so label values that went away disappear (writing_exporters.md "Collectors").
Errors: a snapshot that raises makes ``pfwatch_up`` 0 for that scrape; nothing else.

Names follow Prometheus naming rules (docs/events.md lists them all): base units,
``_total`` counters, ``_timestamp_seconds`` for moments, ``master_service`` instead of
the reserved-looking ``service`` label, no unbounded labels (no change ids, queue ids,
addresses).
"""

from __future__ import annotations

import math
import platform
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pfwatch import __version__
from pfwatch.events import Finding
from pfwatch.sources.base import SourceStatus

ACTIONS: tuple[str, ...] = ("postmap", "reload", "restart")
"""Values of ``needs`` that get a series of their own even when zero."""
UNTRUSTED_REASONS: tuple[str, ...] = ("journal_writer", "pid_not_postfix", "exit_contradicted")
"""Why a log line was not believed (``log_line_untrusted``); each has a series from 0."""


@dataclass(frozen=True, slots=True)
class PendingChange:
    """A configuration change that is not live yet.

    ``services`` maps each affected master.cf service (``name/type``) to the predicted
    moment it goes live there, or None when it will not go live by itself.
    """

    change_id: str
    detected_at: float
    services: Mapping[str, float | None] = field(default_factory=dict)
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """What the collector needs from the engine and sources at one instant."""

    now: float
    config_digest: str | None = None
    pending: tuple[PendingChange, ...] = ()
    stale_processes: Mapping[str, int] = field(default_factory=dict)
    last_reload_at: float | None = None
    sources: Mapping[str, SourceStatus] = field(default_factory=dict)
    state_ok: bool = True
    instances: tuple[tuple[str, MetricsSnapshot], ...] = ()
    """On a host with several Postfix instances: each instance's engine part, by name
    (then the engine fields above are not used; sources and state_ok are the host's)."""


class MetricsSource(Protocol):
    """Implemented by the watch loop: a consistent snapshot, cheap to take."""

    def metrics_snapshot(self) -> MetricsSnapshot: ...


class PfwatchMetrics:
    """Counters updated from findings and the follower, plus the scrape-time collector.

    Use :attr:`registry` for exposition. Thread-safe: counters are updated by the watch
    loop while the HTTP thread scrapes.
    """

    def __init__(
        self,
        source: MetricsSource | Callable[[], MetricsSnapshot],
        *,
        registry: CollectorRegistry | None = None,
        process_metrics: bool = True,
    ) -> None:
        self._snapshot = source.metrics_snapshot if hasattr(source, "metrics_snapshot") else source
        self._lock = threading.Lock()
        self._lines_read: Counter[str] = Counter()
        self._lines_unrecognized: Counter[str] = Counter()
        self._exits: Counter[tuple[str, str]] = Counter()
        self._events: Counter[str] = Counter()
        self._untrusted: Counter[str] = Counter(dict.fromkeys(UNTRUSTED_REASONS, 0))
        self._config_errors = 0
        self._reloads = 0
        self._state_errors = 0
        self.registry = registry if registry is not None else CollectorRegistry()
        if process_metrics:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.registry.register(_Collector(self))

    # -- updates ----------------------------------------------------------------------

    def emit(self, finding: Finding) -> None:
        """Count one finding (the Sink protocol)."""
        with self._lock:
            self._events[finding.name] += 1
            if finding.name == "process_exited":
                daemon = str(finding.data.get("daemon") or "unknown")
                reason = str(finding.data.get("reason") or "unknown")
                self._exits[(daemon, reason)] += 1
            elif finding.name == "config_error":
                self._config_errors += 1
            elif finding.name == "postfix_reloaded":
                self._reloads += 1
            elif finding.name == "state_error":
                self._state_errors += 1
            elif finding.name == "log_line_untrusted":
                self._untrusted[str(finding.data.get("reason") or "unknown")] += 1

    def close(self) -> None:
        pass  # nothing buffered

    def count_log_lines(self, source: str, read: int, unrecognized: int = 0) -> None:
        """Add ``read`` lines (of which ``unrecognized`` matched no catalogue entry)."""
        with self._lock:
            self._lines_read[source] += read
            self._lines_unrecognized[source] += unrecognized

    def count_state_error(self) -> None:
        """Count a failed write of the state database not reported as a finding."""
        with self._lock:
            self._state_errors += 1

    # -- scrape -----------------------------------------------------------------------

    def families(self) -> Iterator[Metric]:
        """Every pfwatch family, built now (called by the registry on each scrape)."""
        yield from _info_families()
        try:
            snap = self._snapshot()
        except Exception:
            yield _gauge("pfwatch_up", "1 when pfwatch could read its own state.", 0.0)
            yield from self._counter_families()
            return
        yield _gauge("pfwatch_up", "1 when pfwatch could read its own state.", 1.0)
        yield from _snapshot_families(snap)
        yield from self._counter_families()

    def _counter_families(self) -> Iterator[Metric]:
        with self._lock:
            read = dict(self._lines_read)
            unrecognized = dict(self._lines_unrecognized)
            exits = dict(self._exits)
            events = dict(self._events)
            untrusted = dict(self._untrusted)
            config_errors, reloads = self._config_errors, self._reloads
            state_errors = self._state_errors
        lines = CounterMetricFamily(
            "pfwatch_log_lines_read", "Log lines read, by source.", labels=["source"]
        )
        for source, count in sorted(read.items()):
            lines.add_metric([source], count)
        yield lines
        yield CounterMetricFamily(
            "pfwatch_log_lines_unrecognized",
            "Postfix log lines that matched no message in the catalogue.",
            value=sum(unrecognized.values()),
        )
        untrusted_family = CounterMetricFamily(
            "pfwatch_log_lines_untrusted",
            "Log lines that look like Postfix's but were not believed, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(untrusted.items()):
            untrusted_family.add_metric([reason], count)
        yield untrusted_family
        exit_family = CounterMetricFamily(
            "pfwatch_process_exits",
            "Postfix process exits seen or inferred, by daemon and reason.",
            labels=["daemon", "reason"],
        )
        for (daemon, reason), count in sorted(exits.items()):
            exit_family.add_metric([daemon, reason], count)
        yield exit_family
        yield CounterMetricFamily(
            "pfwatch_config_errors", "Configuration files that failed to parse.", config_errors
        )
        yield CounterMetricFamily(
            "pfwatch_postfix_reloads", "postfix reload seen in the log.", reloads
        )
        yield CounterMetricFamily(
            "pfwatch_state_errors", "Failed reads or writes of the state database.", state_errors
        )
        emitted = CounterMetricFamily(
            "pfwatch_events_emitted", "Events emitted, by event name.", labels=["event"]
        )
        for name, count in sorted(events.items()):
            emitted.add_metric([name], count)
        yield emitted


class _Collector(Collector):
    def __init__(self, metrics: PfwatchMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()


def _info_families() -> Iterator[Metric]:
    build = GaugeMetricFamily(
        "pfwatch_build_info",
        "pfwatch version and Python version; always 1.",
        labels=["version", "python_version"],
    )
    build.add_metric([__version__, platform.python_version()], 1.0)
    yield build


def _snapshot_families(snap: MetricsSnapshot) -> Iterator[Metric]:
    """The engine's families; on a host with several instances each sample carries the
    ``postfix_instance`` label (``instance`` is the scrape target's, Prometheus'), and
    with one instance the families read as they always did."""
    if snap.instances:
        yield from _engine_families(
            [((name,), part) for name, part in snap.instances], ["postfix_instance"]
        )
    else:
        yield from _engine_families([((), snap)], [])
    yield from _source_families(snap)


def _engine_families(
    parts: list[tuple[tuple[str, ...], MetricsSnapshot]], by: list[str]
) -> Iterator[Metric]:
    digests = [(key, part.config_digest) for key, part in parts if part.config_digest is not None]
    if digests:
        info = InfoMetricFamily("pfwatch_config", "Digest of the configuration on disk.", labels=by)
        for key, digest in digests:
            info.add_metric(list(key), {"digest": digest})
        yield info
    pending = GaugeMetricFamily(
        "pfwatch_config_changes_pending", "Configuration changes not live yet.", labels=by
    )
    for key, part in parts:
        pending.add_metric(list(key), float(len(part.pending)))
    yield pending
    needing = GaugeMetricFamily(
        "pfwatch_config_changes_pending_action",
        "Pending changes that will not go live without this action.",
        labels=[*by, "action"],
    )
    for key, part in parts:
        counts = Counter(action for change in part.pending for action in set(change.needs))
        for action in sorted(set(ACTIONS) | set(counts)):
            needing.add_metric([*key, action], float(counts.get(action, 0)))
    yield needing
    oldest = GaugeMetricFamily(
        "pfwatch_config_change_oldest_pending_timestamp_seconds",
        "When the oldest change that is not live yet was detected.",
        labels=by,
    )
    by_service = GaugeMetricFamily(
        "pfwatch_config_change_predicted_live_timestamp_seconds",
        "Predicted moment all pending changes are live in this master.cf service.",
        labels=[*by, "master_service"],
    )
    until = GaugeMetricFamily(
        "pfwatch_config_change_seconds_until_live",
        "Seconds until the last pending change is predicted to be live (0 when overdue).",
        labels=by,
    )
    for key, part in parts:
        first = min((change.detected_at for change in part.pending), default=None)
        if first is not None:
            oldest.add_metric(list(key), first)
        predicted: dict[str, float] = {}
        for change in part.pending:
            for master_service, when in change.services.items():
                if when is not None and math.isfinite(when):
                    predicted[master_service] = max(when, predicted.get(master_service, when))
        for master_service, when in sorted(predicted.items()):
            by_service.add_metric([*key, master_service], when)
        if predicted:
            until.add_metric(list(key), max(0.0, max(predicted.values()) - part.now))
    if oldest.samples:
        yield oldest
    yield by_service
    if until.samples:
        yield until
    stale = GaugeMetricFamily(
        "pfwatch_stale_processes",
        "Postfix processes still running an older configuration, by master.cf service.",
        labels=[*by, "master_service"],
    )
    for key, part in parts:
        for master_service, count in sorted(part.stale_processes.items()):
            stale.add_metric([*key, master_service], float(count))
    yield stale
    reloads = GaugeMetricFamily(
        "pfwatch_postfix_last_reload_timestamp_seconds",
        "When Postfix was last reloaded or started, from the log.",
        labels=by,
    )
    for key, part in parts:
        if part.last_reload_at is not None:
            reloads.add_metric(list(key), part.last_reload_at)
    if reloads.samples:
        yield reloads


def _source_families(snap: MetricsSnapshot) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "pfwatch_source_up", "1 when the input can be read, by source.", labels=["source"]
    )
    lag_s = GaugeMetricFamily(
        "pfwatch_follower_lag_seconds",
        "Age of the newest log line processed when more input is waiting, else 0.",
        labels=["source"],
    )
    lag_b = GaugeMetricFamily(
        "pfwatch_follower_lag_bytes", "Bytes written but not read yet.", labels=["source"]
    )
    last = GaugeMetricFamily(
        "pfwatch_log_last_line_timestamp_seconds",
        "Time stamp of the newest log line read, by source.",
        labels=["source"],
    )
    for name, status in sorted(snap.sources.items()):
        up.add_metric([name], 1.0 if status.up else 0.0)
        if status.lag_seconds is not None:
            lag_s.add_metric([name], status.lag_seconds)
        if status.lag_bytes is not None:
            lag_b.add_metric([name], float(status.lag_bytes))
        if status.last_line_at is not None:
            last.add_metric([name], status.last_line_at)
    yield from (up, lag_s, lag_b, last)
    yield _gauge("pfwatch_state_ok", "1 when the state database is writable.", float(snap.state_ok))


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
