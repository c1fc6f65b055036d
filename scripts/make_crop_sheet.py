"""Draw the before/after sheet of docs/crops.md: PARSeq's axis-aligned crop next to rebusyn's warp.

    python scripts/make_crop_sheet.py docs/crops_before_after.png

Words are rendered with the sample-scene renderer (straight rotated, curved, vertical), so the sheet is
reproducible byte for byte on the same library versions.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rebusyn.crop import crop_word
from rebusyn.samplegen.scene import load_font, render_scene

WORDS = ["Curved", "Boulevard", "Theatre", "Exit", "Market", "Lane", "PHARMACY", "Station", "Bakery"]
CELL_W, CELL_H, GAP = 260, 70, 8


def _fit(pixels: np.ndarray) -> Image.Image:
    img = Image.fromarray(pixels[..., ::-1])
    scale = min((CELL_W - 2 * GAP) / img.width, (CELL_H - 2 * GAP) / img.height)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)


def main(out: Path) -> None:
    rng = np.random.default_rng(7)
    rows = []
    for curved_every, vertical_every in ((1, 0), (0, 2), (2, 0)):
        pixels, placed = render_scene(
            rng,
            [(w, True) for w in WORDS[:4]],
            900,
            600,
            vertical_every=vertical_every,
            curved_every=curved_every,
        )
        for word in placed:
            rows.append(
                (
                    word.text,
                    crop_word(pixels, word.quad, word.text, mode="bbox").pixels,
                    crop_word(pixels, word.quad, word.text),
                )
            )
    font, head = load_font(15), 30
    sheet = Image.new("RGB", (2 * CELL_W + 160, head + len(rows) * CELL_H), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((170, 8), "PARSeq / MMOCR (--crop bbox)", fill="black", font=font)
    draw.text((170 + CELL_W, 8), "rebusyn (--crop warp)", fill="black", font=font)
    for i, (text, bbox, warp) in enumerate(rows):
        y = head + i * CELL_H
        note = {"polygon": "curved, unrolled", "quad": "rotated quad", "min_area_rect": "odd polygon"}.get(
            warp.method, warp.method
        )
        draw.text(
            (8, y + 18), f"{text}\n{note}{', rotated' if warp.rotated else ''}", fill="black", font=font
        )
        for col, pixels in enumerate((bbox, warp.pixels)):
            img = _fit(pixels)
            x = 160 + col * CELL_W
            sheet.paste(img, (x + GAP, y + (CELL_H - img.height) // 2))
            draw.rectangle((x, y, x + CELL_W - 1, y + CELL_H - 1), outline=(210, 210, 210))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out} ({len(rows)} words)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/crops_before_after.png"))
