"""``pfwatch config`` against the installed Postfix's ``postconf``, byte for byte.

- Corpus: every main.cf and master.cf in ../shared/corpus (INDEX.tsv classes), copied into
  a temporary directory at test time (main.cf alone; master.cf with an empty main.cf; and
  main.cf with the master.cf beside it where a source has both). For each, ``postconf -c
  DIR -n``, ``-n -x``, ``-M`` and ``-M -x`` must equal what pfwatch prints; where postconf
  rejects the files, pfwatch must raise a positioned ConfigSyntaxError. The agreement rate
  is printed (run with ``-s`` to see it) and must be 100 %.
- Generated: hypothesis builds main.cf/master.cf pairs from Postfix syntax fragments (every
  expansion form, continuations, comments, braces, duplicates, bytes that are not UTF-8,
  service-specific and legacy parameters) and checks the same equalities.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from pfwatch.config.defaults import ParameterKnowledge, parameter_knowledge
from pfwatch.config.maincf import decode, encode, parse_main_cf
from pfwatch.config.mastercf import parse_master_cf
from pfwatch.config.model import MasterCf
from pfwatch.config.postconf import build_table, show_master, show_nondefault
from pfwatch.errors import ConfigSyntaxError
from pfwatch.grammars._tokens import logical_lines

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
POSTCONF = shutil.which("postconf")
needs_postconf = pytest.mark.skipif(POSTCONF is None, reason="postconf (Postfix) not installed")
MODES = (("-n",), ("-n", "-x"), ("-M",), ("-M", "-x"))


@dataclass
class Tally:
    """Agreement counts over all comparisons."""

    agreed: int = 0
    rejected_by_both: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.agreed + len(self.mismatches)


@dataclass(frozen=True)
class PostconfRun:
    """One postconf run; ``pid`` is what $process_id expanded to in it."""

    returncode: int
    stdout: bytes
    stderr: bytes
    pid: int


def run_postconf(directory: Path, args: tuple[str, ...]) -> PostconfRun:
    """postconf -c DIR ARGS; file times are set to the past because postconf waits for
    a main.cf younger than a second or two to settle."""
    assert POSTCONF is not None
    for name in ("main.cf", "master.cf"):
        if (directory / name).exists():
            os.utime(directory / name, (1_000_000_000, 1_000_000_000))
    proc = subprocess.Popen(
        [POSTCONF, "-c", str(directory), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = proc.communicate(timeout=60)
    return PostconfRun(proc.returncode, out, err, proc.pid)


def run_all(jobs: list[tuple[Path, tuple[str, ...]]]) -> list[PostconfRun]:
    """Run postconf jobs side by side: a rejecting postconf sleeps a second before it
    exits (msg_fatal()), so the wall time is the sleeping, not the CPU."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda job: run_postconf(*job), jobs))


def pfwatch_output(
    directory: Path, args: tuple[str, ...], knowledge: ParameterKnowledge, pid: int
) -> bytes:
    """What ``pfwatch config --config-dir DIR [-x] [--master]`` prints for ``args``."""

    def read_master() -> MasterCf | None:
        if not (directory / "master.cf").exists():
            return None
        return parse_master_cf(decode((directory / "master.cf").read_bytes()), "master.cf")

    # postconf -M reads master.cf first, -n main.cf first (postconf.c:1020-1031, 1074-1091).
    master = read_master() if "-M" in args else None
    main = parse_main_cf(decode((directory / "main.cf").read_bytes()), "main.cf")
    if "-M" not in args:
        master = read_master()
    table = build_table(main, master, knowledge, str(directory), pid)
    if "-M" in args:
        assert master is not None
        lines = show_master(master, table, "-x" in args)
    else:
        lines = show_nondefault(table, "-x" in args)
    return b"".join(encode(line) + b"\n" for line in lines)


_POSTCONF_LINE = re.compile(r"(main\.cf|master\.cf).{0,3} line (\d+)")


def _same_logical_line(directory: Path, stderr: bytes, error: ConfigSyntaxError) -> bool:
    """postconf names the first line of the logical line; ours points inside it."""
    fatal = [x for x in stderr.decode("utf-8", "replace").splitlines() if "fatal:" in x]
    found = _POSTCONF_LINE.search(fatal[-1]) if fatal else None
    if found is None:
        return error.line >= 0 and error.column >= 1
    if Path(error.path).name != found.group(1):
        return False
    text = decode((directory / found.group(1)).read_bytes())
    starts = [logical.line for logical in logical_lines(text)[0]]
    start = max((s for s in starts if s <= error.line), default=error.line)
    return start == int(found.group(2)) and error.column >= 1


def compare(
    directory: Path, args: tuple[str, ...], done: PostconfRun, label: str, tally: Tally
) -> None:
    """Record whether pfwatch agrees with postconf's run ``done`` (a rejection must be
    at postconf's line)."""
    knowledge = parameter_knowledge()
    try:
        ours: bytes | None = pfwatch_output(directory, args, knowledge, done.pid)
        error = None
    except ConfigSyntaxError as exc:
        ours, error = None, exc
    if done.returncode != 0:
        if error is not None and _same_logical_line(directory, done.stderr, error):
            tally.agreed += 1
            tally.rejected_by_both += 1
        else:
            tally.mismatches.append(f"{label} {' '.join(args)}: postconf rejects, pfwatch not")
    elif ours == done.stdout:
        tally.agreed += 1
    else:
        reason = f"pfwatch error {error}" if error else "output differs"
        tally.mismatches.append(f"{label} {' '.join(args)}: {reason}")


def corpus_cases() -> list[tuple[str, bytes | None, bytes | None]]:
    """(label, main.cf bytes, master.cf bytes) for every corpus config and pair."""
    with (CORPUS / "INDEX.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    mains = {r["path"]: r for r in rows if r["class"] == "main.cf"}
    masters = {r["path"]: r for r in rows if r["class"] == "master.cf"}
    cases: list[tuple[str, bytes | None, bytes | None]] = []
    for path in mains:
        cases.append((path, (CORPUS / path).read_bytes(), None))
    for path in masters:
        cases.append((path, None, (CORPUS / path).read_bytes()))
    for path in mains:
        sibling = str(Path(path).parent / "master.cf")
        if sibling in masters:
            pair = ((CORPUS / path).read_bytes(), (CORPUS / sibling).read_bytes())
            cases.append((f"{path}+master.cf", *pair))
    return cases


@needs_postconf
@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_agreement_with_postconf(tmp_path: Path) -> None:
    if not (CORPUS / "INDEX.tsv").is_file():
        pytest.skip("shared corpus not found beside the checkout (../shared/corpus)")
    tally = Tally()
    cases = corpus_cases()
    jobs: list[tuple[Path, tuple[str, ...], str]] = []
    for index, (label, main, master) in enumerate(cases):
        directory = tmp_path / str(index)
        directory.mkdir()
        (directory / "main.cf").write_bytes(main if main is not None else b"")
        if master is not None:
            (directory / "master.cf").write_bytes(master)
        for args in MODES:
            if ("-M" in args and master is None) or ("-n" in args and main is None):
                continue
            jobs.append((directory, args, label))
    runs = run_all([(directory, args) for directory, args, _ in jobs])
    for (directory, args, label), done in zip(jobs, runs, strict=True):
        compare(directory, args, done, label, tally)
    rate = 100.0 * tally.agreed / tally.total
    print(
        f"\npostconf agreement over the corpus: {tally.agreed}/{tally.total} ({rate:.1f}%), "
        f"{len(cases)} configurations, {tally.rejected_by_both} rejected by both"
    )
    assert tally.mismatches == []
    assert tally.total >= 100


# ---------------------------------------------------------------- generated configs

NAMES = st.sampled_from(
    [
        "myhostname",
        "mydomain",
        "myorigin",
        "relayhost",
        "mydestination",
        "smtpd_banner",
        "virtual_maps",  # legacy name
        "process_name",  # read-only name
        "relay_destination_concurrency_limit",  # service-specific with a relay service
        "smtpd_restriction_classes",
        "alpha",
        "beta",
        "gamma",
        "odd-name",
    ]
)
REFERENCES = st.sampled_from(
    [
        "$alpha",
        "${beta}",
        "$(gamma)",
        "$$",
        "${alpha?set}",
        "${beta:unset}",
        "${gamma?{t}:{f}}",
        "${{$alpha} == {1}?{one}:{other}}",
        "${{$beta} < {10}}",
        "${{$compatibility_level} <level {3.6} ? {old} : {new}}",
        "$myhostname",
        "$mydomain",
        "$mail_name",
        "$relay_destination_concurrency_limit",
        "$process_name",
        "{a b}",
        "mysql:beta",
        "proxy:ldap:alpha",
    ]
)
WORDS = st.sampled_from(["1", "10", "x", "a,b", "3.6", "caf\udce9", "é", "", "#"])
BAD_REFERENCE = st.sampled_from(["${unclosed", "$", "${a b}"] + [""] * 12)
VALUE = st.lists(st.one_of(REFERENCES, WORDS), max_size=4).map(" ".join)
CONTINUATION = st.sampled_from(["", "\n  more", "\n# comment\n\tnext", "\n\n  after blank"])
LINE = st.tuples(NAMES, VALUE, BAD_REFERENCE, CONTINUATION).map(
    lambda t: f"{t[0]} = {t[1]}{t[2]}{t[3]}"
)
# postconf sleeps a second before it exits on a fatal error, so fatal input is rare.
BROKEN = st.sampled_from(["broken line"] + [""] * 7)
LEVEL = st.sampled_from(
    ["", "", "compatibility_level = 3.6", "compatibility_level = 2", "compatibility_level = x"]
)
MAIN_CF = st.tuples(
    st.lists(st.one_of(LINE, st.sampled_from(["# comment", "", "  leading"])), max_size=8),
    LEVEL,
    BROKEN,
).map(lambda t: "\n".join([*t[0], t[1], t[2]]) + "\n")
SERVICE = st.sampled_from(
    [
        "smtp inet n - y - - smtpd",
        "relay unix - - n - - smtp -o syslog_name=postfix/$service_name",
        "127.0.0.1:10025 inet n - n - - smtpd -o { smtpd_banner = $alpha here }",
        "x unix - - n - - pipe -vo alpha=$beta {argv=/bin/true ${sender}}",
        "dgram unix-dgram n - n - 1 postlogd",
    ]
)
BAD_SERVICE = st.sampled_from(["bad unix - - n - smtp"] + [""] * 9)
MASTER_CF = st.tuples(st.lists(SERVICE, max_size=4), BAD_SERVICE).map(
    lambda t: "\n".join([*t[0], t[1]]) + "\n"
)


@needs_postconf
@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking costs minutes here
)
@given(main=MAIN_CF, master=MASTER_CF)
def test_generated_configs_agree_with_postconf(main: str, master: str, tmp_path: Path) -> None:
    # Setting read-only process_name and also using it makes postconf's result depend on
    # its randomly seeded hash order (see pfwatch.config.postconf.build_table).
    assume(not ("process_name =" in main and "$process_name" in main))
    directory = tmp_path / "generated"
    directory.mkdir(exist_ok=True)
    (directory / "main.cf").write_bytes(encode(main))
    (directory / "master.cf").write_bytes(encode(master))
    tally = Tally()
    for args, done in zip(MODES, run_all([(directory, args) for args in MODES]), strict=True):
        compare(directory, args, done, "generated", tally)
    assert tally.mismatches == [], (main, master)
