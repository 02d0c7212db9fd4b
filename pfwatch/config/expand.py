"""Postfix-exact ``$name`` expansion of parameter values (what ``postconf -x`` prints).

Implements mac_expand() with MAC_EXP_FLAG_RECURSE (src/util/mac_expand.c:540-735) over
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

import functools
import re
from collections.abc import Callable, Mapping

from pfwatch.errors import ConfigSyntaxError
from pfwatch.grammars.expansion import (
    Body,
    ExpansionSyntaxError,
    Literal,
    parse_body,
    scan_tokens,
)

#: mac_expand.c:556-558: a nesting level above 100 is "unreasonable macro call nesting".
MAX_NESTING = 100


class ExpansionError(ConfigSyntaxError):
    """A value Postfix cannot expand.

    ``parameter`` is the parameter whose value holds the problem (None when unknown) and
    ``offset`` the 0-based position in that value; ``line`` is the parameter's line and
    ``column`` is ``offset + 1`` until :func:`pfwatch.config.maincf.locate_error` maps it
    to the file.
    """

    def __init__(
        self,
        path: str,
        line: int,
        column: int,
        message: str,
        *,
        parameter: str | None = None,
        offset: int = 0,
    ) -> None:
        super().__init__(path, line, column, message)
        self.parameter = parameter
        self.offset = offset


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


_STRTOL = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_LONG_MAX = 2**63 - 1
#: compat_level.c:124-136: patch and minor take 10 bits each, major the rest of a long.
_MINOR_MAX = _PATCH_MAX = 0x3FF
_MAJOR_MAX = _LONG_MAX >> 20


def compat_level(text: str) -> tuple[int, int, int] | None:
    """compat_level_from_string() (compat_level.c:160-190): "major[.minor[.patch]]"
    with strtol()'s tolerance for leading blanks and a sign; None when malformed."""
    parts: list[int] = []
    pos = 0
    for limit in (_MAJOR_MAX, _MINOR_MAX, _PATCH_MAX):
        match = _STRTOL.match(text, pos)
        if match is None:
            return None
        number = int(match.group().strip(" \t\n\v\f\r"))
        if not 0 <= number <= limit:
            return None
        parts.append(number)
        pos = match.end()
        if pos == len(text):
            major, minor, patch = [*parts, 0, 0][:3]
            return major, minor, patch
        if text[pos] != "." or len(parts) == 3:
            return None
        pos += 1
    return None


def compare(left: str, operator: str, right: str, suffix: str | None = None) -> bool:
    """mac_exp_eval() (mac_expand.c:286-318): numeric if both are all digits, else
    strcmp(); with the "level" suffix, compat_relop_eval() (compat_level.c:262-300)."""
    delta: int
    if suffix == "level":
        a_level, b_level = compat_level(left), compat_level(right)
        if a_level is None or b_level is None:
            bad = left if a_level is None else right
            raise ExpansionSyntaxError(0, f'malformed compatibility level syntax: "{bad}"')
        delta = (a_level > b_level) - (a_level < b_level)
    elif left.isascii() and right.isascii() and left.isdigit() and right.isdigit():
        a, b = int(left), int(right)
        if max(a, b) > _LONG_MAX:
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


class _Run:
    """One mac_expand() call: RECURSE mode (expand) or SCAN mode (collect names only).

    Like Postfix, work stops at the first syntax error: later tokens are not looked at
    (mac_expand.c:559-560 returns early once MAC_PARSE_ERROR is set).
    """

    def __init__(self, lookup: Lookup, scan: bool, used: set[str]) -> None:
        self.lookup = lookup
        self.scan = scan
        self.used = used
        self.error: ExpansionSyntaxError | None = None

    def fail(self, error: ExpansionSyntaxError, where: tuple[str, int] | None = None) -> bool:
        """Record the first error; ``where`` is (value, offset) of the problem."""
        if self.error is None:
            if where is not None:
                error = ExpansionSyntaxError(where[1], error.message, where[0])
            self.error = error
        return False

    def parse(
        self, value: str, out: list[str], level: int, anchor: tuple[str, int] | None = None
    ) -> bool:
        """mac_parse() with the expansion callback; False once an error is recorded.

        ``anchor`` is where to report errors for text that is a branch or operand of a
        reference (the reference's ``$``); without one, ``value`` is a value of its own.
        """
        tokens, error = scan_tokens(value)
        for token in tokens:
            where = anchor or (value, token.offset)
            if level > MAX_NESTING:
                error = ExpansionSyntaxError(0, f'unreasonable macro call nesting: "{value}"')
                return self.fail(error, where)
            if isinstance(token, Literal):
                if not self.scan:
                    out.append(token.text)
            elif not self.callback(parse_body(token.body), out, level + 1, where):
                return False
        if error is not None:
            return self.fail(error, anchor or (value, error.offset))
        return True

    def sub(self, text: str, where: tuple[str, int]) -> tuple[str, bool]:
        """A fresh mac_expand() on a relational operand (mac_expand.c:467-472)."""
        run = _Run(self.lookup, self.scan, self.used)
        out: list[str] = []
        ok = run.parse(text, out, 0, where)
        if run.error is not None:
            self.fail(run.error)
        return "".join(out), ok

    def callback(self, body: Body, out: list[str], level: int, where: tuple[str, int]) -> bool:
        """mac_expand_callback() for one ``${...}``/``$name`` reference at ``where``."""

        def stop_at(*stages: str) -> bool:
            return body.error is not None and body.stage in stages

        if body.error is not None and stop_at("start"):
            return self.fail(body.error, where)
        value: str | None
        if body.name is not None:
            self.used.add(body.name)
            value = None if self.scan else self.lookup(body.name)
        else:
            assert body.left is not None and body.right is not None and body.operator
            left, left_ok = self.sub(body.left, where)
            right, right_ok = self.sub(body.right, where)
            if not (left_ok and right_ok):
                return False
            if self.scan:
                value = None
            else:
                try:
                    value = "true" if compare(left, body.operator, right, body.suffix) else ""
                except ExpansionSyntaxError as exc:
                    return self.fail(exc, where)
        if body.error is not None and stop_at("operands"):
            return self.fail(body.error, where)
        if body.condition is None:
            if value and not self.scan:
                return self.parse(value, out, level)
            return True
        if body.condition == "?":
            if body.error is not None and stop_at("if_true_payload"):
                return self.fail(body.error, where)
            if (value or self.scan) and not self.parse(body.if_true or "", out, level, where):
                return False
            if body.error is not None and stop_at("after_if_true"):
                return self.fail(body.error, where)
            if body.if_false is None and body.stage != "if_false_payload":
                return True
        if body.error is not None and stop_at("if_false_payload"):
            return self.fail(body.error, where)
        if (not value or self.scan) and not self.parse(body.if_false or "", out, level, where):
            return False
        if body.error is not None:
            return self.fail(body.error, where)
        return True


def expand_text(value: str, lookup: Lookup, used: set[str] | None = None) -> str:
    """Expand ``value`` recursively, resolving names with ``lookup`` (None = undefined).

    Every name looked up is added to ``used``. Raises :class:`ExpansionSyntaxError`.
    """
    run = _Run(lookup, scan=False, used=used if used is not None else set())
    out: list[str] = []
    run.parse(value, out, 0)
    if run.error is not None:
        raise run.error
    return "".join(out)


@functools.lru_cache(maxsize=65536)
def scan_names(value: str) -> frozenset[str]:
    """Names referenced in ``value`` in every branch, up to the first syntax error
    (mac_expand() with MAC_EXP_FLAG_SCAN, as postconf uses it to find user parameters)."""
    found: set[str] = set()
    _Run(lambda _name: None, scan=True, used=found).parse(value, [], 0)
    return frozenset(found)


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
        holder = name
        if exc.source is not None and (name is None or self.raw(name) != exc.source):
            holder = next((n for n, v in self._explicit.items() if v == exc.source), name)
        line = self._lines.get(holder, 0) if holder else 0
        where = f"{holder}: " if holder else ""
        return ExpansionError(
            self._path,
            line,
            exc.offset + 1,
            f"{where}macro processing error: {exc.message}",
            parameter=holder,
            offset=exc.offset,
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
