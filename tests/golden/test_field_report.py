# ruff: noqa: E501 - the log lines below are quoted verbatim
"""The field report (a 2018 blog post): explain reaches its conclusion, then goes further.

The log excerpt below is our own test data reconstructed from the report's quoted lines
(Postfix with ``smtpd -v``, max_idle = 100s, the file list /etc/postfix/vdomains that feeds
virtual_mailbox_domains edited at about 06:26). The report concluded that smtpd[3095]
timed out idle 100 s after its last connection and the next mail used the edited
configuration; pfwatch must add that trivial-rewrite, not smtpd, reads
virtual_mailbox_domains and must have exited (silently) before delivery switched to relay.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from pfwatch.cli.explain_cmd import explain_document
from pfwatch.sinks.narrative import gantt, narrate

GOLDEN = Path(__file__).with_name("field_report.txt")

LOG = """\
Apr  9 06:25:26 t1110rh72 postfix/virtual[3102]: BF47F18D2AA7: to=<ex-1@example.com>, relay=virtual, delay=0.06, delays=0.05/0.01/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Apr  9 06:26:31 t1110rh72 postfix/smtpd[3095]: private/anvil: wanted attribute: (list terminator)
Apr  9 06:26:31 t1110rh72 postfix/smtpd[3095]: input attribute name: (end)
Apr  9 06:26:31 t1110rh72 postfix/smtpd[3095]: disconnect from t1082w216[192.168.11.82]
Apr  9 06:26:31 t1110rh72 postfix/smtpd[3095]: master_notify: status 1
Apr  9 06:26:31 t1110rh72 postfix/smtpd[3095]: connection closed
Apr  9 06:26:31 t1110rh72 postfix/virtual[3102]: 6EEC818D2AA9: to=<ex-1@example.com>, relay=virtual, delay=0.02, delays=0.02/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Apr  9 06:28:11 t1110rh72 postfix/smtpd[3095]: idle timeout -- exiting
Apr  9 06:29:05 t1110rh72 postfix/smtp[3185]: 7E88118D2AAB: to=<ex-1@example.com>, relay=192.168.11.112[192.168.11.112]:25, delay=0.05, delays=0.02/0.01/0.01/0.01, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 70D61A67D9)
"""

MAIN_CF = """\
max_idle = 100s
virtual_mailbox_domains = /etc/postfix/vdomains
virtual_mailbox_base = /var/spool/virtual
virtual_mailbox_maps = hash:/etc/postfix/vmailbox
virtual_uid_maps = static:10000
virtual_gid_maps = static:10000
virtual_alias_maps = hash:/etc/postfix/virtual
"""

MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd -v
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
smtp      unix  -       -       n       -       -       smtp
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
"""


def at(hms: str) -> float:
    return datetime.strptime(f"2018-04-09 {hms}", "%Y-%m-%d %H:%M:%S").timestamp()


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("field-report")
    (root / "maillog").write_text(LOG)
    config = root / "etc"
    config.mkdir()
    (config / "main.cf").write_text(MAIN_CF)
    (config / "master.cf").write_text(MASTER_CF)
    return explain_document(
        [str(root / "maillog")],
        config_dir=str(config),
        year=2018,
        changed_at=("06:26:00=/etc/postfix/vdomains",),
    )


def proc(doc: dict, label: str) -> dict:
    return next(p for p in doc["processes"] if p["label"] == label)


def test_the_reports_conclusion_smtpd_timed_out_idle_100_s_after_its_last_connection(
    doc: dict,
) -> None:
    smtpd = proc(doc, "smtpd[3095]")
    assert smtpd["last_session_end_at"] == at("06:26:31")
    assert smtpd["exited_at"] == at("06:28:11")
    assert smtpd["exit_reason"] == "idle_timeout" and smtpd["basis"] == "observed"
    assert smtpd["exited_at"] - smtpd["last_session_end_at"] == 100
    change = doc["changes"][0]
    assert change["live_at"] is not None and change["live_at"] < at("06:29:05")
    nxt = proc(doc, "smtp[3185]")
    assert nxt["first_seen_at"] == at("06:29:05") and nxt["first_seen_at"] > change["live_at"]


def test_further_it_was_trivial_rewrite_not_smtpd(doc: dict) -> None:
    change = doc["changes"][0]
    readers = {a["daemon"]: a for a in change["affected"]}
    assert readers["trivial-rewrite"]["mode"] == "restart"
    assert "virtual_mailbox_domains" in readers["trivial-rewrite"]["why"]
    assert "virtual_mailbox_domains" not in readers["smtpd"]["why"]  # only its resolve cache
    made = change["made_live_by"]
    rewrite = next(p for p in doc["processes"] if p["process"] == made["process"])
    assert rewrite["daemon"] == "trivial-rewrite" and rewrite["inferred"]
    assert rewrite["basis"] == "inferred"
    assert rewrite["clients_gone_at"] == at("06:26:36")  # last client use + ipc_idle 5 s
    assert rewrite["exited_at"] == pytest.approx(at("06:28:16") + 0.5, abs=1e-6)  # + max_idle 100 s
    assert made["at"] == at("06:28:17")  # new routing answers from then on
    assert change["live_at"] > proc(doc, "smtpd[3095]")["exited_at"]
    assert change["needs"] == []


def test_routing_caches_delay_full_liveness_by_30_s_and_the_next_mail_is_after(doc: dict) -> None:
    change = doc["changes"][0]
    window = change["routing_cache"]
    assert window["earliest"] == at("06:28:17") and window["latest"] == at("06:28:47")
    assert change["live_at"] == at("06:28:47") and change["basis"] == "inferred"
    # the report's next mail (06:29:05) comes after even qmgr's 30 s reuse of old answers
    assert proc(doc, "smtp[3185]")["first_seen_at"] > change["live_at"]
    text = " ".join(narrate(doc))
    assert "qmgr may reuse its last routing answer for the same address for up to 30 s" in text
    assert "fully live by 06:28:47 at the latest" in text


def test_narrative_says_so(doc: dict) -> None:
    text = " ".join(narrate(doc))
    assert (
        "smtpd[3095] closed its last connection at 06:26:31 and timed out idle at 06:28:11" in text
    )
    assert "trivial-rewrite[?] writes no line when it exits" in text
    assert "It went live for new routing answers at 06:28:17 (inferred)" in text
    assert "the exit of trivial-rewrite[?] made it live — not smtpd[3095]" in text
    assert "its exit, not smtpd's, is what changed how mail was routed" in text
    assert "Deliveries switched from virtual (virtual[3102], last at 06:26:31) to smtp" in text


def test_golden_narrative_and_gantt(doc: dict) -> None:
    got = "\n\n".join(narrate(doc)) + "\n\n" + "\n".join(gantt(doc, width=56)) + "\n"
    if os.environ.get("PFWATCH_REGEN_GOLDEN"):
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text()
