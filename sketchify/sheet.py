"""Contact sheets: photos and sketches side by side in one PNG."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .errors import SketchifyError
from .files import file_id, remove_leftovers
from .images import on_disk, save_atomic

SHEET_MAX_SIDE = 8192  # a sheet never grows past this: a 50000x1 panorama would otherwise make a 23 GB one


def sample_names(photo: Path, folder: Path, n: int, *, fmt: str = "png", overwrite: bool = False) -> list[Path]:
    """STEM_0.FMT ... STEM_{n-1}.FMT and STEM_sheet.png in folder; never the photo, never an existing file
    unless overwrite."""
    if folder.exists() and not folder.is_dir():
        raise SketchifyError(f"-o {folder}: is a file, not a folder; choose a folder for the samples")
    names = [folder / f"{photo.stem}_{i}.{fmt}" for i in range(n)] + [folder / f"{photo.stem}_sheet.png"]
    if file_id(photo) in {file_id(p) for p in names}:
        raise SketchifyError(f"{photo}: its samples would overwrite it; choose another --output")
    for path in names:
        state, _ = on_disk(path)
        if state == "other":  # a photo named like a sample, a folder: never written over
            raise SketchifyError(f"{path} exists and is not sketchify's; choose another --output")
        if state == "ours" and not overwrite:
            raise SketchifyError(f"{path} already exists; pass --overwrite or choose another --output")
    return names


def contact_sheet(images: list[Image.Image], *, height: int = 256, columns: int | None = None, gap: int = 4,
                  max_side: int | None = None) -> Image.Image:
    """Images scaled to one height (or narrower, if very wide), left to right, wrapped after `columns` or
    when a row would pass max_side; then scaled down as a whole if it is still taller than max_side."""
    max_side = max_side or SHEET_MAX_SIDE
    thumbs = [thumbnail(im, height, max_side) for im in images]
    rows, row = [], []
    for t in thumbs:
        width = sum(x.width + gap for x in row) + t.width
        if row and (len(row) == (columns or len(thumbs)) or width > max_side):
            rows.append(row)
            row = []
        row.append(t)
    rows.append(row)
    h = max(t.height for t in thumbs)
    width = max(sum(t.width for t in r) + gap * (len(r) - 1) for r in rows)
    sheet = Image.new("RGB", (width, len(rows) * h + gap * (len(rows) - 1)), "white")
    for r, row in enumerate(rows):
        x = 0
        for t in row:
            sheet.paste(t, (x, r * (h + gap)))
            x += t.width + gap
    if max(sheet.size) > max_side:
        s = max_side / max(sheet.size)
        sheet = sheet.resize((max(1, round(sheet.width * s)), max(1, round(sheet.height * s))), Image.BICUBIC)
    return sheet


def thumbnail(im: Image.Image, height: int, max_side: int) -> Image.Image:
    """im at `height`, unless that would be wider than 4 x height or max_side: then at that width."""
    height = min(height, max_side)
    s = min(height / im.height, min(4 * height, max_side) / im.width)
    return im.convert("RGB").resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)


def save_samples(photo: Image.Image, sketches: list[Image.Image], names: list[Path], *, fmt: str = "png",
                 record: str | None = None) -> None:
    """The sketches under names[:-1] (in fmt) and their contact sheet, beside the photo, under names[-1] (png);
    each carries record (DrawSettings.record), which marks it as sketchify's."""
    folder = names[-1].parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_leftovers(folder)  # a killed run's .part files
        for sketch, path in zip(sketches, names):
            save_atomic(sketch, path, fmt, description=record)
        save_atomic(contact_sheet([photo, *sketches]), names[-1], "png", description=record)
    except OSError as e:
        raise SketchifyError(f"cannot write to {folder}: {e.strerror or e}") from None
