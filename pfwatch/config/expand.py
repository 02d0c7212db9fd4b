"""Postfix-exact ``$name`` expansion of parameter values (what ``postconf -x`` prints).

Implements mac_expand() with MAC_EXP_FLAG_RECURSE (src/util/mac_expand.c:560-735) over
the grammar in :mod:`pfwatch.grammars.expansion`, with postconf's lookup order
(src/postconf/postconf_lookup.c:113-131): per-service ``-o`` overrides, then main.cf,
then the Postfix default of a parameter Postfix knows. A name that is neither set nor
known is undefined and expands to nothing. Only the branch a conditional takes is parsed,
so syntax errors in the other branch go unnoticed, as in Postfix.

Inputs: explicit settings (main.cf, optionally ``-o`` overrides) and defaults
(:func:`pfwatch.config.defaults.postfix_defaults`). Outputs: expanded strings and the
names a value depends on. Errors: :class:`ExpansionError` (a ``ConfigSyntaxError``) for
values Postfix rejects with "macro processing error".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pfwatch.errors import ConfigSyntaxError
from pfwatch.grammars.expansion import (
    Body,
    ExpansionSyntaxError,
    Literal,
    parse_body,
    split_value,
)

#: mac_expand.c:571-573: a nesting level above 100 is "unreasonable macro call nesting".
MAX_NESTING = 100


class ExpansionError(ConfigSyntaxError):
    """A value Postfix cannot expand; ``column`` is 1-based inside the value."""


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def compare(left: str, operator: str, right: str) -> bool:
    """mac_exp_eval() (mac_expand.c:298-330): numeric if both are all digits, else strcmp."""
    if left.isascii() and right.isascii() and left.isdigit() and right.isdigit():
        a, b = int(left), int(right)
        if max(a, b) > 2**63 - 1:
            raise ExpansionSyntaxError(0, f"bad conversion: {max(a, b)}")
        delta = (a > b) - (a < b)
    else:
        lb, rb = _bytes(left), _bytes(right)
        delta = (lb > rb) - (lb < rb)
    return {
        "==": delta == 0,
        "!=": delta != 0,
        "<": delta < 0,
        "<=": delta <= 0,
        ">=": delta >= 0,
        ">": delta > 0,
    }[operator]


Lookup = Callable[[str], "str | None"]


def expand_text(value: str, lookup: Lookup, used: set[str] | None = None) -> str:
    """Expand ``value`` recursively, resolving names with ``lookup`` (None = undefined).

    Every name looked up is added to ``used``. Raises :class:`ExpansionSyntaxError`.
    """
    out: list[str] = []
    names = used if used is not None else set()
    _expand_into(value, lookup, out, names, 0)
    return "".join(out)


def _expand_into(value: str, lookup: Lookup, out: list[str], used: set[str], level: int) -> None:
    for token in split_value(value):
        if level > MAX_NESTING:
            raise ExpansionSyntaxError(0, f'unreasonable macro call nesting: "{value}"')
        if isinstance(token, Literal):
            out.append(token.text)
            continue
        body = parse_body(token.body)
        _evaluate(body, lookup, out, used, level + 1)


def _evaluate(body: Body, lookup: Lookup, out: list[str], used: set[str], level: int) -> None:
    if body.name is not None:
        used.add(body.name)
        value = lookup(body.name)
    else:
        assert body.left is not None and body.right is not None and body.operator
        # mac_expand.c:432-437: each operand is a fresh mac_expand() call.
        left = expand_text(body.left, lookup, used)
        right = expand_text(body.right, lookup, used)
        value = "true" if compare(left, body.operator, right) else ""
    if body.condition is None:
        if value:
            _expand_into(value, lookup, out, used, level)
        return
    if body.condition == "?" and value and body.if_true is not None:
        _expand_into(body.if_true, lookup, out, used, level)
    if body.if_false is not None and not value:
        _expand_into(body.if_false, lookup, out, used, level)


def scan_names(value: str) -> frozenset[str]:
    """Every name referenced in ``value``, in all branches (MAC_EXP_FLAG_SCAN); lenient."""
    found: set[str] = set()
    _scan(value, found, 0)
    return frozenset(found)


def _scan(value: str, found: set[str], level: int) -> None:
    if level > MAX_NESTING:
        return
    try:
        tokens = split_value(value)
    except ExpansionSyntaxError:
        return
    for token in tokens:
        if isinstance(token, Literal):
            continue
        try:
            body = parse_body(token.body)
        except ExpansionSyntaxError:
            continue
        if body.name is not None:
            found.add(body.name)
        for text in (body.left, body.right, body.if_true, body.if_false):
            if text is not None:
                _scan(text, found, level + 1)


class Expander:
    """Look up and expand parameters as Postfix does for ``postconf -x``.

    ``explicit`` is what main.cf (and ``-o`` overrides) set; ``defaults`` maps every
    parameter name Postfix knows to its default (unexpanded) value. ``raw_names`` are
    parameters Postfix never expands (CONFIG_RAW_TABLE); ``expand()`` returns them as is.
    """

    def __init__(
        self,
        explicit: Mapping[str, str],
        defaults: Mapping[str, str] | None = None,
        *,
        raw_names: frozenset[str] = frozenset(),
        path: str = "main.cf",
        lines: Mapping[str, int] | None = None,
    ) -> None:
        self._explicit = dict(explicit)
        self._defaults: Mapping[str, str] = defaults if defaults is not None else {}
        self._raw_names = raw_names
        self._path = path
        self._lines = dict(lines or {})

    def raw(self, name: str) -> str | None:
        """The value as written (explicit) or the default; None if undefined."""
        value = self._explicit.get(name)
        if value is None:
            value = self._defaults.get(name)
        return value

    def _error(self, name: str | None, exc: ExpansionSyntaxError) -> ExpansionError:
        line = self._lines.get(name, 0) if name else 0
        where = f"{name}: " if name else ""
        return ExpansionError(
            self._path, line, exc.offset + 1, f"{where}macro processing error: {exc.message}"
        )

    def expand(self, name: str) -> str:
        """The value of ``name`` after recursive expansion ("" when undefined)."""
        value = self.raw(name)
        if value is None:
            return ""
        if name in self._raw_names:
            return value
        try:
            return expand_text(value, self.raw)
        except RecursionError:
            raise self._error(name, ExpansionSyntaxError(0, "unreasonable nesting")) from None
        except ExpansionSyntaxError as exc:
            raise self._error(name, exc) from None

    def expand_value(self, value: str, overrides: Mapping[str, str] | None = None) -> str:
        """Expand an arbitrary value, optionally with ``-o`` style overrides on top."""
        expander = self.with_overrides(overrides) if overrides else self
        try:
            return expand_text(value, expander.raw)
        except RecursionError:
            raise self._error(None, ExpansionSyntaxError(0, "unreasonable nesting")) from None
        except ExpansionSyntaxError as exc:
            raise self._error(None, exc) from None

    def references(self, name: str) -> frozenset[str]:
        """Names ``name``'s value depends on, transitively, through every branch."""
        seen: set[str] = set()
        pending = list(self._direct(name))
        while pending:
            current = pending.pop()
            if current not in seen:
                seen.add(current)
                pending.extend(self._direct(current))
        return frozenset(seen)

    def _direct(self, name: str) -> frozenset[str]:
        value = self.raw(name)
        if value is None or name in self._raw_names:
            return frozenset()
        return scan_names(value)

    def with_overrides(self, overrides: Mapping[str, str] | None) -> Expander:
        """A new expander where ``overrides`` (master.cf ``-o``) win over main.cf."""
        merged = dict(self._explicit)
        merged.update(overrides or {})
        return Expander(
            merged,
            self._defaults,
            raw_names=self._raw_names,
            path=self._path,
            lines=self._lines,
        )
