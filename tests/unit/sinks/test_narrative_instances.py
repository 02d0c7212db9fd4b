"""explain's text on a log of several instances names each master event and process by
its instance; a log of one instance reads as before."""

from __future__ import annotations

from typing import Any

from pfwatch.sinks.narrative import gantt, narrate


def _proc(instance: str, pid: int) -> dict[str, Any]:
    return {
        "process": f"{instance}/smtpd/{pid}",
        "label": f"smtpd[{pid}]",
        "instance": instance,
        "daemon": "smtpd",
        "born_at": 10.0,
        "born_exact": True,
        "first_seen_at": 10.0,
        "last_activity_at": 12.0,
        "exited_at": 15.0,
        "exit_reason": "max_idle",
        "basis": "observed",
        "sessions": 1,
    }


def _doc(*instances: str) -> dict[str, Any]:
    return {
        "summary": {},
        "log": {"first_at": 0.0, "last_at": 20.0},
        "master_events": [
            {"name": "postfix_started", "at": 1.0 + n, "instance": name, "pid": 1, "version": ""}
            for n, name in enumerate(instances)
        ],
        "processes": [_proc(name, 100 + n) for n, name in enumerate(instances)],
        "changes": [],
    }


def test_several_instances_are_named() -> None:
    doc = _doc("postfix", "postfix-out")
    text = "\n".join(narrate(doc))
    assert "postfix-out: Postfix started." in text
    assert "postfix: Postfix started." in text
    assert "2 Postfix instances: postfix (1 processes), postfix-out (1 processes)." in text
    assert any("postfix-out/smtpd[101]" in line for line in gantt(doc))


def test_one_instance_reads_as_before() -> None:
    doc = _doc("postfix")
    text = "\n".join(narrate(doc))
    assert ": Postfix started." in text
    assert "postfix: Postfix" not in text
    assert "instances" not in text
    assert not any("postfix/smtpd" in line for line in gantt(doc))
