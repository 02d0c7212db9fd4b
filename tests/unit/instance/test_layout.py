"""Config generation of the test fixture (pfwatch.instance.layout) and its skip/fail policy."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from pfwatch.instance import local as instance
from pfwatch.instance.layout import (
    InstanceLayout,
    main_cf_params,
    render_main_cf,
    render_master_cf,
    update_main_cf_text,
)
from pfwatch.testing import plugin

ROOT = PurePosixPath("/srv/pfw-x")


def _layout(**kwargs: object) -> InstanceLayout:
    return InstanceLayout(root=ROOT, port=2525, **kwargs)  # type: ignore[arg-type]


def _services(master_cf: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    last = ""
    for line in master_cf.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace():
            rows[last].extend(line.split())
        else:
            fields = line.split()
            last = fields[0]
            rows[last] = fields
    return rows


def test_main_cf_keeps_everything_private_and_on_loopback() -> None:
    params = main_cf_params(_layout(relay_sink=("127.0.0.1", 2626), max_use=5))
    assert params["queue_directory"] == f"{ROOT}/queue"
    assert params["data_directory"] == f"{ROOT}/data"
    assert params["maillog_file"] == f"{ROOT}/maillog"
    assert params["maillog_file"].startswith(params["maillog_file_prefixes"])
    assert params["inet_interfaces"] == "127.0.0.1"
    assert params["relayhost"] == "[127.0.0.1]:2626"
    assert params["local_transport"].startswith("error:")
    assert (params["max_idle"], params["max_use"]) == ("3s", "5")
    assert "default_transport" not in params


def test_main_cf_without_sink_refuses_external_delivery_and_extras_win() -> None:
    params = main_cf_params(_layout(main_cf_extra={"max_idle": "9s", "x_custom": "1"}))
    assert params["default_transport"].startswith("error:")
    assert "relayhost" not in params
    assert params["max_idle"] == "9s"
    assert render_main_cf(_layout()).count("\nmax_idle = 3s\n") == 1


def test_master_cf_chroot_off_verbose_and_overrides() -> None:
    layout = _layout(
        verbose=frozenset({"smtpd", "rewrite"}),
        service_options={"cleanup": {"max_idle": "7s"}},
        master_cf_extra=("extra unix - - n - - error",),
    )
    rows = _services(render_master_cf(layout))
    assert rows["127.0.0.1:2525"][:8] == [
        "127.0.0.1:2525",
        "inet",
        "n",
        "-",
        "n",
        "-",
        "-",
        "smtpd",
    ]
    assert rows["127.0.0.1:2525"][8:] == ["-v"]
    assert rows["rewrite"][7:] == ["trivial-rewrite", "-v"]
    assert rows["cleanup"][7:] == ["cleanup", "-o", "max_idle=7s"]
    assert rows["postlog"][1] == "unix-dgram"
    assert rows["postlog"][7] == "postlogd"
    assert "extra" in rows
    assert all(fields[4] == "n" for fields in rows.values())
    assert "smtp" in rows and "-v" not in rows["smtp"]


def test_master_cf_rejects_unknown_service_names() -> None:
    with pytest.raises(ValueError, match="nosuchd"):
        render_master_cf(_layout(verbose=frozenset({"nosuchd"})))


def test_update_main_cf_replaces_continuations_duplicates_and_appends() -> None:
    text = "# c = 0\na = 1\nb = 2\n  continued\nc = 3\nb = 4\n"
    updated = update_main_cf_text(text, {"b": "9", "c": None, "d": "", "a": "1"})
    assert updated == "# c = 0\na = 1\nb = 9\nd =\n"


def test_unavailable_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        plugin.unavailable("needs root")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        plugin.unavailable("needs root")


def test_unavailable_reason_names_root_and_missing_binaries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(instance.os, "geteuid", lambda: 1000)
    assert "needs root" in (instance.unavailable_reason() or "")
    monkeypatch.setattr(instance.os, "geteuid", lambda: 0)
    monkeypatch.setattr(instance.shutil, "which", lambda tool: None)
    assert "postfix not found" in (instance.unavailable_reason() or "")
    with pytest.raises(instance.PostfixUnavailable, match=r"needs root|not found"):
        instance.PostfixInstance().prepare()
