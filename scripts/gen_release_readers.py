#!/usr/bin/env python3
"""Per-release parameter readers: which daemon reads which main.cf parameter, from source.

For a release, reads every daemon's ``CONFIG_*_TABLE`` initializers (the tables its
skeleton loads at process start, postfix-facts.md section 0) and resolves each ``VAR_*``
name through the ``#define VAR_* "name"`` lines of the source's headers; the smtp/lmtp
tables (src/smtp/smtp_params.c, ``VAR_LMTP_SMTP(X)``) give ``smtp_X`` to smtp and
``lmtp_X`` to lmtp. The shipped readers (knowledge/data/param_readers.json, Postfix 3.7.11)
stay the base: for every other release this script extracts both that release and the
base release with the same rules and writes only the difference, each row citing
release + file:line, to ``pfwatch/knowledge/data/releases/param-readers-<version>.json``,
with the services the release's stock master.cf (conf/master.cf) adds, drops or changes,
the parameters master(8) watches (restart needed, src/master/master_vars.c) and the lookup
table types (src/util/dict_open.c, plugins in conf/postfix-files) that it adds or lacks,
and where it sets the lifetime or size of each client cache of knowledge/caches.py.

Usage::

    python scripts/gen_release_readers.py POSTFIX_GIT_DIR v3.5.27 v3.6.20 ... [--base v3.7.11]
    python scripts/gen_release_readers.py --check POSTFIX_GIT_DIR REFERENCE_JSON
        (agreement of this extractor with the reference extraction at v3.7.11)

Errors: exits non-zero with the failing git command or path.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from postfix_source import PostfixSource, SourceError, open_source

OUTPUT = Path(__file__).resolve().parents[1] / "pfwatch" / "knowledge" / "data" / "releases"

#: daemon -> source directories whose tables it loads (src/<dir>/*.c)
DAEMONS: dict[str, tuple[str, ...]] = {
    "smtpd": ("smtpd",),
    "smtp": ("smtp",),
    "lmtp": ("smtp",),
    "cleanup": ("cleanup",),
    "trivial-rewrite": ("trivial-rewrite",),
    "qmgr": ("qmgr",),
    "oqmgr": ("oqmgr",),
    "pickup": ("pickup",),
    "local": ("local",),
    "virtual": ("virtual",),
    "pipe": ("pipe",),
    "bounce": ("bounce",),
    "error": ("error",),
    "discard": ("discard",),
    "showq": ("showq",),
    "flush": ("flush",),
    "anvil": ("anvil",),
    "scache": ("scache",),
    "tlsmgr": ("tlsmgr",),
    "tlsproxy": ("tlsproxy",),
    "verify": ("verify",),
    "proxymap": ("proxymap",),
    "postscreen": ("postscreen",),
    "dnsblog": ("dnsblog",),
    "spawn": ("spawn",),
    "postlogd": ("postlogd",),
    "qmqpd": ("qmqpd",),
    "master": ("master",),
}
GLOBAL_FILE = "src/global/mail_params.c"
_TABLE = re.compile(r"\bCONFIG_\w+_TABLE\s+\w+\s*\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
_ENTRY = re.compile(r"^\s*(VAR_LMTP_SMTP\((\w+)\)|VAR_\w+)\s*,", re.M)
_DEFINE = re.compile(
    r"^#define\s+(\w+)[ \t]+((?:\"[^\"\n]*\"|\w+)(?:[ \t]+(?:\"[^\"\n]*\"|\w+))*)[ \t]*$", re.M
)
_TOKEN = re.compile(r'"([^"]*)"|(\w+)')
#: library tables and the daemons that load them (the reference extraction's
#: "library_callers": tls_param_init() from smtpd, smtp, lmtp and tlsproxy)
LIBRARIES = {"src/tls/tls_misc.c": ("smtpd", "smtp", "lmtp", "tlsproxy")}
#: the smtp binary loads smtp_params.c's tables as smtp and lmtp_params.c's as lmtp
SKIP = {"smtp": "src/smtp/lmtp_params.c", "lmtp": "src/smtp/smtp_params.c"}
_INCLUDE = re.compile(r'#include\s+"(\w+_params\.c)"')


def _names(source: PostfixSource) -> dict[str, str]:
    """``VAR_X`` -> parameter name, from every header (``"local" _DEST_CON_LIMIT``: string
    pieces and string macros, concatenated as the C compiler does)."""
    raw: dict[str, str] = {}
    for _, text in source.read_many(source.files("src/", ".h")):
        for macro, body in _DEFINE.findall(text):
            raw.setdefault(macro, body)
    resolved: dict[str, str | None] = {}

    def value(macro: str, depth: int = 0) -> str | None:
        if macro in resolved:
            return resolved[macro]
        body = raw.get(macro)
        result: str | None = None
        if body is not None and depth < 10:
            pieces = []
            for literal, name in _TOKEN.findall(body):
                piece = literal if name == "" else value(name, depth + 1)
                if piece is None:
                    break
                pieces.append(piece)
            else:
                result = "".join(pieces)
        resolved[macro] = result
        return result

    names = {m: value(m) for m in raw if m.startswith("VAR_")}
    return {m: v for m, v in names.items() if v}


def _entries(path: str, text: str, files: dict[str, str]) -> list[tuple[str, str, int]]:
    """``(macro or LMTP_SMTP(X), X, line)`` of every table entry in ``text``."""
    found: list[tuple[str, str, int]] = []
    for table in _TABLE.finditer(text):
        body = table.group(1)
        start = text.count("\n", 0, table.start(1)) + 1
        for entry in _ENTRY.finditer(body):
            line = start + body.count("\n", 0, entry.start(1))
            found.append((entry.group(1), entry.group(2) or "", line))
        for included in _INCLUDE.findall(body):
            inc_path = str(Path(path).parent / included)
            inc_text = files.get(inc_path, "")
            for entry in _ENTRY.finditer(inc_text):
                line = inc_text.count("\n", 0, entry.start(1)) + 1
                found.append((entry.group(1), entry.group(2) or "", -line))
    return found


def extract(source: PostfixSource) -> dict[str, dict[str, str]]:
    """``{daemon or "global": {parameter: "file:line"}}`` for one release."""
    names = _names(source)
    wanted = sorted(
        {p for dirs in DAEMONS.values() for d in dirs for p in source.files(f"src/{d}/", ".c")}
        | {GLOBAL_FILE, *LIBRARIES}
    )
    files = dict(source.read_many(wanted))
    result: dict[str, dict[str, str]] = {"global": {}}
    for macro, _, line in _entries(GLOBAL_FILE, files[GLOBAL_FILE], files):
        if macro in names:
            result["global"].setdefault(names[macro], f"{GLOBAL_FILE}:{line}")
    for daemon, dirs in DAEMONS.items():
        rows: dict[str, str] = {}
        paths = [p for p in files if any(p.startswith(f"src/{d}/") for d in dirs)]
        paths += [lib for lib, callers in LIBRARIES.items() if daemon in callers]
        for path in sorted(p for p in paths if p != SKIP.get(daemon)):
            for macro, suffix, line in _entries(path, files[path], files):
                site_path = path if line > 0 else str(Path(path).parent / "smtp_params.c")
                if suffix:
                    prefix = "LMTP" if daemon == "lmtp" else "SMTP"
                name = names.get(f"VAR_{prefix}_{suffix}" if suffix else macro)
                if name is not None and name not in result["global"]:
                    rows.setdefault(name, f"{site_path}:{abs(line)}")
        result[daemon] = dict(sorted(rows.items()))
    return result


def check(source: PostfixSource, reference: dict[str, object]) -> int:
    """Print how far this extractor agrees with the reference extraction."""
    ours = extract(source)
    daemons = reference["daemons"]
    assert isinstance(daemons, dict)
    agree = total = 0
    for daemon, params in sorted(daemons.items()):
        theirs, mine = set(params), set(ours.get(daemon, {}))
        both = len(theirs & mine)
        agree += both
        total += len(theirs | mine)
        if theirs != mine:
            print(
                f"{daemon}: only reference {sorted(theirs - mine)[:6]} "
                f"only extractor {sorted(mine - theirs)[:6]}"
            )
    print(f"agreement with the reference: {agree}/{total} ({100.0 * agree / total:.1f}%)")
    return 0


def master_services(source: PostfixSource) -> dict[str, str]:
    """The stock master.cf's active services: ``"name type"`` -> the row, whitespace
    collapsed, with its file:line (conf/master.cf; commented-out examples left out)."""
    rows: dict[str, str] = {}
    for number, line in enumerate(source.read("conf/master.cf").splitlines(), 1):
        if line and not line[0].isspace() and not line.startswith("#"):
            fields = line.split()
            rows[" ".join(fields[:2])] = f"{' '.join(fields)} (conf/master.cf:{number})"
    return rows


_WATCH = re.compile(r"MASTER_\w+_WATCH\s+\w+\s*\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
_DICT_INFO = re.compile(r"DICT_OPEN_INFO\s+dict_open_info\s*\[\]\s*=\s*\{(.*?)\n\s*\};", re.S)
_DICT_ENTRY = re.compile(r"^\s*(DICT_TYPE_\w+)\s*,", re.M)


def restart_watched(source: PostfixSource, names: dict[str, str]) -> dict[str, str]:
    """Parameters master(8) watches and will not change on reload (a stop and start is
    needed): its ``MASTER_*_WATCH`` tables, src/master/master_vars.c."""
    path = "src/master/master_vars.c"
    text = source.read(path)
    found: dict[str, str] = {}
    for table in _WATCH.finditer(text):
        start = text.count("\n", 0, table.start(1)) + 1
        for entry in _ENTRY.finditer(table.group(1)):
            line = start + table.group(1).count("\n", 0, entry.start(1))
            name = names.get(entry.group(1))
            if name:
                found[name] = f"{path}:{line}"
    return found


def table_types(source: PostfixSource) -> dict[str, str]:
    """Lookup table types: compiled into dict_open() (src/util/dict_open.c) or built as
    plugins (conf/postfix-files), by name."""
    path = "src/util/dict_open.c"
    text = source.read(path)
    types: dict[str, str] = {}
    for _, header in source.read_many(source.files("src/util/", ".h")):
        for macro, body in _DEFINE.findall(header):
            if macro.startswith("DICT_TYPE_") and body.startswith('"'):
                types[macro] = body.strip('"')
    found: dict[str, str] = {}
    info = _DICT_INFO.search(text)
    if info is not None:
        start = text.count("\n", 0, info.start(1)) + 1
        for entry in _DICT_ENTRY.finditer(info.group(1)):
            line = start + info.group(1).count("\n", 0, entry.start(1))
            if entry.group(1) in types:
                found[types[entry.group(1)]] = f"{path}:{line}"
    # table types built as plugins (dynamicmaps.cf): conf/postfix-files lists their objects
    files = "conf/postfix-files"
    for number, row in enumerate(source.read(files).splitlines(), 1):
        plugin = re.match(r"\$shlib_directory/\$\{LIB_PREFIX\}(\w+)\$\{LIB_SUFFIX\}:", row)
        if plugin is not None:
            found.setdefault(plugin.group(1), f"{files}:{number}")
    return found


#: knowledge/caches.py rows -> (file, the code that sets the cache's lifetime or size)
CACHE_ANCHORS = {
    "rewrite_clnt": ("src/global/rewrite_clnt.c", "last_expire = time((time_t *) 0) + 30;"),
    "resolve_clnt": ("src/global/resolve_clnt.c", "last_expire = time((time_t *) 0) + 30;"),
    "smtpd_resolve": ("src/smtpd/smtpd_check.c", "smtpd_resolve_init(100);"),
}


def cache_sites(source: PostfixSource) -> dict[str, str | None]:
    """Where each client cache of knowledge/caches.py gets its lifetime or size (first
    occurrence), None when the release does not have that code."""
    found: dict[str, str | None] = {}
    for cache, (path, code) in CACHE_ANCHORS.items():
        lines = source.read(path).splitlines()
        hit = next((n for n, line in enumerate(lines, 1) if code in line), None)
        found[cache] = f"{path}:{hit}" if hit is not None else None
    return found


def keyed_delta(base: dict[str, str], other: dict[str, str]) -> dict[str, object]:
    """Names a release adds (with their sites) or lacks against the base."""
    return {
        "added": {k: v for k, v in sorted(other.items()) if k not in base},
        "removed": sorted(k for k in base if k not in other),
    }


def master_delta(base: dict[str, str], other: dict[str, str]) -> dict[str, object]:
    """Services a release's stock master.cf adds, drops or changes (rows compared without
    their line numbers)."""

    def row(text: str) -> str:
        return text.rsplit(" (conf/", 1)[0]

    return {
        "added": {k: v for k, v in other.items() if k not in base},
        "removed": sorted(k for k in base if k not in other),
        "changed": {k: v for k, v in other.items() if k in base and row(base[k]) != row(v)},
    }


def delta(base: dict[str, dict[str, str]], other: dict[str, dict[str, str]]) -> dict[str, object]:
    """Readers a release adds or lacks relative to the base release (same extractor)."""
    added: dict[str, dict[str, str]] = {}
    removed: dict[str, list[str]] = {}
    for daemon in sorted(set(base) | set(other)):
        old, new = base.get(daemon, {}), other.get(daemon, {})
        plus = {p: site for p, site in new.items() if p not in old}
        minus = sorted(p for p in old if p not in new)
        if plus:
            added[daemon] = plus
        if minus:
            removed[daemon] = minus
    return {"added": added, "removed": removed}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dir")
    parser.add_argument("tags", nargs="*")
    parser.add_argument("--base", default="v3.7.11")
    parser.add_argument("--check", metavar="REFERENCE_JSON")
    parser.add_argument("-o", "--output-dir", type=Path, default=OUTPUT)
    args = parser.parse_args(argv[1:])
    try:
        base_source = open_source(args.git_dir, args.base)
        if args.check:
            reference = json.loads(Path(args.check).read_text(encoding="utf-8"))
            return check(base_source, reference)
        base = extract(base_source)
        base_version = base_source.version()
        base_master = master_services(base_source)
        base_names = _names(base_source)
        base_watch = restart_watched(base_source, base_names)
        base_types = table_types(base_source)
        for tag in args.tags:
            source = open_source(args.git_dir, tag)
            version = source.version()
            document = {
                "postfix_version": version,
                "base": base_version,
                "generator": "scripts/gen_release_readers.py (CONFIG_*_TABLE of each daemon)",
                "source": f"tag {tag}; every site is relative to postfix/ at that tag",
                **delta(base, extract(source)),
                "master_cf": master_delta(base_master, master_services(source)),
                "restart_watched": keyed_delta(base_watch, restart_watched(source, _names(source))),
                "table_types": keyed_delta(base_types, table_types(source)),
                "caches": cache_sites(source),
            }
            target = args.output_dir / f"param-readers-{version}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
            added = sum(len(v) for v in document["added"].values())  # type: ignore[attr-defined]
            removed = sum(len(v) for v in document["removed"].values())  # type: ignore[attr-defined]
            print(f"wrote {target.name}: +{added} -{removed} reader rows against {base_version}")
    except (SourceError, OSError, ValueError) as exc:
        print(f"gen_release_readers: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
