"""A sample of SCUT-CTW1500 in its native layout: the training images and the updated XML labels.

- train_images.zip: `train_images/<NNNN>.jpg`
- train_labels.zip: `ctw1500_train_labels/<NNNN>.xml`, one `<Annotations><image file=...><box ...>` document
  per image: `<label>`, `<segs>` (14 points = 28 ints, top boundary left to right then bottom boundary right
  to left), one `<pts>` per English character (its centre), the `box` attributes being the bounding box of
  the segs.

Traps: text lines with spaces (`GRAND HOTEL`), curved lines (14 vertices from `render_scene(...,
curve_points=7)`), straight lines and a vertical word annotated with 14 points too (the tool always stores
14), `###` for a Chinese line (drawn with trdg's CJK font) and for illegible scribbles, `H&M` (`&amp;` in the
XML), `Café de Paris`, `F.D.N.Y.` and `E-313` (punctuation), `...` (empty under the 36-character policy), a
line of 26 letters (too long), and one document closed with the misspelled `</Annotataions>` of the
official README's example.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from rebusyn.samplegen._rrc_scene import Word, jpeg, render_words
from rebusyn.samplegen.archive import write_zip
from rebusyn.samplegen.totaltext import resample_polygon

ARCHIVES = {"images": "train_images.zip", "annotations": "train_labels.zip"}
IGNORE = "###"
SCRIBBLE = Word("xxxxxx", legible=False)  # an illegible region


def _zh(text: str) -> Word:
    return Word(text, language="Chinese")


# Per image: its lines (Chinese ones first, so that render_scene does not bend their placeholders), canvas
# size, vertical_every.
PLAN: list[tuple[list[Word], tuple[int, int], int]] = [
    ([_zh("欢迎光临"), Word("GRAND HOTEL"), Word("OLATHE"), SCRIBBLE], (480, 360), 0),
    ([Word("H&M"), Word("Café de Paris"), Word("E-313"), SCRIBBLE], (480, 360), 0),
    ([Word("INTERNATIONAL SCHOOL OF MUSIC"), Word("F.D.N.Y."), Word("...")], (720, 360), 0),
    ([Word("BAKERY"), Word("Fresh Bread"), Word("OPEN"), Word("Tea")], (480, 400), 3),
    ([_zh("大酒店"), Word("CITY MARKET"), Word("Books"), SCRIBBLE], (480, 360), 0),
    ([Word("COFFEE HOUSE"), Word("Station"), Word("EXIT")], (512, 352), 0),
    ([Word("Noodle Bar"), Word("Kopitiam"), Word("ROYAL"), SCRIBBLE], (480, 360), 0),
]
MISSPELLED_CLOSING_TAG = 3  # image number whose XML ends with `</Annotataions>`


@dataclass(frozen=True)
class Line:
    """One annotated text line: what the XML says (`label` is `###` for don't-care lines)."""

    label: str
    drawn: str  # the text in the image (the Chinese characters behind a `###`)
    points: tuple[tuple[int, int], ...]  # 14 vertices
    legible: bool
    curved: bool
    vertical: bool


@dataclass(frozen=True)
class Scene:
    image_id: str
    pixels: np.ndarray
    lines: tuple[Line, ...]


def fourteen_points(points: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """A quad or curved polygon as the labelling tool stores it: 7 vertices on each long side."""
    return tuple((int(round(x)), int(round(y))) for x, y in resample_polygon(points, 7))


@lru_cache(maxsize=4)
def scenes(seed: int = 1500) -> tuple[Scene, ...]:
    """The rendered images and their ground truth (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for n, (words, (width, height), vertical_every) in enumerate(PLAN, start=1):
        pixels, placed = render_words(
            rng,
            words,
            width=width,
            height=height,
            vertical_every=vertical_every,
            curved_every=2,
            curve_points=7,
        )
        lines = []
        for w in placed:
            legible = w.legible and w.language == "Latin"  # the updated release: every Chinese line is `###`
            lines.append(
                Line(
                    w.text if legible else IGNORE,
                    w.text,
                    fourteen_points(w.points),
                    legible,
                    w.curved,
                    w.vertical,
                )
            )
        out.append(Scene(f"{n:04d}", pixels, tuple(lines)))
    return tuple(out)


def _char_centres(line: Line) -> list[tuple[int, int]]:
    """One point per non-space character, spread along the centre line (the `<pts>` annotations)."""
    count = len(line.label.replace(" ", ""))
    pts = np.asarray(line.points, dtype=np.float64)
    top, bottom = pts[:7], pts[7:][::-1]
    centre = (top + bottom) / 2
    t = (np.arange(count) + 0.5) / max(count, 1) * 6
    xs = np.interp(t, np.arange(7), centre[:, 0])
    ys = np.interp(t, np.arange(7), centre[:, 1])
    return [(int(round(x)), int(round(y))) for x, y in zip(xs, ys)]


def xml_document(scene: Scene, *, misspelled_end: bool = False) -> bytes:
    """The image's `<NNNN>.xml`, laid out as the official README's example."""
    out = ["<Annotations>", f" <image file={quoteattr(scene.image_id + '.jpg')}>"]
    for line in scene.lines:
        pts = np.asarray(line.points)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        out.append(f'  <box height="{y1 - y0}" left="{x0}" top="{y0}" width="{x1 - x0}">')
        out.append(f"   <label>{escape(line.label)}</label>")
        out.append(f"   <segs>{','.join(f'{x},{y}' for x, y in line.points)}</segs>")
        if line.legible:
            out += [f'   <pts x="{x}" y="{y}" />' for x, y in _char_centres(line)]
        out.append("  </box>")
    out += [" </image>", "</Annotataions>" if misspelled_end else "</Annotations>"]
    return ("\n".join(out) + "\n").encode("utf-8")


def write(out_dir: Path, *, seed: int = 1500) -> list[Path]:
    """Write the two archives into `out_dir`; returns their paths."""
    images: dict[str, bytes] = {}
    labels: dict[str, bytes] = {}
    for n, scene in enumerate(scenes(seed), start=1):
        images[f"train_images/{scene.image_id}.jpg"] = jpeg(scene.pixels)
        labels[f"ctw1500_train_labels/{scene.image_id}.xml"] = xml_document(
            scene, misspelled_end=n == MISSPELLED_CLOSING_TAG
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_zip(out_dir / ARCHIVES["images"], images),
        write_zip(out_dir / ARCHIVES["annotations"], labels),
    ]
