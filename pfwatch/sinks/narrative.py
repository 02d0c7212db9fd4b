"""Human output of ``pfwatch explain``: a narrative, a process timeline and a Gantt strip.

Reads the explain document (:mod:`pfwatch.core.report`, schema in docs/explain-json.md)
and writes with rich. :func:`narrate` returns the narrative as plain sentences (tested);
:func:`gantt` returns the timeline picture as text lines. Inputs: the document.
Outputs: text on the console. Errors: none.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pfwatch.knowledge import releases
from pfwatch.sinks.interval_text import describe

SHORT = {
    "idle_timeout": "idle",
    "use_limit": "use limit",
    "table_changed": "table changed",
    "reload": "reload",
    "stop": "stop",
    "crash": "crash",
    "killed": "killed",
    "unknown": "?",
}
REASONS = {
    "idle_timeout": "idle timeout",
    "use_limit": "use limit reached",
    "table_changed": "a table changed",
    "reload": "postfix reload",
    "stop": "postfix stop",
    "crash": "crashed",
    "killed": "killed by a signal",
    "unknown": "unknown cause",
}
GANTT_ROWS = 32


def hms(at: float | None) -> str:
    """Local wall-clock time of a POSIX timestamp, like the log shows it."""
    if at is None:
        return "—"
    stamp = datetime.fromtimestamp(at)
    text = stamp.strftime("%H:%M:%S")
    frac = at - int(at)
    return text + (f".{int(frac * 10)}" if frac >= 0.05 else "")


def _procs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["process"]: p for p in doc["processes"]}


def _unseen_sentences(unseen: list[dict[str, Any]]) -> list[str]:
    """One sentence per distinct reason: services that share it are named together."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for entry in unseen:
        generic = entry["why"].replace(f"a {entry['daemon']} that", "a process that")
        groups.setdefault((generic, entry["until"]), []).append(entry)
    sentences = []
    for (generic, until_at), entries in groups.items():
        until = f" (until {hms(until_at)})" if until_at is not None else ""
        if len(entries) == 1:
            entry = entries[0]
            why, who = entry["why"], f"{entry['daemon']} ({entry['service']})"
        else:
            why, who = generic, ", ".join(f"{e['daemon']} ({e['service']})" for e in entries)
        sentences.append(f"{who}: {why}{until}.")
    return sentences


def _exit_sentence(row: dict[str, Any], proc: dict[str, Any] | None) -> str:
    label = row["label"]
    if row["exited_at"] is None:
        return f"{label} is still running with the old configuration"
    reason = REASONS.get(row["exit_reason"] or "unknown", row["exit_reason"])
    at = hms(row["exited_at"])
    if proc is not None and proc["daemon"] == "trivial-rewrite" and proc["inferred"]:
        gone = proc.get("clients_gone_at")
        clients = (
            f"its clients last used it around {hms(gone - 5.0)} and let go by "
            f"{hms(gone)} (ipc_idle); "
            if gone is not None
            else ""
        )
        return (
            f"{label} writes no line when it exits: {clients}with no client left it "
            f"exited max_idle later, at about {hms(proc['exited_at'])} "
            f"({reason}, inferred)"
        )
    if proc is not None and row["basis"] == "observed" and row["exit_reason"] == "idle_timeout":
        end = proc.get("last_session_end_at")
        gap = f", {row['exited_at'] - end:.0f} s after" if end is not None else ""
        last = f"closed its last connection at {hms(end)} and " if end is not None else ""
        return f'{label} {last}timed out idle at {at}{gap} (observed: "idle timeout -- exiting")'
    basis = row["basis"] or "inferred"
    return f"{label} exited at {at} ({reason}, {basis})"


def _several(doc: dict[str, Any]) -> bool:
    """Whether the log is of several Postfix instances (a ``postmulti`` host): then every
    master event and process is named with its instance."""
    named = {e.get("instance") for e in doc["master_events"] if e.get("instance")}
    rows = doc["processes"]
    if isinstance(rows, list):
        named |= {p.get("instance") for p in rows if p.get("instance")}
    return len(named) > 1


def _label(proc: dict[str, Any], several: bool) -> str:
    return f"{proc['instance']}/{proc['label']}" if several else str(proc["label"])


def narrate(doc: dict[str, Any]) -> list[str]:
    """The narrative, one paragraph per string."""
    out: list[str] = []
    summary = doc.get("summary") or {}
    log = doc["log"]
    out.append(
        f"The log runs from {hms(log['first_at'])} to {hms(log['last_at'])}: "
        f"{summary.get('lines_postfix', 0)} Postfix lines, "
        f"{summary.get('lines_recognized', 0)} recognized, "
        f"{summary.get('lines_unrecognized', 0)} not. {len(doc['processes'])} processes."
    )
    several = _several(doc)
    if several and isinstance(doc["processes"], list):
        counts = Counter(p.get("instance") or "?" for p in doc["processes"])
        out.append(
            f"{len(counts)} Postfix instances: "
            + ", ".join(f"{name} ({count} processes)" for name, count in sorted(counts.items()))
            + "."
        )
    for event in doc["master_events"]:
        what = event["name"].replace("postfix_", "Postfix ")
        if "to" in event:  # postfix_upgraded
            what += f" from {event['from']} to {event['to']}"
        if event["name"] == "postfix_release_unparsed":
            what = event["note"][0].upper() + event["note"][1:]
        if several and event.get("instance"):
            what = f"{event['instance']}: {what}"
        out.append(f"{hms(event['at'])}: {what}.")
    procs = _procs(doc)
    for change in doc["changes"]:
        out.extend(_change_paragraphs(change, procs, doc))
    return out


def _change_paragraphs(
    change: dict[str, Any], procs: dict[str, dict[str, Any]], doc: dict[str, Any]
) -> list[str]:
    out: list[str] = []
    what = ", ".join(change["files"]) or "the configuration"
    groups: dict[str, list[str]] = {}
    for a in change["affected"]:
        if a["mode"] not in ("advisory", "immediate"):
            groups.setdefault(a["why"], []).append(f"{a['daemon']} ({a['service']}/{a['type']})")
    who = "; ".join(f"{', '.join(names)} {why}" for why, names in groups.items())
    out.append(
        f"Change {change['change_id']} at {hms(change['changed_at'])}: {what}. "
        + (f"Who reads it: {who}." if who else "No running daemon reads it.")
    )
    stale = change["stale_processes"]
    if stale:
        out.append(
            "Still running the old configuration then: "
            + ", ".join(s["label"] for s in stale)
            + "."
        )
    ordered = sorted(stale, key=lambda s: s["exited_at"] or float("inf"))
    for row in ordered:
        out.append(_exit_sentence(row, procs.get(row["process"])) + ".")
    out.extend(_unseen_sentences(change["unseen"]))
    for need in change["needs_detail"]:
        done = (
            f" — done at {hms(need['satisfied_at'])} ({need['satisfied_by']})"
            if need["satisfied_at"] is not None
            else " — NOT DONE"
        )
        out.append(f"Needs {need['action']}: {need['why']}{done}.")
    if change["live_at"] is not None:
        made = change["made_live_by"] or {}
        label = made.get("label") or ""
        others = [s for s in ordered if s["label"] != label and s["exited_at"] is not None]
        also = (
            f" — not {', '.join(s['label'] for s in others)}, which exited earlier"
            if others and label
            else ""
        )
        how = made.get("how", "")
        if label:
            text = f"the exit of {label} made it live{also}"
        elif how.startswith("nothing stale"):
            text = "no process running the old configuration could serve it any more"
        else:
            text = how.split("; then ")[0] + " made it live"
        cache = change.get("routing_cache")
        if cache and made.get("at") is not None and cache["latest"] > made["at"]:
            out.append(
                f"It went live for new routing answers at {hms(made['at'])} "
                f"({made.get('basis') or change['basis']}): {text}."
            )
        else:
            out.append(f"It went live at {hms(change['live_at'])} ({change['basis']}): {text}.")
        if made.get("process", "").split("/")[1:2] == ["trivial-rewrite"]:
            out.append(
                "trivial-rewrite decides routing (which transport and next hop a recipient "
                "gets); smtpd only asks it. So its exit, not smtpd's, is what changed how "
                "mail was routed."
            )
        if cache:
            out.extend(_cache_paragraphs(change, cache, doc))
        switch = _delivery_switch(change, doc)
        if switch:
            out.append(switch)
        nxt = _next_user(change, doc)
        if nxt is not None:
            out.append(
                f"The next mail activity after that ({nxt['label']}, first line "
                f"{hms(nxt['first_seen_at'])}) was handled with the edited configuration."
            )
    elif change["needs"]:
        out.append(f"It is NOT live: it needs {' and '.join(change['needs'])}.")
    else:
        pred = change["prediction"] or {}
        out.append(
            f"Not live by the end of the log; if no new traffic reaches the old "
            f"processes it will be by {hms(pred.get('predicted_live_at'))} "
            f"(expected with current traffic: {hms(pred.get('expected_live_at'))})."
        )
        sentence = describe(change.get("live_interval"), hms)
        if sentence:
            out.append(f"With the traffic seen so far it will be {sentence}.")
    out.extend(f"Note: {a}." for a in change["advisories"])
    return out


DELIVERY = frozenset({"virtual", "local", "smtp", "lmtp", "pipe", "error", "discard"})


def _cache_paragraphs(
    change: dict[str, Any], cache: dict[str, Any], doc: dict[str, Any]
) -> list[str]:
    """How trivial-rewrite's clients keep old answers past its exit (expert wording)."""
    out = [
        f"Its clients may keep old answers a little longer: {cache['rule']}. So mail to "
        f"an address resolved shortly before {hms(cache['earliest'])} could still take the "
        f"old route until {hms(cache['latest'])}"
        + (
            f" (cut short by the {cache['ended_by'].split(':')[0]}: qmgr restarts with an "
            "empty cache)"
            if cache.get("ended_by")
            else ""
        )
        + f"; it was fully live by {hms(change['live_at'])} at the latest ({change['basis']})."
    ]
    holders = [h for h in cache.get("holders", []) if h]
    labels = {p["process"]: p["label"] for p in doc["processes"]}
    stale_smtpd = [s["label"] for s in change["stale_processes"] if s["daemon"] == "smtpd"] + [
        labels.get(h, h) for h in holders if labels.get(h, h) not in change["stale_processes"]
    ]
    named = list(dict.fromkeys(stale_smtpd))
    if named:
        out.append(
            "smtpd keeps trivial-rewrite's answers for its whole life (an LRU cache, "
            "src/smtpd/smtpd_resolve.c:146-162), so its recipient checks follow the edit only "
            f"once every smtpd that may have asked the old trivial-rewrite has exited: "
            f"{', '.join(named)}."
        )
    before = [
        p
        for p in doc["processes"]
        if p["daemon"] in DELIVERY and p["last_activity_at"] <= cache["earliest"]
    ]
    if before:
        old_kind = max(before, key=lambda p: p["last_activity_at"])["daemon"]
        inside = [
            p
            for p in doc["processes"]
            if p["daemon"] == old_kind and cache["earliest"] < p["first_seen_at"] <= cache["latest"]
        ]
        if inside:
            listed = ", ".join(f"{p['label']} at {hms(p['first_seen_at'])}" for p in inside)
            out.append(
                f"Deliveries by {old_kind} inside that window ({listed}) are consistent "
                "with such a reused old answer."
            )
    return out


def _delivery_switch(change: dict[str, Any], doc: dict[str, Any]) -> str:
    """``Deliveries switched from virtual to smtp`` when the agents before and after differ.

    With a routing cache window, the switch may come anywhere in it: agents of the old kind
    seen inside the window do not hide a later switch."""
    cache = change.get("routing_cache")
    boundary = cache["earliest"] if cache else change["live_at"]
    window_end = cache["latest"] if cache else boundary
    before = [
        p for p in doc["processes"] if p["daemon"] in DELIVERY and p["last_activity_at"] <= boundary
    ]
    after = sorted(
        (p for p in doc["processes"] if p["daemon"] in DELIVERY and p["first_seen_at"] > boundary),
        key=lambda p: p["first_seen_at"],
    )
    if not before or not after:
        return ""
    last = max(before, key=lambda p: p["last_activity_at"])
    first = next((p for p in after if p["daemon"] != last["daemon"]), None)
    if first is None or any(
        p["daemon"] == last["daemon"] and p["first_seen_at"] > window_end
        for p in after
        if p["first_seen_at"] < first["first_seen_at"]
    ):
        return ""
    return (
        f"Deliveries switched from {last['daemon']} ({last['label']}, last at "
        f"{hms(last['last_activity_at'])}) to {first['daemon']} ({first['label']}, "
        f"{hms(first['first_seen_at'])})."
    )


def _next_user(change: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any] | None:
    daemons = {a["daemon"] for a in change["affected"] if a["mode"] != "advisory"}
    daemons |= {"smtp", "virtual", "local", "cleanup", "smtpd"}
    later = [
        p
        for p in doc["processes"]
        if p["first_seen_at"] > change["live_at"] and p["daemon"] in daemons and not p["inferred"]
    ]
    return min(later, key=lambda p: p["first_seen_at"]) if later else None


def _window(doc: dict[str, Any]) -> tuple[float, float] | None:
    """The time span worth drawing: the whole log, or around the changes in a long log."""
    first, last = doc["log"]["first_at"], doc["log"]["last_at"]
    if first is None or last is None or last <= first:
        return None
    t0, t1 = float(first), float(last)
    changes = doc["changes"]
    if changes and t1 - t0 > 3600:
        start = min(c["changed_at"] for c in changes)
        end = max((c["live_at"] or t1) for c in changes)
        pad = max(30.0, (end - start) * 0.2)
        t0, t1 = max(t0, start - pad), min(t1, end + pad)
    return (t0, t1) if t1 > t0 else None


def relevant(doc: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]], int]:
    """Processes to show: stale ones first, then those alive in the drawn window."""
    window = _window(doc)
    stale = {s["process"] for c in doc["changes"] for s in c["stale_processes"]}
    rows = doc["processes"]
    if window is not None:
        t0, t1 = window
        rows = [
            p
            for p in rows
            if p["process"] in stale
            or (
                (p["born_at"] if p["born_at"] is not None else p["first_seen_at"]) <= t1
                and (p["exited_at"] if p["exited_at"] is not None else t1) >= t0
            )
        ]
    chosen = sorted(rows, key=lambda p: (p["process"] not in stale, p["first_seen_at"]))[:limit]
    chosen.sort(key=lambda p: p["first_seen_at"])
    return chosen, len(doc["processes"]) - len(chosen)


def gantt(doc: dict[str, Any], width: int = 56) -> list[str]:
    """A terminal Gantt strip: one row per process, ▼ marks changes, ↻ reloads."""
    window = _window(doc)
    if window is None:
        return []
    t0, t1 = window
    scale = (width - 1) / (t1 - t0)

    def col(at: float) -> int:
        return max(0, min(width - 1, round((at - t0) * scale)))

    marks = [" "] * width
    for change in doc["changes"]:
        marks[col(change["changed_at"])] = "▼"
    for event in doc["master_events"]:
        if t0 <= event["at"] <= t1:
            marks[col(event["at"])] = "↻" if event["name"] == "postfix_reloaded" else "■"
    stale = {s["process"] for c in doc["changes"] for s in c["stale_processes"]}
    several = _several(doc)
    rows, _ = relevant(doc, GANTT_ROWS)
    lines = [f"{'':>22} {hms(t0)}{hms(t1):>{width - len(hms(t0))}}", f"{'':>22} {''.join(marks)}"]
    for proc in rows:
        bar = [" "] * width
        start = max(proc["born_at"] if proc["born_at"] is not None else t0, t0)
        last = min(max(proc["last_activity_at"], t0), t1)
        end = min(proc["exited_at"] if proc["exited_at"] is not None else t1, t1)
        for i in range(col(start), col(last) + 1):
            bar[i] = "█"
        fill = "▒" if proc["basis"] == "inferred" else "█"
        for i in range(col(last) + 1, col(end) + 1):
            bar[i] = fill
        if proc["exited_at"] is None or proc["exited_at"] > t1:
            bar[-1] = "→"
        elif proc["basis"] == "observed":
            bar[col(end)] = "┤"
        name = f"{_label(proc, several)}{'*' if proc['process'] in stale else ''}"
        lines.append(f"{name[:22]:>22} {''.join(bar)}")
    lines.append(f"{'':>22} █ seen ▒ inferred ┤ exit seen → alive *stale ▼ change")
    return lines


TABLE_ROWS = 60


def timeline_table(doc: dict[str, Any]) -> Table:
    rows, hidden = relevant(doc, TABLE_ROWS)
    several = _several(doc)
    caption = f"{hidden} more processes in --json" if hidden else None
    table = Table(title="Processes", header_style="bold", show_lines=False, caption=caption)
    for name in ("process", "born", "exited", "why", "basis", "uses"):
        table.add_column(
            name,
            justify="right" if name == "uses" else "left",
            no_wrap=name in ("process", "born", "exited"),
        )
    for proc in rows:
        born = (
            hms(proc["born_at"])
            if proc["born_at"] is not None
            else (f"< {hms(proc['first_seen_at'])}")
        )
        if not proc["born_exact"] and proc["born_at"] is not None:
            born = f"≤ {born}"
        exited = hms(proc["exited_at"]) if proc["exited_at"] is not None else "alive"
        reason = SHORT.get(proc["exit_reason"] or "", proc["exit_reason"] or "")
        table.add_row(
            _label(proc, several), born, exited, reason, proc["basis"] or "", str(proc["sessions"])
        )
    return table


def render(
    doc: dict[str, Any], *, show_unrecognized: bool = False, console: Console | None = None
) -> None:
    """Print the narrative, the timeline table and the Gantt strip."""
    console = console or Console()
    paragraphs = narrate(doc)
    if doc.get("postfix_release"):
        paragraphs.insert(0, releases.describe(doc["postfix_release"]))
    console.print(Panel("\n\n".join(paragraphs), title="pfwatch explain", expand=False))
    console.print(timeline_table(doc))
    picture = gantt(doc, width=max(30, min(80, console.width - 26)))
    if picture:
        console.print(Text("\n".join(picture)))
    if show_unrecognized:
        lines = doc.get("unrecognized_lines") or []
        console.print(Text(f"Unrecognized Postfix lines ({len(lines)}):", style="bold"))
        for line in lines:
            console.print(Text(line), soft_wrap=True)
