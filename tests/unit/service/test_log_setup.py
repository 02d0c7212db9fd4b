"""structlog setup: JSON off a terminal, console on one, NO_COLOR, ISO UTC, redaction."""

from __future__ import annotations

import io
import json
import logging
import re

import structlog

from pfwatch.events import Finding
from pfwatch.service.log_setup import configure_logging, get_logger, use_colors
from pfwatch.sinks.events_json import EventsJsonSink

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def teardown_function() -> None:
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_json_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging(stream=out, environ={})
    get_logger(component="store").warning("state_error", path="/s", password="hunter2")
    record = json.loads(out.getvalue())
    assert list(record)[:3] == ["event", "ts", "level"]
    assert record["event"] == "state_error" and record["level"] == "warning"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["ts"])
    assert record["component"] == "store" and record["password"] == "<redacted>"


def test_level_filters_debug() -> None:
    out = io.StringIO()
    configure_logging(stream=out, environ={}, level="info")
    get_logger().debug("noise")
    assert out.getvalue() == ""


def test_stdlib_logging_is_rendered_as_json_too() -> None:
    out = io.StringIO()
    configure_logging(stream=out, environ={})
    logging.getLogger("watchdog").warning("inotify limit reached")
    record = json.loads(out.getvalue())
    assert record["event"] == "inotify limit reached" and record["level"] == "warning"


def test_console_on_a_terminal_with_colours_unless_no_color() -> None:
    out = Tty()
    renderer = configure_logging(stream=out, environ={})
    get_logger().info("change_live", change_id="c1")
    assert ANSI.search(out.getvalue())
    assert "change_live" in out.getvalue()
    line = renderer({"event": "change_live", "ts": "2026-01-01T00:00:00Z", "change_id": "c1"})
    assert "change_id" in ANSI.sub("", line)

    plain = Tty()
    configure_logging(stream=plain, environ={"NO_COLOR": "1"})
    get_logger().info("change_live", change_id="c1")
    assert "change_live" in plain.getvalue() and not ANSI.search(plain.getvalue())


def test_colour_rules() -> None:
    assert not use_colors(io.StringIO(), {})
    assert use_colors(io.StringIO(), {"FORCE_COLOR": "1"})
    assert not use_colors(Tty(), {"NO_COLOR": "1", "FORCE_COLOR": "1"})


def test_format_override_from_environment() -> None:
    out = Tty()
    renderer = configure_logging(stream=out, environ={"PFWATCH_LOG_FORMAT": "json"})
    EventsJsonSink(out, render=renderer).emit(Finding("postfix_reloaded", 0.0, "observed"))
    assert json.loads(out.getvalue())["event"] == "postfix_reloaded"
