"""Options shared by the commands that look at a running Postfix (``check``, ``wait``).

One decorator declares ``--config-dir``, ``--maillog`` (repeatable), ``--journal``,
``--state-dir`` and ``--no-git`` with the same types and names for both commands (only
the help text says what each command does with the log and the state) and hands the
command one :class:`LivePostfix`; :meth:`LivePostfix.request` resolves it with the
settings layers into the :class:`~pfwatch.changewindow.precheck.CheckRequest` both
commands assess. Inputs: the help texts; flags, ``PFWATCH_*`` settings, main.cf's
``maillog_file``. Outputs: a click decorator, the request. Errors:
:class:`~pfwatch.errors.UsageError` for ``--maillog`` with ``--journal``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pfwatch.config.maincf import load_main_cf
from pfwatch.errors import PfwatchError, UsageError
from pfwatch.settings import load_settings

if TYPE_CHECKING:
    from pfwatch.changewindow.precheck import CheckRequest
    from pfwatch.config.instances import InstanceSpec

__all__ = ["LivePostfix", "live_postfix_options", "maillog_of"]

F = TypeVar("F", bound=Callable[..., Any])
PLUGIN_STDOUT_PATHS = ("/dev/stdout", "/dev/stderr", "/proc/self/fd/1")


def maillog_of(config_dir: Path) -> str | None:
    """``maillog_file`` of the configuration when Postfix logs to a plain file itself."""
    try:
        param = load_main_cf(str(config_dir / "main.cf")).parameters.get("maillog_file")
    except PfwatchError:
        return None
    if param is None or not param.value or param.value in PLUGIN_STDOUT_PATHS:
        return None
    return param.value if Path(param.value).is_file() else None


def _explicit(origins: Mapping[str, str], key: str) -> bool:
    origin = origins.get(key, "default")
    return origin != "default" and not origin.startswith("auto")


@dataclass(frozen=True, slots=True)
class LivePostfix:
    """The shared options as given on the command line."""

    config_dirs: tuple[Path, ...]
    """``--config-dir`` as given: none, one, or one per instance (the primary first)."""
    maillog: tuple[str, ...]
    journal: bool
    state_dir: Path | None
    no_git: bool

    def request(self, *, staged: Path | None = None, no_log: bool = False) -> CheckRequest:
        """Resolve flags and settings layers into a :class:`CheckRequest`."""
        from pfwatch.changewindow.precheck import CheckRequest  # noqa: PLC0415 - heavy

        if self.maillog and self.journal:
            raise UsageError("choose --maillog or --journal, not both")
        flags = {
            "config_dir": str(self.config_dirs[0]) if self.config_dirs else None,
            "maillog": self.maillog[0] if self.maillog else None,
            "journal": True if self.journal else None,
            "state_dir": str(self.state_dir) if self.state_dir else None,
        }
        settings = load_settings(flags)
        origins = settings.origins
        chosen_state = settings.state_dir if origins.get("state_dir") != "default" else None
        logs: tuple[str, ...] = ()
        use_journal = False
        if not no_log:
            own = maillog_of(settings.config_dir)
            if self.maillog:
                logs = self.maillog
            elif _explicit(origins, "maillog") and settings.maillog:
                logs = (str(settings.maillog),)
            elif self.journal or (_explicit(origins, "journal") and settings.journal):
                use_journal = True
            elif own:
                logs = (own,)
            elif settings.maillog is not None:
                logs = (str(settings.maillog),)
        return CheckRequest(
            config_dir=settings.config_dir,
            now=time.time(),
            state_dir=chosen_state,
            maillog=logs,
            journal=use_journal,
            staged=staged,
            use_git=not self.no_git,
        )

    def instances(self, request: CheckRequest) -> tuple[InstanceSpec, ...]:
        """The instances of a multi-instance host (several ``--config-dir``, or a primary
        main.cf with ``multi_instance_directories``); empty for a host with one instance,
        or when the primary's main.cf cannot be read (``check`` then reports that)."""
        from pfwatch.config.instances import discover, listed_directories  # noqa: PLC0415

        others = self.config_dirs[1:]
        try:
            if not others and not listed_directories(request.config_dir):
                return ()
        except PfwatchError:
            return ()
        return discover(request.config_dir, others)


def live_postfix_options(*, maillog: str, journal: str, state_dir: str) -> Callable[[F], F]:
    """The shared options, passed to the command as ``live`` (a :class:`LivePostfix`)."""
    options = (
        click.option(
            "--config-dir",
            type=click.Path(path_type=Path),
            multiple=True,
            help="Postfix configuration directory (default $MAIL_CONFIG or /etc/postfix). "
            "Repeat it for a host with several instances (the primary first); a primary "
            "whose main.cf sets multi_instance_directories brings its instances along.",
        ),
        click.option("--maillog", multiple=True, metavar="FILE", help=maillog),
        click.option("--journal", is_flag=True, help=journal),
        click.option("--state-dir", type=click.Path(path_type=Path), help=state_dir),
        click.option("--no-git", is_flag=True, help="Do not use the git history of the directory."),
    )

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_live(
            *,
            config_dir: tuple[Path, ...],
            maillog: tuple[str, ...],
            journal: bool,
            state_dir: Path | None,
            no_git: bool,
            **rest: Any,
        ) -> Any:
            live = LivePostfix(config_dir, maillog, journal, state_dir, no_git)
            return command(live=live, **rest)

        wrapped: Any = with_live
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorate
