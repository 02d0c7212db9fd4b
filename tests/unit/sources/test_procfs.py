"""The /proc poller against a fake /proc tree: master from its pid file, children, argv
decoding, the by-name fallback, and the instance disappearing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from pfwatch.sources.procfs import ProcScanner, boot_time, start_time

HZ = os.sysconf("SC_CLK_TCK")


class FakeProc:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    def add(
        self,
        pid: int,
        argv: list[str],
        *,
        ppid: int = 1,
        ticks: int = 500,
        env: dict[str, str] | None = None,
        children: list[int] | None = None,
    ) -> None:
        base = self.root / str(pid)
        base.mkdir()
        comm = argv[0].rpartition("/")[2][:15]
        rest = ["S", str(ppid), *["0"] * 17, str(ticks), *["0"] * 5]
        (base / "stat").write_text(f"{pid} ({comm}) {' '.join(rest)}\n")
        (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (base / "environ").write_bytes(
            b"\0".join(f"{k}={v}".encode() for k, v in (env or {}).items()) + b"\0"
        )
        if children is not None:
            task = base / "task" / str(pid)
            task.mkdir(parents=True)
            (task / "children").write_text(" ".join(str(c) for c in children) + " ")

    def remove(self, pid: int) -> None:
        shutil.rmtree(self.root / str(pid))


def setup(tmp_path: Path) -> tuple[FakeProc, Path, Path]:
    proc = FakeProc(tmp_path / "proc")
    queue, config = tmp_path / "queue", tmp_path / "etc"
    (queue / "pid").mkdir(parents=True)
    config.mkdir()
    return proc, queue, config


def test_master_and_children_from_the_pid_file(tmp_path: Path) -> None:
    proc, queue, config = setup(tmp_path)
    (queue / "pid" / "master.pid").write_text("       100\n")
    proc.add(100, ["/usr/lib/postfix/sbin/master", "-w"], children=[101, 102])
    proc.add(101, ["smtpd", "-n", "smtp", "-t", "inet", "-u"], ppid=100, ticks=700)
    proc.add(
        102,
        ["smtpd", "-n", "submission", "-t", "inet", "-o", "syslog_name=postfix-out/sub"],
        ppid=100,
        ticks=800,
    )
    scanner = ProcScanner(queue, config, "postfix", proc_root=proc.root)
    table = scanner.poll(50.0)
    assert table is not None and scanner.visible
    rows = {p.pid: p for p in table.processes}
    assert rows[100].daemon == "master"
    assert (rows[101].daemon, rows[101].service, rows[101].instance) == ("smtpd", "smtp", "postfix")
    assert (rows[102].service, rows[102].instance) == ("submission", "postfix-out")
    assert abs(rows[101].started_at - (boot_time() + 700 / HZ)) < 0.001
    assert table.at == 50.0

    proc.remove(101)
    (proc.root / "100" / "task" / "100" / "children").write_text("102 ")
    table = scanner.poll(51.0)
    assert table is not None and {p.pid for p in table.processes} == {100, 102}


def test_the_instance_going_away_gives_one_empty_table(tmp_path: Path) -> None:
    proc, queue, config = setup(tmp_path)
    (queue / "pid" / "master.pid").write_text("100\n")
    proc.add(100, ["master"], children=[])
    scanner = ProcScanner(queue, config, proc_root=proc.root, rescan=5.0)
    assert scanner.poll(1.0) is not None
    proc.remove(100)
    gone = scanner.poll(2.0)
    assert gone is not None and gone.processes == ()
    assert scanner.poll(3.0) is None
    assert not scanner.visible


def test_a_pid_file_naming_another_program_is_not_trusted(tmp_path: Path) -> None:
    proc, queue, config = setup(tmp_path)
    (queue / "pid" / "master.pid").write_text("100\n")
    proc.add(100, ["/bin/bash"])
    assert ProcScanner(queue, config, proc_root=proc.root).poll(1.0) is None


def test_without_a_master_daemons_of_this_config_are_found_by_name(tmp_path: Path) -> None:
    proc, queue, config = setup(tmp_path)
    other = tmp_path / "other"
    proc.add(200, ["qmgr", "-l", "-t", "unix", "-u"], env={"MAIL_CONFIG": str(config)})
    proc.add(201, ["smtpd", "-n", "smtp"], env={"MAIL_CONFIG": str(other)})
    proc.add(202, ["bash"])
    scanner = ProcScanner(queue, config, proc_root=proc.root, rescan=5.0)
    table = scanner.poll(10.0)
    assert table is not None
    assert [(p.pid, p.daemon, p.service) for p in table.processes] == [(200, "qmgr", "qmgr")]
    assert "by name" in scanner.how


def test_a_master_found_by_its_environment(tmp_path: Path) -> None:
    proc, queue, config = setup(tmp_path)
    proc.add(300, ["master"], env={"MAIL_CONFIG": str(tmp_path / "other")}, children=[])
    proc.add(301, ["master"], env={"MAIL_CONFIG": str(config)}, children=[302])
    proc.add(302, ["pickup", "-l", "-t", "unix"], ppid=301)
    table = ProcScanner(queue, config, proc_root=proc.root).poll(1.0)
    assert table is not None
    assert {p.pid for p in table.processes} == {301, 302}


def test_boot_time_is_btime_plus_the_fraction_it_truncates() -> None:
    btime = int(
        next(
            line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        ).split()[1]
    )
    assert btime - 1 < boot_time() < btime + 2


def test_start_time_of_a_real_process_is_exact_to_the_clock_tick() -> None:
    """psutil's create_time() rests on the whole-second btime and can be up to 1 s early;
    start_time() must lie between the moments around the fork (plus one tick)."""
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    after = time.time()
    try:
        started = start_time(child.pid)
        assert started is not None
        assert before - 1 / HZ - 0.002 <= started <= after + 0.002
        assert started >= psutil.Process(child.pid).create_time()
    finally:
        child.kill()
        child.wait()
    assert start_time(child.pid) is None


def test_vouches_for_the_pids_of_log_lines(tmp_path: Path) -> None:
    proc, queue, config = setup(tmp_path)
    (queue / "pid" / "master.pid").write_text("100\n")
    proc.add(100, ["/usr/lib/postfix/sbin/master", "-w"], children=[101])
    proc.add(101, ["smtpd", "-n", "smtp", "-t", "inet"], ppid=100, ticks=700)
    proc.add(555, ["/usr/bin/logger", "-t", "postfix/smtpd[555]"], ppid=1, ticks=600)
    scanner = ProcScanner(queue, config, "postfix", proc_root=proc.root)
    at = boot_time() + 900 / HZ  # the line's time: after every start above
    assert scanner.vouches(101, at) is None  # no poll yet: no master known
    assert scanner.poll(50.0) is not None
    assert scanner.vouches(100, at, master=True) is True
    assert scanner.vouches(101, at) is True
    assert scanner.vouches(101, at, master=True) is False  # smtpd's pid on a master line
    assert scanner.vouches(555, at) is False  # logger, running since before the line
    assert scanner.vouches(777, at) is None  # gone: /proc cannot tell
    proc.add(102, ["cleanup", "-n", "cleanup", "-t", "unix"], ppid=100, ticks=950)
    assert scanner.vouches(102, at) is True  # born since the last poll, the master's child
    proc.add(556, ["/bin/sh"], ppid=1, ticks=100_000)
    assert scanner.vouches(556, at) is None  # started after the line: a reused pid
