"""``pfwatch lab``: scripted rehearsals on a real throwaway Postfix, and the neutraliser.

The rehearsal edits ``smtpd_banner`` and a ``hash:`` alias table; the report is compared
with what really happened: the banner the instance really sends, the processes /proc
really shows, and the recipients the lab's SMTP sink really received.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pfwatch.config.maincf import parse_main_cf
from pfwatch.config.mastercf import parse_master_cf
from pfwatch.instance.local import PostfixUnavailable
from pfwatch.lab.config import NEUTRAL_TABLE, LabTargets, build_lab_config
from pfwatch.lab.script import LabScriptError
from pfwatch.lab.session import Lab, lab_instance
from pfwatch.testing.cli import run_pfwatch

SCRIPT = """\
# banner first, then an alias table rebuilt with postmap
send lab@pfwatch.test user@example.net
edit main.cf smtpd_banner = $myhostname ESMTP rehearsed
expect live within 20
expect banner ESMTP rehearsed
write virtual alias@example.net first@example.net
postmap hash:virtual
edit main.cf virtual_alias_maps = hash:$config_directory/virtual
# routing (trivial-rewrite's answers): live 30 s after it, as qmgr may reuse an old answer
expect live within 60
send lab@pfwatch.test alias@example.net
expect delivered first@example.net
write virtual alias@example.net second@example.net
expect needs postmap
postmap hash:virtual
expect live within 60
send lab@pfwatch.test alias@example.net
expect delivered second@example.net
"""


def pfwatch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    result = run_pfwatch(*args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.postfix
def test_scripted_rehearsal_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "rehearsal.lab"
    script.write_text(SCRIPT)
    code, out, err = pfwatch(capsys, "lab", "--script", str(script), "--json")
    if "real Postfix" in err or "needs root" in err:
        pytest.skip(f"no usable Postfix here: {err.strip()}")
    report = json.loads(out)
    assert code == 0, report
    assert report["ok"] is True
    steps = {s["command"]: s for s in report["steps"]}
    assert "ESMTP rehearsed" in steps["expect banner ESMTP rehearsed"]["outcome"]
    banner, table_added, unbuilt, rebuilt = report["changes"]
    assert "smtpd_banner" in banner["what"]
    assert banner["live_at"] >= banner["edited_at"]
    assert banner["live_basis"] == "observed"
    assert unbuilt["needs"] == [] and unbuilt["superseded_by"] == rebuilt["change_id"]
    assert rebuilt["live_at"] is not None
    # the mail sent after "expect live" was rewritten with the new table: the report's
    # live time precedes it (the sink really received second@example.net, step ok above)
    sent = [s for s in report["steps"] if s["command"].startswith("send")][-1]
    assert rebuilt["live_at"] <= sent["at"]
    assert table_added["live_at"] is not None


@pytest.mark.postfix
def test_rehearsal_matches_proc_truth() -> None:
    try:
        context = lab_instance(None, 2)
        pf, notes = context.__enter__()
    except PostfixUnavailable as exc:
        pytest.skip(f"no usable Postfix here: {exc}")
    try:
        lab = Lab(pf, notes)
        lab.run_line("send lab@pfwatch.test user@example.net")
        edited = time.time()
        step = lab.run_line("edit main.cf smtpd_banner = $myhostname ESMTP truth")
        assert step is not None and step.ok
        step = lab.run_line("expect live within 20")
        assert step is not None and step.ok, step
        change = lab.last_change()
        assert change is not None and change.live_at is not None
        # the truth: no smtpd (the only reader of smtpd_banner here) older than the edit
        stale = [p for p in pf.processes() if p.name == "smtpd" and p.started_at < edited - 0.05]
        assert stale == []
        assert "ESMTP truth" in pf.wait_ready()
        lab.close()
    finally:
        context.__exit__(None, None, None)


def test_bad_script_line_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "bad.lab"
    script.write_text("# fine\nsleep 0\nfrobnicate main.cf\n")
    code, _out, err = pfwatch(capsys, "lab", "--script", str(script))
    assert code == 3  # checked before any Postfix is started
    assert f"{script}:3: unknown command: frobnicate main.cf" in err


def test_without_postfix_it_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def unavailable(self: object, timeout: float = 30.0) -> None:
        raise PostfixUnavailable("postfix not found on PATH: install Debian's postfix package")

    monkeypatch.setattr("pfwatch.instance.local.PostfixInstance.start", unavailable)
    code, out, err = pfwatch(capsys, "lab")
    assert code == 3
    assert "apt-get install postfix" in err
    assert out == ""


OPERATOR_MAIN = """\
compatibility_level = 3.6
myhostname = mx.example.org
smtpd_banner = $myhostname ESMTP operator
queue_directory = /var/spool/postfix
inet_interfaces = all
relayhost = [smarthost.example.org]:587
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = hash:{dir}/sasl_passwd
virtual_alias_maps = hash:{dir}/virtual, ldap:{dir}/ldap-aliases.cf
smtpd_recipient_restrictions = permit_mynetworks, check_policy_service inet:127.0.0.1:10023,
    reject_unauth_destination
smtpd_milters = inet:localhost:8891
max_idle = 100s
"""
OPERATOR_MASTER = """\
smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o smtpd_sasl_auth_enable=yes
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
smtp      unix  -       -       y       -       -       smtp
maildrop  unix  -       n       n       -       -       pipe
  flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${{recipient}}
"""


def test_neutraliser_removes_secrets_and_external_lookups(tmp_path: Path) -> None:
    source = tmp_path / "etc-postfix"
    source.mkdir()
    main_cf = parse_main_cf(OPERATOR_MAIN.format(dir=source), str(source / "main.cf"))
    master_cf = parse_master_cf(OPERATOR_MASTER.format(dir=source), str(source / "master.cf"))
    for name in ("virtual", "virtual.db", "sasl_passwd", "sasl_passwd.db"):
        (source / name).write_text("x\n")
    lab_dir = tmp_path / "lab" / "etc"
    ports = iter(range(40001, 40010))
    targets = LabTargets(
        config_dir=lab_dir,
        base={
            "queue_directory": "/lab/queue",
            "maillog_file": "/lab/maillog",
            "inet_interfaces": "127.0.0.1",
        },
        smtp_port=40000,
        sink=("127.0.0.1", 39999),
        max_idle="3s",
        free_port=lambda: next(ports),
    )
    tables = [str(source / "virtual"), str(source / "virtual.db")]  # never the secret one
    config = build_lab_config(main_cf, master_cf, source, targets, tables)
    main = parse_main_cf(config.main_text).parameters
    assert main["queue_directory"].value == "/lab/queue"
    assert main["inet_interfaces"].value == "127.0.0.1"
    assert main["relayhost"].value == "[127.0.0.1]:39999"
    assert main["transport_maps"].value.startswith("static:smtp:[127.0.0.1]:39999")
    assert "smtp_sasl_password_maps" not in main
    assert main["smtp_sasl_auth_enable"].value == "no"
    assert main["virtual_alias_maps"].value == f"hash:{lab_dir}/virtual, {NEUTRAL_TABLE}"
    assert "check_policy_service" not in main["smtpd_recipient_restrictions"].value
    assert "reject_unauth_destination" in main["smtpd_recipient_restrictions"].value
    assert "smtpd_milters" not in main
    assert main["max_idle"].value == "3s"
    assert main["smtpd_banner"].value == "$myhostname ESMTP operator"
    assert set(config.copies) == {str(source / "virtual"), str(source / "virtual.db")}
    master = parse_master_cf(config.master_text)
    by_name = {s.name: s for s in master.services}
    assert "127.0.0.1:40000" in by_name  # the public smtp service on the lab's port
    assert "127.0.0.1:40001" in by_name  # submission moved to a free loopback port
    assert all(s.chroot == "n" for s in master.services)
    assert by_name["maildrop"].command == "discard"
    assert "postlog" in by_name
    notes = "\n".join(config.notes)
    assert "SASL passwords are not copied" in notes
    assert "check_policy_service removed" in notes
    assert "maildrop/unix: pipe replaced by discard" in notes


@pytest.mark.postfix
def test_lab_from_an_operator_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "etc-postfix"
    source.mkdir()
    (source / "main.cf").write_text(
        OPERATOR_MAIN.format(dir=source).replace(", ldap:" + str(source) + "/ldap-aliases.cf", "")
    )
    stock = Path("/etc/postfix/master.cf")
    if not stock.is_file():
        pytest.skip("no stock master.cf to start from (apt-get install postfix)")
    (source / "master.cf").write_text(
        stock.read_text() + "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"
    )
    (source / "virtual").write_text("alias@example.net copied@example.net\n")
    (source / "sasl_passwd").write_text("[smarthost.example.org]:587 user:secret\n")
    script = tmp_path / "from.lab"
    script.write_text(
        "postmap hash:virtual\nexpect live within 20\nexpect banner ESMTP operator\n"
        "send lab@pfwatch.test alias@example.net\n"
        "expect delivered copied@example.net\n"
    )
    code, out, err = pfwatch(capsys, "lab", "--from", str(source), "--script", str(script))
    if "real Postfix" in err or "needs root" in err:
        pytest.skip(f"no usable Postfix here: {err.strip()}")
    assert code == 0, out + err
    assert "all expectations held" in out
    assert "SASL passwords are not copied" in out
    assert "secret" not in (source / "virtual").read_text()


def test_script_error_type() -> None:
    err = LabScriptError("x.lab", 4, "unknown command: nope")
    assert str(err) == "x.lab:4: unknown command: nope"
