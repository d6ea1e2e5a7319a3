"""Batch conversion: which files go where, and a pipeline that decodes, draws and encodes at once."""

from __future__ import annotations

import errno
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import SketchifyError
from .images import DEFAULT_MAX_PIXELS, FORMATS, IMAGE_SUFFIXES, load_photo, save_atomic

# errors that no other file will escape either: stop the batch instead of failing every file
FATAL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}


class OutputError(SketchifyError):
    """The output folder cannot be written (full, read-only, no permission): the batch stops."""


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


@dataclass(frozen=True)
class Result:
    job: Job
    status: str  # "converted", "skipped" or "failed"
    message: str = ""


def plan(inputs: list[Path], out: Path, *, recursive: bool = False, fmt: str = "png", suffix: str = "",
         shard: tuple[int, int] | None = None) -> tuple[list[Job], list[Result]]:
    """Map input files and folders to output paths. Returns the jobs and the inputs that cannot be read."""
    if fmt not in FORMATS:
        raise SketchifyError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out_real = real(out)
    problems: list[Result] = []
    found: list[tuple[Path, Path]] = []  # (source, output folder)
    for item in inputs:
        if not item.exists():
            problems.append(Result(Job(item, item), "failed", f"{item}: no such file or folder"))
        elif item.is_dir():
            if item.resolve() == out_real and not suffix:
                raise SketchifyError(f"-o {out} is the input folder {item}; pass --suffix (e.g. _sketch) "
                                     "so that sketches cannot overwrite photos, or choose another folder")
            found += [(src, out / rel) for src, rel in scan(item, recursive, out_real, problems)]
        else:
            if item.resolve().parent == out_real and not suffix:
                raise SketchifyError(f"-o {out} holds the input {item}; pass --suffix (e.g. _sketch) "
                                     "or choose another folder")
            found.append((item, out))
    # sketches an earlier run left beside their photos (-o = the input folder, with --suffix) are not new photos
    real_src = {src: real(src) for src, _ in found}
    made = {real(folder / f"{src.stem}{tail}{suffix}.{fmt}"): real_src[src] for src, folder in found
            for tail in ("", f"-{src.suffix.lstrip('.').lower()}")}
    found = [(src, folder) for src, folder in found if made.get(real_src[src], real_src[src]) == real_src[src]]
    inputs_real = {real_src[src] for src, _ in found}
    jobs, seen = [], set()
    for src, folder in sorted(set(found), key=lambda t: str(t[0])):
        dst = folder / f"{src.stem}{suffix}.{fmt}"
        if dst in seen:  # a.jpg and a.png in one folder: keep both, named by their extension
            dst = folder / f"{src.stem}-{src.suffix.lstrip('.').lower()}{suffix}.{fmt}"
        if real(dst) in inputs_real:
            problems.append(Result(Job(src, dst), "failed", f"{src}: its sketch {dst} would overwrite an input"))
            continue
        seen.add(dst)
        jobs.append(Job(src, dst))
    if shard is not None:
        k, n = shard
        jobs = jobs[k::n]
    return jobs, problems


def real(path: Path) -> Path:
    """path.resolve(); a symbolic link loop (RuntimeError before Python 3.13) is left for reading to report."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def scan(folder: Path, recursive: bool, skip: Path, problems: list[Result]) -> Iterator[tuple[Path, Path]]:
    """Image files under folder with their folder relative to it; never descends into the output folder or a loop."""
    visited = set()
    for root, dirs, files in os.walk(folder, followlinks=True, onerror=lambda e: problems.append(
            Result(Job(Path(e.filename), Path(e.filename)), "failed", f"{e.filename}: {e.strerror}"))):
        root_path = Path(root)
        st = root_path.stat()
        if (st.st_dev, st.st_ino) in visited:
            problems.append(Result(Job(root_path, root_path), "skipped", f"{root_path}: symbolic link loop, not followed"))
            dirs[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        rel = root_path.relative_to(folder)
        for name in sorted(files):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield root_path / name, rel
        dirs[:] = sorted(d for d in dirs if recursive and (root_path / d).resolve() != skip)


def run(sketcher, jobs: list[Job], *, style: str | None = None, seed: int | None = None, temperature: float = 0.0,
        batch_size: int = 4, fmt: str = "png", overwrite: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
        workers: int = 2) -> Iterator[Result]:
    """Convert jobs in order, yielding one Result each. Decoding and encoding run in threads beside the model."""
    style = sketcher.config.styles[sketcher.config.style_index(style)]  # an unknown style fails before any work
    todo = []
    for job in jobs:
        if job.dst.exists() and not overwrite:
            yield Result(job, "skipped", "exists")
        else:
            todo.append(job)
    pending = iter(todo)
    with ThreadPoolExecutor(workers) as pool:
        loads: deque[tuple[Job, Future]] = deque()
        saves: deque[tuple[Job, Future]] = deque()

        def prefetch():
            while len(loads) < 2 * batch_size and (job := next(pending, None)) is not None:
                loads.append((job, pool.submit(load_photo, job.src, max_pixels=max_pixels)))

        prefetch()
        while loads:
            batch = []
            while loads and len(batch) < batch_size:
                job, fut = loads.popleft()
                try:
                    batch.append((job, fut.result()))
                except SketchifyError as e:
                    yield Result(job, "failed", str(e))
            prefetch()  # the next photos decode while the model draws these
            if batch:
                try:
                    sketches = sketcher.sketch_batch([p for _, p in batch], style=style, seed=seed,
                                                     temperature=temperature)
                except RuntimeError as e:  # e.g. out of memory on a huge photo
                    for job, _ in batch:
                        yield Result(job, "failed", f"{job.src}: the model failed ({str(e).splitlines()[0]})")
                    continue
                for (job, _), sketch in zip(batch, sketches):
                    saves.append((job, pool.submit(write, sketch, job.dst, fmt)))
            while saves and (saves[0][1].done() or len(saves) > 2 * batch_size):
                yield finish(*saves.popleft())
        while saves:
            yield finish(*saves.popleft())


def write(sketch, dst: Path, fmt: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(sketch, dst, fmt)


def finish(job: Job, fut: Future) -> Result:
    try:
        fut.result()
    except OSError as e:
        if e.errno in FATAL_ERRNOS:
            raise OutputError(f"cannot write {job.dst}: {e.strerror}; stopped") from None
        return Result(job, "failed", f"{job.dst}: cannot write ({e.strerror or e})")
    return Result(job, "converted")
