"""Single word images on smooth noisy backgrounds, for the dedup tests and benchmark (one copy of the
renderer, so the benchmark measures the same crops the tests assert on)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont


def background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    small = rng.integers(40, 215, size=(3, 5, 3)).astype(np.uint8)
    field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return np.clip(field + rng.normal(0, 5, size=field.shape), 0, 255).astype(np.uint8)


def render(rng: np.random.Generator, text: str, font: Path, size: int, *, min_pad: int = 3) -> np.ndarray:
    """One word with contrasting ink, padded by max(min_pad, size // 5) pixels; RGB uint8."""
    ft = ImageFont.truetype(str(font), size)
    left, top, right, bottom = ft.getbbox(text)
    pad = max(min_pad, size // 5)
    w, h = int(right - left) + 2 * pad, int(bottom - top) + 2 * pad
    base = background(rng, w, h)
    ink = rng.integers(0, 70, 3) if base.mean() > 128 else rng.integers(190, 256, 3)
    img = Image.fromarray(base)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, fill=tuple(int(c) for c in ink), font=ft)
    return np.asarray(img)


def scene_line(rng: np.random.Generator, texts: list[str], font: Path, size: int) -> list[np.ndarray]:
    """Neighbouring words cut from one image: same background, font and ink, different words."""
    ft = ImageFont.truetype(str(font), size)
    boxes = [ft.getbbox(t) for t in texts]
    base = background(rng, sum(b[2] - b[0] + 20 for b in boxes) + 20, size * 2)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    ink = (20, 20, 20) if base.mean() > 128 else (235, 235, 235)
    x, crops = 15, []
    for t, (left, top, right, bottom) in zip(texts, boxes):
        draw.text((x - left, size // 2 - top), t, fill=ink, font=ft)
        crops.append((x - 4, size // 2 - 4, x + right - left + 4, size // 2 + bottom - top + 4))
        x += right - left + 20
    arr = np.asarray(img)
    return [np.ascontiguousarray(arr[y0:y1, x0:x1]) for x0, y0, x1, y1 in crops]
