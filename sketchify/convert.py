"""Batch conversion: which files go where, and a pipeline that decodes, draws and encodes at once."""

from __future__ import annotations

import errno
import functools
import itertools
import os
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SketchifyError
from .files import file_id, is_regular, remove_leftovers
from .images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    check_fits,
    check_quality,
    encode,
    format_name,
    load_photo,
    on_disk,
    pixel_count,
    read_description,
    read_stream,
    save_atomic,
)
from .settings import DrawSettings, differences, recorded_photo

PREFETCH_PIXELS = 64_000_000  # decoded photos waiting for the model: about 200 MB of RGB
# errors that no other file will escape either: stop the batch instead of failing every file
FATAL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM}


class OutputError(SketchifyError):
    """The output folder cannot be written (full, read-only, no permission): the batch stops."""


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path
    key: str = ""  # the source's path under its input root: what --shard hashes


@dataclass(frozen=True)
class Result:
    job: Job
    status: str  # "converted", "skipped" or "failed"; "renamed" only in a Plan's notes
    message: str = ""


@dataclass
class Plan:
    jobs: list[Job]
    problems: list[Result]  # inputs that cannot be read, and what was not read (pipes, devices)
    renamed: list[Result] = field(default_factory=list)  # outputs that could not take their plain name
    found: int = 0  # distinct photos, before --shard
    unsearched: int = 0  # subfolders left out without --recursive


@dataclass(frozen=True)
class Output:
    """How sketches are saved: format (checked and normalised here), its quality, and whether existing
    sketches are drawn again."""

    fmt: str = "png"
    quality: int | None = None
    overwrite: bool = False

    def __post_init__(self):
        object.__setattr__(self, "fmt", format_name(self.fmt))
        check_quality(self.quality, self.fmt)


@dataclass
class Tally:
    """What a batch did so far; `written` gets each sketch as it lands on disk, so a count after an interrupt
    (which can land between a result and its count) is what is on disk."""

    converted: int = 0
    skipped: int = 0
    failed: int = 0
    redrawn: list[Result] = field(default_factory=list)  # skipped sketches drawn with other settings
    written: list[Path] = field(default_factory=list)

    def add(self, result: Result) -> None:
        setattr(self, result.status, getattr(self, result.status) + 1)
        if result.status == "skipped" and result.message.startswith("exists, drawn with"):
            self.redrawn.append(result)


def plan_outputs(inputs: list[Path], out: Path, *, recursive: bool = False, fmt: str = "png", suffix: str = "",
                 shard: tuple[int, int] | None = None) -> Plan:
    """Every output name, decided before anything is drawn: distinct photos get distinct outputs, in a
    deterministic order (input order, then sorted paths), and no output is written where an input lies."""
    fmt = format_name(fmt)
    check_suffix(suffix)
    if out.exists() and not out.is_dir():
        raise SketchifyError(f"-o {out}: is a file, not a folder; choose a folder for the sketches")
    out_id = file_id(out)
    problems: list[Result] = []
    found: list[tuple[Path, Path, str]] = []  # (source, output folder, shard key)
    unsearched = 0
    for item in inputs:
        if not item.exists():
            problems.append(Result(Job(item, item), "failed", f"{item}: no such file or folder"))
        elif item.is_dir():
            if out_id is not None and file_id(item) == out_id and not suffix:
                raise SketchifyError(f"-o {out} is the input folder {item}; pass --suffix (e.g. _sketch) "
                                     "so that sketches cannot overwrite photos, or choose another folder")
            inside = recursive and file_id(item) in {file_id(p) for p in out.absolute().parents}
            if inside and (photo := first_photo(out)) is not None:
                raise SketchifyError(f"-o {out} is inside the input folder {item} and holds photos ({photo}) that "
                                     "--recursive would leave out; choose a folder without photos")
            walk = Walk(item, recursive, out_id, problems)
            found += [(src, out / rel, (rel / src.name).as_posix()) for src, rel in walk]
            unsearched += walk.unsearched
        elif not is_regular(item):
            problems.append(Result(Job(item, item), "skipped", f"{item}: not a regular file (a pipe, socket or "
                                                                  "device); not read"))
        else:
            if out_id is not None and file_id(item.parent) == out_id and not suffix:
                raise SketchifyError(f"-o {out} holds the input {item}; pass --suffix (e.g. _sketch) "
                                     "or choose another folder")
            found.append((item, out, item.name))
    found = distinct(found)
    inputs_ids = {file_id(src) for src, _, _ in found}
    jobs, renamed = name_outputs(found, inputs_ids, fmt, suffix)
    total = len(jobs)
    if shard is not None:
        k, n = shard
        jobs = [job for job in jobs if in_shard(job.key, k, n)]
    return Plan(jobs, problems, renamed, total, unsearched)


def first_photo(folder: Path) -> Path | None:
    """An image under folder that sketchify did not draw, or None."""
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            path = Path(root) / name
            if path.suffix.lower() in IMAGE_SUFFIXES and on_disk(path)[0] == "other":
                return path
    return None


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise SketchifyError(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if not (n >= 1 and 0 <= k < n):
        raise SketchifyError(f"--shard {text!r}: need 0 <= K < N")
    return k, n


def stream(sketcher, source, settings: DrawSettings | None = None, output: Output = Output(), *,
           max_pixels: int | None = DEFAULT_MAX_PIXELS) -> bytes:
    """One photo (a path or an open binary file, e.g. standard input) to the encoded bytes of its sketch."""
    settings = settings or sketcher.defaults
    data = source if isinstance(source, Path) else read_stream(source)  # Pillow needs to seek
    sketch = sketcher.sketch(load_photo(data, max_pixels=max_pixels), settings)
    photo = source.name if isinstance(source, Path) else None
    return encode(sketch, output.fmt, quality=output.quality,
                  description=settings.record(sketcher.model_id, photo=photo))


def check_suffix(suffix: str) -> None:
    if any(sep and sep in suffix for sep in ("/", os.sep, os.altsep, "\0")):
        raise SketchifyError(f"--suffix {suffix!r}: must not hold a path separator; sketches go into -o")


def in_shard(key: str, k: int, n: int) -> bool:
    """A file's shard from a stable hash of its path under its input root: files added between jobs move no one."""
    return zlib.crc32(key.encode("utf-8", "surrogateescape")) % n == k


def distinct(found: list[tuple[Path, Path, str]]) -> list[tuple[Path, Path, str]]:
    """One entry per file (by device and inode): a folder given twice, or under two paths, is drawn once.

    Sketches this tool drew earlier into a folder it reads (-o = the input folder, with --suffix) are not photos.
    """
    out_folders = {file_id(folder) for _, folder, _ in found} - {None}
    seen, kept = set(), []
    for src, folder, key in found:
        fid = file_id(src)
        if fid in seen:
            continue
        seen.add(fid)
        if file_id(src.parent) in out_folders and read_description(src) is not None:
            continue
        kept.append((src, folder, key))
    return kept


def name_outputs(found, inputs_ids: set, fmt: str, suffix: str) -> tuple[list[Job], list[Result]]:
    """photo.jpg -> photo{suffix}.png; if taken, photo-jpg{suffix}.png, then photo-jpg-2{suffix}.png ...

    A name is taken by another photo of this run, an input, a folder (this run's or one on disk), someone else's
    image, or a sketch whose record names another photo: a name once given stays with its photo, whatever is
    added later. Names compare case-insensitively, as some disks do."""
    taken: dict[str, set[str]] = {}
    for _, folder, _ in found:  # every output folder, and the folders above it, is a name no sketch can take
        for f in (folder, *folder.parents):
            taken.setdefault(os.path.normcase(os.path.abspath(f.parent)), set()).add(f.name.casefold())
    jobs, renamed = [], []
    for src, folder, key in found:
        names = taken.setdefault(os.path.normcase(os.path.abspath(folder)), set())
        ext = src.suffix.lstrip(".").lower()
        for i in itertools.count():
            tail = "" if i == 0 else f"-{ext}" if i == 1 else f"-{ext}-{i}"
            dst = folder / f"{src.stem}{tail}{suffix}.{fmt}"
            if dst.name.casefold() not in names and file_id(dst) not in inputs_ids and can_take(dst, key):
                break
        names.add(dst.name.casefold())
        job = Job(src, dst, key)
        jobs.append(job)
        if i:
            renamed.append(Result(job, "renamed", f"{src}: sketch saved as {dst.name} ({src.stem}{suffix}.{fmt} "
                                                  "is taken: another photo's sketch, an input, a folder or a file "
                                                  "sketchify did not draw)"))
    return jobs, renamed


def can_take(dst: Path, photo: str) -> bool:
    """Whether the sketch of photo may be saved at dst: nothing is there, a broken file, or a sketch of this photo
    (or one from before sketches named their photo)."""
    state, record = on_disk(dst)
    if state == "other":
        return False
    return state != "ours" or recorded_photo(record) in (None, photo)


class Walk:
    """Regular image files under a folder, with their folder relative to it (sorted, so plans repeat).

    Never descends into the output folder or round a loop; pipes and devices are reported, not read; without
    recursive, the subfolders left out are counted.
    """

    def __init__(self, folder: Path, recursive: bool, skip, problems: list[Result]):
        self.folder, self.recursive, self.skip, self.problems = folder, recursive, skip, problems
        self.unsearched = 0

    def __iter__(self) -> Iterator[tuple[Path, Path]]:
        visited = set()
        for root, dirs, names in os.walk(self.folder, followlinks=True, onerror=self.report):
            root_path = Path(root)
            rid = file_id(root_path)
            if rid in visited:
                self.problems.append(Result(Job(root_path, root_path), "skipped",
                                            f"{root_path}: symbolic link loop, not followed"))
                dirs[:] = []
                continue
            visited.add(rid)
            rel = root_path.relative_to(self.folder)
            for name in sorted(names):
                path = root_path / name
                if path.is_symlink() and not path.exists():
                    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                        self.problems.append(Result(Job(path, path), "failed", f"{path}: broken symbolic link"))
                elif not is_regular(path):
                    self.problems.append(Result(Job(path, path), "skipped", f"{path}: not a regular file "
                                                                            "(a pipe, socket or device); not read"))
                elif path.suffix.lower() in IMAGE_SUFFIXES:
                    yield path, rel
            dirs[:] = sorted(d for d in dirs if file_id(root_path / d) != self.skip)
            if not self.recursive:
                self.unsearched += len(dirs)
                dirs[:] = []

    def report(self, e: OSError) -> None:
        self.problems.append(Result(Job(Path(e.filename), Path(e.filename)), "failed", f"{e.filename}: {e.strerror}"))


def convert_all(sketcher, jobs: list[Job], settings: DrawSettings | None = None, output: Output = Output(), *,
                tally: Tally, report=lambda result: None, **options) -> Tally:
    """Run every job, counting into tally and calling report(result) for each. This loop owns stopping: on
    Ctrl-C or SIGTERM (KeyboardInterrupt, in run() or in report) the sketches being written are finished and
    counted before the interrupt goes on to the caller; a full or read-only disk (OutputError) likewise."""
    results = run(sketcher, jobs, settings, output, written=tally.written, **options)
    try:
        for result in results:
            tally.add(result)
            report(result)
    except KeyboardInterrupt:
        for result in drain(results):
            tally.add(result)
        raise
    return tally


def run(sketcher, jobs: list[Job], settings: DrawSettings | None = None, output: Output = Output(), *,
        batch_size: int = 4, max_pixels: int | None = DEFAULT_MAX_PIXELS, workers: int = 2,
        prefetch_pixels: int = PREFETCH_PIXELS, written: list[Path] | None = None) -> Iterator[Result]:
    """Convert jobs in order, yielding one Result each. Decoding and encoding run in threads beside the model.

    On KeyboardInterrupt the sketches being written are finished and yielded before it propagates; as an interrupt
    can land between a result and its caller's count, `written` gets each path as it lands on disk.
    """
    settings = settings or sketcher.defaults
    for folder in {job.dst.parent for job in jobs}:
        remove_leftovers(folder)  # a killed run's .part files; never those of a job still running
    todo = []
    for job in jobs:
        done = already_done(job, settings.record(sketcher.model_id), output.overwrite)
        if done:
            yield done
        else:
            todo.append(job)
    pipeline = Pipeline(sketcher, settings, output, batch_size=batch_size, max_pixels=max_pixels,
                        prefetch_pixels=prefetch_pixels, written=written)
    with ThreadPoolExecutor(workers) as pool:
        yield from pipeline.run(todo, pool)


def already_done(job: Job, settings: str, overwrite: bool) -> Result | None:
    """A Result for a job whose output stays as it is, or None: draw it (a sketch cut short is drawn again)."""
    state, record = on_disk(job.dst)
    if state == "other":
        return Result(job, "failed", f"{job.dst}: exists and is not a sketch of sketchify's; not replaced")
    if state == "ours" and not overwrite:
        return Result(job, "skipped", differences(record, settings))
    return None


class Pipeline:
    """Photos decode in threads ahead of the model (bounded by pixels), the model draws a batch, and sketches
    encode and write in threads behind it."""

    def __init__(self, sketcher, settings: DrawSettings, output: Output, *, batch_size: int,
                 max_pixels: int | None, prefetch_pixels: int, written: list[Path] | None):
        self.sketcher, self.settings, self.output = sketcher, settings, output
        self.batch_size, self.max_pixels, self.prefetch_pixels = batch_size, max_pixels, prefetch_pixels
        self.written = written
        self.loads: deque[tuple[Job, Future, int]] = deque()
        self.saves: deque[tuple[Job, Future]] = deque()

    def run(self, todo: list[Job], pool: ThreadPoolExecutor) -> Iterator[Result]:
        pending = iter(todo)
        try:
            self.prefetch(pending, pool)
            while self.loads:
                batch, failed = self.next_batch()
                yield from failed
                self.prefetch(pending, pool)  # the next photos decode while the model draws these
                for result in draw(self.sketcher, batch, self.settings):
                    if isinstance(result, Result):
                        yield result
                    else:
                        self.save(*result, pool)
                while self.saves and (self.saves[0][1].done() or len(self.saves) > 2 * self.batch_size):
                    yield finish(*self.saves.popleft())
            while self.saves:
                yield finish(*self.saves.popleft())
        except (KeyboardInterrupt, OutputError):
            for _, fut, _ in self.loads:
                fut.cancel()
            yield from self.finish_saves()  # sketches being written are finished, and counted
            raise

    def prefetch(self, pending: Iterator[Job], pool: ThreadPoolExecutor) -> None:
        """Decoded photos wait here; bounded by pixels, not by count, and never below one photo."""
        held = sum(px for _, _, px in self.loads)
        while len(self.loads) < 2 * self.batch_size and (job := next(pending, None)) is not None:
            px = pixel_count(job.src)
            self.loads.append((job, pool.submit(prepare, self.sketcher, job.src, self.settings, self.max_pixels), px))
            held += px
            if held >= self.prefetch_pixels:
                break

    def next_batch(self) -> tuple[list, list[Result]]:
        batch, failed = [], []
        while self.loads and len(batch) < self.batch_size:
            job, fut, _ = self.loads.popleft()
            try:
                size, photo = fut.result()
                check_fits(size, self.output.fmt, job.src)
                batch.append((job, size, photo))
            except SketchifyError as e:
                failed.append(Result(job, "failed", str(e)))
        return batch, failed

    def save(self, job: Job, size: tuple[int, int], sketch, pool: ThreadPoolExecutor) -> None:
        record = self.settings.record(self.sketcher.model_id, photo=job.key or job.src.name)
        enlarge = functools.partial(self.sketcher.finish, settings=self.settings)  # at this run's line weight
        self.saves.append((job, pool.submit(write, enlarge, sketch, size, job.dst, self.output, record, self.written)))

    def finish_saves(self) -> Iterator[Result]:
        """After a stop: the results of the sketches already being written; a full disk now fails them alone."""
        while self.saves:
            try:
                yield finish(*self.saves.popleft())
            except OutputError:
                continue


def drain(results: Iterator[Result]) -> Iterator[Result]:
    """After KeyboardInterrupt in the caller's loop over run(): the results of sketches already being written."""
    if results.gi_frame is None:  # the interrupt came inside run(), which already yielded them
        return
    try:
        yield results.throw(KeyboardInterrupt)
        yield from results
    except KeyboardInterrupt:
        pass


def prepare(sketcher, src: Path, settings: DrawSettings, max_pixels: int | None):
    """A photo's size and its tensor at the working size: decoded and resized in a thread beside the model."""
    photo = load_photo(src, max_pixels=max_pixels)
    return photo.size, sketcher.prepare(photo, settings)


def draw(sketcher, batch, settings: DrawSettings):
    """(job, photo size, sketch) for each photo of the batch, or a failed Result for all of them."""
    if not batch:
        return []
    try:
        sketches = sketcher.draw([x for _, _, x in batch], settings)
    except RuntimeError as e:  # e.g. out of memory on a huge photo
        return [Result(job, "failed", f"{job.src}: the model failed ({str(e).splitlines()[0]})") for job, _, _ in batch]
    return [(job, size, sketch) for (job, size, _), sketch in zip(batch, sketches)]


def write(enlarge, sketch, size: tuple[int, int], dst: Path, output: Output, record: str,
          written: list[Path] | None = None) -> None:
    """Enlarge the sketch to its photo's size (with Sketcher.finish) and save it, in a thread: this and encoding
    overlap the model."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(enlarge(sketch, size), dst, output.fmt, quality=output.quality, description=record)
    if written is not None:
        written.append(dst)  # list.append is atomic: safe from the writer threads


def unsearched_note(plan: Plan) -> str:
    n = plan.unsearched
    return f"; {n} subfolder{'s' * (n > 1)} not searched (use --recursive)" if n else ""


def redrawn_note(skipped: list[Result]) -> str:
    """One line for the skipped sketches that were drawn with other settings than this run's."""
    first, n = skipped[0], len(skipped)
    return (f"note: {n} skipped sketch{'es were' if n > 1 else ' was'} drawn with other settings (e.g. "
            f"{first.job.dst.name}: {first.message.removeprefix('exists, drawn with ')}); --overwrite redraws them")


def finish(job: Job, fut: Future) -> Result:
    try:
        fut.result()
    except OSError as e:
        if e.errno in FATAL_ERRNOS:
            raise OutputError(f"cannot write {job.dst}: {e.strerror}; stopped") from None
        return Result(job, "failed", f"{job.dst}: cannot write ({e.strerror or e})")
    except Exception as e:  # an encoder's refusal is this file's failure, not the batch's
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Result(job, "failed", f"{job.dst}: cannot encode ({why})")
    return Result(job, "converted")
