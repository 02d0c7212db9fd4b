"""The real-Postfix fixture on a real Postfix: start, mail, log, reload, idle, postmap, teardown."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from pfwatch.instance.local import PostfixInstance, PostfixStartError, reap_orphans
from pfwatch.testing.plugin import PostfixFactory

pytestmark = pytest.mark.postfix

MAX_IDLE = 2


def _smtpd_pid_of_session(pf: PostfixInstance, since: int) -> int:
    found = pf.wait_for_log(r"postfix/smtpd\[(\d+)\]: connect from", 10, since=since)
    return int(found.group(1))


@pytest.mark.postfix_options(max_idle=MAX_IDLE)
@pytest.mark.not_in_container("reads the master's sockets with psutil on this host's pids")
def test_starts_private_instance_that_answers_smtp_and_logs(
    postfix_instance: PostfixInstance,
) -> None:
    pf = postfix_instance
    assert pf.master_pid is not None
    assert pf.wait_ready(5).startswith("220 pfwatch-test.localdomain ESMTP")
    started = pf.wait_for_log(
        r"postfix/master\[(\d+)\]: daemon started -- version (\S+), configuration (\S+)"
    )
    assert int(started.group(1)) == pf.master_pid
    assert started.group(3) == str(pf.config_dir)
    assert pf.postconf("-h", "maillog_file").strip() == str(pf.maillog)
    assert pf.postconf("-h", "inet_interfaces").strip() == "127.0.0.1"
    listeners = {
        c.laddr for c in psutil.Process(pf.master_pid).net_connections() if c.status == "LISTEN"
    }
    assert [(addr.ip, addr.port) for addr in listeners] == [("127.0.0.1", pf.port)]
    names = {info.name for info in pf.processes()}
    assert {"qmgr", "pickup"} <= names
    assert all(
        info.started_at >= psutil.Process(pf.master_pid).create_time() for info in pf.processes()
    )


@pytest.mark.postfix_options(max_idle=MAX_IDLE)
def test_accepts_mail_and_relays_it_to_the_loopback_sink(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    if pf.sink is None:
        pytest.skip("this backend has no relay sink (a container cannot reach our loopback)")
    queue_id = pf.send_mail("alice@sender.test", ["bob@remote.test"], "hello\n")
    pf.wait_for_log(rf"{queue_id}: to=<bob@remote\.test>, relay=127\.0\.0\.1.*status=sent", 15)
    assert pf.sink is not None
    (message,) = pf.sink.messages
    assert message.mail_from == "alice@sender.test"
    assert message.rcpt_to == ("bob@remote.test",)
    assert f"id {queue_id}".encode() in message.data


@pytest.mark.postfix_options(max_idle=MAX_IDLE)
def test_reload_is_logged_and_replaces_wakeup_services(postfix_instance: PostfixInstance) -> None:
    pf = postfix_instance
    qmgr_before = {i.pid for i in pf.processes() if i.name == "qmgr"}
    since = pf.log_offset()
    pf.reload()
    found = pf.wait_for_log(
        r"postfix/master\[\d+\]: reload -- version [\d.]+, configuration (\S+)", 10, since=since
    )
    assert found.group(1) == str(pf.config_dir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        qmgr_after = {i.pid for i in pf.processes() if i.name == "qmgr"}
        if qmgr_after and not qmgr_after & qmgr_before:
            break
        time.sleep(0.1)
    assert qmgr_after and not qmgr_after & qmgr_before
    before = {i.pid for i in pf.processes()}
    since = pf.log_offset()
    pf.reload(wait=True)
    assert len(re.findall(r"reload -- version", pf.log_text(since))) == 1
    assert not before & {i.pid for i in pf.processes()}


@pytest.mark.postfix_options(max_idle=MAX_IDLE, verbose=["smtpd"])
def test_verbose_smtpd_exits_after_max_idle_without_clients(
    postfix_instance: PostfixInstance,
) -> None:
    pf = postfix_instance
    since = pf.log_offset()
    with pf.open_session() as client:
        client.noop()
        pid = _smtpd_pid_of_session(pf, since)
        assert pid in {i.pid for i in pf.processes() if i.name == "smtpd"}
    closed_at = time.time()
    pf.wait_for_log(rf"postfix/smtpd\[{pid}\]: idle timeout -- exiting", MAX_IDLE + 10, since=since)
    gone_at = pf.wait_for_exit(pid, 5)
    assert pid not in {i.pid for i in pf.processes()}
    # The idle timer is re-armed when the connection closes (single_server.c:312-313).
    assert MAX_IDLE - 0.5 <= gone_at - closed_at <= MAX_IDLE + 2


@pytest.mark.postfix_options(max_idle=30, max_use=1)
def test_max_use_ends_smtpd_after_its_session_without_a_log_line(
    postfix_instance: PostfixInstance,
) -> None:
    pf = postfix_instance
    assert pf.postconf("-h", "max_use").strip() == "1"
    since = pf.log_offset()
    with pf.open_session() as client:
        client.noop()
    pid = _smtpd_pid_of_session(pf, since)
    pf.wait_for_exit(pid, 5)  # far sooner than max_idle (30 s)
    assert not re.search(rf"smtpd\[{pid}\]: idle timeout", pf.log_text(since))


def test_postmap_rebuild_restarts_smtpd_at_next_connection(postfix_factory: PostfixFactory) -> None:
    pf = postfix_factory(max_idle=30)
    pf.write_file("client_access", "192.0.2.1 REJECT\n")
    pf.postmap("client_access")
    table = f"hash:{pf.config_dir / 'client_access'}"
    pf.edit_main_cf({"smtpd_client_restrictions": f"check_client_access {table}"})
    pf.reload(wait=True)
    since = pf.log_offset()
    with pf.open_session() as client:
        client.noop()
    old_pid = _smtpd_pid_of_session(pf, since)
    time.sleep(1.1)  # Berkeley DB change detection compares whole-second mtimes
    pf.write_file("client_access", "192.0.2.1 REJECT\n192.0.2.2 REJECT\n")
    pf.postmap("client_access")
    since = pf.log_offset()
    with pf.open_session() as client:
        client.noop()
    changed = pf.wait_for_log(
        rf"postfix/smtpd\[{old_pid}\]: table {re.escape(table)}\([^)]*\) has changed -- restarting",
        10,
        since=since,
    )
    assert changed is not None
    pf.wait_for_exit(old_pid, 5)
    assert _smtpd_pid_of_session(pf, since) != old_pid


def test_edit_main_cf_by_rename_or_in_place(postfix_factory: PostfixFactory) -> None:
    pf = postfix_factory(max_idle=MAX_IDLE)
    inode = pf.main_cf.stat().st_ino
    pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP renamed"})
    assert pf.main_cf.stat().st_ino != inode
    inode = pf.main_cf.stat().st_ino
    pf.edit_main_cf({"smtpd_banner": "$myhostname ESMTP in-place"}, in_place=True)
    assert pf.main_cf.stat().st_ino == inode
    pf.set_param("max_use", "7")
    # Each Postfix program waits until main.cf is ~2 s old before trusting it
    # (dict_load_file_xt), so the checks are batched into one postconf call.
    shown = pf.postconf("-h", "smtpd_banner", "max_use").splitlines()
    assert shown == ["$myhostname ESMTP in-place", "7"]
    pf.reload(wait=True)
    assert pf.wait_ready(10) == "220 pfwatch-test.localdomain ESMTP in-place"


@pytest.mark.not_in_container("compares pids of two instances: each container has its own")
def test_two_instances_are_isolated_and_teardown_leaves_nothing(
    postfix_factory: PostfixFactory,
) -> None:
    first = postfix_factory(max_idle=MAX_IDLE)
    second = postfix_factory(max_idle=MAX_IDLE)
    assert first.port != second.port
    assert first.master_pid != second.master_pid
    first_pids = {i.pid for i in first.all_processes()}
    assert first_pids and not first_pids & {i.pid for i in second.all_processes()}
    root: Path = first.root
    first.close()
    assert not root.exists()
    assert not [
        p for p in first_pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
    ]
    assert second.master_pid is not None
    assert second.wait_ready(5).startswith("220")


def test_reap_orphans_removes_only_instances_whose_owner_died(
    postfix_factory: PostfixFactory,
) -> None:
    base = Path(tempfile.mkdtemp(prefix="pfwr-"))
    refused = PostfixInstance(base_dir=base)
    with pytest.raises(PostfixStartError, match="not searchable"):
        refused.prepare()
    refused.close()
    assert not list(base.iterdir())
    base.chmod(0o755)
    try:
        alive = postfix_factory(max_idle=MAX_IDLE, base_dir=base)
        script = (
            "import sys, time\n"
            "from pfwatch.instance.local import PostfixInstance\n"
            f"pf = PostfixInstance(max_idle={MAX_IDLE}, base_dir={str(base)!r}).start()\n"
            "print(pf.root, pf.master_pid, flush=True)\n"
            "time.sleep(60)\n"
        )
        owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert owner.stdout is not None
        root_text, master_text = owner.stdout.readline().split()
        owner.kill()
        owner.wait()
        owner.stdout.close()
        orphan_master = int(master_text)
        assert psutil.pid_exists(orphan_master)
        assert reap_orphans(base) == [Path(root_text)]
        assert not Path(root_text).exists()
        assert not psutil.pid_exists(orphan_master) or (
            psutil.Process(orphan_master).status() == psutil.STATUS_ZOMBIE
        )
        assert alive.master_pid is not None and alive.root.exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
