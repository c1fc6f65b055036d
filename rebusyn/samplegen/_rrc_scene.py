"""Shared by the ArT and LSVT sample generators: scenes with Latin and Chinese words, and reproducible tars.

`render_scene` draws with a Latin font, which has no CJK glyphs. Words with CJK characters are therefore
laid out with a unique Latin placeholder of the same length (so `render_scene` still picks their place,
rotation and polygon), then the placeholder is painted over with a sign-coloured plate and the real text
is drawn into the same polygon with trdg's CJK font (stacked upright when the word is vertical, as
Chinese signs are written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rebusyn.samplegen.scene import PlacedWord, cjk_font_path, render_scene

_NEEDS_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True)
class Word:
    """What a generator asks for: the text, whether it is legible, and the JSON `language` (ArT)."""

    text: str
    legible: bool = True
    language: str = "Latin"


@dataclass(frozen=True)
class SceneWord:
    """A word as it ended up in the image: the ground truth the JSON is written from."""

    text: str
    points: tuple[tuple[int, int], ...]
    legible: bool
    language: str
    vertical: bool
    curved: bool


def needs_cjk(text: str) -> bool:
    return bool(_NEEDS_CJK.search(text))


def render_words(
    rng: np.random.Generator,
    words: list[Word],
    *,
    width: int = 480,
    height: int = 360,
    vertical_every: int = 0,
    curved_every: int = 0,
    curve_points: int = 7,
) -> tuple[np.ndarray, list[SceneWord]]:
    """Render `words` (those that fit) and return BGR pixels and their ground truth, in drawing order."""
    placeholders: list[str] = []
    letter = 0
    for w in words:
        if needs_cjk(w.text) and cjk_font_path() is not None:
            # unique per scene, so placed words map back to their request even when one does not fit
            placeholders.append(chr(ord("A") + letter % 26) * max(round(len(w.text) * 1.3), 1))
            letter += 1
        else:
            placeholders.append(w.text)
    pixels, placed = render_scene(
        rng,
        [(p, w.legible) for p, w in zip(placeholders, words)],
        width,
        height,
        vertical_every=vertical_every,
        curved_every=curved_every,
        curve_points=curve_points,
    )
    out: list[SceneWord] = []
    j = 0
    for placeholder, word in zip(placeholders, words):
        if j < len(placed) and placed[j].text == placeholder and placed[j].legible == word.legible:
            pw = placed[j]
            j += 1
            if placeholder != word.text:
                _paint_cjk(rng, pixels, pw, word.text)
            out.append(SceneWord(word.text, pw.quad, word.legible, word.language, pw.vertical, pw.curved))
    return pixels, out


def _corners(points: tuple[tuple[int, int], ...]) -> np.ndarray:
    """TL, TR, BR, BL of a quad or of a curved polygon (top boundary, then bottom boundary reversed)."""
    pts = np.asarray(points, dtype=np.float32)
    half = len(pts) // 2
    return np.array([pts[0], pts[half - 1], pts[half], pts[-1]], dtype=np.float32)


def _cjk_mask(text: str, vertical: bool, size: int = 48) -> np.ndarray:
    font = ImageFont.truetype(str(cjk_font_path()), size)
    lines = list(text.replace(" ", "")) if vertical else [text]
    boxes = [font.getbbox(line) for line in lines]
    w = max(b[2] - b[0] for b in boxes) + 8
    step = size + 4
    h = step * len(lines) + 8 if vertical else boxes[0][3] - boxes[0][1] + 8
    mask = Image.new("L", (int(w), int(h)), 0)
    draw = ImageDraw.Draw(mask)
    for i, (line, box) in enumerate(zip(lines, boxes)):
        x = 4 - box[0] + (w - 8 - (box[2] - box[0])) / 2
        y = 4 - box[1] + (i * step if vertical else 0)
        draw.text((x, y), line, fill=255, font=font)
    return np.asarray(mask)


def _paint_cjk(rng: np.random.Generator, pixels: np.ndarray, word: PlacedWord, text: str) -> None:
    """Cover the placeholder with a plate and draw `text` into the word's polygon (in place)."""
    height, width = pixels.shape[:2]
    plate = rng.integers(170, 250, size=3) if rng.random() < 0.5 else rng.integers(10, 80, size=3)
    ink = 255 - plate
    cv2.fillPoly(pixels, [np.asarray(word.quad, dtype=np.int32)], tuple(int(c) for c in plate))
    mask = _cjk_mask(text, word.vertical)
    mh, mw = mask.shape
    src = np.array([[0, 0], [mw, 0], [mw, mh], [0, mh]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, _corners(word.quad))
    alpha = (
        cv2.warpPerspective(mask, matrix, (width, height), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    )
    blended = pixels.astype(np.float32) * (1 - alpha[..., None]) + ink.astype(np.float32) * alpha[..., None]
    pixels[...] = np.clip(blended, 0, 255).astype(np.uint8)


def jpeg(pixels: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()
