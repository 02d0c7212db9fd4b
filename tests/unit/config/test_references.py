"""Reference discovery and freshness (pfwatch.config.references)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pfwatch.config.defaults import parameter_knowledge
from pfwatch.config.expand import Expander
from pfwatch.config.maincf import parse_main_cf
from pfwatch.config.mastercf import parse_master_cf
from pfwatch.config.references import TableRef, discover, freshness, split_list
from pfwatch.errors import ConfigSyntaxError
from pfwatch.knowledge.tables import DICTIONARY_TYPES

#: Postfix's own defaults, with the paths pinned so the tests do not depend on the host.
DEFAULTS = {
    **parameter_knowledge().defaults,
    "queue_directory": "/var/spool/postfix",
    "config_directory": "/etc/postfix",
    "alias_maps": "hash:/etc/aliases, nis:mail.aliases",
    "address_verify_map": "btree:$data_directory/verify_cache",
    "data_directory": "/var/lib/postfix",
    "proxy_read_maps": "$virtual_alias_maps $alias_maps",
    "mynetworks": "127.0.0.0/8",
    "virtual_alias_maps": "",
}


def _discover(main_text: str, master_text: str = "") -> dict[str, TableRef]:
    main = parse_main_cf(main_text)
    master = parse_master_cf(master_text)
    explicit = {name: p.value for name, p in main.parameters.items()}
    expander = Expander(explicit, DEFAULTS)
    refs = discover(main, master.services, expander, tuple(DEFAULTS))
    return {ref.ref: ref for ref in refs}


def test_split_list_keeps_braces_whole() -> None:
    words = list(split_list("hash:/a, unionmap:{hash:/b, cidr:/c} inline:{ {a = b c}, x=y }"))
    assert words == ["hash:/a", "unionmap:{hash:/b, cidr:/c}", "inline:{ {a = b c}, x=y }"]


def test_defaults_count_and_caches_and_approval_lists_do_not() -> None:
    refs = _discover("virtual_alias_maps = hash:$config_directory/virtual\n")
    assert set(refs["hash:/etc/aliases"].parameters) == {
        "alias_database",
        "alias_maps",
        "local_recipient_maps",  # proxy:unix:passwd.byname $alias_maps
    }
    assert refs["hash:/etc/aliases"].kind == "alias"
    assert refs["hash:/etc/aliases"].compiled == ("/etc/aliases.db",)
    assert refs["nis:mail.aliases"].source is None
    virtual = refs["hash:/etc/postfix/virtual"]
    # virtual_alias_domains defaults to $virtual_alias_maps; proxy_read_maps only approves.
    assert virtual.parameters == ("virtual_alias_domains", "virtual_alias_maps")
    assert not any("verify_cache" in ref for ref in refs)


def test_wrappers_are_unwrapped_and_inline_static_have_no_file() -> None:
    refs = _discover(
        "transport_maps = proxy:hash:/etc/postfix/transport,"
        " unionmap:{cidr:/etc/postfix/a.cidr, pipemap:{pcre:/etc/postfix/b.pcre, static:x}}\n"
        "smtpd_client_restrictions = check_client_access inline:{1.2.3.4=OK}, permit\n"
    )
    assert refs["hash:/etc/postfix/transport"].via == ("proxy",)
    assert refs["cidr:/etc/postfix/a.cidr"].via == ("unionmap",)
    assert refs["pcre:/etc/postfix/b.pcre"].via == ("unionmap", "pipemap")
    assert refs["pcre:/etc/postfix/b.pcre"].compiled == ()
    assert refs["static:x"].source is None
    assert refs["inline:{1.2.3.4=OK}"].source is None


def test_endpoints_are_not_tables() -> None:
    refs = _discover(
        "smtpd_milters = unix:/run/opendkim.sock, inet:127.0.0.1:8891\n"
        "smtpd_recipient_restrictions = check_policy_service unix:private/policy,"
        " check_recipient_access hash:/etc/postfix/rcpt\n"
        "virtual_transport = lmtp:unix:private/dovecot-lmtp\n"
    )
    assert "hash:/etc/postfix/rcpt" in refs
    endpoints = ("unix:/run", "unix:private", "inet:", "lmtp:")
    assert not [ref for ref in refs if ref.startswith(endpoints)]
    assert refs["unix:passwd.byname"].via == ("proxy",)  # a real table (local_recipient_maps)


def test_file_lists_only_in_match_list_parameters() -> None:
    refs = _discover(
        "mynetworks = 127.0.0.0/8 /etc/postfix/nets\n"
        "virtual_mailbox_domains = !/etc/postfix/excluded /etc/postfix/vdomains\n"
        "mail_spool_directory = /var/mail\n"
    )
    assert refs["/etc/postfix/nets"].type == "file-list"
    assert refs["/etc/postfix/nets"].kind == "file-list"
    assert refs["/etc/postfix/vdomains"].parameters == ("virtual_mailbox_domains",)
    assert "/etc/postfix/excluded" in refs
    assert "/var/mail" not in refs


def test_relative_names_resolve_against_queue_directory_and_cf_prefixes_are_not_files() -> None:
    refs = _discover(
        "virtual_alias_maps = hash:virtual\n"
        "relay_domains = ldap:ldapsource, mysql:/etc/postfix/mysql-relay.cf\n"
    )
    relative = refs["hash:virtual"]
    assert relative.relative
    assert relative.source == "/var/spool/postfix/virtual"
    assert refs["ldap:ldapsource"].source is None
    assert refs["mysql:/etc/postfix/mysql-relay.cf"].kind == "cf"


def test_user_defined_parameters_count_only_when_postfix_reads_them() -> None:
    refs = _discover(
        "smtpd_restriction_classes = vip\n"
        "vip = check_sender_access hash:/etc/postfix/vip\n"
        "my_maps = hash:/etc/postfix/mine\n"
        "virtual_alias_maps = $my_maps\n"
        "unused_thing = hash:/etc/postfix/unused\n"
    )
    assert refs["hash:/etc/postfix/vip"].parameters == ("vip",)
    assert set(refs["hash:/etc/postfix/mine"].parameters) >= {"my_maps", "virtual_alias_maps"}
    assert "hash:/etc/postfix/unused" not in refs


def test_master_cf_overrides_reference_tables_with_their_service() -> None:
    refs = _discover(
        "mua_sender = check_sender_access hash:/etc/postfix/mua\n",
        "submission inet n - n - - smtpd\n"
        "  -o smtpd_sender_restrictions=$mua_sender\n"
        "  -o smtpd_sender_login_maps=pcre:$config_directory/login.pcre\n",
    )
    mua = refs["hash:/etc/postfix/mua"]
    assert set(mua.parameters) == {"mua_sender", "smtpd_sender_restrictions"}
    assert mua.services == ("submission/inet",)
    assert refs["pcre:/etc/postfix/login.pcre"].services == ("submission/inet",)


def test_sasl_password_tables_are_secret() -> None:
    refs = _discover(
        "smtp_sasl_password_maps = proxy:hash:/etc/postfix/sasl_passwd\n"
        "transport_maps = hash:/etc/postfix/transport\n"
    )
    assert refs["hash:/etc/postfix/sasl_passwd"].secret
    assert not refs["hash:/etc/postfix/transport"].secret


def _ref(tmp_path: Path, kind: str = "hash", suffixes: tuple[str, ...] = (".db",)) -> TableRef:
    source = str(tmp_path / "table")
    return TableRef(
        f"{kind}:{source}", kind, source, source, tuple(source + s for s in suffixes), "postmap", ()
    )


def _touch(path: Path, mtime: float) -> None:
    path.touch()
    os.utime(path, (mtime, mtime))


def test_freshness_states(tmp_path: Path) -> None:
    ref = _ref(tmp_path)
    source, compiled = tmp_path / "table", tmp_path / "table.db"
    assert freshness(ref).state == "missing"
    _touch(source, 1000.0)
    assert freshness(ref).state == "not-compiled"
    assert freshness(ref).fresh is False
    _touch(compiled, 1001.0)
    assert freshness(ref).state == "fresh"
    assert freshness(ref).fresh is True
    _touch(source, 1002.0)
    state = freshness(ref)
    assert (state.state, state.source_mtime, state.compiled_mtime) == ("stale", 1002.0, 1001.0)
    source.unlink()
    assert freshness(ref).state == "source-missing"


def test_dbm_needs_both_files_and_uses_the_older(tmp_path: Path) -> None:
    ref = _ref(tmp_path, "dbm", (".dir", ".pag"))
    _touch(tmp_path / "table", 1000.0)
    _touch(tmp_path / "table.dir", 1005.0)
    assert freshness(ref).state == "not-compiled"
    _touch(tmp_path / "table.pag", 999.0)
    assert freshness(ref).state == "stale"


def test_direct_tables_are_present_or_missing(tmp_path: Path) -> None:
    ref = _ref(tmp_path, "regexp", ())
    assert freshness(ref).state == "missing"
    _touch(tmp_path / "table", 1000.0)
    assert freshness(ref).state == "present"
    no_file = TableRef("static:x", "static", "x", None, (), None, ())
    assert freshness(no_file).state == "n/a"
    assert freshness(no_file).fresh is None


@pytest.mark.corpus
def test_discovery_on_every_corpus_main_cf(corpus_dir: Path) -> None:
    with (corpus_dir / "INDEX.tsv").open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t") if row["class"] == "main.cf"]
    assert rows, "no main.cf in the corpus index"
    knowledge = parameter_knowledge()
    discovered = parsed = 0
    for row in rows:
        path = corpus_dir / row["path"]
        try:
            main = parse_main_cf(path.read_bytes().decode("utf-8", "surrogateescape"), str(path))
        except ConfigSyntaxError:
            continue  # templates (Jinja2 ...) that Postfix would reject too
        parsed += 1
        explicit = {name: p.value for name, p in main.parameters.items()}
        expander = Expander(explicit, knowledge.defaults, raw_names=knowledge.raw)
        refs = discover(main, (), expander, tuple(knowledge.defaults))
        for ref in refs:
            assert ref.parameters, ref
            assert ref.type == "file-list" or ":" in ref.ref
            if ref.source is not None:
                assert ref.source.startswith("/")
        discovered += len(refs)
    print(f"corpus main.cf: {parsed}/{len(rows)} parsed, {discovered} table references")
    assert parsed >= len(rows) // 2


VALUE = st.text(
    alphabet=st.sampled_from(list("hash:proxy:unionmap{}, /!$()ab\tcheck_policy_service")),
    max_size=120,
)


@settings(max_examples=100, deadline=None)
@given(value=VALUE)
def test_discovery_never_crashes_on_arbitrary_values(value: str) -> None:
    main = parse_main_cf(f"smtpd_recipient_restrictions = {value.replace(chr(10), ' ')}\n")
    expander = Expander({name: p.value for name, p in main.parameters.items()}, DEFAULTS)
    try:
        refs = discover(main, (), expander, ("smtpd_recipient_restrictions",))
    except ConfigSyntaxError:
        return  # "$(" without ")" and the like: Postfix rejects the value too
    for ref in refs:
        assert ref.parameters
        assert ref.type in ("file-list", *DICTIONARY_TYPES)
        if ref.source is not None:
            assert ref.source.startswith("/")
