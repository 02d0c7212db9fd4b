"""Snapshots of a configuration as it would read with some files replaced, and diffs of them.

Used for ``check --staged`` (a candidate file), the git basis (the committed version of
each file) and the live watch. Inputs: a configuration directory and replacement texts,
or two snapshots. Outputs: a :class:`~pfwatch.config.snapshot.Snapshot` at the live
directory's paths, and the engine's ``ConfigChanged``. Errors: ``SourceUnavailable`` for
an unusable directory; parse problems are recorded in the snapshot, as for the live one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pfwatch.config.diff import diff_snapshots
from pfwatch.config.facts import change_inputs
from pfwatch.config.snapshot import (
    Snapshot,
    build_snapshot,
    snapshot_from_json,
    snapshot_to_json,
)
from pfwatch.events import ConfigChanged

CONFIG_FILES = ("main.cf", "master.cf")


def changed_event(old: Snapshot, new: Snapshot, at: float, change_id: str) -> ConfigChanged:
    """The engine's ``ConfigChanged`` for the semantic diff from ``old`` to ``new``."""
    return change_inputs(diff_snapshots(old, new), new).event(at, change_id)


def relocate(snapshot: Snapshot, scratch: str, live: str) -> Snapshot:
    """The same snapshot with every path under ``scratch`` moved to ``live``."""
    text = json.dumps(snapshot_to_json(snapshot))
    return snapshot_from_json(
        json.loads(text.replace(json.dumps(scratch)[1:-1], json.dumps(live)[1:-1]))
    )


def snapshot_with_texts(live_dir: Path, texts: Mapping[str, str | None], at: float) -> Snapshot:
    """A snapshot of ``live_dir`` as if the files named in ``texts`` read differently.

    The directory is copied to a private temporary directory (removed afterwards);
    references to ``live_dir`` inside main.cf and master.cf are pointed at the copy so
    tables inside the configuration directory are read from the copy, and the resulting
    snapshot is moved back to ``live_dir``'s paths so it compares with the live one.
    """
    scratch = Path(tempfile.mkdtemp(prefix="pfwatch-what-if-"))
    try:
        copy = scratch / "etc"
        shutil.copytree(live_dir, copy, symlinks=True)
        for name, text in texts.items():
            target = copy / name
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(text.encode("utf-8", "surrogateescape"))
        for name in CONFIG_FILES:
            path = copy / name
            if path.is_file():
                body = path.read_bytes().decode("utf-8", "surrogateescape")
                path.write_bytes(
                    body.replace(str(live_dir), str(copy)).encode("utf-8", "surrogateescape")
                )
        return relocate(build_snapshot(str(copy), taken_at=at), str(copy), str(live_dir))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
