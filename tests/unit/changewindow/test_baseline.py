"""No-state fallbacks without a running Postfix: mtime bursts, git history, argv evidence.

A configuration directory on disk and a hand-made /proc poll stand in for /proc;
the real-Postfix side is in tests/integration/test_check_realpostfix.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pfwatch.changewindow.baseline import argv_changed_services, git_baseline, mtime_events
from pfwatch.config.snapshot import build_snapshot
from pfwatch.events import ConfigChanged, ProcessInfo, ProcessTableSeen

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


SMTPD_ARGV = ("smtpd", "-n", "smtp", "-t", "inet", "-u", "-o", "stress=")
"""What master gives the smtp service of MASTER (no arguments in master.cf)."""


def picture(
    *starts: float, at: float = 1000.0, argv: tuple[str, ...] = SMTPD_ARGV
) -> ProcessTableSeen:
    master = ProcessInfo(1, "master", "master", "postfix", min(starts) - 5)
    children = tuple(
        ProcessInfo(100 + i, "smtpd", "smtp", "postfix", start, argv)
        for i, start in enumerate(starts)
    )
    return ProcessTableSeen(at, (master, *children))


def test_files_edited_within_a_second_are_one_edit_per_file_set(tmp_path: Path) -> None:
    conf = make_dir(tmp_path)
    for name, when in (("main.cf", 500.0), ("master.cf", 500.0004), ("virtual", 500.0002)):
        os.utime(conf / name, (when, when))
    snapshot = build_snapshot(str(conf), taken_at=1000.0)
    events, notes = mtime_events(snapshot, picture(400.0, 600.0), 1000.0)
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
    events, notes = mtime_events(build_snapshot(str(conf)), picture(400.0), 1000.0)
    assert not [e for e in events if isinstance(e, ConfigChanged)]
    assert notes == []


def test_master_cf_services_edited_since_master_read_it_show_in_argv(tmp_path: Path) -> None:
    conf = make_dir(tmp_path)
    (conf / "master.cf").write_text(MASTER.replace("smtpd\n", "smtpd -v -o smtpd_banner=x\n"))
    os.utime(conf / "master.cf", (500.0, 500.0))
    for name in ("main.cf", "virtual"):
        os.utime(conf / name, (100.0, 100.0))
    snapshot = build_snapshot(str(conf), taken_at=1000.0)
    old = picture(400.0)  # started with master.cf's old smtp line: no arguments
    events, _notes = mtime_events(snapshot, old, 1000.0)
    (change,) = [e for e in events if isinstance(e, ConfigChanged)]
    assert change.services == ("smtp/inet",)
    current = (*SMTPD_ARGV, "-v", "-o", "smtpd_banner=x")
    assert argv_changed_services(snapshot, picture(400.0, argv=current)) == ()
    # a leading argument that went away is a change too, not a master flag
    dropped = (*SMTPD_ARGV, "-x", "-v", "-o", "smtpd_banner=x")
    assert argv_changed_services(snapshot, picture(400.0, argv=dropped)) == ("smtp/inet",)
    assert argv_changed_services(snapshot, picture(400.0, argv=())) == ()  # argv unknown
    assert argv_changed_services(snapshot, None) == ()


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


HASH_MAIN = MAIN.replace("texthash:", "hash:")


@pytest.mark.parametrize(("db_at", "needs_postmap"), [(500.0, True), (500.6, False)])
def test_a_compiled_file_older_than_its_source_in_one_burst_was_not_rebuilt(
    tmp_path: Path, db_at: float, needs_postmap: bool
) -> None:
    conf = make_dir(tmp_path)
    (conf / "main.cf").write_text(HASH_MAIN)
    (conf / "virtual.db").write_bytes(b"")
    for name, when in (("main.cf", 100.0), ("master.cf", 100.0), ("virtual", 500.5)):
        os.utime(conf / name, (when, when))
    # postmap half a second before the source edit: one burst, yet not rebuilt from it
    os.utime(conf / "virtual.db", (db_at, db_at))
    snapshot = build_snapshot(str(conf), taken_at=1000.0)
    events, _notes = mtime_events(snapshot, picture(400.0), 1000.0)
    (change,) = [e for e in events if isinstance(e, ConfigChanged)]
    (edit,) = change.tables
    assert edit.source_changed is True
    assert edit.compiled_changed is not needs_postmap
