"""The one error the user sees, and the rules for printing it."""

from __future__ import annotations

import math
import unicodedata


class SketchifyError(Exception):
    """A problem the user can fix: printed as one line, never as a traceback."""


def one_line(text) -> str:
    """Control characters (a newline in a file name) escaped, so that every message stays one line."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(text))


def positive(name: str, value: float | None, *, zero: bool = False) -> None:
    """NaN and inf pass typer's ranges; they can only make garbage or hang."""
    if value is not None and not (math.isfinite(value) and (value > 0 or (zero and value == 0))):
        raise SketchifyError(f"{name} {value}: use a finite number {'of 0 or more' if zero else 'above 0'}")
