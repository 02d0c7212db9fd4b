"""Grammar of master.cf service entries, as ``postconf -M`` reads them (Postfix 3.7.11).

Each logical line (see :mod:`pfwatch.grammars._tokens`) is split into words on blanks
``" \\t\\r\\n"`` where a ``{`` opens a group that may hold blanks, up to its balancing
``}`` (argv_splitq()/mystrtokq(), src/util/mystrtok.c:73-99, src/postconf/postconf.h:205).
The first 8 words are the fields service, type, private, unpriv, chroot, wakeup,
maxproc, command; they are checked as pcf_check_master_entry() checks them
(src/postconf/postconf_master.c:314-349). The daemon arguments are then normalised as
pcf_normalize_daemon_args() does (postconf_master.c:239-292): ``-vo x`` becomes ``-v -o
x``, ``-oname=value`` becomes ``-o name=value``, ``{ ... }`` words lose their braces and
outer blanks (extpar(), src/util/extpar.c), and ``-o { name = value }`` becomes
``-o name=value`` (split_nameval()).

Inputs: decoded file text. Outputs: :class:`Entry` records and warnings.
Errors: :class:`MasterCfSyntaxError` (1-based line and column) where postconf is fatal.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyparsing as pp

from pfwatch.grammars._tokens import POSTFIX_SPACE, Balanced, LogicalLine, Warning_, logical_lines

BLANKS = " \t\r\n"
FIELD_NAMES = ("service", "type", "private", "unpriv", "chroot", "wakeup", "maxproc", "command")
#: postconf_master.c:189-196 (MASTER_XPORT_NAME_* of src/master/master_proto.h).
SERVICE_TYPES = ("unix", "fifo", "inet", "pass", "unix-dgram")
#: Daemon options that take a value (pcf_daemon_options_expecting_value, postconf_master.c:173).
OPTIONS_WITH_VALUE = "o"
#: Options with a value in the daemons' own getopt() strings, which is what the running
#: daemons see (src/master/single_server.c:518, multi_server.c:628, event_server.c:646,
#: trigger_server.c:504, dgram_server.c:397: "cdDi:lm:n:o:r:s:St:uvVz").
DAEMON_OPTIONS_WITH_VALUE = "imnorst"

#: Every rule of this grammar; each needs an annotated sample in samples/master_cf/.
RULES: dict[str, str] = {
    "inet": "inet service on all addresses",
    "inet_host_port": "inet service on host:port",
    "inet_ipv6_port": "inet service on [ipv6]:port",
    "unix": "unix-domain stream service",
    "unix_dgram": "unix-dgram service (postlogd)",
    "fifo": "fifo service",
    "pass": "pass service (postscreen hand-off)",
    "wakeup_on_demand": "wakeup N? (postconf_master.c:337-343)",
    "option_o_braced": "-o { name = value } (postconf_master.c:280-285)",
    "option_o_joined": "-oname=value (postconf_master.c:268-273)",
    "option_o_split_quirk": "postconf splits -o words again at a later 'o' (:254-264)",
    "flags": "other daemon flags (-v, -D) and a continuation line",
    "combined_flags": "-vo... split into -v -o ... (postconf_master.c:254-264)",
    "overrides_lifecycle": "per-service max_idle, max_use, syslog_name",
    "braced_arg": "{ ... } words among non-option arguments (postconf_master.c:288-291)",
    "double_dash": "-- ends the daemon options",
    "long_name_columns": "-M column layout with overlong fields (postconf_master.c:482-513)",
    "bad_field_count": "error: fewer than 8 fields (postconf_master.c:387-390)",
    "bad_type": "error: unknown service type (postconf_master.c:321-328)",
    "bad_flag": "error: private/unpriv/chroot not y, n or - (postconf_master.c:330-335)",
    "bad_wakeup": "error: bad wakeup field (postconf_master.c:337-343)",
    "bad_maxproc": "error: bad maxproc field (postconf_master.c:345-348)",
}

# A word: plain characters, and ``{...}`` groups that may contain blanks. An unbalanced
# ``{`` swallows the rest of the line, as mystrtokq() does.
_GROUP = Balanced("{", "}")
_UNBALANCED = pp.Regex(r"\{[\s\S]*")
_PLAIN = pp.Regex(r"[^ \t\r\n{]+")
# The common case (no nested or unbalanced braces) as one regular expression; it must end
# at a blank, else the general form below takes over.
_SIMPLE_WORD = pp.Regex(r"(?:[^ \t\r\n{]+|\{[^{}]*\})+(?=[ \t\r\n]|$)")
WORD = pp.Combine(_SIMPLE_WORD | pp.OneOrMore(_PLAIN | _GROUP | _UNBALANCED))
WORDS = pp.ZeroOrMore(pp.Group(pp.Located(WORD)))
for _element in (_GROUP, _UNBALANCED, _PLAIN, _SIMPLE_WORD, WORD):
    _element.leave_whitespace()
WORDS.set_whitespace_chars(BLANKS, copy_defaults=False)
WORD.set_whitespace_chars(BLANKS, copy_defaults=False)
WORDS.parse_with_tabs()


class MasterCfSyntaxError(Exception):
    """A master.cf entry postconf rejects; positions are 1-based file coordinates."""

    def __init__(self, line: int, column: int, message: str) -> None:
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"line {line}, column {column}: {message}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One service: the 8 fields, daemon arguments as postconf normalises them, and the
    ``-o`` settings as the daemon's getopt() sees them (``overrides``)."""

    fields: tuple[str, ...]
    args: tuple[str, ...]
    overrides: tuple[tuple[str, str], ...]
    line: int


def split_words(text: str) -> list[tuple[int, str]]:
    """Split a logical line into ``(offset, word)`` pairs the way mystrtokq() does."""
    result = WORDS.parse_string(text, parse_all=True)
    return [(int(item[0]), str(item[1][0])) for item in result]


def strip_braces(word: str, *, strip: bool = True) -> tuple[str, str | None]:
    """extpar(): the text inside a leading ``{}`` (with EXTPAR_FLAG_STRIP, ``strip``:
    without its outer blanks), and a warning or None."""
    depth = 0
    end = 0
    for index, char in enumerate(word):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                end = index
                break
    blanks = POSTFIX_SPACE if strip else ""
    if end == 0:
        return word[1:].strip(blanks), f"missing '}}' in \"{word}\""
    warning = None
    if end != len(word) - 1:
        warning = f"syntax error after '}}' in \"{word}\""
    return word[1:end].strip(blanks), warning


def split_nameval(text: str) -> tuple[str, str] | None:
    """src/util/split_nameval.c:61-97: ``name = value`` with blanks trimmed, or None."""
    stripped = text.lstrip(POSTFIX_SPACE)
    name_end = 0
    while name_end < len(stripped) and stripped[name_end] not in POSTFIX_SPACE + "=":
        name_end += 1
    rest = stripped[name_end:].lstrip(POSTFIX_SPACE)
    if name_end == 0 or not rest.startswith("="):
        return None
    return stripped[:name_end], rest[1:].strip(POSTFIX_SPACE)


def _check_fields(words: list[tuple[int, str]], logical: LogicalLine) -> None:
    """pcf_check_master_entry(): type, y/n/- flags, wakeup and maxproc syntax."""

    def fail(index: int, what: str) -> MasterCfSyntaxError:
        line, column = logical.position(words[index][0])
        return MasterCfSyntaxError(line, column, f'invalid {what} field "{words[index][1]}"')

    if words[1][1] not in SERVICE_TYPES:
        raise fail(1, "type")
    for index in (2, 3, 4):
        value = words[index][1]
        if len(value) != 1 or value not in "yn-":
            raise fail(index, FIELD_NAMES[index])
    wakeup = words[5][1]
    digits = wakeup[:-1] if wakeup.endswith("?") else wakeup
    if not (digits == "-" or all(c in "0123456789" for c in digits)):
        raise fail(5, "wakeup")
    maxproc = words[6][1]
    if maxproc != "-" and not all(c in "0123456789" for c in maxproc):
        raise fail(6, "maxproc")


def normalize_args(args: list[str], warn: list[str]) -> list[str]:
    """pcf_normalize_daemon_args() on the words after the command."""
    out = list(args)
    index = 0
    while index < len(out):
        arg = out[index]
        if not arg.startswith("-") or arg == "--":
            break
        for pos in range(2, len(arg)):
            if arg[pos] in OPTIONS_WITH_VALUE:
                out[index : index + 1] = [arg[:pos], "-" + arg[pos:]]
                arg = out[index]
                break
        if len(arg) < 2 or arg[1] not in OPTIONS_WITH_VALUE:
            index += 1
            continue
        if len(arg) > 2:
            out[index : index + 1] = [arg[:2], arg[2:]]
        elif index + 1 >= len(out):
            index += 1
            continue
        index += 1
        if out[index].startswith("{"):
            inner, problem = strip_braces(out[index])
            if problem:
                warn.append(problem)
            pair = split_nameval(inner)
            if pair is None:
                warn.append(f'missing name=value in "{inner}"')
                out[index] = inner
            else:
                out[index] = f"{pair[0]}={pair[1]}"
        index += 1
    for rest in range(index, len(out)):
        if out[rest].startswith("{"):
            inner, problem = strip_braces(out[rest])
            if problem:
                warn.append(problem)
            out[rest] = inner
    return out


def overrides_of(args: list[str]) -> list[tuple[str, str]]:
    """The ``-o name=value`` settings among normalised daemon options, in order."""
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("-") or arg == "--":
            break
        if len(arg) >= 2 and arg[1] in OPTIONS_WITH_VALUE and index + 1 < len(args):
            if arg == "-o":
                pair = split_nameval(args[index + 1])
                if pair is not None:
                    found.append(pair)
            index += 2
            continue
        index += 1
    return found


def daemon_overrides(words: list[str]) -> list[tuple[str, str]]:
    """``-o name=value`` as the daemon receives them: the master strips ``{}`` from each
    word (src/master/master_ent.c:579-585) and the daemon's getopt() stops at the first
    non-option (Postfix passes "+" first, src/util/sys_defs.h)."""
    args = [strip_braces(w)[0] if w.startswith("{") else w for w in words]
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if not arg.startswith("-") or arg in ("-", "--"):
            break
        for pos in range(1, len(arg)):
            if arg[pos] in DAEMON_OPTIONS_WITH_VALUE:
                value = arg[pos + 1 :]
                if not value and index + 1 < len(args):
                    index += 1
                    value = args[index]
                pair = split_nameval(value) if arg[pos] == "o" else None
                if pair is not None:
                    found.append(pair)
                break
        index += 1
    return found


def parse_entry(logical: LogicalLine, warnings: list[Warning_]) -> Entry:
    """Parse one logical line into an :class:`Entry`."""
    words = split_words(logical.text)
    if len(words) < len(FIELD_NAMES):
        offset = words[-1][0] + len(words[-1][1]) if words else 0
        line, column = logical.position(offset)
        raise MasterCfSyntaxError(
            line, column, f"bad field count: {len(words)} of {len(FIELD_NAMES)} fields"
        )
    _check_fields(words, logical)
    problems: list[str] = []
    raw_args = [word for _, word in words[len(FIELD_NAMES) :]]
    args = normalize_args(raw_args, problems)
    for problem in problems:
        warnings.append(Warning_(logical.line, 1, problem))
    return Entry(
        fields=tuple(word for _, word in words[: len(FIELD_NAMES)]),
        args=tuple(args),
        overrides=tuple(daemon_overrides(raw_args)),
        line=logical.line,
    )


def parse(text: str) -> tuple[list[Entry], list[Warning_]]:
    """Parse a whole master.cf text into entries in file order, plus warnings."""
    lines, warnings = logical_lines(text)
    entries = [parse_entry(logical, warnings) for logical in lines]
    return entries, warnings
