"""Every hand-written catalogue row's message exists in each release from 3.5 to 3.10.

knowledge/data/releases/catalogue-sites.json (scripts/gen_catalogue_sites.py) holds, per
row, where each release's source logs the row's text. A release where the text is not found
must be explained below, with the row's regex shown to match that release's wording.
"""

from __future__ import annotations

import json
import re
from importlib import resources

from pfwatch.grammars.maillog_catalogue import CATALOGUE

SITES = json.loads(
    resources.files("pfwatch.knowledge")
    .joinpath("data", "releases", "catalogue-sites.json")
    .read_text("utf-8")
)

# row -> {release: the message as that release writes it}
OTHER_WORDING = {
    "process_limit_hint@src/master/master_avail.c:160": {
        "3.10.13": "warning: see https://www.postfix.org/STRESS_README.html for examples of "
        "stress-adapting configuration settings",
    },
    "postscreen_verdict@src/postscreen/postscreen.c:764": {
        "3.5.27": "BLACKLISTED [192.0.2.1]:4711",
    },
    "postscreen_verdict@src/postscreen/postscreen.c:856": {
        "3.5.27": "WHITELIST VETO [192.0.2.1]:4711",
    },
}


def test_every_release_logs_every_row_or_its_other_wording_matches() -> None:
    rows = {f"{row.kind}@{row.source}": row for row in CATALOGUE}
    assert set(SITES["releases"]) == {"3.5.27", "3.6.20", "3.7.22", "3.8.20", "3.9.14", "3.10.13"}
    assert len(SITES["rows"]) >= 90
    for key, entry in SITES["rows"].items():
        assert key in rows, f"{key}: no such catalogue row (regenerate the sites)"
        for release, site in entry["sites"].items():
            if site is not None:
                assert re.fullmatch(r"(src/[\w/.-]+\.c|conf/postfix-script):\d+", site)
                continue
            wording = OTHER_WORDING.get(key, {}).get(release)
            assert wording is not None, f"{key}: {release} does not log {entry['text']!r}"
            assert re.match(rows[key].pattern, wording), (key, release, wording)
