"""Render synthetic scene images with words at known quadrilaterals (for sample mirrors and tests).

Deterministic for a given numpy Generator: the same seed gives the same pixels and the same geometry.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

_FONT_CANDIDATES = ("Roboto-Regular.ttf", "OpenSans-Regular.ttf", "Lato-Regular.ttf", "DroidSans.ttf")


@lru_cache(maxsize=1)
def sample_font_path() -> Path | None:
    """A plain Latin font shipped in an installed package (trdg's), or None for Pillow's default."""
    try:
        spec = importlib.util.find_spec("trdg")
        if spec and spec.origin:
            latin = Path(spec.origin).parent / "fonts" / "latin"
            for name in _FONT_CANDIDATES:
                if (latin / name).is_file():
                    return latin / name
    except (ImportError, ValueError):
        pass
    return None


@lru_cache(maxsize=1)
def cjk_font_path() -> Path | None:
    """trdg's bundled Source Han Sans (CJK, Hangul, Kana), or None when trdg is not installed."""
    spec = importlib.util.find_spec("trdg")
    if spec and spec.origin:
        path = Path(spec.origin).parent / "fonts" / "cn" / "SourceHanSans-Normal.ttf"
        if path.is_file():
            return path
    return None


def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = sample_font_path()
    if path is not None:
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


@dataclass(frozen=True)
class PlacedWord:
    text: str
    quad: tuple[tuple[int, int], ...]  # TL, TR, BR, BL; for curved words the polygon (see render_scene)
    legible: bool
    vertical: bool = False
    curved: bool = False


def _curve_map(pw: int, ph: int, center: tuple[float, float], angle: float, sag: float):  # noqa: ANN202
    """Patch (u, v) -> image (x, y) along a parabolic arc: the text's centre line bends by `sag` pixels at
    its ends, the whole arc is rotated by `angle` radians and centred at `center`."""
    k = sag / max((pw / 2) ** 2, 1.0)
    ca, sa = np.cos(angle), np.sin(angle)

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        s = np.asarray(u, dtype=np.float64) - pw / 2
        px, py = s, k * s * s
        tx, ty = np.ones_like(s), 2 * k * s
        norm = np.hypot(tx, ty)
        nx, ny = -ty / norm, tx / norm
        off = np.asarray(v, dtype=np.float64) - ph / 2
        x, y = px + off * nx, py + off * ny
        return np.stack([center[0] + x * ca - y * sa, center[1] + x * sa + y * ca], axis=-1)

    return f


def _warp_curved(mask: np.ndarray, f, width: int, height: int, strips: int = 24) -> np.ndarray:  # noqa: ANN001
    """Warp the patch onto the arc strip by strip, each strip as two affine triangles.

    Piecewise affine, not perspective: a perspective map of a strip onto the arc's trapezoid (outer edge
    longer than inner) foreshortens the rows and moves the glyphs off the annotated polygon."""
    ph, pw = mask.shape
    out = np.zeros((height, width), np.float32)
    edges = np.linspace(0, pw, strips + 1)
    for u0, u1 in zip(edges[:-1], edges[1:]):
        src = np.array([[u0, 0], [u1, 0], [u1, ph], [u0, ph]], np.float32)
        dst = f(np.array([u0, u1, u1, u0]), np.array([0, 0, ph, ph])).astype(np.float32)
        for tri in ((0, 1, 3), (1, 2, 3)):
            matrix = cv2.getAffineTransform(src[list(tri)], dst[list(tri)])
            warped = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR)
            inside = np.zeros((height, width), np.uint8)
            cv2.fillConvexPoly(inside, np.round(dst[list(tri)]).astype(np.int32), 1)
            inside = cv2.dilate(inside, np.ones((3, 3), np.uint8))  # cover the seams between triangles
            out = np.maximum(out, warped.astype(np.float32) * inside)
    return out / 255


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth colour field with a few blocks: enough texture that crops are not flat."""
    small = rng.integers(40, 215, size=(4, 6, 3)).astype(np.uint8)
    field = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
        x1, y1 = x0 + int(rng.integers(30, width // 2)), y0 + int(rng.integers(20, height // 3))
        colour = tuple(int(c) for c in rng.integers(30, 225, size=3))
        cv2.rectangle(field, (x0, y0), (min(x1, width - 1), min(y1, height - 1)), colour, -1)
    noise = rng.normal(0, 6, size=field.shape)
    return np.clip(field.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _text_patch(text: str, size: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """An alpha mask of the text and its tight box (x0, y0, x1, y1) inside the patch."""
    font = load_font(size)
    left, top, right, bottom = font.getbbox(text)
    pad = size // 3
    w, h = int(right - left) + 2 * pad, int(bottom - top) + 2 * pad
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((pad - left, pad - top), text, fill=255, font=font)
    return np.asarray(mask), (pad - 2, pad - 2, w - pad + 2, h - pad + 2)


def _overlaps(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]]) -> bool:
    x0, y0, x1, y1 = box
    return any(not (x1 < a0 or a1 < x0 or y1 < b0 or b1 < y0) for a0, b0, a1, b1 in boxes)


def render_scene(
    rng: np.random.Generator,
    words: list[tuple[str, bool]],
    width: int = 640,
    height: int = 480,
    vertical_every: int = 0,
    curved_every: int = 0,
    curve_points: int = 7,
) -> tuple[np.ndarray, list[PlacedWord]]:
    """Draw `words` ((text, legible)) at random rotations and mild perspective; returns BGR pixels and
    the words that fit, each with the quadrilateral of its text (corners clockwise from top-left).

    Illegible words are drawn as scribbles (what `###` regions look like). With `vertical_every = k`,
    every k-th legible word is written top-to-bottom (rotated 90 degrees clockwise) and annotated with its
    axis-aligned box, as annotators often do for vertical text. With `curved_every = k`, every k-th legible
    word (that is not vertical) is bent along an arc and annotated with a polygon of 2 x `curve_points`
    vertices: the top boundary left to right, then the bottom boundary right to left (clockwise, as ArT,
    Total-Text and CTW1500 give curved words).
    """
    canvas = background(rng, width, height).astype(np.float32)
    placed: list[PlacedWord] = []
    taken: list[tuple[int, int, int, int]] = []
    legible_count = 0
    for text, legible in words:
        size = int(rng.integers(26, 44))
        mask, (bx0, by0, bx1, by1) = _text_patch(text, size)
        if not legible:
            mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=size / 5)
        corners = np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]], dtype=np.float32)
        ph, pw = mask.shape
        patch_corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=np.float32)
        vertical = bool(legible and vertical_every and (legible_count + 1) % vertical_every == 0)
        curved = bool(legible and not vertical and curved_every and (legible_count + 1) % curved_every == 0)
        if curved:
            if _place_curved(rng, canvas, mask, (bx0, by0, bx1, by1), text, taken, placed, curve_points):
                legible_count += 1
            continue
        if vertical:
            angle = -90.0
            jitter = np.zeros((4, 2), dtype=np.float32)
        else:
            angle = float(rng.uniform(-20, 20))
            jitter = rng.uniform(-0.06, 0.06, size=(4, 2)).astype(np.float32) * np.array([pw, ph], np.float32)
        for _ in range(30):
            cx, cy = float(rng.uniform(0.15, 0.85) * width), float(rng.uniform(0.15, 0.85) * height)
            rot = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, 1.0)
            moved = (patch_corners @ rot[:, :2].T + rot[:, 2]) + jitter
            moved += np.array([cx, cy], np.float32) - moved.mean(axis=0)
            box = (
                int(moved[:, 0].min()),
                int(moved[:, 1].min()),
                int(moved[:, 0].max()),
                int(moved[:, 1].max()),
            )
            if box[0] < 2 or box[1] < 2 or box[2] > width - 3 or box[3] > height - 3 or _overlaps(box, taken):
                continue
            matrix = cv2.getPerspectiveTransform(patch_corners, moved.astype(np.float32))
            warped = (
                cv2.warpPerspective(mask, matrix, (width, height), flags=cv2.INTER_LINEAR).astype(np.float32)
                / 255
            )
            region = canvas[box[1] : box[3], box[0] : box[2]]
            lum = float(region.mean()) if region.size else 128.0
            ink = rng.integers(0, 60, size=3) if lum > 128 else rng.integers(200, 256, size=3)
            canvas = canvas * (1 - warped[..., None]) + ink.astype(np.float32) * warped[..., None]
            quad = cv2.perspectiveTransform(corners[None], matrix)[0]
            if vertical:
                xs, ys = quad[:, 0], quad[:, 1]
                quad = np.array(
                    [[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]]
                )
            taken.append(box)
            placed.append(
                PlacedWord(text, tuple((int(round(x)), int(round(y))) for x, y in quad), legible, vertical)
            )
            if legible:
                legible_count += 1
            break
    return np.clip(canvas, 0, 255).astype(np.uint8), placed


def _place_curved(
    rng: np.random.Generator,
    canvas: np.ndarray,
    mask: np.ndarray,
    text_box: tuple[float, float, float, float],
    text: str,
    taken: list[tuple[int, int, int, int]],
    placed: list[PlacedWord],
    curve_points: int,
) -> bool:
    """Bend one word along an arc into `canvas` (in place); False when it did not fit."""
    height, width = canvas.shape[:2]
    ph, pw = mask.shape
    bx0, by0, bx1, by1 = text_box
    for _ in range(30):
        sag = float(rng.uniform(0.12, 0.3) * pw * rng.choice([-1, 1]))
        angle = float(np.radians(rng.uniform(-15, 15)))
        center = (float(rng.uniform(0.2, 0.8) * width), float(rng.uniform(0.2, 0.8) * height))
        f = _curve_map(pw, ph, center, angle, sag)
        outline = f(np.r_[np.linspace(0, pw, 9), np.linspace(pw, 0, 9)], np.r_[np.zeros(9), np.full(9, ph)])
        box = (
            int(outline[:, 0].min()),
            int(outline[:, 1].min()),
            int(outline[:, 0].max()),
            int(outline[:, 1].max()),
        )
        if box[0] < 2 or box[1] < 2 or box[2] > width - 3 or box[3] > height - 3 or _overlaps(box, taken):
            continue
        warped = _warp_curved(mask, f, width, height)
        region = canvas[box[1] : box[3], box[0] : box[2]]
        ink = rng.integers(0, 60, size=3) if float(region.mean()) > 128 else rng.integers(200, 256, size=3)
        canvas *= 1 - warped[..., None]
        canvas += ink.astype(np.float32) * warped[..., None]
        us = np.linspace(bx0, bx1, curve_points)
        top = f(us, np.full(curve_points, by0))
        bottom = f(us[::-1], np.full(curve_points, by1))
        polygon = tuple((int(round(x)), int(round(y))) for x, y in np.vstack([top, bottom]))
        taken.append(box)
        placed.append(PlacedWord(text, polygon, True, curved=True))
        return True
    return False
