"""Contact sheets: photos and sketches side by side in one PNG."""

from __future__ import annotations

from PIL import Image


def contact_sheet(images: list[Image.Image], *, height: int = 256, columns: int | None = None, gap: int = 4) -> Image.Image:
    """Images scaled to one height, left to right, wrapped after `columns`, on white."""
    thumbs = [im.convert("RGB").resize((max(1, round(im.width * height / im.height)), height), Image.BICUBIC)
              for im in images]
    columns = columns or len(thumbs)
    rows = [thumbs[i:i + columns] for i in range(0, len(thumbs), columns)]
    width = max(sum(t.width for t in row) + gap * (len(row) - 1) for row in rows)
    sheet = Image.new("RGB", (width, len(rows) * height + gap * (len(rows) - 1)), "white")
    for r, row in enumerate(rows):
        x = 0
        for t in row:
            sheet.paste(t, (x, r * (height + gap)))
            x += t.width + gap
    return sheet
