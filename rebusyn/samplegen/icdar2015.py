"""A sample of ICDAR 2015 in its exact native layout: the three training archives of RRC Challenge 4.

- ch4_training_images.zip: img_<N>.jpg at the archive's top level
- ch4_training_localization_transcription_gt.zip: gt_img_<N>.txt, UTF-8 with BOM, CRLF,
  `x1,y1,...,x4,y4,transcription`, `###` for don't-care regions
- ch4_training_word_images_gt.zip: word_<N>.png plus gt.txt (`word_1.png, "text"`, BOM, CRLF)

The words carry the native quirks: a comma inside a transcription, punctuation, a diacritic, text that
the 36-character policy empties, a word too long for max-len 25, vertical text and `###` regions.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rebusyn.crop import warp_quad
from rebusyn.samplegen.archive import write_zip
from rebusyn.samplegen.scene import render_scene

WORDS = [
    "Genaxis Theatre",
    "[06]",
    "62-03",
    "Carpark",
    "EXIT",
    "I2R",
    "fusionopolis",
    "100,000",
    "Café",
    "STOP",
    "Bus",
    "Lane",
    "OPEN",
    "24h",
    "SALE",
    "Coffee",
    "Street",
    "No.7",
    "Welcome",
    "PUSH",
    "Hotel",
    "Taxi",
    "Sale!",
    "PARKING",
    "Zone-B",
    "Ltd.",
    "Road",
    "Mall",
    "Pharmacy",
    "Bank",
    '"Quoted"',
    "A&W",
    "Level 3",
    "--",
    "Supercalifragilisticexpialidocious",
    "Tel:6123",
    "Sushi",
    "Books",
    "Market",
    "Metro",
]

ARCHIVES = {
    "images": "ch4_training_images.zip",
    "annotations": "ch4_training_localization_transcription_gt.zip",
    "crops": "ch4_training_word_images_gt.zip",
}


def write(
    out_dir: Path, *, images: int = 24, seed: int = 2015, size: tuple[int, int] = (640, 480)
) -> list[Path]:
    """Write the three archives into `out_dir`; returns their paths. `size` is (width, height): the real
    images are 1280x720, the default keeps the sample mirror small."""
    rng = np.random.default_rng(seed)
    image_files: dict[str, bytes] = {}
    gt_files: dict[str, bytes] = {}
    crop_files: dict[str, bytes] = {}
    word_lines: list[str] = []
    cursor = 0
    for n in range(1, images + 1):
        count = int(rng.integers(4, 8))
        words = [(WORDS[(cursor + i) % len(WORDS)], True) for i in range(count)]
        cursor += count
        words += [("xxxx", False)] * int(rng.integers(0, 3))  # don't-care scribbles
        pixels, placed = render_scene(rng, words, *size, vertical_every=3 if n % 3 == 0 else 0)
        ok, jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])
        assert ok
        image_files[f"img_{n}.jpg"] = jpeg.tobytes()
        lines = []
        for word in placed:
            coords = ",".join(f"{x},{y}" for x, y in word.quad)
            lines.append(f"{coords},{word.text if word.legible else '###'}")
            if word.legible and not word.vertical:
                crop = warp_quad(pixels, np.array(word.quad, dtype=np.float32))
                buf = io.BytesIO()
                Image.fromarray(crop[..., ::-1]).save(buf, format="PNG")
                name = f"word_{len(word_lines) + 1}.png"
                crop_files[name] = buf.getvalue()
                word_lines.append(f'{name}, "{word.text}"')
        gt_files[f"gt_img_{n}.txt"] = _native_text(lines)
    crop_files["gt.txt"] = _native_text(word_lines)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_zip(out_dir / ARCHIVES["images"], image_files),
        write_zip(out_dir / ARCHIVES["annotations"], gt_files),
        write_zip(out_dir / ARCHIVES["crops"], crop_files),
    ]


def _native_text(lines: list[str]) -> bytes:
    """RRC files: UTF-8 with a byte-order mark and CRLF line ends."""
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n"
