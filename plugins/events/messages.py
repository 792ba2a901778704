"""One-line notes and warnings of the events plugin, on stderr (never in the output files)."""

from __future__ import annotations

import sys


def note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)
