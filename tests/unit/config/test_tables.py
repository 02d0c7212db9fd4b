"""Table sources and file lists parsed into entries by key (pfwatch.config.tables).

Includes the shared corpus: every table-class file in ../shared/corpus/INDEX.tsv parses,
and (with Postfix installed) gives the same problem lines as postmap and, for key/value
sources, the same entries as ``postmap -s``.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pfwatch.config.tables import SourceKind, load_table, parse_table
from pfwatch.errors import SourceUnavailable

POSTMAP = shutil.which("postmap")


def test_file_list_words_split_on_blanks_and_commas_and_skip_column_one_comments() -> None:
    text = "example.com, example.net\n# comment\n  #not-a-comment 10.0.0.0/8\nexample.com\n"
    parsed = parse_table(text, "file-list", "/etc/postfix/vdomains")
    assert list(parsed.entries) == ["example.com", "example.net", "#not-a-comment", "10.0.0.0/8"]
    assert parsed.lines["10.0.0.0/8"] == 3
    assert parsed.problems == ()


def test_postmap_keys_fold_to_lower_case_and_first_duplicate_wins() -> None:
    parsed = parse_table("Key one\nKEY two\n", "postmap", "t")
    assert dict(parsed.entries) == {"key": "one"}
    (problem,) = parsed.problems
    assert (problem.path, problem.line, problem.column) == ("t", 2, 1)
    assert "duplicate entry" in problem.message


def test_cf_last_value_wins_and_names_keep_case() -> None:
    parsed = parse_table("Hosts = a\nhosts = b\nhosts = c\n", "cf", "m.cf")
    assert dict(parsed.entries) == {"Hosts": "a", "hosts": "c"}


def test_problems_are_config_syntax_errors_with_file_line_column() -> None:
    parsed = parse_table("ok value\n\nbroken\n", "postmap", "/x/access")
    (problem,) = parsed.problems
    assert str(problem) == "/x/access:3:7: expected format: key whitespace value"


def test_non_utf8_bytes_survive_as_keys(tmp_path: Path) -> None:
    path = tmp_path / "latin1"
    path.write_bytes(b"caf\xe9 OK\n")
    parsed = load_table(str(path), "postmap")
    (key,) = parsed.entries
    assert key.encode("utf-8", "surrogateescape") == b"caf\xe9"


def test_missing_file_is_source_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="no such file"):
        load_table(str(tmp_path / "absent"), "cidr")


# ------------------------------------------------------------------------- corpus

CLASS_KINDS: dict[str, SourceKind] = {
    "key/value table source (hash:/lmdb:/cdb:/texthash: style)": "postmap",
    "table source with comments only (documentation prototype / empty)": "postmap",
    "SQL/LDAP map definition (key = value)": "cf",
    "regexp/pcre table": "regexp",
    "cidr table": "cidr",
}
#: Postfix warnings about things our grammars check (not regular-expression compilation).
STRUCTURAL = re.compile(
    r"ENDIF|IF has no|unknown regexp option|no closing regexp delimiter|no replacement text|"
    r"unrecognized request|extra text|expected format|need name:value|skipping this rule"
)


def _corpus_tables(corpus: Path) -> list[tuple[Path, SourceKind]]:
    with (corpus / "INDEX.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    found: list[tuple[Path, SourceKind]] = []
    for row in rows:
        kind = CLASS_KINDS.get(row["class"])
        if kind is None:
            continue
        path = corpus / row["path"]
        if kind == "regexp" and path.suffix == ".pcre":
            kind = "pcre"
        if kind == "postmap" and path.name == "aliases":
            kind = "alias"
        found.append((path, kind))
    return found


def _logical_start(text: str, line: int) -> int:
    lines = text.split("\n")
    while line > 1 and lines[line - 1][:1] in (" ", "\t"):
        line -= 1
    return line


@pytest.mark.corpus
def test_corpus_tables_parse_like_postmap(corpus_dir: Path, tmp_path: Path) -> None:
    tables = _corpus_tables(corpus_dir)
    assert len(tables) >= 60, "corpus index lists fewer table files than expected"
    (tmp_path / "main.cf").write_text("myhostname = localhost.localdomain\n")
    compared = agreed = 0
    disagreements = []
    for path, kind in tables:
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        parsed = parse_table(text, kind, str(path))
        assert all(p.line >= 1 and p.column >= 1 for p in parsed.problems), path
        if POSTMAP is None or path.suffix == ".j2" or kind == "cf":
            continue
        table_type = {"postmap": "hash", "alias": "hash"}.get(kind, kind)
        copy = tmp_path / "t"
        copy.write_bytes(path.read_bytes())
        tool = "postalias" if kind == "alias" else POSTMAP
        argv = [tool, "-c", str(tmp_path), f"{table_type}:{copy}"]
        if table_type != "hash":
            argv[3:3] = ["-q", "probe"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        theirs = {
            int(m.group(1))
            for line in done.stderr.splitlines()
            if STRUCTURAL.search(line) and (m := re.search(r"line (\d+):", line))
        }
        ours = {
            _logical_start(text, p.line)
            for p in parsed.problems
            if "duplicate" not in p.message and "must not start" not in p.message
        }
        compared += 1
        if ours == theirs:
            agreed += 1
        else:
            disagreements.append((path.name, sorted(ours), sorted(theirs)))
    print(
        f"corpus tables: {len(tables)} parsed; problem lines agree with postmap {agreed}/{compared}"
    )
    assert not disagreements, disagreements
