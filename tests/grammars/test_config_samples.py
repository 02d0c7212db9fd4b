"""main.cf, expansion and master.cf grammars against their annotated samples.

- Every ``# expect:`` line in grammars/samples/main_cf/* and master_cf/* holds for the
  logical line (or error) it describes.
- Every rule a grammar declares (``RULES``) has at least one sample, and every sample
  names a declared rule (a rule without a sample fails here).
- Differential (needs Postfix's postconf): ``postconf -n -x`` / ``postconf -M`` on each
  sample equals what pfwatch computes, and a sample postconf rejects is rejected too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pfwatch.config.defaults import parameter_knowledge
from pfwatch.config.expand import ExpansionError
from pfwatch.config.maincf import decode, encode, parse_main_cf
from pfwatch.config.mastercf import parse_master_cf
from pfwatch.config.postconf import build_table, show_master, show_nondefault
from pfwatch.errors import ConfigSyntaxError
from pfwatch.grammars import expansion, main_cf, master_cf

SAMPLES = Path(__file__).resolve().parents[2] / "grammars" / "samples"
MAIN_SAMPLES = sorted((SAMPLES / "main_cf").glob("*.cf"))
MASTER_SAMPLES = sorted((SAMPLES / "master_cf").glob("*.cf"))
POSTCONF = shutil.which("postconf")
needs_postconf = pytest.mark.skipif(POSTCONF is None, reason="postconf (Postfix) not installed")


def expectations(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line of the next non-comment line, expectation)`` for each ``# expect:``."""
    lines = decode(path.read_bytes()).split("\n")
    found = []
    for index, line in enumerate(lines):
        if line.startswith("# expect:"):
            target = next(
                number
                for number in range(index + 2, len(lines) + 1)
                if lines[number - 1].strip() and not lines[number - 1].lstrip().startswith("#")
            )
            found.append((target, json.loads(line.removeprefix("# expect:"))))
    return found


def test_samples_exist() -> None:
    assert len(MAIN_SAMPLES) >= 3
    assert len(MASTER_SAMPLES) >= 2


def test_every_rule_has_a_sample_and_every_sample_a_rule() -> None:
    main_rules = {e["rule"] for p in MAIN_SAMPLES for _, e in expectations(p)}
    master_rules = {e["rule"] for p in MASTER_SAMPLES for _, e in expectations(p)}
    declared_main = set(main_cf.RULES) | set(expansion.RULES)
    assert declared_main - main_rules == set(), "grammar rules without a sample"
    assert main_rules - declared_main == set(), "samples naming an unknown rule"
    assert set(master_cf.RULES) - master_rules == set(), "grammar rules without a sample"
    assert master_rules - set(master_cf.RULES) == set(), "samples naming an unknown rule"


@pytest.mark.parametrize("sample", MAIN_SAMPLES, ids=lambda p: p.name)
def test_main_cf_sample(sample: Path) -> None:
    text = decode(sample.read_bytes())
    found = expectations(sample)
    assert found, f"{sample.name} has no expectations"
    errors = [e for _, e in found if "error" in e]
    if errors:
        with pytest.raises(ConfigSyntaxError) as caught:
            parse_main_cf(text, sample.name)
        want = errors[0]["error"]
        assert (caught.value.line, caught.value.column) == (want["line"], want["column"])
        assert want["message"] in caught.value.message
        return
    parsed = parse_main_cf(text, sample.name)
    table = build_table(parsed, None, parameter_knowledge(None))
    expander = table.expander()
    for line, expect in found:
        name = expect["name"]
        parameter = parsed.parameters[name]
        if "duplicate_of" in expect:
            assert any(
                d.name == name and d.first_line == expect["duplicate_of"] for d in parsed.duplicates
            )
        else:
            assert parameter.line == line, (name, parameter.line, line)
        if "value" in expect:
            assert parameter.value == expect["value"]
        if "absent" in expect:
            assert expect["absent"] not in parsed.parameters
        if "expanded" in expect:
            assert expander.expand(name) == expect["expanded"], name
        if "expand_error" in expect:
            with pytest.raises(ExpansionError) as caught:
                expander.expand(name)
            assert expect["expand_error"] in caught.value.message
            assert caught.value.line == line


@pytest.mark.parametrize("sample", MASTER_SAMPLES, ids=lambda p: p.name)
def test_master_cf_sample(sample: Path) -> None:
    text = decode(sample.read_bytes())
    found = expectations(sample)
    assert found, f"{sample.name} has no expectations"
    errors = [e for _, e in found if "error" in e]
    if errors:
        with pytest.raises(ConfigSyntaxError) as caught:
            parse_master_cf(text, sample.name)
        want = errors[0]["error"]
        assert (caught.value.line, caught.value.column) == (want["line"], want["column"])
        assert want["message"] in caught.value.message
        return
    parsed = parse_master_cf(text, sample.name)
    by_line = {service.line: service for service in parsed.services}
    lines = dict(zip((s.line for s in parsed.services), show_master(parsed), strict=True))
    assert set(by_line) == {line for line, _ in found}, "a service has no expectation"
    for line, expect in found:
        service = by_line[line]
        assert service.name == expect["service"]
        for field in ("type", "command", "wakeup", "maxproc"):
            if field in expect:
                assert getattr(service, field) == expect[field], field
        if "args" in expect:
            assert list(service.args) == expect["args"]
        if "overrides" in expect:
            assert dict(service.overrides) == expect["overrides"]
        assert lines[line] == expect["postconf"]


def _postconf(directory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    assert POSTCONF is not None
    for name in ("main.cf", "master.cf"):
        if (directory / name).exists():  # postconf waits ~2 s on a just-written file
            os.utime(directory / name, (1_000_000_000, 1_000_000_000))
    return subprocess.run(
        [POSTCONF, "-c", str(directory), *args], capture_output=True, check=False, timeout=60
    )


@needs_postconf
@pytest.mark.parametrize("sample", MAIN_SAMPLES, ids=lambda p: p.name)
def test_main_cf_sample_matches_postconf(sample: Path, tmp_path: Path) -> None:
    data = sample.read_bytes()
    names = [e["name"] for _, e in expectations(sample) if "name" in e]
    # Name the sample's own parameters as restriction classes so postconf -n shows them.
    listed = " ".join(n for n in names if "$" not in n)
    (tmp_path / "main.cf").write_bytes(data + f"\nsmtpd_restriction_classes = {listed}\n".encode())
    knowledge = parameter_knowledge()
    for args in (("-n",), ("-n", "-x")):
        done = _postconf(tmp_path, *args)
        try:
            parsed = parse_main_cf(decode((tmp_path / "main.cf").read_bytes()))
            table = build_table(parsed, None, knowledge, str(tmp_path))
            ours: bytes | None = b"".join(
                encode(line) + b"\n" for line in show_nondefault(table, "-x" in args)
            )
        except ConfigSyntaxError:
            ours = None
        if done.returncode != 0:
            assert ours is None, (args, done.stderr)
        else:
            assert ours == done.stdout, args


@needs_postconf
@pytest.mark.parametrize("sample", MASTER_SAMPLES, ids=lambda p: p.name)
def test_master_cf_sample_matches_postconf(sample: Path, tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_bytes(b"")
    (tmp_path / "master.cf").write_bytes(sample.read_bytes())
    done = _postconf(tmp_path, "-M")
    try:
        parsed = parse_master_cf(decode(sample.read_bytes()))
        ours: bytes | None = b"".join(encode(line) + b"\n" for line in show_master(parsed))
    except ConfigSyntaxError:
        ours = None
    if done.returncode != 0:
        assert ours is None, done.stderr
    else:
        assert ours == done.stdout
