"""``pfwatch lab``: rehearse a change on a throwaway real Postfix, watched by the engine.

A lab is a private Postfix (:class:`pfwatch.instance.local.PostfixInstance`) on
loopback, optionally with a neutralised copy of the operator's configuration
(:mod:`pfwatch.lab.config`), and a :class:`~pfwatch.changewindow.livewatch.LiveSession`
that folds its log and /proc into the engine. Commands (interactive or from
``--script FILE``), one per line, ``#`` starts a comment::

    edit main.cf NAME = VALUE     set a parameter (rename-into-place, like an editor)
    edit main.cf -NAME            remove a parameter
    write FILE TEXT               replace FILE (in the lab's config dir); \\n = newline
    append FILE TEXT              append TEXT and a newline to FILE (e.g. master.cf)
    postmap [TYPE:]FILE           rebuild a table (default type hash)
    reload | restart              postfix reload | postfix stop + start
    send [FROM] TO...             submit a test message over SMTP
    session open | session close  hold an SMTP connection (keeps one smtpd busy)
    sleep SECONDS
    wait [SECONDS]                until no edit is pending (default 60 s)
    expect live within SECONDS    the last edit is confirmed live within SECONDS
    expect needs ACTION           the last edit needs postmap, reload or restart
    expect pending                the last edit is not live yet
    expect banner TEXT            the SMTP banner contains TEXT
    expect delivered ADDRESS      the sink received mail for ADDRESS (within 15 s)

Inputs: the commands, the lab's options. Outputs: :class:`LabReport` (steps with
outcomes, every change with its prediction and confirmation, expectations).
Errors: :class:`LabScriptError` (file and line) for a bad command;
``PostfixUnavailable`` when Postfix cannot run here (see :data:`INSTALL_HINT`).
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pfwatch.changewindow.livewatch import LiveSession
from pfwatch.changewindow.precheck import CheckRequest
from pfwatch.config.maincf import load_main_cf
from pfwatch.config.snapshot import build_snapshot, parsed_files
from pfwatch.core.changes import needs_actions
from pfwatch.core.state import Change
from pfwatch.errors import PfwatchError
from pfwatch.events import Finding
from pfwatch.instance.local import PostfixInstance, free_port
from pfwatch.lab.config import LabTargets, build_lab_config
from pfwatch.lab.script import LabReport, LabScriptError, Step, stamp

INSTALL_HINT = (
    "pfwatch lab runs a real Postfix: install it first (Debian/Ubuntu: "
    "apt-get install postfix postfix-pcre postfix-lmdb postfix-cdb; RHEL/Fedora: "
    "dnf install postfix) and run as root"
)
POLL = 0.25


class Lab:
    """A running lab: Postfix instance, engine session, command interpreter."""

    def __init__(self, instance: PostfixInstance, notes: list[str]) -> None:
        self.pf = instance
        self.report = LabReport(time.time(), list(notes))
        request = CheckRequest(
            config_dir=instance.config_dir,
            now=time.time(),
            maillog=(str(instance.maillog),),
            use_git=False,
        )
        self.session = LiveSession.start(request)
        self._first_prediction: dict[str, float | None] = {}
        self._last_change: str | None = None
        self._session: contextlib.ExitStack | None = None
        self.on_finding: Callable[[Finding], None] | None = None

    # -- engine -------------------------------------------------------------------------
    def poll(self) -> None:
        for finding in self.session.poll():
            self.report.findings.append(finding)
            cid = finding.data.get("change_id")
            if finding.name == "change_detected" and isinstance(cid, str):
                self._first_prediction.setdefault(cid, finding.data.get("predicted_live_at"))
                self._last_change = cid
            if self.on_finding is not None:
                self.on_finding(finding)

    def _after_edit(self, timeout: float = 2.0) -> Change | None:
        """Let the engine see the edit; return the change it opened."""
        before = set(self.session.state.changes)
        self.session.force_config_check()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            new = set(self.session.state.changes) - before
            if new:
                self._last_change = max(new, key=lambda c: self.session.state.changes[c].at)
                return self.session.state.changes[self._last_change]
            time.sleep(POLL)
            self.session.force_config_check()
        return None

    def last_change(self) -> Change | None:
        return self.session.state.changes.get(self._last_change or "")

    def _wait_live(self, change: Change | None, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if change is None:
                if not self.session.pending():
                    return True
            elif self.session.state.changes[change.change_id].status == "live":
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)

    # -- commands -----------------------------------------------------------------------
    def run_line(self, text: str, line: int = 0, where: str = "<lab>") -> Step | None:
        words = shlex.split(text, comments=True)
        if not words:
            return None
        step = Step(line, " ".join(words), time.time())
        try:
            step.ok, step.outcome = self._dispatch(words, text)
        except LabScriptError:
            raise
        except (PfwatchError, OSError, smtplib.SMTPException, ValueError) as exc:
            step.ok, step.outcome = False, f"error: {exc}"
        self.report.steps.append(step)
        return step

    def _dispatch(self, words: list[str], text: str) -> tuple[bool, str]:
        verb, args = words[0], words[1:]
        pf = self.pf
        if verb == "edit" and args[:1] == ["main.cf"] and len(args) >= 2:
            if args[1].startswith("-") and len(args) == 2:
                pf.edit_main_cf({args[1][1:]: None})
            else:
                name, _, value = " ".join(args[1:]).partition("=")
                if not name.strip():
                    raise ValueError("edit main.cf NAME = VALUE")
                raw = text.split("=", 1)[1].strip() if "=" in text else value.strip()
                pf.edit_main_cf({name.strip(): raw})
            return self._describe_edit()
        if verb in ("write", "append") and len(args) >= 1:
            raw = text.split(None, 2)[2] if len(text.split(None, 2)) > 2 else ""
            body = raw.replace("\\n", "\n")
            path = pf.config_dir / args[0]
            if verb == "append":
                old = path.read_text() if path.exists() else ""
                body = old + ("" if old.endswith("\n") or not old else "\n") + body + "\n"
            elif not body.endswith("\n"):
                body += "\n"
            pf.write_file(args[0], body)
            return self._describe_edit()
        if verb == "postmap" and len(args) == 1:
            kind, _, name = args[0].rpartition(":")
            pf.postmap(name, kind or "hash")
            return self._describe_edit()
        if verb == "reload" and not args:
            pf.reload()
            self.poll()
            return True, "postfix reload"
        if verb == "restart" and not args:
            pf.stop()
            pf.start()
            self.poll()
            return True, "postfix stop + start"
        if verb == "send" and args:
            sender = args[0] if len(args) > 1 else "lab@pfwatch.test"
            rcpts = args[1:] if len(args) > 1 else args
            queue_id = pf.send_mail(sender, rcpts)
            self.poll()
            return True, f"queued as {queue_id}"
        if verb == "session" and args in (["open"], ["close"]):
            return self._hold(args[0] == "open")
        if verb == "sleep" and len(args) == 1:
            self._sleep(float(args[0]))
            return True, ""
        if verb == "wait" and len(args) <= 1:
            limit = float(args[0]) if args else 60.0
            ok = self._wait_live(None, limit)
            return ok, "every edit is live" if ok else f"still pending after {limit:g} s"
        if verb == "expect" and args:
            return self._expect(args)
        raise ValueError(f"unknown command: {' '.join(words)}")

    def _describe_edit(self) -> tuple[bool, str]:
        change = self._after_edit()
        if change is None:
            return True, "no change seen by the engine (identical content?)"
        needs = needs_actions(change.needs)
        pred = change.prediction.predicted_live_at if change.prediction else None
        if needs:
            return True, f"change {change.change_id}: needs {' + '.join(needs)}"
        if change.status == "live":
            return True, f"change {change.change_id}: live at once (nothing stale)"
        when = "unknown" if pred is None else stamp(pred, self.report.started_at)
        stale = change.prediction.stale_count if change.prediction else None
        return True, f"change {change.change_id}: {stale} stale, predicted live {when}"

    def _hold(self, opening: bool) -> tuple[bool, str]:
        if opening:
            if self._session is None:
                stack = contextlib.ExitStack()
                stack.enter_context(self.pf.open_session())
                self._session = stack
            return True, "SMTP session open"
        if self._session is not None:
            self._session.close()
            self._session = None
        return True, "SMTP session closed"

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.poll()
            time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))

    def _expect(self, args: list[str]) -> tuple[bool, str]:
        change = self.last_change()
        if args[:2] == ["live", "within"] and len(args) == 3:
            limit = float(args[2])
            started = time.time()
            ok = change is not None and self._wait_live(change, limit)
            current = self.last_change()
            if ok and current is not None and current.live_at is not None:
                return True, (
                    f"live at {stamp(current.live_at, self.report.started_at)} "
                    f"(confirmed after {time.time() - started:.1f} s; "
                    f"{current.made_live_by})"
                )
            return False, f"not live within {limit:g} s"
        if args[0] == "needs" and len(args) == 2:
            self._sleep(1.0)
            change = self.last_change()
            needs = needs_actions(change.needs) if change is not None else []
            return args[1] in needs, f"needs: {', '.join(needs) or 'none'}"
        if args == ["pending"]:
            self.poll()
            change = self.last_change()
            status = change.status if change is not None else "no change"
            return status != "live" and change is not None, f"status: {status}"
        if args[0] == "banner" and len(args) >= 2:
            banner = self.pf.wait_ready()
            wanted = " ".join(args[1:])
            return wanted in banner, f"banner: {banner}"
        if args[0] == "delivered" and len(args) == 2:
            return self._delivered(args[1])
        raise ValueError(f"unknown expectation: {' '.join(args)}")

    def _delivered(self, address: str) -> tuple[bool, str]:
        sink = self.pf.sink
        if sink is None:
            return False, "the lab has no sink"
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if any(address in message.rcpt_to for message in sink.messages):
                return True, f"the sink received mail for {address}"
            self._sleep(POLL)
        seen = sorted({r for m in sink.messages for r in m.rcpt_to})
        return False, f"no mail for {address} (sink saw: {', '.join(seen) or 'nothing'})"

    # -- running ------------------------------------------------------------------------
    def run_script(self, path: Path) -> LabReport:
        for number, text in enumerate(path.read_text().splitlines(), start=1):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            try:
                self.run_line(text, number, str(path))
            except ValueError as exc:
                raise LabScriptError(str(path), number, str(exc)) from None
        self._sleep(0.5)
        return self.finish()

    def finish(self) -> LabReport:
        """Close any held session and fill in the change table."""
        if self._session is not None:
            self._session.close()
            self._session = None
        self.poll()
        rows = []
        for change in sorted(self.session.state.changes.values(), key=lambda c: c.at):
            if change.at < self.report.started_at:
                continue
            names = [n for n in change.parameters if n != "*"] + list(change.services)
            names += [t.ref for t in change.tables]
            rows.append(
                {
                    "change_id": change.change_id,
                    "what": ", ".join(names) or ", ".join(Path(f).name for f in change.files),
                    "edited_at": change.at,
                    "first_predicted_live_at": self._first_prediction.get(change.change_id),
                    "live_at": change.live_at,
                    "live_basis": change.live_basis,
                    "made_live_by": change.made_live_by,
                    "needs": needs_actions(change.needs),
                    "status": change.status,
                    "superseded_by": change.superseded_by,
                }
            )
        self.report.changes = rows
        return self.report

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        self.session.close()


LAB_BASE = (
    "queue_directory",
    "data_directory",
    "maillog_file",
    "maillog_file_prefixes",
    "inet_interfaces",
    "inet_protocols",
    "ipc_idle",
)


def install_from(pf: PostfixInstance, source: Path, max_idle: int | None) -> list[str]:
    """Replace the running stock lab's configuration by a neutralised copy of ``source``."""
    snapshot = build_snapshot(str(source))
    live = parsed_files(snapshot)  # raises when main.cf or master.cf does not parse
    assert live.master is not None  # parsed_files requires it unless told otherwise
    own = load_main_cf(str(pf.main_cf)).parameters
    base = {name: own[name].value for name in LAB_BASE if name in own}
    sink = pf.sink
    if sink is None:
        raise PfwatchError("the lab instance has no SMTP sink")
    targets = LabTargets(
        config_dir=pf.config_dir,
        base=base,
        smtp_port=pf.port,
        sink=(sink.host, sink.port),
        max_idle=None if max_idle is None else f"{max_idle}s",
        free_port=free_port,
    )
    files = [
        path
        for table in snapshot.tables
        if not table.ref.secret
        for path in (table.ref.source, *table.ref.compiled)
        if path
    ]
    config = build_lab_config(live.main, live.master, source, targets, files)
    pf.stop()
    pf.write_file("main.cf", config.main_text)
    pf.write_file("master.cf", config.master_text)
    for original, copy in config.copies.items():
        Path(copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(original, copy)
    pf.start()
    return [f"configuration from {source}", *config.notes]


@contextlib.contextmanager
def lab_instance(
    source: Path | None, max_idle: int | None, work_dir: Path | None = None
) -> Iterator[tuple[PostfixInstance, list[str]]]:
    """A started lab instance (stock, or a copy of ``source``) and what was changed."""
    instance = PostfixInstance(
        base_dir=work_dir,
        max_idle=max_idle or 3,
        main_cf={"ipc_idle": "1s"},
        verbose=("smtpd",),
    )
    try:
        instance.start()
        notes = [
            f"Postfix on 127.0.0.1:{instance.port}, sink on "
            f"{instance.sink.host}:{instance.sink.port}"
            if instance.sink
            else f"Postfix on 127.0.0.1:{instance.port}"
        ]
        if source is not None:
            notes += install_from(instance, source, max_idle)
        else:
            notes.append(f"stock configuration, max_idle = {max_idle or 3}s")
        notes.append(f"configuration directory {instance.config_dir}, log {instance.maillog}")
        yield instance, notes
    finally:
        instance.close()
