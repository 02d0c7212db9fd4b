"""Knowledge tables: every row cites Postfix source; readers and closures behave as documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pfwatch.knowledge import params as kp
from pfwatch.knowledge.daemons import DAEMONS, SKELETONS, spec_for
from pfwatch.knowledge.tables import TABLE_TYPES, split_ref, table_type

REPO = Path(__file__).resolve().parents[3]
REFERENCE = REPO.parent / "shared" / "reference" / "postfix-param-readers.json"
CITATION = re.compile(r"^(src|conf|proto)/[\w./-]+:\d+")


def test_every_daemon_row_cites_its_skeleton_call() -> None:
    for spec in DAEMONS.values():
        assert CITATION.match(spec.source), spec
        if spec.table_check != "never":
            assert CITATION.match(spec.table_check_source), spec
        if not (spec.idle_applies and spec.use_applies) and spec.name != "master":
            assert CITATION.match(spec.override_source), spec
    for rule in SKELETONS.values():
        assert rule.idle_source.startswith("src/master/")


def test_long_lived_daemons_ignore_limits_as_the_source_says() -> None:
    assert not spec_for("qmgr").idle_applies and not spec_for("qmgr").use_applies
    assert not spec_for("tlsmgr").idle_applies
    assert not spec_for("postscreen").use_applies and spec_for("postscreen").idle_applies
    assert not spec_for("anvil").use_applies
    assert spec_for("trivial-rewrite").table_check == "every_10s"
    assert spec_for("relay").name == "smtp"
    assert spec_for("no-such-daemon").skeleton == "single"


def test_table_types() -> None:
    assert all(CITATION.match(t.source) for t in TABLE_TYPES.values())
    assert table_type("hash").behaviour == "indexed" and table_type("hash").needs_postmap
    assert table_type("pcre").behaviour == "load_once"
    assert table_type("lmdb").behaviour == "lmdb"
    assert table_type("whatever").behaviour == "load_once"
    assert split_ref("proxy:hash:/etc/postfix/x") == (True, "hash", "/etc/postfix/x")
    assert split_ref("/etc/postfix/vdomains") == (False, "file", "/etc/postfix/vdomains")


def test_parameter_readers_from_the_source_extraction() -> None:
    assert kp.readers("virtual_mailbox_domains") == {"trivial-rewrite", "proxymap"}
    assert not kp.reads("smtpd", "virtual_mailbox_domains")
    assert kp.reads("smtpd", "smtpd_banner") and kp.own_reads("smtpd", "smtpd_banner")
    assert kp.is_global("mydestination") and kp.reads("qmgr", "mydestination")
    assert not kp.own_reads("qmgr", "mydestination")
    assert kp.where_read("trivial-rewrite", "virtual_mailbox_domains").startswith(
        "src/trivial-rewrite/trivial-rewrite.c:"
    )
    assert kp.reads("qmgr", "smtp_destination_concurrency_limit")  # <transport>_ dynamic
    assert kp.header()["postfix_version"] == "3.7.11"


def test_shipped_rows_all_have_locations() -> None:
    data = json.loads((REPO / "pfwatch/knowledge/data/param_readers.json").read_text())
    rows = [loc for daemon in data["daemons"].values() for loc in daemon.values()]
    assert len(rows) > 900
    assert all(CITATION.match(loc) for loc in rows)
    assert all(CITATION.match(loc) for loc in data["global"].values())


def test_dollar_references_reach_readers_and_overrides_shield() -> None:
    values = {
        "smtpd_banner": "$myhostname ESMTP",
        "my_table": "hash:/x",
        "smtpd_recipient_restrictions": "check_recipient_access ${my_table}",
    }
    got = kp.affected_parameters(["my_table"], [values])
    assert got == {"my_table", "smtpd_recipient_restrictions"}
    shielded = kp.affected_parameters(["smtpd_banner"], [values], {"smtpd_banner": "x"})
    assert shielded == set()
    via_override = kp.affected_parameters(
        ["mua_rules"], [values], {"smtpd_client_restrictions": "$mua_rules"}
    )
    assert via_override == {"mua_rules", "smtpd_client_restrictions"}


@pytest.mark.skipif(
    not REFERENCE.is_file(), reason="team reference extraction not beside the checkout"
)
def test_generator_reproduces_the_shipped_data(tmp_path: Path) -> None:
    out = tmp_path / "readers.json"
    subprocess.run(
        [sys.executable, str(REPO / "scripts/gen_param_readers.py"), str(REFERENCE), str(out)],
        check=True,
        capture_output=True,
    )
    assert json.loads(out.read_text()) == json.loads(
        (REPO / "pfwatch/knowledge/data/param_readers.json").read_text()
    )
