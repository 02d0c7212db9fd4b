"""``pfwatch config`` end to end (through the real entry point, in-process).

Byte-identical output to the installed postconf where Postfix is present; JSON; exit
status 2 with file:line:column for broken files and 3 for a missing directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import Result

from pfwatch.testing.cli import run_pfwatch

POSTCONF = shutil.which("postconf")
needs_postconf = pytest.mark.skipif(POSTCONF is None, reason="postconf (Postfix) not installed")

MAIN_CF = b"""# test configuration
myhostname = mail.example.org
mydestination = $myhostname, localhost.$mydomain,
    localhost
relay_destination_concurrency_limit = 5
smtpd_banner = $myhostname ESMTP ${{$compatibility_level} <level {3} ? {old} : {new}}
compatibility_level = 3.6
banner_extra = caf\xe9
header_checks = regexp:/etc/postfix/header_checks $banner_extra
unused_thing = 1
"""
MASTER_CF = b"""smtp      inet  n       -       y       -       -       smtpd
relay     unix  -       -       n       -       -       smtp
    -o syslog_name=postfix/$service_name -o { smtp_helo_name = $myhostname }
"""


def pfwatch(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return run_pfwatch("config", *args, env=env)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "main.cf").write_bytes(MAIN_CF)
    (tmp_path / "master.cf").write_bytes(MASTER_CF)
    for name in ("main.cf", "master.cf"):  # postconf waits on a just-written main.cf
        os.utime(tmp_path / name, (1_000_000_000, 1_000_000_000))
    return tmp_path


@needs_postconf
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ((), ("-n",)),
        (("-x",), ("-n", "-x")),
        (("--master",), ("-M",)),
        (("--master", "-x"), ("-Mx",)),
    ],
)
def test_output_is_byte_identical_to_postconf(
    config_dir: Path, ours: tuple[str, ...], theirs: tuple[str, ...]
) -> None:
    assert POSTCONF is not None
    expected = subprocess.run(
        [POSTCONF, "-c", str(config_dir), *theirs], capture_output=True, check=True, timeout=60
    ).stdout
    done = pfwatch("--config-dir", str(config_dir), *ours)
    assert done.exit_code == 0, done.stderr
    assert done.stdout_bytes == expected
    assert "unused_thing" not in done.stdout


def test_json_document(config_dir: Path) -> None:
    done = pfwatch("--config-dir", str(config_dir), "--json", "-x")
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    values = {p["name"]: p for p in document["parameters"]}
    assert values["mydestination"]["line"] == 3
    assert values["smtpd_banner"]["value"] == "mail.example.org ESMTP new"
    assert values["config_directory"]["value"] == str(config_dir)
    services = json.loads(pfwatch("--config-dir", str(config_dir), "--master", "--json").stdout)
    relay = services["services"][1]
    assert relay["overrides"] == {
        "syslog_name": "postfix/$service_name",
        "smtp_helo_name": "$myhostname",
    }


def test_mail_config_environment_is_the_default(config_dir: Path) -> None:
    done = pfwatch(env={"MAIL_CONFIG": str(config_dir)})
    assert done.exit_code == 0, done.stderr
    assert f"config_directory = {config_dir}\n" in done.stdout


def test_broken_main_cf_is_a_positioned_error(config_dir: Path) -> None:
    (config_dir / "main.cf").write_bytes(b"a = 1\nthis line is wrong\n")
    done = pfwatch("--config-dir", str(config_dir))
    assert done.exit_code == 2
    assert done.stderr.strip() == (
        f"pfwatch: {config_dir}/main.cf:2:6: missing '=' after attribute name"
    )


def test_unexpandable_value_fails_only_with_x(config_dir: Path) -> None:
    (config_dir / "main.cf").write_bytes(b"smtpd_banner = ${oops\n")
    assert pfwatch("--config-dir", str(config_dir)).exit_code == 2  # postconf -n stops too
    (config_dir / "main.cf").write_bytes(b"mine = ${oops\nsmtpd_restriction_classes = mine\n")
    assert pfwatch("--config-dir", str(config_dir)).exit_code == 0
    done = pfwatch("--config-dir", str(config_dir), "-x")
    assert done.exit_code == 2
    assert "main.cf:1:" in done.stderr
    assert "truncated macro reference" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_directory_is_unknown(tmp_path: Path) -> None:
    done = pfwatch("--config-dir", str(tmp_path / "absent"))
    assert done.exit_code == 3
    assert "main.cf" in done.stderr
    assert "Traceback" not in done.stderr
