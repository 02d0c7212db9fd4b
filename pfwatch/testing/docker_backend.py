"""The "docker" backend: a PostfixInstance whose Postfix runs in a container (stub).

Not implemented yet; raises :class:`PostfixUnavailable` so tests skip with a reason.
"""

from __future__ import annotations

from typing import Any

from pfwatch.testing.instance import PostfixInstance, PostfixUnavailable


class DockerPostfixInstance(PostfixInstance):
    """Placeholder until the container backend lands."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

    def start(self, timeout: float = 120.0, *, probe: bool = True) -> PostfixInstance:
        raise PostfixUnavailable("the docker backend is not implemented yet")
