"""The one error the user sees, and the rules for printing it."""

from __future__ import annotations

import math
import unicodedata


class SketchifyError(Exception):
    """A problem the user can fix: printed as one line, never as a traceback."""


# marks that reorder the text around them (U+202E turns "gpj.exe" into "exe.jpg" on screen)
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(text) -> str:
    """Control characters (a newline in a file name) and bidirectional marks escaped, so that every message stays
    one line and reads as the name it shows."""
    return "".join(f"\\u{ord(c):04x}" if c in BIDI_CONTROLS else repr(c)[1:-1]
                   if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(text))


def positive(name: str, value: float | None) -> None:
    """NaN and inf pass typer's ranges; they can only make garbage or hang."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise SketchifyError(f"{name} {value}: use a finite number above 0")
