"""structlog setup for pfwatch's own log lines (and the renderer the event sink shares).

Inputs: the output stream, the environment (``NO_COLOR``, ``FORCE_COLOR``,
``PFWATCH_LOG_FORMAT``), a level. Outputs: a configured structlog and a
:data:`Renderer` for event records. When the stream is not a terminal every line is one
JSON object (``event``, ``ts`` ISO 8601 UTC, ``level``, then fields); on a terminal,
structlog's ConsoleRenderer, coloured unless ``NO_COLOR`` is set (``FORCE_COLOR`` forces
colour; https://no-color.org). Third-party ``logging`` records (watchdog, http.server)
are rendered the same way. Every line passes a secret-redaction processor first.
Errors: none (a bad ``PFWATCH_LOG_FORMAT`` falls back to auto).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from pfwatch.sinks.events_json import render_json

Format = Literal["auto", "json", "console"]
Renderer = Callable[[Mapping[str, Any]], str]

SECRET_KEY = re.compile(r"pass(word|wd|phrase)?$|secret|token|credential|private_?key", re.I)
"""Field names whose values never reach a log line."""

REDACTED = "<redacted>"


class SecretRedactor:
    """A structlog processor that masks secret values, at any depth of the event dict.

    A value is masked when its key matches :data:`SECRET_KEY` or when one of the extra
    rules (``rule(key, value) -> bool``, e.g. from the configuration's secret list)
    says so. Also usable on plain records: ``redactor.redact(record)``.
    """

    def __init__(self, rules: tuple[Callable[[str, Any], bool], ...] = ()) -> None:
        self.rules = list(rules)

    def add_rule(self, rule: Callable[[str, Any], bool]) -> None:
        """Register one more rule (the hook for secret rules known elsewhere)."""
        self.rules.append(rule)

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        self._walk(event_dict)
        return event_dict

    def redact(self, record: dict[str, Any]) -> dict[str, Any]:
        """Mask secrets in ``record`` in place and return it."""
        self._walk(record)
        return record

    def _secret(self, key: str, value: Any) -> bool:
        return bool(SECRET_KEY.search(key)) or any(rule(key, value) for rule in self.rules)

    def _walk(self, mapping: MutableMapping[str, Any]) -> None:
        for key, value in list(mapping.items()):
            if key in {"event", "ts", "level"}:
                continue
            if self._secret(str(key), value):
                mapping[key] = REDACTED
            elif isinstance(value, dict):
                self._walk(value)


redactor = SecretRedactor()
"""The process-wide redactor every log line and event record passes through."""


def use_colors(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, never with NO_COLOR, always with FORCE_COLOR."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return _isatty(stream)


def choose_format(stream: TextIO, environ: Mapping[str, str], wanted: Format = "auto") -> Format:
    """``json`` or ``console``: the flag, then ``PFWATCH_LOG_FORMAT``, then isatty."""
    if wanted == "auto":
        from_env = environ.get("PFWATCH_LOG_FORMAT", "auto")
        wanted = from_env if from_env in {"json", "console"} else "auto"  # type: ignore[assignment]
    if wanted == "auto":
        return "console" if _isatty(stream) else "json"
    return wanted


def configure_logging(
    *,
    stream: TextIO | None = None,
    fmt: Format = "auto",
    level: str = "info",
    environ: Mapping[str, str] | None = None,
) -> Renderer:
    """Configure structlog and stdlib logging; return the renderer for event records."""
    out = stream if stream is not None else sys.stdout
    env = os.environ if environ is None else environ
    chosen = choose_format(out, env, fmt)
    colors = use_colors(out, env)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        redactor,
    ]
    final: Processor
    if chosen == "console":
        console = structlog.dev.ConsoleRenderer(colors=colors, timestamp_key="ts")
        final = console
        renderer: Renderer = _console_line(console)
    else:
        final = structlog.processors.JSONRenderer(serializer=_ordered_json)
        renderer = render_json
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            final,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, final],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))
    return renderer


def get_logger(**context: Any) -> Any:
    """A structlog logger bound to ``context``."""
    return structlog.get_logger().bind(**context)


def _ordered_json(event_dict: Mapping[str, Any], **_: Any) -> str:
    head = {key: event_dict[key] for key in ("event", "ts", "level") if key in event_dict}
    rest = {key: event_dict[key] for key in sorted(event_dict) if key not in head}
    return render_json({**head, **rest})


def _console_line(console: structlog.dev.ConsoleRenderer) -> Renderer:
    def render(record: Mapping[str, Any]) -> str:
        return str(console(None, "info", dict(record)))

    return render


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
