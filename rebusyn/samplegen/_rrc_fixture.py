"""Shared by the RCTW-17, MLT 2019 and ReCTS sample generators: multi-script scenes and native file bytes.

`rebusyn.samplegen.scene.render_scene` draws every word with one Latin font. These sources are mostly CJK,
Hangul, Kana, Arabic, Bangla and Devanagari, so while `script_fonts()` is active the scene module's font
loader picks, per word, a font that has the glyphs: trdg's Source Han Sans (CJK, Hangul, Kana, full-width
forms) or DejaVu Sans (Arabic, unshaped; symbols). Scripts without an installed font (Bangla, Devanagari)
render as DejaVu's boxes; only the annotation text matters for the filters. The patch is undone on exit
and is a no-op if the scene module no longer has the hooks.
"""

from __future__ import annotations

import contextlib
import io
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageFont

from rebusyn.crop import warp_quad
from rebusyn.samplegen import scene
from rebusyn.samplegen.scene import PlacedWord, render_scene

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@dataclass(frozen=True)
class Word:
    """A word a generator asks for. `legible=False` is drawn as a scribble (a don't-care region);
    `attrs` carry source fields (script, difficult, ...) and the expected fate the tests check."""

    text: str
    legible: bool = True
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SceneWord:
    """A word as it landed in the image: its spec plus the polygon `render_scene` reports."""

    word: Word
    points: tuple[tuple[int, int], ...]
    vertical: bool


def font_for(text: str) -> Path | None:
    """A font with the glyphs of `text`'s script, or None for the scene module's Latin font."""
    names = [unicodedata.name(ch, "") for ch in text if ord(ch) > 0x24F]
    if not names:
        return None
    if any(n.startswith("ARABIC") for n in names):
        return _DEJAVU if _DEJAVU.is_file() else None
    if any(n.startswith(("CJK", "HANGUL", "KATAKANA", "HIRAGANA", "FULLWIDTH")) for n in names):
        return scene.cjk_font_path()
    # symbols (arrows) and scripts with no installed font: DejaVu draws its glyphs or visible boxes
    return _DEJAVU if _DEJAVU.is_file() else None


@contextlib.contextmanager
def script_fonts() -> Iterator[None]:
    """While active, `render_scene` draws each word with `font_for(word)` (see the module docstring)."""
    text_patch, load_font = getattr(scene, "_text_patch", None), getattr(scene, "load_font", None)
    if text_patch is None or load_font is None:
        yield
        return
    current = {"text": ""}

    def patched_text_patch(text: str, size: int, *args: Any, **kwargs: Any) -> Any:
        current["text"] = text
        try:
            return text_patch(text, size, *args, **kwargs)
        finally:
            current["text"] = ""

    def patched_load_font(size: int) -> Any:
        path = font_for(current["text"])
        return ImageFont.truetype(str(path), size) if path is not None else load_font(size)

    scene._text_patch, scene.load_font = patched_text_patch, patched_load_font
    try:
        yield
    finally:
        scene._text_patch, scene.load_font = text_patch, load_font


def render(
    rng: np.random.Generator, words: Sequence[Word], width: int, height: int, vertical_every: int = 0
) -> tuple[np.ndarray, list[SceneWord]]:
    """Render `words`; returns BGR pixels and the words that fit, in request order, with their quads."""
    with script_fonts():
        pixels, placed = render_scene(
            rng, [(w.text, w.legible) for w in words], width, height, vertical_every=vertical_every
        )
    return pixels, align(words, placed)


def align(words: Sequence[Word], placed: Sequence[PlacedWord]) -> list[SceneWord]:
    """`placed` is the subsequence of `words` that fitted: pair each with its spec, in order."""
    out: list[SceneWord] = []
    it = iter(words)
    for p in placed:
        for w in it:
            if (w.text, w.legible) == (p.text, p.legible):
                out.append(SceneWord(w, tuple(p.quad), p.vertical))
                break
    return out


def encode(pixels: np.ndarray, ext: str) -> bytes:
    """BGR pixels as a jpg, png or gif file. GIF and `png8` (a palette PNG, kept small): RGB quantised to
    an adaptive 256-colour palette."""
    if ext in ("gif", "png8"):
        buf = io.BytesIO()
        paletted = Image.fromarray(pixels[..., ::-1]).quantize(256, dither=Image.Dither.NONE)
        paletted.save(buf, format="GIF" if ext == "gif" else "PNG", optimize=True)
        return buf.getvalue()
    params = [cv2.IMWRITE_JPEG_QUALITY, 88] if ext == "jpg" else []
    ok, data = cv2.imencode(f".{ext}", pixels, params)
    assert ok
    return data.tobytes()


def crop_png(pixels: np.ndarray, quad: Sequence[tuple[int, int]]) -> bytes:
    """The word warped upright, as PNG (what the RRC word-crop archives ship)."""
    crop = warp_quad(pixels, np.array(quad, dtype=np.float32))
    return encode(crop, "png")


def native_text(lines: Sequence[str], *, bom: bool, crlf: bool) -> bytes:
    """Ground-truth text as the Windows-made RRC files: optional BOM, CRLF or LF, final newline."""
    end = "\r\n" if crlf else "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + "".join(line + end for line in lines).encode("utf-8")


def coords(points: Sequence[tuple[int, int]]) -> str:
    return ",".join(f"{x},{y}" for x, y in points)


def split_bytes(data: bytes, parts: int) -> list[bytes]:
    """Cut `data` into `parts` consecutive pieces (a byte-split archive's volumes)."""
    step = -(-len(data) // parts)
    return [data[i * step : (i + 1) * step] for i in range(parts)]
