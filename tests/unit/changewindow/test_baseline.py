"""No-state fallbacks without a running Postfix: mtime bursts, git history, process polls.

A configuration directory on disk and a hand-made process picture stand in for /proc;
the real-Postfix side is in tests/integration/test_check_realpostfix.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pfwatch.changewindow.baseline import ProcessPicture, birth_polls, git_baseline, mtime_events
from pfwatch.changewindow.liveconfig import load_live_config
from pfwatch.config.snapshot import build_snapshot
from pfwatch.events import ConfigChanged, ProcessInfo

MAIN = (
    "myhostname = a.example\nvirtual_alias_maps = texthash:$config_directory/virtual\n"
    "alias_maps =\nalias_database =\nlocal_recipient_maps =\n"
)
MASTER = "smtp inet n - n - - smtpd\ncleanup unix n - n - 0 cleanup\n"


def make_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "main.cf").write_text(MAIN)
    (conf / "master.cf").write_text(MASTER)
    (conf / "virtual").write_text("a@example.net b@example.net\n")
    return conf


def picture(*starts: float, at: float = 1000.0) -> ProcessPicture:
    master = ProcessInfo(1, "master", "master", "postfix", min(starts) - 5)
    children = tuple(
        ProcessInfo(100 + i, "smtpd", "smtp", "postfix", start) for i, start in enumerate(starts)
    )
    return ProcessPicture(at, master, children, "test")


def test_files_edited_within_a_second_are_one_edit_per_file_set(tmp_path: Path) -> None:
    conf = make_dir(tmp_path)
    for name, when in (("main.cf", 500.0), ("master.cf", 500.0004), ("virtual", 500.0002)):
        os.utime(conf / name, (when, when))
    config = load_live_config(conf, postconf=None)
    snapshot = build_snapshot(str(conf), taken_at=1000.0)
    events, notes = mtime_events(config, snapshot, picture(400.0, 600.0))
    changes = [e for e in events if isinstance(e, ConfigChanged)]
    assert len({c.change_id for c in changes}) == len(changes) == 2
    config_change = next(c for c in changes if c.parameters)
    assert config_change.parameters == ("*",)  # what changed inside main.cf is unknown
    assert {Path(f).name for f in config_change.files} == {"main.cf", "master.cf"}
    table_change = next(c for c in changes if c.tables)
    assert table_change.tables[0].source_changed is True
    assert len(notes) == 2


def test_files_older_than_every_process_are_not_pending(tmp_path: Path) -> None:
    conf = make_dir(tmp_path)
    for name in ("main.cf", "master.cf", "virtual"):
        os.utime(conf / name, (100.0, 100.0))
    config = load_live_config(conf, postconf=None)
    events, notes = mtime_events(config, build_snapshot(str(conf)), picture(400.0))
    assert not [e for e in events if isinstance(e, ConfigChanged)]
    assert notes == []


def test_birth_polls_are_cumulative_and_end_with_today() -> None:
    pic = picture(400.0, 600.0, 600.0, 800.0)
    polls = birth_polls(pic, after=0.0)
    assert [p.at for p in polls] == [400.0, 600.0, 800.0, 1000.0]
    assert [len(p.processes) for p in polls] == [1, 3, 4, 4]


def test_git_baseline_picks_the_commit_before_a_moment(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    conf = make_dir(tmp_path)

    def commit(message: str, date: str) -> None:
        env = {
            **os.environ,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example",
        }
        subprocess.run(["git", "add", "-A"], cwd=conf, env=env, check=True)
        subprocess.run(["git", "commit", "-qm", message], cwd=conf, env=env, check=True)

    subprocess.run(["git", "init", "-q"], cwd=conf, check=True)
    commit("first", "2001-01-01T00:00:00Z")
    (conf / "main.cf").write_text(MAIN.replace("a.example", "b.example"))
    commit("second", "2001-01-03T00:00:00Z")
    (conf / "main.cf").write_text(MAIN.replace("a.example", "c.example"))  # uncommitted
    main = str(conf / "main.cf")
    jan2 = 978393600.0  # 2001-01-02T00:00:00Z
    base = git_baseline(conf, [main], jan2)
    assert base is not None
    assert "a.example" in (base.files[main] or "")
    assert main in base.dirty
    later = git_baseline(conf, [main], jan2 + 2 * 86400)
    assert later is not None and "b.example" in (later.files[main] or "")
    assert git_baseline(conf, [main], 86400.0) is None  # nothing committed that early


def test_git_baseline_outside_a_work_tree(tmp_path: Path) -> None:
    conf = make_dir(tmp_path)
    assert git_baseline(conf, [str(conf / "main.cf")], 1e10) is None
