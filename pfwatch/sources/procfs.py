"""The /proc poller of ``pfwatch watch``: the live processes of ONE Postfix instance.

Inputs: the instance's ``queue_directory`` (its master writes ``pid/master.pid`` there,
src/master/master.c), its configuration directory (matched against the ``MAIL_CONFIG``
environment of processes when the pid file cannot be used), the instance's syslog name
(the ``instance`` of log events), and a /proc root (tests may point elsewhere).
Outputs: :class:`pfwatch.events.ProcessTableSeen` per :meth:`ProcScanner.poll` (the
master and its children, as the log shows both), or None
when this Postfix is not visible (another PID namespace, not running). Errors: none
raised; a process that vanishes while being read is simply not in that poll.

How processes are found, cheapest first:

- The master's pid from the pid file (its ``comm`` must be ``master``); its children from
  ``/proc/PID/task/PID/children`` (one read), or by scanning every ``/proc/N/stat`` for
  that parent when the kernel lacks the file.
- Without a usable pid file (a sidecar sees the PID namespace but not the queue): a
  process named ``master`` whose ``MAIL_CONFIG`` is this configuration directory (or the
  only master whose environment cannot be read).
- Without any master: processes whose program is a known Postfix daemon and whose
  ``MAIL_CONFIG`` (when readable) is this directory. That full scan runs at most every
  ``rescan`` seconds.

Each child's ``argv`` is read once per (pid, start time): ``daemon`` is argv[0]'s last
component, ``service`` the master.cf service name after ``-n`` (src/master/master_spawn.c
passes it), ``instance`` the first component of ``-o syslog_name=...`` if present, else the
instance's syslog name. Start times come from field 22 of ``/proc/PID/stat`` (clock ticks
since boot, proc(5)) plus the boot time measured to the tick by :func:`boot_time`
(``CLOCK_REALTIME - CLOCK_BOOTTIME``), not /proc/stat's ``btime``: that is truncated to
the whole second (psutil uses it), which puts every start up to a second early, so a table
rebuilt by ``postmap`` just before ``postfix start`` would look modified after the start.
:func:`start_time` gives one process's start the same way, for ``pfwatch check``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pfwatch.events import ProcessInfo, ProcessTableSeen
from pfwatch.knowledge.daemons import ALIASES, DAEMONS

MASTER_PID_FILE = "pid/master.pid"
"""Relative to queue_directory (src/master/master.c writes and locks it)."""
STARTTIME_FIELD = 19
"""Index of ``starttime`` (field 22 of proc(5)) among the fields after ``comm``."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""Unit of ``starttime`` (USER_HZ, 100 on Linux): start times are exact to 1/100 s."""


def boot_time() -> float:
    """The wall-clock moment of boot, to well under a clock tick.

    ``CLOCK_BOOTTIME`` is what the kernel measures ``starttime`` against
    (``task->start_boottime``, fs/proc/array.c), so wall clock minus it is the boot moment
    in the same frame. The two clocks are read back to back; the tightest of three
    samples is kept.
    """
    samples = []
    for _ in range(3):
        before = time.time()
        since_boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        after = time.time()
        samples.append((after - before, (before + after) / 2 - since_boot))
    return min(samples)[1]


def start_time(
    pid: int, proc_root: Path | str = "/proc", boot: float | None = None
) -> float | None:
    """When process ``pid`` started (wall clock, to the clock tick), None if unreadable."""
    try:
        text = (Path(proc_root) / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        ticks = int(text[text.rindex(")") + 2 :].split()[STARTTIME_FIELD])
    except (OSError, ValueError, IndexError):
        return None
    return (boot_time() if boot is None else boot) + ticks / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class _Stat:
    comm: str
    ppid: int
    started_at: float


class ProcScanner:
    """Polls /proc for one Postfix instance; see the module documentation."""

    def __init__(
        self,
        queue_dir: Path | str,
        config_dir: Path | str,
        instance: str = "postfix",
        *,
        proc_root: Path | str = "/proc",
        rescan: float = 5.0,
    ) -> None:
        self.queue_dir = Path(queue_dir)
        self.config_dir = os.path.realpath(config_dir)
        self.instance = instance
        self.proc = Path(proc_root)
        self.rescan = rescan
        self.visible = False
        self.how = "not polled yet"
        self._boot = boot_time()
        self._hz = CLOCK_TICKS
        self._master: tuple[int, float] | None = None
        self._known: dict[tuple[int, float], ProcessInfo] = {}
        self._pids: frozenset[int] = frozenset()
        self._next_scan = 0.0

    def configure(self, queue_dir: Path | str, instance: str) -> None:
        """Follow a configuration change of queue_directory or syslog_name."""
        if Path(queue_dir) != self.queue_dir or instance != self.instance:
            self.queue_dir, self.instance = Path(queue_dir), instance
            self._master = None
            self._known.clear()

    def poll(self, now: float) -> ProcessTableSeen | None:
        """One complete table of the instance's processes, or None when not visible.

        The first poll after the instance disappears returns an empty table (its
        processes are gone), later ones None until it shows up again.
        """
        master = self._find_master(now)
        infos: list[ProcessInfo] | None
        if master is not None:
            infos = self._children(master)
            self.how = f"children of master pid {master}"
        else:
            infos = self._by_name(now)
        if infos is None:
            was_visible, self.visible = self.visible, False
            return ProcessTableSeen(now, ()) if was_visible else None
        self.visible = True
        infos.sort(key=lambda p: (p.started_at, p.pid))
        return ProcessTableSeen(now, tuple(infos))

    # -- the master ---------------------------------------------------------------------

    def _find_master(self, now: float) -> int | None:
        if self._master is not None:
            pid, started = self._master
            stat = self._stat(pid)
            if stat is not None and stat.started_at == started and stat.comm == "master":
                return pid
            self._master = None
        found = self._pid_from_file()
        if found is None and now >= self._next_scan:
            found = self._master_by_environment()
        if found is None:
            return None
        pid = found
        stat = self._stat(pid)
        if stat is None or stat.comm != "master":
            return None
        self._master = (pid, stat.started_at)
        return pid

    def _pid_from_file(self) -> int | None:
        try:
            text = (self.queue_dir / MASTER_PID_FILE).read_text(encoding="ascii")
            return int(text.split()[0])
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            return None

    def _master_by_environment(self) -> int | None:
        unknown: list[int] = []
        for pid, stat in self._all():
            if stat.comm != "master":
                continue
            config = self._mail_config(pid)
            if config == self.config_dir:
                return pid
            if config is None:
                unknown.append(pid)
        return unknown[0] if len(unknown) == 1 else None

    # -- children and daemons -----------------------------------------------------------

    def _children(self, master: int) -> list[ProcessInfo]:
        pids = [master, *self._child_pids(master)]
        seen: dict[tuple[int, float], ProcessInfo] = {}
        for pid in pids:
            stat = self._stat(pid)
            if stat is None or master not in (pid, stat.ppid):
                continue
            info = self._info(pid, stat)
            if info is not None:
                seen[(pid, stat.started_at)] = info
        self._known = seen
        self._pids = frozenset(pid for pid, _ in seen)
        return list(seen.values())

    def _child_pids(self, master: int) -> list[int]:
        try:
            text = (self.proc / str(master) / "task" / str(master) / "children").read_text()
            return [int(word) for word in text.split()]
        except (OSError, ValueError):
            return [pid for pid, stat in self._all() if stat.ppid == master]

    def _by_name(self, now: float) -> list[ProcessInfo] | None:
        if now < self._next_scan:
            return None
        self._next_scan = now + self.rescan
        seen: dict[tuple[int, float], ProcessInfo] = {}
        for pid, stat in self._all():
            if stat.comm not in DAEMONS and stat.comm not in ALIASES and stat.comm != "master":
                continue
            config = self._mail_config(pid)
            if config is not None and config != self.config_dir:
                continue
            info = self._info(pid, stat)
            if info is not None:
                seen[(pid, stat.started_at)] = info
        self._known = seen
        if not seen:
            self.how = "no process of this Postfix in /proc"
            return None
        self.how = "Postfix daemons found by name (master not visible)"
        return list(seen.values())

    def _info(self, pid: int, stat: _Stat) -> ProcessInfo | None:
        cached = self._known.get((pid, stat.started_at))
        if cached is not None:
            return cached
        try:
            raw = (self.proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        argv = [arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg]
        if not argv:
            return None
        daemon = argv[0].rpartition("/")[2]
        service = _after(argv, "-n") or daemon
        instance = self.instance
        for index, arg in enumerate(argv[:-1]):
            if arg == "-o" and argv[index + 1].startswith("syslog_name="):
                instance = argv[index + 1].partition("=")[2].split("/")[0] or instance
        return ProcessInfo(pid, daemon, service, instance, stat.started_at, tuple(argv))

    # -- vouching for log lines ----------------------------------------------------------

    def vouches(
        self, pid: int, at: float, slack: float = 1.0, *, master: bool = False
    ) -> bool | None:
        """Whether /proc backs a log line from ``pid`` stamped ``at``.

        True when ``pid`` is the master (``master=True``: only the master will do) or
        one of its children; False when a process that was already running at ``at``
        holds the pid and is not that (the line came from someone else); None when
        /proc cannot tell: no master seen, the pid is gone, or its holder started after
        the line (a reused pid).
        """
        if self._master is None:
            return None
        master_pid = self._master[0]
        if pid == master_pid:
            return True
        if not master and pid in self._pids:
            return True
        stat = self._stat(pid)
        if stat is None or stat.started_at > at + slack:
            return None
        return not master and stat.ppid == master_pid

    # -- /proc plumbing -----------------------------------------------------------------

    def _stat(self, pid: int) -> _Stat | None:
        try:
            text = (self.proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        left, right = text.find("("), text.rfind(")")
        if left < 0 or right < left:
            return None
        rest = text[right + 2 :].split()
        try:
            ppid = int(rest[1])
            ticks = int(rest[STARTTIME_FIELD])
        except (IndexError, ValueError):
            return None
        return _Stat(text[left + 1 : right], ppid, self._boot + ticks / self._hz)

    def _all(self) -> Iterator[tuple[int, _Stat]]:
        try:
            names = [entry.name for entry in self.proc.iterdir()]
        except OSError:
            return
        for name in names:
            if name.isdigit():
                stat = self._stat(int(name))
                if stat is not None:
                    yield int(name), stat

    def _mail_config(self, pid: int) -> str | None:
        """The MAIL_CONFIG of a process (the default directory when unset), None if
        its environment cannot be read."""
        try:
            raw = (self.proc / str(pid) / "environ").read_bytes()
        except OSError:
            return None
        for item in raw.split(b"\0"):
            if item.startswith(b"MAIL_CONFIG="):
                return os.path.realpath(item[12:].decode("utf-8", "replace"))
        return os.path.realpath("/etc/postfix")


def _after(argv: list[str], flag: str) -> str | None:
    for index, arg in enumerate(argv[:-1]):
        if arg == flag:
            return argv[index + 1]
    return None
