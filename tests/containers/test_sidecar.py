"""The pfwatch sidecar image beside a real Postfix container, end to end.

Postfix (pfwatch-postfix-test:dev) and pfwatch (pfwatch:dev: unprivileged, read-only root
file system, no capabilities) share the PID namespace (``--pid container:NAME``, what
``shareProcessNamespace: true`` does in a pod) and the configuration and log directories;
both use host networking on loopback ports. The test edits main.cf by rename and in place,
edits a table without and then with postmap, reloads through ``docker exec`` and sends
mail, and checks what the sidecar reports against the processes the container really runs.
Then it kills the sidecar, edits while it is down, and starts it again.

Also item 6 of the container start-up: the Postfix entry point runs postmap and then
``postfix start`` in the same second; neither the sidecar nor ``pfwatch check`` may take
the fresh .db (or main.cf) for an edit the running processes have not seen.
"""

from __future__ import annotations

import json
import re
import smtplib
import time

import pytest

from tests.containers.engine import Containers, docker
from tests.containers.sidecar import MAX_IDLE, Sidecar

pytestmark = [pytest.mark.docker, pytest.mark.slow]

START_TIMES = """
import json, os, psutil
from pfwatch.sources.procfs import start_time
master = next(p for p in psutil.process_iter(["name"]) if p.info["name"] == "master")
print(json.dumps({"master": start_time(master.pid), "psutil": master.create_time(),
                  "access.db": os.stat("/etc/postfix/access.db").st_mtime}))
"""


def wait_live(
    side: Sidecar, change: dict[str, object], stale: set[int], since: float | None = None
) -> tuple[dict, float]:
    """Wait for change_live of ``change``; on first sight, every stale pid must be gone.

    Returns the event and how long after the last stale exit we saw (or ``since``, when
    nothing was stale) we saw it.
    """
    since = time.time() if since is None else since
    gone_at: dict[int, float] = {}

    def probe() -> dict | None:
        now = time.time()
        alive = {entry.pid for entry in side.group.processes(side.postfix)}
        for pid in stale - alive:
            gone_at.setdefault(pid, now)
        live = side.find("change_live", change_id=change["change_id"])
        if not live:
            return None
        still = stale & {e.pid for e in side.group.processes(side.postfix)}
        assert not still, f"change_live reported while stale pids {still} still run: {live}"
        return live[0]

    event = side.group.wait_for(probe, f"change_live of {change['change_id']}", timeout=90)
    last_exit = max([since, *gone_at.values()])
    return event, time.time() - last_exit


def stale_pids(change: dict) -> set[int]:
    """Pids named in ``stale_processes`` (``smtpd[194]``; ``[?]`` when unknown)."""
    keys = change.get("stale_processes") or []
    return {int(m.group(1)) for key in keys if (m := re.search(r"\[(\d+)\]", key))}


def stale_now(side: Sidecar, change_id: str) -> set[int]:
    """The stale pids of the last report on ``change_id`` (change_detected, then each
    change_prediction_updated): a session line that reaches the sidecar after the edit
    adds its smtpd later."""
    reports = [
        e
        for e in side.events()
        if e["event"] in ("change_detected", "change_prediction_updated")
        and e.get("change_id") == change_id
    ]
    return stale_pids(reports[-1]) if reports else set()


def test_sidecar_end_to_end(containers: Containers) -> None:
    side = Sidecar(containers, containers.directory())
    side.prepare_config()
    side.start_postfix()
    side.start_pfwatch()
    group = containers

    # -- start-up: healthy, Postfix's processes visible through the shared PID namespace
    healthz = group.wait_for(
        lambda: side.get("/healthz")[0] == 200 and side.get("/healthz"), "/healthz"
    )
    assert json.loads(healthz[1])["ok"] is True
    group.wait_for(lambda: group.health(side.pfwatch) == "healthy", "HEALTHCHECK healthy")
    master = side.master_pid()
    seen = group.wait_for(lambda: side.find("process_started", daemon="master"), "master seen")
    assert seen[0]["pid"] == master and seen[0]["born_exact"] is True
    # item 6: postmap, then postfix start within the same second; pfwatch check in the
    # sidecar (no state directory, mtimes against /proc start times) must see nothing pending
    starts = json.loads(group.exec(side.pfwatch, "python", "-c", START_TIMES))
    assert 0 < starts["master"] - starts["access.db"] < 5.0, starts  # postmap, then start
    check = docker(
        "exec",
        side.pfwatch,
        "env",
        "-u",
        "PFWATCH_STATE_DIR",
        "pfwatch",
        "check",
        "--config-dir",
        "/etc/postfix",
        "--no-log",
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "modified after" not in check.stdout
    assert side.find("change_detected") == [], "start-up reported a change"

    # -- main.cf by rename while an smtpd serves a session: stale until it exits
    session = side.session()
    smtpd = set(side.daemons("smtpd"))
    assert smtpd, "no smtpd for the open session"
    since = len(side.events())
    side.postconf(smtpd_banner="$myhostname ESMTP second")
    first = group.wait_for(lambda: side.find("change_detected", since), "change by rename")[0]
    assert "smtpd_banner" in first["parameters"]
    assert smtpd <= stale_pids(first), (smtpd, first["stale_processes"])
    session.quit()
    _, delay_rename = wait_live(side, first, stale_pids(first))
    assert side.find("process_exited", since), "no process_exited for the idle smtpd"

    # -- main.cf edited in place
    session = side.session()
    since = len(side.events())
    side.postconf(smtpd_banner="$myhostname ESMTP third", in_place=True)
    second = group.wait_for(lambda: side.find("change_detected", since), "in-place change")[0]
    assert "smtpd_banner" in second["parameters"]
    session.quit()
    _, delay_in_place = wait_live(side, second, stale_pids(second))
    assert "ESMTP third" in side.banner()

    # -- a table edited without postmap: pending, needs postmap. postmap then rebuilds it,
    # but the smtpd serving a session keeps the old table until the session ends
    session = side.session()
    since = len(side.events())
    side.write("access", "blocked@client.test REJECT\nspam@client.test REJECT\n")
    table = group.wait_for(lambda: side.find("change_detected", since), "table source edit")[0]
    assert table["tables"] == ["hash:/etc/postfix/access"] and table["needs"] == ["postmap"]
    busy = group.wait_for(side.serving, "the session's smtpd in the maillog")
    try:
        group.wait_for(lambda: busy <= stale_now(side, table["change_id"]), "stale", timeout=10)
    except AssertionError:
        pytest.fail(f"{busy} not all stale: {table} {side.about(busy)}")
    time.sleep(1.1)  # Berkeley DB change detection compares whole-second mtimes
    group.exec(side.postfix, "postmap", "hash:/etc/postfix/access")
    rebuilt = group.wait_for(
        lambda: [
            e for e in side.find("change_detected", since) if e["change_id"] != table["change_id"]
        ],
        "the rebuilt access.db as a change",
    )[0]
    assert rebuilt["needs"] == [], rebuilt
    group.wait_for(lambda: busy <= stale_now(side, rebuilt["change_id"]), "stale after postmap")
    time.sleep(2)
    assert side.find("change_live", since) == [], "live while the session's smtpd still runs"
    session_end = time.time()
    session.quit()
    # An smtpd checks its tables before it accepts the next client and exits if they
    # changed (pre_accept, src/smtpd/smtpd.c): the end of the session makes the edit live
    # although the process stays until the next connection or max_idle.
    live = group.wait_for(
        lambda: side.find("change_live", since, change_id=table["change_id"]), "table live"
    )[0]
    delay_table = time.time() - session_end
    assert "session_end" in live["explanation"] and live["made_live_by"].endswith(
        tuple(f"/{pid}" for pid in busy)
    ), live
    group.wait_for(lambda: side.find("change_live", since, change_id=rebuilt["change_id"]), "db")
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # the rebuilt table is in force
        side.send_mail(sender="spam@client.test")
    group.wait_for(lambda: not busy & set(side.daemons("smtpd")), "the old smtpd restarted")

    # -- postfix reload through docker exec, then mail
    since = len(side.events())
    group.exec(side.postfix, "postfix", "reload")
    group.wait_for(lambda: side.find("postfix_reloaded", since), "postfix_reloaded")
    side.send_mail()
    exits = group.wait_for(
        lambda: side.find("process_exited", since, reason="reload"), "process_exited (reload)"
    )
    assert all(e["daemon"] != "master" for e in exits)

    # -- /metrics and /healthz after all that
    def settled() -> dict | None:
        values = side.metrics()
        pending = values.get(("pfwatch_config_changes_pending", ()))
        return values if pending == 0 else None

    values = group.wait_for(settled, "no change pending in /metrics", timeout=60)
    assert values[("pfwatch_up", ())] == 1
    assert values[("pfwatch_events_emitted_total", (("event", "change_live"),))] >= 3
    assert any(
        name == "pfwatch_process_exits_total" and value > 0 for (name, _), value in values.items()
    )
    assert side.get("/healthz")[0] == 200

    # -- kill the sidecar, edit while it is down, start it again
    before = side.events()
    seen_ids = {e["event_id"] for e in before if "event_id" in e}
    group.expected_down.add(side.pfwatch)
    docker("kill", side.pfwatch)
    side.postconf(smtpd_banner="$myhostname ESMTP while-down")
    docker("start", side.pfwatch)
    group.expected_down.discard(side.pfwatch)

    def restarted() -> list | None:
        events = side.events()
        return (
            events
            if len(events) > len(before)
            and any(e["event"] == "watch_started" for e in events[len(before) :])
            else None
        )

    group.wait_for(restarted, "sidecar restarted")
    while_down = group.wait_for(
        lambda: side.find("change_detected", len(before)), "the edit made while down"
    )
    time.sleep(3)  # anything repeated would come right after the start
    after = side.events()[len(before) :]
    detected = [e for e in after if e["event"] == "change_detected"]
    assert len(detected) == 1, detected
    assert "smtpd_banner" in while_down[0]["parameters"]
    repeated = [e for e in after if e.get("event_id") in seen_ids]
    assert repeated == [], repeated
    _, delay_restart = wait_live(side, detected[0], stale_pids(detected[0]))
    after_postmap = starts["master"] - starts["access.db"]
    psutil_view = starts["psutil"] - starts["access.db"]
    print(
        f"start-up: master started {after_postmap:.3f}s after postmap wrote access.db "
        f"(psutil's whole-second start time says {psutil_view:+.3f}s)"
    )
    print(
        "confirmation delay in containers (last stale exit, or session end, seen -> change_live "
        "seen): "
        f"rename {delay_rename:.2f}s, in place {delay_in_place:.2f}s, table (postmap + session) "
        f"{delay_table:.2f}s, after restart {delay_restart:.2f}s; max_idle {MAX_IDLE}s"
    )
