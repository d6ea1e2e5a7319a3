"""Files as the tool must see them: regular files only, known by (device, inode); the one atomic-write helper."""

from __future__ import annotations

import io
import os
import secrets
import socket
import stat
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

from .errors import SketchifyError

# temporary files: ".sketchify-<host>-<pid>-<random>.part", short whatever the target's name, so that a
# 255-byte file name still has room, and marked with the writer so that a later run can tell its own leftovers
PART_PREFIX = ".sketchify-"
PART_SUFFIX = ".part"
HOST = format(zlib.crc32(socket.gethostname().encode()), "08x")


def file_id(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what path names, following links: the same file under any path, mount or case."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False


def open_regular(path: Path):
    """Open a regular file for reading without blocking: a FIFO, socket or device is an error, not a hang."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SketchifyError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SketchifyError(f"{path}: is a folder, not a file") from None
    except PermissionError:
        raise SketchifyError(f"{path}: permission denied") from None
    except OSError as e:
        raise SketchifyError(f"{path}: cannot open ({e.strerror or e})") from None
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise SketchifyError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SketchifyError(f"{path}: not a regular file (a pipe, socket or device); not read")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: Path) -> bytes:
    with open_regular(path) as f:
        return f.read()


def check_regular(path: Path) -> None:
    """open_regular's one-line error, without opening: a folder, pipe or device is named as what it is."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SketchifyError(f"{path}: no such file") from None
    except OSError as e:
        raise SketchifyError(f"{path}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(mode):
        raise SketchifyError(f"{path}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise SketchifyError(f"{path}: not a regular file (a pipe, socket or device); not read")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) on a temporary file beside path, then rename it over path.

    The rename is atomic on one file system: readers see the old file or the whole new one, never a part. The
    file is created with the mode the user's umask gives a new file (mkstemp's would be owner-only).
    """
    tmp = path.with_name(f"{PART_PREFIX}{HOST}-{os.getpid()}-{secrets.token_hex(4)}{PART_SUFFIX}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        sync(tmp)  # the data on disk before the name: after a power cut, the old file or the whole new one
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """atomic_write of bytes (which syncs them before the rename); an error (a full disk) names path, not the
    temporary file."""
    try:
        atomic_write(path, lambda tmp: tmp.write_bytes(data))
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


def write_stdout(data: bytes) -> None:
    """data to standard output (`-o -`); a full disk or a closed pipe is one line, not a traceback at exit."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError as e:
        try:  # what is still buffered would fail again when Python flushes at exit: send it nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass
        raise SketchifyError(f"-: cannot write to standard output ({e.strerror or e})") from None


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete temporary files that a killed run on this machine left in folder (its process is gone)."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)):
            continue
        host, _, rest = name[len(PART_PREFIX):].partition("-")
        pid = rest.split("-", 1)[0]
        if host != HOST or not pid.isdigit() or alive(int(pid)):
            continue  # another machine's, or a running job's (shards writing into one folder)
        try:
            (folder / name).unlink()
            removed.append(folder / name)
        except OSError:
            pass
    return removed


def alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
