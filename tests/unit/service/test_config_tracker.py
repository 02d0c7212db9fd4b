"""The configuration side of the watch service on a temporary configuration directory:
baseline, semantic change stamped with the file's mtime, parse errors and unreadable
files keeping the last good snapshot, comment-only edits, change ids after a restart."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pfwatch.config.snapshot import snapshot_from_json
from pfwatch.events import ConfigChanged, ConfigError, ConfigSnapshotTaken
from pfwatch.service.config_tracker import ConfigTracker

MASTER = (
    "smtp      inet  n       -       y       -       -       smtpd\n"
    "pickup    unix  n       -       y       60      1       pickup\n"
    "cleanup   unix  n       -       y       -       0       cleanup\n"
    "qmgr      unix  n       -       n       300     1       qmgr\n"
)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    directory = tmp_path / "etc"
    directory.mkdir()
    (directory / "main.cf").write_text("myhostname = mx.example.com\nsmtpd_banner = hi\n")
    (directory / "master.cf").write_text(MASTER)
    return directory


def replace_main(conf: Path, text: str, mtime: float) -> None:
    temp = conf / ".main.cf.tmp"
    temp.write_text(text)
    os.utime(temp, (mtime, mtime))
    temp.replace(conf / "main.cf")


def test_baseline_then_a_change_stamped_with_its_mtime(conf: Path) -> None:
    tracker = ConfigTracker(conf, None)
    first = tracker.check(100.0)
    assert [type(e) for e in first.events] == [ConfigSnapshotTaken]
    assert first.stored() is not None
    assert tracker.check(101.0).events == []

    replace_main(conf, "myhostname = mx.example.com\nsmtpd_banner = hello\n", 150.5)
    update = tracker.check(160.0)
    (changed,) = update.events
    assert isinstance(changed, ConfigChanged)
    assert "smtpd_banner" in changed.parameters  # (and parameters expanding it)
    assert changed.at == 150.5
    assert changed.change_id.startswith("c1-")
    assert update.adopted is not None and tracker.position()["seq"] == 1


def test_mtime_before_the_last_look_is_raised_to_it(conf: Path) -> None:
    tracker = ConfigTracker(conf, None)
    tracker.check(100.0)
    replace_main(conf, "myhostname = mx.example.com\nsmtpd_banner = old\n", 5.0)  # cp -p
    (changed,) = tracker.check(120.0).events
    assert isinstance(changed, ConfigChanged) and changed.at == 100.0


def test_a_syntax_error_is_reported_once_and_changes_nothing(conf: Path) -> None:
    tracker = ConfigTracker(conf, None)
    tracker.check(100.0)
    replace_main(conf, "myhostname = mx.example.com\nsmtpd_banner = hi\nnot a setting\n", 110.0)
    update = tracker.check(111.0)
    errors = [e for e in update.events if isinstance(e, ConfigError)]
    assert errors and errors[0].path.endswith("main.cf") and errors[0].line == 3
    assert not [e for e in update.events if isinstance(e, ConfigChanged)]
    assert tracker.check(112.0).events == []  # not repeated
    assert tracker.current is not None
    assert tracker.current.parameters["smtpd_banner"] == "hi"


@pytest.mark.parametrize("fault", ["deleted", "directory", "unreadable"])
def test_an_unreadable_main_cf_keeps_the_last_good_snapshot(conf: Path, fault: str) -> None:
    tracker = ConfigTracker(conf, None)
    tracker.check(100.0)
    good = tracker.current
    main = conf / "main.cf"
    if fault == "deleted":
        main.unlink()
    elif fault == "directory":
        main.unlink()
        main.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads files whatever their mode")
        main.chmod(0)
    update = tracker.check(110.0)
    (error,) = update.events
    assert isinstance(error, ConfigError) and error.path == str(main)
    assert "cannot read" in error.message
    assert tracker.current is good and update.adopted is None
    assert tracker.check(111.0).events == []
    if main.is_dir():
        shutil.rmtree(main)
    else:
        main.unlink(missing_ok=True)
    main.write_text("myhostname = mx.example.com\nsmtpd_banner = hi\n")
    os.utime(main, (115.0, 115.0))
    assert tracker.check(116.0).events == []  # back as it was: no change


def test_comment_only_edit_adopts_without_a_change(conf: Path) -> None:
    tracker = ConfigTracker(conf, None)
    tracker.check(100.0)
    replace_main(conf, "# note\nmyhostname = mx.example.com\nsmtpd_banner = hi\n", 101.0)
    update = tracker.check(102.0)
    assert update.events == [] and update.adopted is not None


def test_restart_from_the_stored_snapshot_continues_the_sequence(conf: Path) -> None:
    tracker = ConfigTracker(conf, None)
    stored = tracker.check(100.0).stored()
    assert stored is not None
    replace_main(conf, "myhostname = mx.example.com\nsmtpd_banner = down\n", 200.0)
    restored = snapshot_from_json(json.loads(stored[2]))
    again = ConfigTracker(conf, restored, seq=4)
    (changed,) = again.check(300.0).events
    assert isinstance(changed, ConfigChanged)
    assert changed.change_id.startswith("c5-") and changed.at == 200.0
    assert str(conf.absolute()) in again.directories()


def test_only_paths_that_matter_cost_a_snapshot(conf: Path) -> None:
    (conf / "virtual").write_text("a@example.com b\n")
    with (conf / "main.cf").open("a") as handle:
        handle.write("virtual_alias_maps = hash:$config_directory/virtual\n")
    tracker = ConfigTracker(conf, None)
    tracker.check(100.0)
    base = str(conf.absolute())
    assert tracker.concerns(frozenset({f"{base}/main.cf"}))
    assert tracker.concerns(frozenset({f"{base}/.main.cf.tmp", f"{base}/master.cf"}))
    assert tracker.concerns(frozenset({f"{base}/virtual.db"}))
    assert tracker.concerns(frozenset({f"{base}/..data"}))  # a ConfigMap swap
    assert tracker.concerns(frozenset({base}))  # the directory came back
    assert not tracker.concerns(frozenset({f"{base}/.main.cf.swp", f"{base}/README"}))
