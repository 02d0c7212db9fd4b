"""``pfwatch history``: the table and JSON output from a real state database."""

from __future__ import annotations

import json
from pathlib import Path

from pfwatch.events import Finding
from pfwatch.store.sqlite import StateStore
from pfwatch.testing.cli import run_pfwatch

T0 = 1_700_000_000.0


def fill(state: Path) -> None:
    store = StateStore.open(state)
    store.commit(
        [
            Finding(
                "change_detected",
                T0,
                "observed",
                {"change_id": "c1", "files": ["/etc/postfix/main.cf"], "needs": []},
            ),
            Finding("change_live", T0 + 65, "observed", {"change_id": "c1", "live_at": T0 + 65}),
            Finding(
                "change_detected",
                T0 + 100,
                "observed",
                {
                    "change_id": "c2",
                    "files": ["/etc/postfix/transport"],
                    "needs": ["postmap"],
                    "predicted_live_at": None,
                },
            ),
        ]
    )
    store.close()


def test_table(tmp_path: Path) -> None:
    fill(tmp_path)
    result = run_pfwatch("history", "--state-dir", str(tmp_path))
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "CHANGE",
        "EDITED",
        "(UTC)",
        "LIVE",
        "(UTC)",
        "LAG",
        "NEEDS",
        "FILES",
    ]
    assert lines[1].split()[0] == "c1" and "1m05s" in lines[1] and "main.cf" in lines[1]
    assert "2023-11-14 22:14:25" in lines[1]
    assert lines[2].split()[0] == "c2" and "pending" in lines[2] and "postmap" in lines[2]


def test_json(tmp_path: Path) -> None:
    fill(tmp_path)
    result = run_pfwatch("history", "--state-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.stdout
    doc = json.loads(result.stdout)
    assert [c["change_id"] for c in doc] == ["c1", "c2"]
    assert doc[0]["lag_seconds"] == 65.0
    assert doc[0]["detected_at"] == "2023-11-14T22:13:20.000000Z"
    assert doc[1]["live_at"] is None and doc[1]["needs"] == ["postmap"]
    limited = run_pfwatch("history", "--state-dir", str(tmp_path), "--json", "--limit", "1")
    assert [c["change_id"] for c in json.loads(limited.stdout)] == ["c2"]


def test_no_state_yet(tmp_path: Path) -> None:
    result = run_pfwatch("history", "--state-dir", str(tmp_path / "none"), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_state_dir_from_environment(tmp_path: Path) -> None:
    fill(tmp_path)
    result = run_pfwatch("history", "--json", env={"PFWATCH_STATE_DIR": str(tmp_path)})
    assert [c["change_id"] for c in json.loads(result.stdout)] == ["c1", "c2"]


def test_corrupt_state_is_one_line_and_unknown_status(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite").write_bytes(b"garbage" * 100)
    done = run_pfwatch("history", "--state-dir", str(tmp_path))
    assert done.exit_code == 3
    assert done.stderr.startswith("pfwatch: ") and "state.sqlite" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "state.sqlite").read_bytes() == b"garbage" * 100
