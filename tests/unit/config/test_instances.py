"""Instances of a multi-instance host: discovery from main.cf, routing by syslog name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfwatch.config.instances import Router, discover, listed_directories, read_instance
from pfwatch.errors import ConfigSyntaxError, SourceUnavailable, UsageError
from pfwatch.events import LogEvent

MASTER = (
    "smtp inet n - y - - smtpd\n"
    "submission inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n"
    "pickup unix n - y 60 1 pickup\n"
)


def _instance(root: Path, name: str, main: str, master: str = MASTER) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "main.cf").write_text(main)
    (directory / "master.cf").write_text(master)
    return directory


def _event(prefix: str) -> LogEvent:
    return LogEvent(0.0, "x", f"{prefix}/smtpd", prefix, "smtpd", "smtpd", 1)


def test_primary_lists_its_instances_and_each_has_its_syslog_name(tmp_path: Path) -> None:
    out = _instance(
        tmp_path,
        "postfix-out",
        "multi_instance_name = postfix-out\nqueue_directory = /var/spool/postfix-out\n"
        "data_directory = /var/lib/postfix-out\n",
    )
    relay = _instance(tmp_path, "relay", "syslog_name = relay/main\n")
    primary = _instance(
        tmp_path,
        "postfix",
        f"multi_instance_directories = {out},\n  {relay}\nqueue_directory = /var/spool/postfix\n",
    )
    found = discover(primary)
    assert [(s.name, s.primary) for s in found] == [
        ("postfix", True),
        ("postfix-out", False),
        ("relay", False),
    ]
    assert found[1].queue_directory == "/var/spool/postfix-out"
    assert found[1].data_directory == "/var/lib/postfix-out"
    assert found[1].multi_instance_name == "postfix-out"
    assert found[0].config_dir == primary
    assert listed_directories(primary) == (out, relay)


def test_a_primary_without_the_list_is_one_instance(tmp_path: Path) -> None:
    primary = _instance(tmp_path, "postfix", "myhostname = a.example\n")
    found = discover(primary)
    assert [s.name for s in found] == ["postfix"]
    assert found[0].syslog_names == {"postfix"}


def test_directories_given_replace_the_list(tmp_path: Path) -> None:
    other = _instance(tmp_path, "b", "syslog_name = b\n")
    listed = _instance(tmp_path, "c", "syslog_name = c\n")
    primary = _instance(tmp_path, "a", f"multi_instance_directories = {listed}\n")
    assert [s.name for s in discover(primary, [other])] == ["postfix", "b"]


def test_router_prefers_the_instance_whose_own_syslog_name_it_is(tmp_path: Path) -> None:
    out = _instance(
        tmp_path,
        "out",
        "multi_instance_name = postfix-out\n",
        "smtp inet n - y - - smtpd\nsub inet n - y - - smtpd -o syslog_name=${syslog_name}/sub\n",
    )
    # postmulti copies the primary's master.cf: postfix/submission in both
    copied = _instance(tmp_path, "copy", "syslog_name = copy\n")
    primary = _instance(tmp_path, "postfix", f"multi_instance_directories = {out} {copied}\n")
    found = discover(primary)
    assert found[2].syslog_names == {"copy", "postfix"}
    router = Router(found)
    assert router.route(_event("postfix")) == 0
    assert router.route(_event("postfix-out")) == 1
    assert router.route(_event("copy")) == 2
    assert router.route(_event("elsewhere")) is None
    assert router.names_of(1) == {"postfix-out"}


def test_a_listed_directory_that_is_missing_names_it(tmp_path: Path) -> None:
    primary = _instance(tmp_path, "postfix", f"multi_instance_directories = {tmp_path}/gone\n")
    with pytest.raises(SourceUnavailable, match="gone"):
        discover(primary)


def test_two_instances_with_one_syslog_name_are_refused(tmp_path: Path) -> None:
    twin = _instance(tmp_path, "twin", "myhostname = twin.example\n")
    primary = _instance(tmp_path, "postfix", f"multi_instance_directories = {twin}\n")
    with pytest.raises(UsageError, match="share the syslog name postfix"):
        discover(primary)


def test_a_broken_main_cf_names_file_and_line(tmp_path: Path) -> None:
    broken = _instance(tmp_path, "broken", "syslog_name = ok\nno equals sign here\n")
    with pytest.raises(ConfigSyntaxError) as caught:
        read_instance(broken, primary=False)
    assert "main.cf" in str(caught.value)
