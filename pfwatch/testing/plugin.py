"""pytest plugin: real, private Postfix instances as fixtures (entry point ``pytest11``).

Installed with pfwatch, so operators can test their own configurations too::

    def test_banner(postfix_instance):
        postfix_instance.edit_main_cf({"smtpd_banner": "$myhostname ESMTP hello"})
        ...

    @pytest.mark.postfix_options(max_idle=2, verbose=["smtpd", "rewrite"])
    def test_custom(postfix_instance): ...

    def test_two(postfix_factory):
        a = postfix_factory(max_idle=2)
        b = postfix_factory(max_use=1)

Fixtures: ``postfix_factory`` (callable taking :class:`PostfixInstance` keyword options,
returning a started instance; all are closed at teardown) and ``postfix_instance`` (one
started instance, options from the ``postfix_options`` marker; a test marked
``not_in_container(reason)`` is skipped with the docker backend). Command-line options:
``--postfix-backend=local|docker|chroot-SUITE`` (default ``$PFWATCH_POSTFIX_BACKEND`` or
``local``; chroot-bullseye, chroot-bookworm and chroot-trixie run Postfix 3.5, 3.7 and 3.10
from the cached chroots of :mod:`pfwatch.testing.chroot_backend`) and
``--postfix-keep`` (keep each instance's directory for inspection) and
``--postfix-reap-orphans`` (first remove instances whose creating process died). Every
test using one of the fixtures gets the ``postfix`` marker (select with ``-m``).

When Postfix cannot run (not root, not installed, no Docker engine) the test is skipped
with the reason, except under CI (``CI`` set to a true value), where it fails: CI must
never silently skip real-Postfix tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pfwatch.instance.local import PostfixInstance, PostfixUnavailable, reap_orphans

BACKENDS = ("local", "docker", "chroot-bullseye", "chroot-bookworm", "chroot-trixie")

PostfixFactory = Callable[..., PostfixInstance]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pfwatch-postfix", "real Postfix instances (pfwatch.testing)")
    group.addoption(
        "--postfix-backend",
        choices=BACKENDS,
        default=os.environ.get("PFWATCH_POSTFIX_BACKEND", "local"),
        help="where test instances run: host binaries (local, root), a container (docker) or "
        "another Debian release's Postfix in a cached chroot (chroot-SUITE, root)",
    )
    group.addoption(
        "--postfix-reap-orphans",
        action="store_true",
        default=False,
        help="first stop and remove test instances left by dead test runs (owner gone)",
    )
    group.addoption(
        "--postfix-keep",
        action="store_true",
        default=False,
        help="keep each test instance's directory (config, queue, maillog) after the test",
    )


FIXTURES = ("postfix_instance", "postfix_factory")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postfix_options(**kwargs): PostfixInstance options for the postfix_instance fixture",
    )
    config.addinivalue_line("markers", "postfix: uses a real Postfix instance (pfwatch.testing)")
    config.addinivalue_line(
        "markers",
        "not_in_container(reason): needs Postfix's pids to be this host's; skipped with the "
        "docker backend, whose pids belong to the container",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Postfix fixture ``postfix``, so ``-m "not postfix"`` works."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in FIXTURES):
            item.add_marker("postfix")


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.getoption("--postfix-reap-orphans", default=False):
        for root in reap_orphans():
            print(f"removed orphaned Postfix test instance {root}")


def in_ci() -> bool:
    """True when the CI environment variable says so (GitHub, GitLab and others set it)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip the current test with ``reason``, or fail it under CI. Never returns."""
    message = f"real Postfix unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


def _new_instance(backend: str, keep: bool, options: dict[str, Any]) -> PostfixInstance:
    options.setdefault("keep_dir", keep)
    if backend == "docker":
        from pfwatch.testing.docker_backend import DockerPostfixInstance  # noqa: PLC0415

        return DockerPostfixInstance(**options)
    if backend.startswith("chroot-"):
        from pfwatch.testing.chroot_backend import ChrootPostfixInstance  # noqa: PLC0415

        return ChrootPostfixInstance(backend.removeprefix("chroot-"), **options)
    return PostfixInstance(**options)


@pytest.fixture
def postfix_factory(request: pytest.FixtureRequest) -> Iterator[PostfixFactory]:
    """Start any number of private instances; every one is stopped and removed afterwards."""
    backend = str(request.config.getoption("--postfix-backend"))
    host_only = request.node.get_closest_marker("not_in_container")
    if host_only is not None and backend == "docker":
        pytest.skip(f"docker backend: {host_only.args[0] if host_only.args else ''}")
    keep = bool(request.config.getoption("--postfix-keep"))
    started: list[PostfixInstance] = []

    def factory(**options: Any) -> PostfixInstance:
        instance = _new_instance(backend, keep, options)
        started.append(instance)
        try:
            return instance.start()
        except PostfixUnavailable as exc:
            unavailable(str(exc))
            raise  # unreachable: unavailable() skips or fails

    yield factory
    errors: list[BaseException] = []
    for instance in reversed(started):
        try:
            instance.close()
        except Exception as exc:  # close every instance, report afterwards
            errors.append(exc)
        if keep and instance.layout_ready:
            print(f"kept Postfix instance directory: {instance.root}")
    if errors:
        raise errors[0]


@pytest.fixture
def postfix_instance(
    request: pytest.FixtureRequest, postfix_factory: PostfixFactory
) -> PostfixInstance:
    """One started instance; options come from ``@pytest.mark.postfix_options(...)``."""
    marker = request.node.get_closest_marker("postfix_options")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    return postfix_factory(**options)
