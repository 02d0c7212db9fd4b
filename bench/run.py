"""End-to-end benchmark: ``pfwatch explain`` against pflogsumm, start-up times, memory.

Everything is timed as a user runs it: a whole process from start to exit, in the same run
and alternated round by round with its baseline (best of ``--rounds``), on a machine that
may be shared (the wall clock is the verdict; CPU seconds, own and children's, are printed
beside it because other processes' load stretches wall time but not them).

1. explain: ``pfwatch explain --json LOG`` against ``pflogsumm LOG`` on two inputs of at
   least ``--lines`` lines: a log recorded from a private real Postfix (bench/record.py, or
   ``--recording FILE``) and a real busy production log (``--busy-log``, default the shared
   corpus' kdent mail2.log), each tiled with shifted times, pids and queue ids (``tile``).
   Target (issue 12): pfwatch at least 1.5x pflogsumm (pflogsumm's time / pfwatch's).
2. start-up: ``pfwatch --version``, ``pfwatch --help`` and ``pfwatch check`` on a
   Debian-default configuration (Debian's main.cf.debian and master.cf.dist plus what the
   package's postinst sets), against ``python -c pass`` and ``postconf -n`` on the same
   configuration. Targets: 0.15 s, 0.15 s, 0.25 s wall (on a quiet machine).
3. memory: the peak RSS of ``pfwatch explain --json`` (the process and its worker) on the
   recording tiled to ``--memory-lines`` lines (default a million). Target: < 200 MB.

Inputs: options. Output: a report on stdout, one PASS/FAIL line per target; exit status 0
when all pass. Errors: exits non-zero when pflogsumm, Postfix or pfwatch is missing. Needs
root for the recording. Run: ``.venv/bin/python bench/run.py``; not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from record import record

REPO = Path(__file__).resolve().parents[1]
BUSY_LOG = REPO.parent / "shared" / "corpus" / "reallogs-kdent_postfix_log_analysis" / "mail2.log"
_STAMP = re.compile(rb"^(\w{3} [ \d]\d \d\d:\d\d:\d\d)( \S+ [^\[]+\[)(\d+)(\]: )(.*)$", re.S)
_QUEUE_ID = re.compile(rb"\b([0-9A-F]{8,12})\b")
DEBIAN_SETTINGS = (
    # what Debian's postfix.postinst sets on an "Internet Site" install (postconf -e)
    "smtpd_relay_restrictions=permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
    "myhostname=bench.example.test",
    "mydestination=$myhostname, bench, localhost.localdomain, localhost",
    "relayhost=",
    "mynetworks=127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
    "mailbox_size_limit=0",
    "recipient_delimiter=+",
    "inet_interfaces=all",
    "inet_protocols=all",
    "smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem",
    "smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key",
    "smtpd_tls_security_level=may",
    "smtp_tls_CApath=/etc/ssl/certs",
    "smtp_tls_security_level=may",
    "smtp_tls_session_cache_database=btree:${data_directory}/smtp_scache",
)


def _shift_queue_id(offset: int, found: re.Match[bytes]) -> bytes:
    digits = found.group(1)
    return b"%0*X" % (len(digits), (int(digits, 16) + offset) % (16 ** len(digits)))


def tile(recording: Path, out: Path, min_lines: int) -> tuple[int, int]:
    """Write copies of ``recording`` into ``out`` until it has ``min_lines`` lines.

    Copy k is shifted by k times the recording's span (+1 s), its pids by k*7919 (mod
    4194304) and its hex queue ids by k in their top digit pattern; returns (lines, copies).
    """
    lines = recording.read_bytes().splitlines(keepends=True)
    first = _STAMP.match(lines[0])
    last = _STAMP.match(lines[-1])
    if first is None or last is None:
        raise SystemExit(f"{recording}: not a classic syslog-format maillog")
    year = datetime.now().year

    def parse(stamp: bytes) -> datetime:
        return datetime.strptime(f"{year} {stamp.decode()}", "%Y %b %d %H:%M:%S")

    span = parse(last.group(1)) - parse(first.group(1)) + timedelta(seconds=1)
    written = copies = 0
    with out.open("wb") as sink:
        while written < min_lines:
            shift = span * copies
            cache: dict[bytes, bytes] = {}
            for line in lines:
                match = _STAMP.match(line)
                if match is None:
                    sink.write(line)
                    written += 1
                    continue
                stamp = match.group(1)
                new_stamp = cache.get(stamp)
                if new_stamp is None:
                    shifted = parse(stamp) + shift
                    new_stamp = f"{shifted:%b} {shifted.day:2d} {shifted:%H:%M:%S}".encode()
                    cache[stamp] = new_stamp
                pid = (int(match.group(3)) + copies * 7919) % 4194304 or 1
                body = match.group(5)
                if copies:
                    body = _QUEUE_ID.sub(partial(_shift_queue_id, copies), body)
                sink.write(b"%s%s%d%s%s" % (new_stamp, match.group(2), pid, match.group(4), body))
                written += 1
            copies += 1
    return written, copies


@dataclass(frozen=True)
class Run:
    """One process run: wall seconds, CPU seconds (with its children), peak RSS in MB."""

    wall: float
    cpu: float
    rss_mb: float


# as installed: Python may keep the compiled bytecode of pfwatch's modules between runs
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(argv: Sequence[str]) -> Run:
    """Run ``argv`` with stdout discarded; fail loudly when it fails."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.returncode not in (0, 1, 2):  # check's plugin codes; 3 and crashes are failures
        raise SystemExit(f"{' '.join(argv)} failed ({child.returncode}): {err.strip()}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def best_of(rounds: int, contenders: dict[str, list[str]], label: str) -> dict[str, Run]:
    """Alternate the contenders ``rounds`` times; keep each one's best wall and CPU.

    One untimed run of each first: bytecode written, files in the page cache."""
    for argv in contenders.values():
        run_once(argv)
    best: dict[str, Run] = {}
    for round_no in range(1, rounds + 1):
        for name, argv in contenders.items():
            run = run_once(argv)
            old = best.get(name, run)
            best[name] = Run(
                min(old.wall, run.wall), min(old.cpu, run.cpu), max(old.rss_mb, run.rss_mb)
            )
            if rounds <= 5 or round_no == rounds:
                print(
                    f"  {label} round {round_no} {name:<18} {run.wall:6.3f} s wall "
                    f"{run.cpu:6.3f} s CPU {run.rss_mb:6.1f} MB",
                    flush=True,
                )
    return best


def pfwatch_argv() -> list[str]:
    """The ``pfwatch`` console script beside this interpreter (as users run it)."""
    script = Path(sys.executable).with_name("pfwatch")
    if not script.is_file():
        raise SystemExit(f"no pfwatch console script beside {sys.executable} (pip install -e .)")
    return [str(script)]


def debian_config(root: Path) -> Path:
    """A Debian-default configuration directory: what a fresh install leaves."""
    share = Path("/usr/share/postfix")
    if not (share / "main.cf.debian").is_file():
        raise SystemExit("Debian's postfix package is not installed (/usr/share/postfix)")
    conf = root / "debian-default"
    conf.mkdir()
    shutil.copyfile(share / "main.cf.debian", conf / "main.cf")
    shutil.copyfile(share / "master.cf.dist", conf / "master.cf")
    (conf / "aliases").write_text("postmaster: root\n")
    settings = [
        *DEBIAN_SETTINGS,
        f"alias_maps=hash:{conf}/aliases",
        f"alias_database=hash:{conf}/aliases",
    ]
    subprocess.run(["postconf", "-c", str(conf), "-e", *settings], check=True)
    subprocess.run(["postalias", "-c", str(conf), str(conf / "aliases")], check=True)
    return conf


def verdict(label: str, ok: bool, detail: str) -> bool:
    print(f"{'PASS' if ok else 'FAIL'}  {label}: {detail}")
    return ok


def bench_explain(args: argparse.Namespace, work: Path, recording: Path) -> list[bool]:
    """Section 1: explain against pflogsumm on the tiled recording and the busy log."""
    pflogsumm = shutil.which("pflogsumm")
    if pflogsumm is None:
        raise SystemExit("pflogsumm not installed (Debian package pflogsumm)")
    inputs = {"recording": recording}
    if args.busy_log.is_file():
        inputs["busy log"] = args.busy_log
    else:
        print(f"busy log {args.busy_log} not found: only the recording is timed")
    results = []
    for name, source in inputs.items():
        tiled = work / f"{name.replace(' ', '-')}.log"
        lines, copies = tile(source, tiled, args.lines)
        size = tiled.stat().st_size / 1e6
        print(f"\n{name}: {source.name} ({sum(1 for _ in source.open('rb'))} lines) tiled "
              f"{copies}x = {lines} lines, {size:.1f} MB")  # fmt: skip
        best = best_of(
            args.rounds,
            {
                "pfwatch explain": [*pfwatch_argv(), "explain", "--json", str(tiled)],
                "pflogsumm": [pflogsumm, str(tiled)],
            },
            "explain",
        )
        mine, theirs = best["pfwatch explain"], best["pflogsumm"]
        print(f"  best: pfwatch {mine.wall:.2f} s wall / {mine.cpu:.2f} s CPU, "
              f"pflogsumm {theirs.wall:.2f} s wall / {theirs.cpu:.2f} s CPU")  # fmt: skip
        ratio = theirs.wall / mine.wall
        results.append(
            verdict(
                f"explain >= 1.5x pflogsumm ({name}, {lines} lines)",
                ratio >= 1.5,
                f"{ratio:.2f}x on wall time ({theirs.cpu / mine.cpu:.2f}x on CPU time)",
            )
        )
    return results


def bench_startup(args: argparse.Namespace, work: Path) -> list[bool]:
    """Section 2: start-up of --version, --help and check, with their baselines."""
    conf = debian_config(work)
    pfwatch = pfwatch_argv()
    print(f"\nstart-up (best of {args.startup_rounds}, Debian-default configuration)")
    best = best_of(
        args.startup_rounds,
        {
            "python -c pass": [sys.executable, "-c", "pass"],
            "postconf -n": ["postconf", "-c", str(conf), "-n"],
            "pfwatch --version": [*pfwatch, "--version"],
            "pfwatch --help": [*pfwatch, "--help"],
            "pfwatch check": [*pfwatch, "check", "--config-dir", str(conf)],
        },
        "start-up",
    )
    for name, run in best.items():
        print(f"  {name:<18} {run.wall:6.3f} s wall {run.cpu:6.3f} s CPU")
    results = []
    for name, target in (
        ("pfwatch --version", 0.15),
        ("pfwatch --help", 0.15),
        ("pfwatch check", 0.25),
    ):
        run = best[name]
        results.append(
            verdict(
                f"{name} within {target} s",
                run.wall <= target,
                f"{run.wall:.3f} s wall, {run.cpu:.3f} s CPU "
                f"(python -c pass {best['python -c pass'].wall:.3f} s, "
                f"postconf -n {best['postconf -n'].wall:.3f} s)",
            )
        )
    return results


def bench_memory(args: argparse.Namespace, work: Path, recording: Path) -> list[bool]:
    """Section 3: the peak RSS of explain on a million-line log."""
    tiled = work / "memory.log"
    lines, _ = tile(recording, tiled, args.memory_lines)
    run = run_once([*pfwatch_argv(), "explain", "--json", str(tiled)])
    tiled.unlink()
    return [
        verdict(
            f"explain peak RSS < 200 MB ({lines} lines)",
            run.rss_mb < 200,
            f"{run.rss_mb:.1f} MB (max over the process and its worker; {run.wall:.1f} s wall)",
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recording", type=Path, help="an existing recorded maillog")
    parser.add_argument("--sessions", type=int, default=3000, help="SMTP sessions to record")
    parser.add_argument("--busy-log", type=Path, default=BUSY_LOG, help="a real busy maillog")
    parser.add_argument("--lines", type=int, default=280_000, help="minimum lines per input")
    parser.add_argument("--memory-lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternated explain rounds")
    parser.add_argument("--startup-rounds", type=int, default=10)
    parser.add_argument(
        "--only", choices=("explain", "startup", "memory"), action="append", help="sections"
    )
    args = parser.parse_args()
    sections = args.only or ["explain", "startup", "memory"]
    work = Path(tempfile.mkdtemp(prefix="pfwatch-bench-run-"))
    try:
        print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        recording = args.recording
        if recording is None and ("explain" in sections or "memory" in sections):
            print(f"recording {args.sessions} SMTP sessions from a private Postfix ...", flush=True)
            recording = record(work / "recorded.log", args.sessions)
        results: list[bool] = []
        if "explain" in sections:
            results += bench_explain(args, work, recording)
        if "startup" in sections:
            results += bench_startup(args, work)
        if "memory" in sections:
            results += bench_memory(args, work, recording)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
