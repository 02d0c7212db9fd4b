"""The sample configuration the config tests share: main.cf with tables of every kind
(hash with a secret, mysql .cf with a password, a file list), master.cf with two services."""

from __future__ import annotations

from pathlib import Path

MAIN_CF = """\
myhostname = mx.example.com
smtpd_banner = $myhostname ESMTP
virtual_alias_maps = hash:$config_directory/virtual
smtp_sasl_password_maps = hash:$config_directory/sasl_passwd
relay_domains = mysql:$config_directory/relay.cf
mynetworks = 127.0.0.0/8 $config_directory/nets
"""
MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
"""


def make_config(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.cf").write_text(MAIN_CF)
    (directory / "master.cf").write_text(MASTER_CF)
    (directory / "virtual").write_text("a@example.com b@example.net\n")
    (directory / "sasl_passwd").write_text("[smtp.example.net]:587 user:TopSecret1\n")
    (directory / "relay.cf").write_text("hosts = db\nuser = postfix\npassword = Hunter2pw\n")
    (directory / "nets").write_text("10.0.0.0/8\n")
    return directory
