"""Table grammars against their annotated samples, hypothesis, and Postfix's own postmap.

- Every ``# expect:`` line in grammars/samples/tables/* holds for the logical line that
  follows it, and every entry and problem the parser reports is expected somewhere.
- Hypothesis: arbitrary text never crashes a table grammar, and every problem has a line
  and column inside the file.
- Differential (needs the postmap binary): the problem lines and entries equal what the
  installed Postfix reports for the same text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pfwatch.config.tables import SourceKind, TableContents, parse_table
from pfwatch.grammars._tokens import logical_lines

SAMPLES = Path(__file__).resolve().parents[2] / "grammars" / "samples" / "tables"
KIND_BY_SUFFIX: dict[str, SourceKind] = {
    ".postmap": "postmap",
    ".alias": "alias",
    ".cf": "cf",
    ".regexp": "regexp",
    ".pcre": "pcre",
    ".cidr": "cidr",
}
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix in KIND_BY_SUFFIX)
POSTMAP = shutil.which("postmap")
POSTALIAS = shutil.which("postalias")
needs_postmap = pytest.mark.skipif(POSTMAP is None, reason="postmap (Postfix) not installed")


def _expectations(text: str) -> list[tuple[int, dict[str, str]]]:
    """``(line the expectation is about, expectation)`` pairs."""
    lines = text.split("\n")
    found = []
    for index, line in enumerate(lines):
        if not line.startswith("# expect:"):
            continue
        target = next(
            number
            for number in range(index + 2, len(lines) + 1)
            if lines[number - 1].strip() and not lines[number - 1].lstrip().startswith("#")
        )
        found.append((target, json.loads(line.removeprefix("# expect:"))))
    return found


def test_every_sample_kind_is_present() -> None:
    assert {KIND_BY_SUFFIX[p.suffix] for p in SAMPLE_FILES} == set(KIND_BY_SUFFIX.values())


@pytest.mark.parametrize("sample", SAMPLE_FILES, ids=lambda p: p.name)
def test_sample_expectations_hold_and_cover_everything(sample: Path) -> None:
    text = sample.read_text(encoding="utf-8")
    parsed = parse_table(text, KIND_BY_SUFFIX[sample.suffix], str(sample))
    expectations = _expectations(text)
    assert expectations, f"{sample.name} has no expectations"
    for line, expect in expectations:
        if "key" in expect:
            assert parsed.lines.get(expect["key"]) == line, (sample.name, line, expect)
            assert parsed.entries[expect["key"]] == expect["value"], (sample.name, line)
        if "problem" in expect:
            messages = [p.message for p in parsed.problems if p.line == line]
            assert any(expect["problem"] in m for m in messages), (sample.name, line, messages)
    expected_lines = {line for line, _ in expectations}
    assert set(parsed.lines.values()) <= expected_lines, "an entry has no expectation"
    assert {p.line for p in parsed.problems} <= expected_lines, "a problem has no expectation"


TABLE_TEXT = st.text(
    alphabet=st.sampled_from(list("ab /!#:=\\{}[]().*\t\n19.:ifendIFx\x00é")), max_size=300
)


@pytest.mark.parametrize("kind", sorted(set(KIND_BY_SUFFIX.values()) | {"file-list"}))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TABLE_TEXT)
def test_never_crashes_and_problems_are_positioned(kind: SourceKind, text: str) -> None:
    parsed = parse_table(text, kind, "t")
    line_count = max(1, len(text.split("\n")))
    for problem in parsed.problems:
        assert 1 <= problem.line <= line_count, (problem, text)
        assert problem.column >= 1
        assert problem.path == "t"
    for key, line in parsed.lines.items():
        assert key in parsed.entries
        assert 1 <= line <= line_count


# ---------------------------------------------------------------- against real Postfix

_WARNING_LINE = re.compile(r"line (\d+):")


LEADING_BLANK = "must not start with whitespace"


def _postfix_warning_lines(stderr: str) -> set[int]:
    return {int(m.group(1)) for m in _WARNING_LINE.finditer(stderr)}


def _our_lines(parsed: TableContents, stderr: str, text: str) -> set[int]:
    """Our problem lines as Postfix numbers them: the first line of the logical line.

    Postfix names no line for a leading-blank line, so those are only counted.
    """
    leading = [p for p in parsed.problems if LEADING_BLANK in p.message]
    assert len(leading) == stderr.count(LEADING_BLANK), stderr
    starts = sorted(logical.line for logical in logical_lines(text)[0])

    def logical_start(line: int) -> int:
        return max((start for start in starts if start <= line), default=line)

    return {logical_start(p.line) for p in parsed.problems if LEADING_BLANK not in p.message}


def _run(argv: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    main_cf = directory / "main.cf"
    if not main_cf.exists():  # a main.cf with a new mtime costs postmap ~2 s once
        main_cf.write_text("myhostname = localhost.localdomain\n")
    return subprocess.run(
        argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, timeout=30
    )


RULE_LINE = st.sampled_from(
    [
        "/^a/ OK",
        "/^b/i REJECT x",
        "!/^c/ DUNNO",
        "/^d/!/^e/ HOLD",
        "/^f/q BAD",
        "/^g",
        "/^h/",
        "if /^i/",
        "IF /^j/",
        "endif",
        "ENDIF junk",
        "REJECT",
        "  continued",
        "# comment",
        "",
    ]
)
CIDR_LINE = st.sampled_from(
    [
        "1.2.3.4 OK",
        "1.2.3.0/24 OK",
        "1.2.3.4/24 BAD",
        "!10.0.0.0/8 X",
        "[::1] Y",
        "2001:db8::/32 Z",
        "300.1.1.1 BAD",
        "1.2.3.4/33 BAD",
        "1.2.3.4/ab BAD",
        "5.6.7.8",
        "if 10.0.0.0/8",
        "if 10.0.0.1/8",
        "endif",
        "endif junk",
        "  continued",
        "# comment",
    ]
)
KV_LINE = st.sampled_from(
    ["Key value", "key other", "lonely", "k: v", "A  b  c", "  continued", "# comment", "x\ty"]
)


@needs_postmap
@pytest.mark.parametrize("flavour", ["regexp", "pcre"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(RULE_LINE, max_size=12))
def test_regexp_problem_lines_match_postmap(
    flavour: SourceKind, lines: list[str], tmp_path: Path
) -> None:
    table = tmp_path / "t"
    text = "\n".join(lines) + "\n"
    table.write_text(text)
    done = _run([str(POSTMAP), "-c", str(tmp_path), "-q", "probe", f"{flavour}:{table}"], tmp_path)
    ours = _our_lines(parse_table(text, flavour, str(table)), done.stderr, text)
    assert ours == _postfix_warning_lines(done.stderr), (text, done.stderr)


@needs_postmap
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(CIDR_LINE, max_size=12))
def test_cidr_problem_lines_match_postmap(lines: list[str], tmp_path: Path) -> None:
    table = tmp_path / "t"
    text = "\n".join(lines) + "\n"
    table.write_text(text)
    done = _run([str(POSTMAP), "-c", str(tmp_path), "-q", "192.0.2.9", f"cidr:{table}"], tmp_path)
    ours = _our_lines(parse_table(text, "cidr", str(table)), done.stderr, text)
    assert ours == _postfix_warning_lines(done.stderr), (text, done.stderr)


def _dump(tool: str, table: Path, directory: Path) -> dict[str, str]:
    done = _run([tool, "-c", str(directory), "-s", f"hash:{table}"], directory)
    pairs = (line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line)
    special = ("@:", "YP_LAST_MODIFIED:", "YP_MASTER_NAME:")
    return {
        key.removesuffix(":") if tool == POSTALIAS else key: value
        for key, value in pairs
        if key not in special
    }


@needs_postmap
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(KV_LINE, max_size=10))
def test_hash_entries_equal_postmap_dump(lines: list[str], tmp_path: Path) -> None:
    table = tmp_path / "t"
    text = "\n".join(lines) + "\n"
    table.write_text(text)
    done = _run([str(POSTMAP), "-c", str(tmp_path), f"hash:{table}"], tmp_path)
    assert done.returncode == 0, done.stderr
    ours = parse_table(text, "postmap", str(table))
    assert dict(ours.entries) == _dump(str(POSTMAP), table, tmp_path), text
    line_warnings = _our_lines(
        TableContents(
            ours.path,
            ours.kind,
            ours.entries,
            ours.lines,
            tuple(p for p in ours.problems if "duplicate" not in p.message),
        ),
        done.stderr,
        text,
    )
    assert line_warnings == _postfix_warning_lines(done.stderr), (text, done.stderr)


@needs_postmap
@pytest.mark.skipif(POSTALIAS is None, reason="postalias not installed")
def test_alias_sample_entries_equal_postalias_dump(tmp_path: Path) -> None:
    text = (SAMPLES / "aliases.alias").read_text(encoding="utf-8")
    table = tmp_path / "aliases"
    table.write_text(text)
    done = _run([str(POSTALIAS), "-c", str(tmp_path), f"hash:{table}"], tmp_path)
    assert done.returncode == 0, done.stderr
    ours = parse_table(text, "alias", str(table))
    assert dict(ours.entries) == _dump(str(POSTALIAS), table, tmp_path)
    assert {p.line for p in ours.problems} == _postfix_warning_lines(done.stderr)
