"""``pfwatch config`` per release against that release's own ``postconf`` (issue 11).

For each cached Debian chroot (Postfix 3.5.25, 3.7.11, 3.10.13; see
:mod:`pfwatch.testing.chroot_backend`), every corpus configuration of
test_postconf_agreement.py is shown by the chroot's ``postconf -c DIR -n``, ``-n -x``,
``-M`` and ``-M -x`` and by pfwatch with *no* postconf, only the shipped facts of that
release (``parameter_knowledge(None, release=...)``: what a sidecar without the right
postconf has). Both must agree byte for byte, or both reject the files at the same line.
Also: a parameter 3.10 added is built in for 3.10 and "unused" for 3.7, as each release's
postconf says. The rate prints with ``-s``; a missing chroot skips locally, fails in CI.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_postconf_agreement import (
    CORPUS,
    MODES,
    PostconfRun,
    Tally,
    _same_logical_line,
    corpus_cases,
    pfwatch_output,
)

from pfwatch.config.defaults import ParameterKnowledge, parameter_knowledge
from pfwatch.config.maincf import decode, parse_main_cf
from pfwatch.config.postconf import build_table
from pfwatch.errors import ConfigSyntaxError
from pfwatch.testing.chroot_backend import SUITES, chroot_missing, chroot_path, release_of
from pfwatch.testing.plugin import unavailable

pytestmark = [pytest.mark.corpus, pytest.mark.releases]


def _postconf(chroot: Path, directory: Path, args: tuple[str, ...]) -> PostconfRun:
    for name in ("main.cf", "master.cf"):
        if (directory / name).exists():
            os.utime(directory / name, (1_000_000_000, 1_000_000_000))
    proc = subprocess.Popen(
        ["chroot", str(chroot), "postconf", "-c", str(directory), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = proc.communicate(timeout=60)
    return PostconfRun(proc.returncode, out, err, proc.pid)


def _scratch(chroot: Path) -> Path:
    """A directory below the chroot's /tmp whose host path also works inside the chroot."""
    link = chroot / str(chroot).lstrip("/")
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/")
    return Path(tempfile.mkdtemp(prefix="pfw-agree-", dir=chroot / "tmp"))


def _compare(
    directory: Path,
    args: tuple[str, ...],
    done: PostconfRun,
    label: str,
    knowledge: ParameterKnowledge,
    tally: Tally,
) -> None:
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


def _usable(suite: str) -> Path:
    reason = chroot_missing(suite)
    if reason is not None:
        unavailable(reason)
    if not (CORPUS / "INDEX.tsv").is_file():
        pytest.skip("shared corpus not found beside the checkout (../shared/corpus)")
    return chroot_path(suite)


@pytest.mark.slow
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_release_agreement_with_its_postconf(suite: str) -> None:
    chroot = _usable(suite)
    version = release_of(suite)
    knowledge = parameter_knowledge(None, release=version)
    assert knowledge.postconf is None
    assert knowledge.defaults["mail_version"] == version
    # mynetworks depends on this host's interfaces (src/global/mynetworks.c), not on the
    # release: the host's postconf computes it, every other fact is the shipped table's
    host_postconf = shutil.which("postconf")
    if host_postconf is not None:
        knowledge = dataclasses.replace(knowledge, postconf=host_postconf)
    scratch = _scratch(chroot)
    try:
        tally = Tally()
        cases = corpus_cases()
        jobs: list[tuple[Path, tuple[str, ...], str]] = []
        for index, (label, main, master) in enumerate(cases):
            directory = scratch / str(index)
            directory.mkdir()
            (directory / "main.cf").write_bytes(main if main is not None else b"")
            if master is not None:
                (directory / "master.cf").write_bytes(master)
            for args in MODES:
                if ("-M" in args and master is None) or ("-n" in args and main is None):
                    continue
                jobs.append((directory, args, label))
        with ThreadPoolExecutor(max_workers=8) as pool:
            runs = list(pool.map(lambda job: _postconf(chroot, job[0], job[1]), jobs))
        for (directory, args, label), done in zip(jobs, runs, strict=True):
            _compare(directory, args, done, label, knowledge, tally)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rate = 100.0 * tally.agreed / tally.total
    print(
        f"\nPostfix {version} ({suite}): postconf agreement over the corpus with the shipped "
        f"{knowledge.postfix_version} facts: {tally.agreed}/{tally.total} ({rate:.1f}%), "
        f"{len(cases)} configurations, {tally.rejected_by_both} rejected by both"
    )
    assert tally.mismatches == []
    assert tally.total >= 100


NEW_IN_310 = ("smtp_tlsrpt_enable", "smtpd_hide_client_session", "maillog_file_permissions")


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_new_parameter_is_unused_before_its_release(suite: str) -> None:
    """postconf -n of each release warns "unused parameter" exactly where pfwatch's facts
    of that release do not know the name."""
    chroot = _usable(suite)
    version = release_of(suite)
    knowledge = parameter_knowledge(None, release=version)
    scratch = _scratch(chroot)
    try:
        text = "".join(f"{name} = yes\n" for name in NEW_IN_310)
        (scratch / "main.cf").write_text(text)
        done = _postconf(chroot, scratch, ("-n",))
        main = parse_main_cf(decode(text.encode()), str(scratch / "main.cf"))
        build_table(main, None, knowledge, str(scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    warned = {
        name for name in NEW_IN_310 if f"unused parameter: {name}=yes" in done.stderr.decode()
    }
    unknown = {name for name in NEW_IN_310 if name not in knowledge.known()}
    assert warned == unknown
    assert (warned == set()) == version.startswith("3.10.")
