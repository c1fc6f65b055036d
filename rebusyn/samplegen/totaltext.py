"""A sample of Total-Text in its native layout: the images and all three ground-truth releases.

- totaltext.zip: `Images/Train/img<N>.jpg` (one `.JPG`) and `Images/Test/img<N>.jpg`
- TT_new_train_GT.zip (refined training GT): `Train/gt_img<N>.mat`, variable `gt`, 10 vertices per word,
  row vectors of doubles [?: layout inside the zip and the vector shape are inferred from public loaders]
- groundtruth_text.zip (legacy .mat): `Groundtruth/Polygon/{Train,Test}/poly_gt_img<N>.mat`, variable
  `polygt` (int16 row vectors), plus `Groundtruth/Rectangular/...` boxes [?: names inside that folder]
- txt_format.zip (legacy .txt): `{Train,Test}/poly_gt_img<N>.txt`, the Python 2 `str()` of the `.mat` cells

Every `.mat` is an N x 6 cell array (`'x:'`, xs, `'y:'`, ys, transcription, orientation), written by
`scipy.io.savemat` with a fixed header (MATLAB writes the creation time there).

Traps: curved words with 6, 8, 10, 12, 14 and 20 vertices in the legacy GT (20 makes numpy wrap the record
over two lines), 5- and 7-vertex (odd) polygons, a 3-vertex polygon (`degenerate_polygon`), a vertical word,
don't-care scribbles (`#` / orientation `#`, one with an empty transcription: `[]` in the txt, an empty char
in the `.mat`), `Café` (`u'Caf\\xe9'`), `McDonald's` (`u"McDonald's"`), `RM1,000` (comma), `[06]`
(brackets), `--` (empty under the 36-character policy), a 34-letter word (too long), a BOM at the start of
one txt file, ids past 9 (`img9`, `img10`, `img100`), and test-split images and ground truth that a training
build must not read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.io

from rebusyn.samplegen._rrc_scene import Word, jpeg, render_words
from rebusyn.samplegen.archive import write_zip

ARCHIVES = {
    "images": "totaltext.zip",
    "refined": "TT_new_train_GT.zip",
    "legacy_mat": "groundtruth_text.zip",
    "legacy_txt": "txt_format.zip",
}
DENSE = 13  # vertices per boundary the curved words are rendered with; both GTs are resampled from them
# MATLAB's own header text: scipy would write the current time, changing the checksums on every run.
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: PCWIN64, Created on: Fri Dec 16 11:23:37 2016"


@dataclass(frozen=True)
class SceneSpec:
    number: int
    words: tuple[str | None, ...]  # None: an illegible scribble (a don't-care region)
    size: tuple[int, int] = (480, 360)
    curve_points: int = 5  # every 2nd legible word is curved; legacy polygon: 2 x curve_points vertices
    vertical_every: int = 0
    odd: int = 0  # the first straight word's legacy polygon gets this many vertices (5 or 7)
    test: bool = False
    ext: str = "jpg"


PLAN = (
    SceneSpec(9, ("PETROSAINS", "Genting", "Café", None)),
    SceneSpec(10, ("McDonald's", "RM1,000", "EXIT", None), curve_points=3, odd=5),
    SceneSpec(11, ("Supercalifragilisticexpialidocious", "[06]", "--"), (720, 360), 4, ext="JPG"),
    SceneSpec(12, ("PAUL", "nauGHTY", "Hotel", "BAKERY", None), curve_points=7, vertical_every=3),
    SceneSpec(13, ("Welcome", "Station", "Sushi"), (560, 400), curve_points=10),
    SceneSpec(14, ("Theatre", "Books", "Garden", None), curve_points=6, odd=7),
    SceneSpec(100, ("Ramen", "Noodles", "Kopitiam"), curve_points=7),
    SceneSpec(1, ("LEAKED", "TESTSET"), test=True),
    SceneSpec(2, ("HOLDOUT", None), test=True),
)
# Ground truth that is not a rendered word: (image number, legacy-only entry) — a 3-vertex polygon, which
# TextSnake-style loaders skip as "too few points".
DEGENERATE = {10: ("TINY", ((20, 20), (60, 22), (40, 40)))}
EMPTY_TEXT_IMAGE = 12  # its first scribble has an empty transcription in the legacy releases


@dataclass(frozen=True)
class GtWord:
    """One ground-truth entry. `text` is the refined GT's transcription (`#` for scribbles), `legacy_text`
    the legacy releases' one; `points` the refined 10-vertex polygon (None: not in the refined GT)."""

    text: str
    legacy_text: str
    legible: bool
    ornt: str
    legacy_points: tuple[tuple[int, int], ...]
    points: tuple[tuple[float, float], ...] | None
    curved: bool = False
    vertical: bool = False


@dataclass(frozen=True)
class Scene:
    image_id: str
    file_name: str
    test: bool
    pixels: np.ndarray
    words: tuple[GtWord, ...]


def _resample(chain: np.ndarray, count: int) -> np.ndarray:
    """`count` points evenly spaced by arc length along a polyline (ends kept)."""
    dist = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(chain, axis=0), axis=1))]
    t = np.linspace(0.0, dist[-1], count)
    return np.stack([np.interp(t, dist, chain[:, 0]), np.interp(t, dist, chain[:, 1])], axis=1)


def resample_polygon(points: tuple[tuple[int, int], ...], per_side: int) -> np.ndarray:
    """A quad or curved polygon (top boundary, then bottom boundary back) with `per_side` vertices on each
    boundary, evenly spaced by arc length, starting at the top-left."""
    pts = np.asarray(points, dtype=np.float64)
    half = len(pts) // 2
    return np.vstack([_resample(pts[:half], per_side), _resample(pts[half:], per_side)])


def ten_points(points: tuple[tuple[int, int], ...]) -> tuple[tuple[float, float], ...]:
    """The refined GT shape: 5 vertices along the top boundary from the top-left, 5 back along the bottom."""
    return tuple((round(float(x), 1), round(float(y), 1)) for x, y in resample_polygon(points, 5))


def _with_extra_vertices(quad: tuple[tuple[int, int], ...], count: int) -> tuple[tuple[int, int], ...]:
    """A quad with midpoints inserted: 5 vertices (top midpoint) or 7 (top thirds, bottom midpoint)."""
    tl, tr, br, bl = (np.asarray(p, dtype=np.float64) for p in quad)
    if count == 5:
        pts = [tl, (tl + tr) / 2, tr, br, bl]
    else:
        pts = [tl, tl + (tr - tl) / 3, tl + 2 * (tr - tl) / 3, tr, br, (br + bl) / 2, bl]
    return tuple((int(round(x)), int(round(y))) for x, y in pts)


def _orientation(points: tuple[tuple[int, int], ...], curved: bool, vertical: bool) -> str:
    if curved:
        return "c"
    (x0, y0), (x1, y1) = points[0], points[1]
    angle = abs(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
    return "h" if angle < 3 and not vertical else "m"


@lru_cache(maxsize=4)
def scenes(seed: int = 2017) -> tuple[Scene, ...]:
    """The rendered images and their ground truth (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in PLAN:
        words = [Word("xxxx", legible=False) if w is None else Word(w) for w in spec.words]
        pixels, placed = render_words(
            rng,
            words,
            width=spec.size[0],
            height=spec.size[1],
            vertical_every=spec.vertical_every,
            curved_every=2,
            curve_points=DENSE,
        )
        gt: list[GtWord] = []
        odd_done = empty_done = False
        for w in placed:
            if not w.legible:
                legacy_text = "#"
                if spec.number == EMPTY_TEXT_IMAGE and not empty_done:
                    legacy_text, empty_done = "", True
                gt.append(GtWord("#", legacy_text, False, "#", w.points, ten_points(w.points)))
                continue
            legacy = w.points
            if w.curved:
                coarse = resample_polygon(w.points, spec.curve_points)
                legacy = tuple((int(round(x)), int(round(y))) for x, y in coarse)
            elif spec.odd and not odd_done and not w.vertical:
                legacy, odd_done = _with_extra_vertices(w.points, spec.odd), True
            ornt = _orientation(w.points, w.curved, w.vertical)
            gt.append(GtWord(w.text, w.text, True, ornt, legacy, ten_points(w.points), w.curved, w.vertical))
        if spec.number in DEGENERATE:
            text, pts = DEGENERATE[spec.number]
            gt.append(GtWord(text, text, True, "h", pts, None))
        image_id = f"img{spec.number}"
        out.append(Scene(image_id, f"{image_id}.{spec.ext}", spec.test, pixels, tuple(gt)))
    return tuple(out)


# --- native encodings ----------------------------------------------------------------------------------


def mat_file(variable: str, rows: list[list[object]]) -> bytes:
    """A MATLAB v5 file (compressed, as MATLAB saves) holding one N x len(row) cell array."""
    cells = np.empty((len(rows), len(rows[0]) if rows else 6), dtype=object)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            cells[i, j] = value
    buf = io.BytesIO()
    scipy.io.savemat(buf, {variable: cells}, format="5", do_compression=True)
    data = buf.getvalue()
    return MAT_HEADER.ljust(116) + data[116:]


def _xy(points: tuple[tuple[float, float], ...], dtype: type) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points, dtype=np.float64)
    return pts[:, 0].astype(dtype).reshape(1, -1), pts[:, 1].astype(dtype).reshape(1, -1)


def gt_mat(scene: Scene, *, refined: bool) -> bytes:
    """The refined release (`gt`, 10-vertex polygons of doubles) or the legacy one (`polygt`, int16)."""
    rows = []
    for w in scene.words:
        points = w.points if refined else w.legacy_points
        if points is not None:
            xs, ys = _xy(points, np.float64 if refined else np.int16)
            rows.append(["x:", xs, "y:", ys, w.text if refined else w.legacy_text, w.ornt])
    return mat_file("gt" if refined else "polygt", rows)


def rectangular_mat(scene: Scene) -> bytes:
    """The legacy release's axis-aligned boxes: Xmin, Ymin, Xmax, Ymax, Width, Height, Text, Orientation."""
    rows = []
    for w in scene.words:
        pts = np.asarray(w.legacy_points)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        box = [np.array([[v]], dtype=np.int16) for v in (x0, y0, x1, y1, x1 - x0, y1 - y0)]
        rows.append([*box, w.legacy_text, w.ornt])
    return mat_file("rectgt", rows)


def _py2_list(value: str) -> str:
    """What Python 2 printed for a 1-element numpy unicode array (`[u'PAUL']`), or `[]` when empty."""
    return f"[u{ascii(value)}]" if value else "[]"


def legacy_txt(scene: Scene, *, bom: bool = False) -> bytes:
    lines = []
    for w in scene.words:
        xs, ys = _xy(w.legacy_points, np.int16)
        # str() of a numpy array wraps at 75 columns: long polygons span several physical lines
        lines.append(
            f"x: {xs}, y: {ys}, ornt: {_py2_list(w.ornt)}, transcriptions: {_py2_list(w.legacy_text)}\n"
        )
    return (b"\xef\xbb\xbf" if bom else b"") + "".join(lines).encode("ascii")


def write(out_dir: Path, *, seed: int = 2017) -> list[Path]:
    """Write the four archives into `out_dir`; returns their paths."""
    images: dict[str, bytes] = {}
    refined: dict[str, bytes] = {}
    mats: dict[str, bytes] = {}
    txts: dict[str, bytes] = {}
    for scene in scenes(seed):
        split = "Test" if scene.test else "Train"
        images[f"Images/{split}/{scene.file_name}"] = jpeg(scene.pixels)
        if not scene.test:  # the refined release has no new test ground truth
            refined[f"Train/gt_{scene.image_id}.mat"] = gt_mat(scene, refined=True)
        mats[f"Groundtruth/Polygon/{split}/poly_gt_{scene.image_id}.mat"] = gt_mat(scene, refined=False)
        mats[f"Groundtruth/Rectangular/{split}/rect_gt_{scene.image_id}.mat"] = rectangular_mat(scene)
        txts[f"{split}/poly_gt_{scene.image_id}.txt"] = legacy_txt(scene, bom=scene.image_id == "img10")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_zip(out_dir / ARCHIVES["images"], images),
        write_zip(out_dir / ARCHIVES["refined"], refined),
        write_zip(out_dir / ARCHIVES["legacy_mat"], mats),
        write_zip(out_dir / ARCHIVES["legacy_txt"], txts),
    ]
