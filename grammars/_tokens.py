"""Logical lines of Postfix configuration files, joined exactly as Postfix joins them.

Postfix reads main.cf, master.cf and table sources with ``readllines()``
(src/util/readlline.c:82-140 in Postfix 3.7.11): a physical line that starts with
whitespace continues the previous logical line (its text is appended as is, with no
separator and with its leading whitespace kept), comment lines (first non-blank
character ``#``) and blank lines are dropped even inside a logical line, and a logical
line that starts with whitespace (possible only at the top of the file) is skipped with a
warning. This module does that join and keeps a map back to physical positions, so the
grammars can report ``line:column`` in the file.

Inputs: the decoded file text (bytes decoded with ``surrogateescape``, so any byte
round-trips). Outputs: :class:`LogicalLine` objects. Errors: none (text is never
rejected here; Postfix only warns).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyparsing as pp

#: Characters that C's isspace() accepts in the "C" locale Postfix runs in.
POSTFIX_SPACE = " \t\n\r\v\f"


@dataclass(frozen=True, slots=True)
class Segment:
    """One physical line's contribution to a logical line."""

    offset: int  # where the piece starts inside the logical text
    line: int  # 1-based physical line number


@dataclass(frozen=True, slots=True)
class LogicalLine:
    """A logical line: joined text, its first physical line, and a position map."""

    text: str
    line: int
    segments: tuple[Segment, ...]

    def position(self, offset: int) -> tuple[int, int]:
        """Map an offset inside :attr:`text` to a 1-based ``(line, column)`` in the file."""
        chosen = self.segments[0]
        for segment in self.segments:
            if segment.offset <= offset:
                chosen = segment
            else:
                break
        return chosen.line, offset - chosen.offset + 1


@dataclass(frozen=True, slots=True)
class Warning_:
    """A problem Postfix reports as a warning (the input is still used)."""

    line: int
    column: int
    message: str


def _is_dropped(physical: str) -> bool:
    """True for the lines readllines() discards: blank, or a comment after blanks."""
    stripped = physical.lstrip(POSTFIX_SPACE)
    return stripped == "" or stripped.startswith("#")


def logical_lines(text: str) -> tuple[list[LogicalLine], list[Warning_]]:
    """Split ``text`` into logical lines the way readllines() does.

    A NUL character ends the logical line's text, because Postfix handles it as a C
    string from there on (src/util/dict.c:495-499 passes ``STR(buf)`` on).
    """
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()
    result: list[LogicalLine] = []
    warnings: list[Warning_] = []
    pieces: list[str] = []
    segments: list[Segment] = []
    length = 0

    def flush() -> None:
        nonlocal length
        if not pieces:
            return
        joined = "".join(pieces)
        first = segments[0].line
        if joined[0] in POSTFIX_SPACE:
            # readlline.c:126-132: skipped with a warning, never used.
            warnings.append(Warning_(first, 1, "logical line must not start with whitespace"))
        else:
            cut = joined.find("\0")
            if cut >= 0:
                joined = joined[:cut]
            result.append(LogicalLine(joined, first, tuple(segments)))
        pieces.clear()
        segments.clear()
        length = 0

    for number, raw in enumerate(physical, start=1):
        if _is_dropped(raw):
            continue
        if raw[0] not in POSTFIX_SPACE:
            flush()
        segments.append(Segment(length, number))
        pieces.append(raw)
        length += len(raw)
    flush()
    return result, warnings


class Balanced(pp.Token):
    """``open ... close`` where only the same bracket kind nests; iterative, no recursion."""

    def __init__(self, open_char: str, close_char: str) -> None:
        super().__init__()
        self.open_char = open_char
        self.close_char = close_char
        self.mayReturnEmpty = False
        self.set_name(f"{open_char}...{close_char}")
        self.leave_whitespace()

    def parseImpl(self, instring: str, loc: int, do_actions: bool = True) -> tuple[int, list[str]]:
        if loc >= len(instring) or instring[loc] != self.open_char:
            raise pp.ParseException(instring, loc, f"expected {self.open_char!r}", self)
        depth = 0
        for index in range(loc, len(instring)):
            char = instring[index]
            if char == self.open_char:
                depth += 1
            elif char == self.close_char:
                depth -= 1
                if depth == 0:
                    return index + 1, [instring[loc : index + 1]]
        raise pp.ParseException(instring, loc, "unbalanced", self)
