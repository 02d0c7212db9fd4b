#!/usr/bin/env python3
"""Add (or refresh) one Postfix release's knowledge: the one command for a new release.

Runs, for the release tag given, every generator that keeps per-release facts:
scripts/gen_release_readers.py (parameter readers, stock master.cf, restart-watched
parameters and table types against the 3.7.11 base), scripts/gen_verbose_catalogue.py (the
-v catalogue) and scripts/gen_catalogue_sites.py (where each release logs each catalogue
row), both regenerated over the releases already covered plus this one, and, when a
chroot of that release is given, scripts/gen_postconf_defaults.py --chroot (its defaults
against the base), else scripts/gen_source_defaults.py (the defaults predicted from source).

Usage: python scripts/gen_release.py POSTFIX_GIT_DIR TAG [--chroot DIR]
Errors: exits with the first generator's non-zero status.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERBOSE = HERE.parent / "grammars" / "maillog_verbose.py"


def covered() -> list[str]:
    """Tags of the releases grammars/maillog_verbose.py covers now (its RELEASES)."""
    for node in ast.parse(VERBOSE.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "RELEASES":
            return [f"v{version}" for version in ast.literal_eval(node.value)]
    return []


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("git_dir")
    parser.add_argument("tag")
    parser.add_argument("--chroot", help="a debootstrap chroot with this release's Postfix")
    args = parser.parse_args(argv[1:])
    tags = sorted(set(covered()) | {args.tag}, key=lambda t: [int(x) for x in t[1:].split(".")])
    steps = [
        [str(HERE / "gen_release_readers.py"), args.git_dir, args.tag],
        [str(HERE / "gen_verbose_catalogue.py"), args.git_dir, *tags],
        [str(HERE / "gen_catalogue_sites.py"), args.git_dir, *tags],
    ]
    if args.chroot:
        steps.append([str(HERE / "gen_postconf_defaults.py"), "--chroot", args.chroot])
    else:
        steps.append([str(HERE / "gen_source_defaults.py"), args.git_dir, args.tag])
    for step in steps:
        done = subprocess.run([sys.executable, *step], check=False)
        if done.returncode != 0:
            return done.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
