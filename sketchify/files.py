"""Writing files so that a killed run never leaves half of one: the one atomic-write helper."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

UMASK = os.umask(0o022)
os.umask(UMASK)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside path, then rename it over path.

    The rename is atomic on one file system: readers see the old file or the whole new one, never a part.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes owner-only files; ours are ordinary files
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
