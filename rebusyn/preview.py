"""Preview sheets: a grid of word crops with their labels (and raw labels where they differ)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from rebusyn.samplegen.scene import load_font

CELL_W, CELL_H, CAPTION_H = 200, 48, 30


def preview_sheet(
    items: Sequence[tuple[bytes, str, str]], out: Path, *, columns: int = 6, title: str | None = None
) -> Path:
    """`items` are (encoded image, label, label_raw); writes a PNG to `out` and returns its path."""
    if not items:
        raise ValueError("nothing to preview: no samples")
    rows = (len(items) + columns - 1) // columns
    head = 28 if title else 0
    sheet = Image.new("RGB", (columns * CELL_W, head + rows * (CELL_H + CAPTION_H)), "white")
    draw = ImageDraw.Draw(sheet)
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont = load_font(13)
    if title:
        draw.text((6, 6), title, fill="black", font=load_font(15))
    for i, (data, label, raw) in enumerate(items):
        x, y = (i % columns) * CELL_W, head + (i // columns) * (CELL_H + CAPTION_H)
        try:
            crop = Image.open(io.BytesIO(data)).convert("RGB")
        except OSError:
            crop = Image.new("RGB", (CELL_W - 8, CELL_H - 8), "red")
        # scale to the cell (up or down) so small crops stay legible on the sheet
        scale = min((CELL_W - 8) / crop.width, (CELL_H - 8) / crop.height)
        crop = crop.resize(
            (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BICUBIC
        )
        sheet.paste(crop, (x + (CELL_W - crop.width) // 2, y + 4 + (CELL_H - 8 - crop.height) // 2))
        draw.text((x + 4, y + CELL_H), label, fill="black", font=font)
        if raw.strip() != label:
            draw.text((x + 4, y + CELL_H + 14), f"raw: {raw}"[:32], fill=(110, 110, 110), font=font)
        draw.rectangle((x, y, x + CELL_W - 1, y + CELL_H + CAPTION_H - 1), outline=(220, 220, 220))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out
