"""``explain --json`` streams the process rows: same text as one dump of the document
(with its moments in RFC 3339, :func:`pfwatch.events.machine_times`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pfwatch.cli.explain_cmd import explain_document, write_json
from pfwatch.events import machine_times

DEMO_LOG = Path(__file__).resolve().parents[3] / "pfwatch" / "demo" / "scenario.log"


def _written(doc: dict[str, object]) -> str:
    out = io.BytesIO()
    write_json(doc, out)
    return out.getvalue().decode()


def test_streamed_rows_give_the_text_of_one_indented_dump() -> None:
    if not DEMO_LOG.is_file():
        pytest.skip("the demo scenario log is not shipped in this build")
    whole = explain_document([str(DEMO_LOG)], year=2024)
    lazy = explain_document([str(DEMO_LOG)], year=2024, lazy_rows=True)
    assert not isinstance(lazy["processes"], list)
    assert whole["processes"]
    assert _written(lazy) == json.dumps(machine_times(whole), indent=2) + "\n"


@pytest.mark.parametrize("rows", [[], [{"process": "p/smtpd/1", "label": "x\ny", "n": [1, 2]}]])
def test_edge_cases_match_json_dumps(rows: list[dict[str, object]]) -> None:
    doc = {"schema": "s", "processes": rows, "after": {"k": [1.5, None, "é"], "at": 0.0}}
    text = _written({**doc, "processes": iter(rows)})
    assert json.loads(text) == machine_times(doc)
    assert text == json.dumps(machine_times(doc), indent=2, ensure_ascii=False) + "\n"
