"""Release detection and table choice (pfwatch.knowledge.releases)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from pfwatch.config.defaults import parameter_knowledge
from pfwatch.knowledge import params as kp
from pfwatch.knowledge import releases
from pfwatch.knowledge.caches import CLIENT_CACHES


def test_tables_are_the_shipped_releases() -> None:
    assert releases.tables() == ("3.5.25", "3.6.20", "3.7.11", "3.8.20", "3.9.14", "3.10.13")
    assert releases.base_release() == "3.7.11"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("3.10.13", (3, 10, 13)),
        ("3.7", (3, 7, 0)),
        ("3.7.11-0+deb12u1", (3, 7, 11)),
        ("3.12-20260821", (3, 12, 0)),
        (" 3.5.25\n", (3, 5, 25)),
        ("three", None),
        ("", None),
        ("3", None),
    ],
)
def test_parse_version(text: str, parsed: tuple[int, int, int] | None) -> None:
    assert releases.parse_version(text) == parsed


@pytest.mark.parametrize(
    ("version", "table", "exact", "note"),
    [
        ("3.10.13", "3.10.13", True, ""),
        ("3.10.2", "3.10.13", True, ""),
        ("3.5.27", "3.5.25", True, ""),
        ("3.7.11", "3.7.11", True, ""),
        ("3.8.6", "3.8.20", True, ""),
        ("3.9.1", "3.9.14", True, ""),
        ("3.6.4", "3.6.20", True, ""),
        ("3.11.2", "3.10.13", False, "Postfix 3.11.2 has no facts of its own: using 3.10.13 facts"),
        ("3.12-20260821", "3.10.13", False, "Postfix 3.12.0 has no facts of its own"),
        ("4.0.1", "3.10.13", False, "nearest older release"),
        ("3.4.14", "3.5.25", False, "older than every release pfwatch knows"),
        ("garbage", "3.7.11", False, "warning: cannot parse Postfix version 'garbage'"),
        (None, "3.7.11", False, "Postfix release unknown"),
    ],
)
def test_choose(version: str | None, table: str, exact: bool, note: str) -> None:
    choice = releases.choose(version)
    assert (choice.table, choice.exact) == (table, exact)
    assert note in choice.note
    assert bool(choice.note) == (not exact)


def test_detect_trusts_log_then_postconf_then_configured() -> None:
    assert releases.detect(log="3.10.13", postconf="3.7.11", configured="3.5.25") == (
        releases.Detection("3.10.13", "log")
    )
    assert releases.detect(postconf="3.7.11", configured="3.5.25").source == "postconf"
    assert releases.detect(configured="3.5.25").describe() == "3.5.25 (from configured)"
    assert releases.detect().describe() == "unknown"


def test_release_tables_differ_where_postfix_differs() -> None:
    old = parameter_knowledge(None, release="3.5.25")
    base = parameter_knowledge(None, release="3.7.11")
    new = parameter_knowledge(None, release="3.10.13")
    assert "smtp_tlsrpt_enable" in new.known() and "smtp_tlsrpt_enable" not in base.known()
    assert new.defaults["smtpd_forbid_bare_newline"] == "normalize"
    assert old.defaults["mail_version"] == "3.5.25"
    assert new.defaults["mail_version"] == "3.10.13"
    shared = set(old.defaults) & set(new.defaults) - {"mail_version", "mail_release_date"}
    same = sum(old.defaults[n] == base.defaults[n] == new.defaults[n] for n in shared)
    assert same > 0.9 * len(shared)


def _config(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``pfwatch config`` where no postconf is on PATH (a sidecar without Postfix)."""
    bare = {"PATH": str(Path(sys.executable).parent), **env}
    return subprocess.run(
        [sys.executable, "-m", "pfwatch", "config", "--config-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        env=bare,
        check=False,
        timeout=60,
    )


def test_config_uses_the_configured_release(tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text("smtpd_banner = $smtpd_forbid_bare_newline\n")
    new = _config(tmp_path, "-x", "--postfix-version", "3.10.13", env={})
    old = _config(tmp_path, "-x", env={releases.ENV_VAR: "3.7.11"})
    assert (new.returncode, old.returncode) == (0, 0), new.stderr + old.stderr
    assert "smtpd_banner = normalize\n" in new.stdout
    assert "smtpd_banner = no\n" in old.stdout
    assert new.stderr == old.stderr == ""


def test_config_says_once_which_table_serves(tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text("smtpd_banner = $mail_version\n")
    newer = _config(tmp_path, "-x", "--postfix-version", "3.11.2", env={})
    assert newer.returncode == 0
    assert "smtpd_banner = 3.10.13\n" in newer.stdout
    assert newer.stderr.count("has no facts of its own: using 3.10.13 facts") == 1
    broken = _config(tmp_path, "-x", "--postfix-version", "vintage", env={})
    assert broken.returncode == 0
    assert "warning: cannot parse Postfix version 'vintage'" in broken.stderr
    assert "smtpd_banner = 3.7.11\n" in broken.stdout


def test_readers_per_release_cite_release_and_site() -> None:
    new = releases.readers("3.10.13")
    base = releases.readers("3.7.11")
    old = releases.readers("3.5.25")
    assert new["smtp"]["smtp_tlsrpt_enable"].startswith("3.10.13 src/smtp/")
    assert "smtp_tlsrpt_enable" not in base["smtp"]
    assert new["smtpd"]["smtpd_hide_client_session"].startswith("3.10.13 src/smtpd/smtpd.c:")
    # 3.5 lacks readers that 3.7 has; everything else is shared with the base
    assert sum(map(len, old.values())) < sum(map(len, base.values()))
    assert base["smtpd"] == releases.readers("3.7.2")["smtpd"]
    assert releases.readers("3.8.6")["smtpd"].keys() >= base["smtpd"].keys()


def test_stock_master_cf_services_are_the_same_from_35_to_310() -> None:
    """knowledge.defaults serves every release: no release adds, drops or changes a service."""
    folder = resources.files("pfwatch.knowledge").joinpath("data", "releases")
    deltas = [
        json.loads(entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.startswith("param-readers-")
    ]
    assert {d["postfix_version"] for d in deltas} >= {"3.5.27", "3.6.20", "3.8.20", "3.10.13"}
    for delta in deltas:
        assert delta["master_cf"] == {"added": {}, "removed": [], "changed": {}}, delta


def test_parameters_of_newer_releases_have_their_readers() -> None:
    """An edit of a 3.10-only parameter is read by the daemons 3.10 reads it in."""
    assert kp.readers("smtp_tlsrpt_enable") == {"smtp"}
    assert kp.where_read("smtp", "smtp_tlsrpt_enable").startswith("3.10.13 src/smtp/")
    assert kp.readers("smtpd_hide_client_session") == {"smtpd"}
    # names the base release has keep the base's readers and citations
    assert kp.where_read("smtpd", "smtpd_banner").startswith("src/smtpd/smtpd.c:")


def test_snapshot_without_postconf_uses_the_configured_release(tmp_path: Path) -> None:
    """Every front reads the configuration through build_snapshot (and lint its parse)."""
    (tmp_path / "main.cf").write_text("smtpd_banner = x\n")
    (tmp_path / "master.cf").write_text("")
    probe = (
        "import sys; from pfwatch.config.snapshot import build_snapshot; "
        "s = build_snapshot(sys.argv[1]); e = s.parsed.expander; "
        "print(s.expanded['smtpd_forbid_bare_newline'], e.expand('smtpd_forbid_bare_newline'))"
    )
    for version, expected in (("3.10.13", "normalize normalize"), ("3.7.11", "no no")):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path)],
            capture_output=True,
            text=True,
            env={"PATH": str(Path(sys.executable).parent), releases.ENV_VAR: version},
            check=False,
            timeout=60,
        )
        assert done.stdout.strip() == expected, done.stderr


def test_restart_watched_parameters_and_table_types_per_release() -> None:
    """master's watched parameters are the same 3.5 to 3.10; 3.9 added the mongodb table."""
    folder = resources.files("pfwatch.knowledge").joinpath("data", "releases")
    deltas = {
        json.loads(entry.read_text("utf-8"))["postfix_version"]: json.loads(
            entry.read_text("utf-8")
        )
        for entry in folder.iterdir()
        if entry.name.startswith("param-readers-")
    }
    for delta in deltas.values():
        assert delta["restart_watched"] == {"added": {}, "removed": []}
    assert deltas["3.8.20"]["table_types"]["added"] == {}
    for version in ("3.9.14", "3.10.13"):
        assert deltas[version]["table_types"]["added"] == {"mongodb": "conf/postfix-files:78"}


def test_source_predicted_tables_of_releases_without_a_package() -> None:
    """3.6, 3.8 and 3.9 (scripts/gen_source_defaults.py; the method reproduces postconf -d of
    3.5.25 exactly and of 3.10.13 for 854 of 857 parameters)."""
    eight = parameter_knowledge(None, release="3.8.6")
    nine = parameter_knowledge(None, release="3.9.3")
    six = parameter_knowledge(None, release="3.6.4")
    assert eight.postfix_version == "3.8.20" and nine.postfix_version == "3.9.14"
    assert "smtpd_client_ipv4_prefix_length" in eight.known()
    assert "smtpd_client_ipv4_prefix_length" not in parameter_knowledge(None, release="3.7").known()
    assert (
        "maillog_file_permissions" in nine.known()
        and "maillog_file_permissions" not in eight.known()
    )
    assert (
        "smtp_per_record_deadline" in six.defaults
        and "smtp_per_request_deadline" not in six.defaults
    )


def test_every_client_cache_exists_in_every_release() -> None:
    """knowledge/caches.py's caches (30 s reply reuse, smtpd's resolve LRU) are the same code
    in 3.5 to 3.10; each release's site is recorded."""
    folder = resources.files("pfwatch.knowledge").joinpath("data", "releases")
    for entry in folder.iterdir():
        if entry.name.startswith("param-readers-"):
            sites = json.loads(entry.read_text("utf-8"))["caches"]
            assert set(sites) == {cache.name for cache in CLIENT_CACHES}
            assert all(site is not None for site in sites.values()), entry.name
