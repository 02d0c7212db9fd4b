"""Settings: flags > PFWATCH_* > TOML file > defaults, auto-detection and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pfwatch.errors import UsageError
from pfwatch.settings import MAILLOG_CANDIDATES, load_settings, parse_listen


def nothing_exists(_: Path) -> bool:
    return False


def test_defaults_without_any_maillog_fall_back_to_journald() -> None:
    settings = load_settings({}, {}, exists=nothing_exists)
    assert settings.config_dir == Path("/etc/postfix")
    assert settings.maillog is None and settings.journal is True
    assert settings.state_dir == Path("/var/lib/pfwatch")
    assert settings.listen == "127.0.0.1:29125"
    assert settings.debounce == 0.3
    assert settings.origins["journal"].startswith("auto-detected")


def test_maillog_auto_detection_takes_the_first_existing_candidate() -> None:
    present = {Path(MAILLOG_CANDIDATES[1]), Path(MAILLOG_CANDIDATES[2])}
    settings = load_settings({}, {}, exists=lambda p: p in present)
    assert settings.maillog == Path(MAILLOG_CANDIDATES[1]) and not settings.journal


def test_mail_config_and_state_directory_environment() -> None:
    env = {"MAIL_CONFIG": "/srv/postfix-out", "STATE_DIRECTORY": "/var/lib/pfwatch-x:/other"}
    settings = load_settings({}, env, exists=nothing_exists)
    assert settings.config_dir == Path("/srv/postfix-out")
    assert settings.state_dir == Path("/var/lib/pfwatch-x")


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    toml = tmp_path / "pfwatch.toml"
    toml.write_text(
        'config_dir = "/file/postfix"\nstate_dir = "/file/state"\n'
        'listen = "0.0.0.0:30000"\ndebounce = 1.5\njournal = true\n'
    )
    env = {"PFWATCH_STATE_DIR": "/env/state", "PFWATCH_LISTEN": ":31000", "MAIL_CONFIG": "/mc"}
    flags = {"listen": "127.0.0.2:32000", "config_dir": None, "maillog": "/flag/mail.log"}
    settings = load_settings(flags, env, settings_file=toml, exists=nothing_exists)
    assert settings.config_dir == Path("/file/postfix")
    assert settings.state_dir == Path("/env/state")
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.2", 32000)
    assert settings.debounce == 1.5
    assert settings.maillog == Path("/flag/mail.log") and settings.journal is False
    assert settings.origins["state_dir"] == "env" and settings.origins["debounce"] == str(toml)


def test_journal_from_a_higher_layer_beats_a_maillog_from_a_lower_one(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('maillog = "/var/log/mail.log"\n')
    settings = load_settings({}, {"PFWATCH_JOURNAL": "yes"}, settings_file=toml)
    assert settings.journal is True and settings.maillog is None


def test_settings_file_from_environment(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('log_format = "json"\n')
    settings = load_settings({}, {"PFWATCH_SETTINGS": str(toml)}, exists=nothing_exists)
    assert settings.log_format == "json" and settings.settings_file == toml


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"listen": "nonsense"}, {}, "--listen: 'nonsense' is not HOST:PORT"),
        ({"listen": "h:70000"}, {}, "out of range"),
        ({}, {"PFWATCH_DEBOUNCE": "soon"}, "PFWATCH_DEBOUNCE: expected seconds"),
        ({}, {"PFWATCH_JOURNAL": "perhaps"}, "PFWATCH_JOURNAL: expected true or false"),
        ({"maillog": "/x", "journal": True}, {}, "--maillog: choose a maillog or the journal"),
        ({"log_format": "xml"}, {}, "--log-format: expected one of"),
        ({"journal": False}, {}, "no maillog was given or found"),
    ],
)
def test_bad_values_name_their_origin(
    flags: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        load_settings(flags, env, exists=nothing_exists)


def test_bad_toml_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("listen = \n")
    with pytest.raises(UsageError, match=r"broken\.toml: not valid TOML"):
        load_settings({}, {}, settings_file=broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('colour = "blue"\n')
    with pytest.raises(UsageError, match="unknown setting"):
        load_settings({}, {}, settings_file=unknown)
    typed = tmp_path / "typed.toml"
    typed.write_text("state_dir = 5\n")
    with pytest.raises(UsageError, match=r"typed\.toml: state_dir: expected a path"):
        load_settings({}, {}, settings_file=typed)
    with pytest.raises(UsageError, match="cannot read settings file"):
        load_settings({}, {}, settings_file=tmp_path / "missing.toml")


def test_parse_listen_forms() -> None:
    assert parse_listen("[::1]:29125") == ("::1", 29125)
    assert parse_listen(":8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:1") == ("0.0.0.0", 1)
