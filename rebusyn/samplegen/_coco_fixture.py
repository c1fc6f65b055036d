"""Shared by the COCO-Text, TextOCR and OpenVINO sample generators: scenes whose words carry the native
fields each JSON needs, and byte-reproducible archives.

A generator asks for `Spec`s (the text drawn, whether it is legible, and the source's own fields such as
`language` or `class`); `render` draws the ones that fit with `render_scene` and returns them as `Placed`
words with the polygon they ended up in (TL, TR, BR, BL; curved words: top boundary left to right, then
bottom boundary right to left). Cyrillic and Greek words draw with the Latin sample font (it covers them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from rebusyn.samplegen.scene import render_scene


@dataclass(frozen=True)
class Spec:
    """A word to draw: `text` as painted, `legible`, and the JSON fields the generator writes for it."""

    text: str
    legible: bool = True
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Placed:
    """A word as drawn: its spec and its polygon in reading order, clockwise from the top-left."""

    spec: Spec
    points: tuple[tuple[int, int], ...]
    vertical: bool = False
    curved: bool = False


@dataclass(frozen=True)
class Scene:
    """One sample image: its encoded bytes, size and the words it shows (the ground truth)."""

    image_id: str
    jpeg: bytes
    width: int
    height: int
    words: tuple[Placed, ...]
    fields: dict[str, Any] = field(default_factory=dict)


def render(
    rng: np.random.Generator,
    specs: list[Spec],
    *,
    width: int = 480,
    height: int = 360,
    vertical_every: int = 0,
    curved_every: int = 0,
    curve_points: int = 7,
) -> tuple[bytes, list[Placed]]:
    """JPEG bytes of a scene with the `specs` that fit, and those words in drawing order."""
    pixels, placed = render_scene(
        rng,
        [(s.text, s.legible) for s in specs],
        width,
        height,
        vertical_every=vertical_every,
        curved_every=curved_every,
        curve_points=curve_points,
    )
    out: list[Placed] = []
    j = 0
    for spec in specs:  # render_scene keeps the order and skips words that did not fit
        if j < len(placed) and placed[j].text == spec.text and placed[j].legible == spec.legible:
            pw = placed[j]
            out.append(Placed(spec, tuple(pw.quad), pw.vertical, pw.curved))
            j += 1
    return jpeg(pixels), out


def jpeg(pixels: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def rounded(points: Any, digits: int = 1) -> list[float]:
    """A flat [x1, y1, x2, y2, ...] list of floats, as the COCO-like JSONs store polygons."""
    return [round(float(v), digits) for p in points for v in p]


def xywh(points: Any, digits: int = 1) -> list[float]:
    """The horizontal box [x, y, w, h] around a polygon."""
    pts = np.asarray(points, dtype=np.float64)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return [
        round(float(x0), digits),
        round(float(y0), digits),
        round(float(x1 - x0), digits),
        round(float(y1 - y0), digits),
    ]


def scrambled(points: Any, start: int, reverse: bool) -> list[tuple[int, int]]:
    """The polygon from vertex `start`, counter-clockwise when `reverse`: how COCO-Text masks and CVAT
    polygons come, with no reading order."""
    pts = list(points)
    if reverse:
        pts = [pts[0], *pts[1:][::-1]]
    start %= len(pts)
    return pts[start:] + pts[:start]


def with_midpoint(points: Any, edge: int) -> list[tuple[float, float]]:
    """The polygon with one more vertex, halfway along edge `edge` (COCO-Text masks with 5+ vertices)."""
    pts = [tuple(map(float, p)) for p in points]
    a, b = pts[edge % len(pts)], pts[(edge + 1) % len(pts)]
    return [*pts[: edge + 1], ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2), *pts[edge + 1 :]]


def json_bytes(data: Any) -> bytes:
    """JSON as Python's json.dump writes it by default (the tools that made these files are Python): one
    line, `\\uXXXX` escapes for every non-ASCII character."""
    return json.dumps(data).encode("ascii")
