"""A sample of ICDAR 2019 ArT in its native layout: the Task 1 and Task 2 training files of RRC Challenge 14.

- train_images.tar.gz: `train_images/gt_<N>.jpg` (N from 0)
- train_labels.json: `{"gt_<N>": [{"points": [[x, y], ...], "transcription": ..., "language": "Latin" |
  "Chinese", "illegibility": bool}, ...]}`, in key order, non-ASCII escaped as \\uXXXX (json.dumps default)
- train_task2_images.tar.gz: `train_task2_images/gt_<N>_<k>.jpg`, the axis-aligned cut-out of every word
- train_task2_labels.json: `{"gt_<N>_<k>": [ {one entry, points relative to the crop} ]}`

Traps: curved words as 8-, 10-, 12- and 14-vertex polygons, vertical words (upright boxes), illegible
regions (`###`, `illegibility: true`), Chinese words (filtered by default), PARSeq's `#` rule with its
`LocaL#3` exception, a diacritic, an apostrophe, text the 36-character policy empties, a word longer than
25 characters, and image ids past 9 (`gt_10` sorts after `gt_9`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._rrc_scene import SceneWord, Word, jpeg, render_words
from rebusyn.samplegen.archive import write_tar_gz

# Per image: words (Chinese ones first, so that render_scene does not bend them), canvas size, and
# vertical_every / curved_every / curve_points for render_scene. `None` marks an illegible region.
_ZH = "Chinese"
PLAN: list[tuple[list[str | tuple[str, str] | None], tuple[int, int], int, int, int]] = [
    (["PETROSAINS", "Genting", "LocaL#3", None], (480, 360), 0, 2, 4),
    ([("中文", _ZH), "Café", "McDonald's", "BAKERY", None], (480, 360), 0, 3, 5),
    (["Supercalifragilisticexpialidocious", "Hotel", "--"], (720, 360), 0, 0, 7),
    (["COFFEE", "OPEN", "#1", "Pizza", None], (480, 400), 3, 2, 6),
    ([("招牌", _ZH), "Market", "Books", "CIRCUS"], (440, 400), 0, 2, 7),
    (["Ramen", "Garden", "Theatre", None], (512, 352), 0, 2, 4),
    ([("欢迎光临", _ZH), "Kopitiam", "ROYAL", "Station", "Tea"], (480, 360), 4, 2, 5),
    (["Welcome", "Sushi", "#1", "Bistro", None], (480, 360), 0, 2, 6),
    ([("大酒店", _ZH), "Genting", "LocaL#3", "EXIT"], (480, 400), 0, 2, 7),
    (["Station", "Books", "Circus", "Noodles", None], (440, 400), 3, 2, 5),
    ([("茶餐厅", _ZH), "Cafe", "Hotel", "Market"], (512, 352), 0, 2, 6),
]

ARCHIVES = {
    "images": "train_images.tar.gz",
    "annotations": "train_labels.json",
    "crops": "train_task2_images.tar.gz",
    "crop_annotations": "train_task2_labels.json",
}


@dataclass(frozen=True)
class Scene:
    image_id: str
    pixels: np.ndarray
    words: tuple[SceneWord, ...]


@lru_cache(maxsize=4)
def scenes(seed: int = 2019) -> tuple[Scene, ...]:
    """The rendered images and their ground truth (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for n, (spec, (width, height), vertical_every, curved_every, curve_points) in enumerate(PLAN):
        words = [
            Word("xxxx", legible=False)
            if w is None
            else Word(w[0], language=w[1])
            if isinstance(w, tuple)
            else Word(w)
            for w in spec
        ]
        pixels, placed = render_words(
            rng,
            words,
            width=width,
            height=height,
            vertical_every=vertical_every,
            curved_every=curved_every,
            curve_points=curve_points,  # 4..7: curved words get 8, 10, 12 or 14 vertices
        )
        out.append(Scene(f"gt_{n}", pixels, tuple(placed)))
    return tuple(out)


def _entry(word: SceneWord) -> dict:
    return {
        "points": [list(p) for p in word.points],
        "transcription": word.text if word.legible else "###",
        "language": word.language,
        "illegibility": not word.legible,
    }


def write(out_dir: Path, *, seed: int = 2019) -> list[Path]:
    """Write the two archives and two JSON files into `out_dir`; returns their paths."""
    images: dict[str, bytes] = {}
    labels: dict[str, list[dict]] = {}
    crops: dict[str, bytes] = {}
    crop_labels: dict[str, list[dict]] = {}
    for scene in scenes(seed):
        images[f"train_images/{scene.image_id}.jpg"] = jpeg(scene.pixels)
        labels[scene.image_id] = [_entry(w) for w in scene.words]
        h, w = scene.pixels.shape[:2]
        for k, word in enumerate(scene.words):
            pts = np.asarray(word.points)
            x0, y0 = np.maximum(pts.min(axis=0), 0)
            x1, y1 = np.minimum(pts.max(axis=0), [w, h])
            key = f"{scene.image_id}_{k}"
            crops[f"train_task2_images/{key}.jpg"] = jpeg(scene.pixels[y0:y1, x0:x1])
            entry = _entry(word)
            crop_labels[key] = [
                {
                    "transcription": entry["transcription"],
                    "points": [[int(x - x0), int(y - y0)] for x, y in word.points],
                    "language": entry["language"],
                    "illegibility": entry["illegibility"],
                }
            ]
    out_dir.mkdir(parents=True, exist_ok=True)
    labels_path = out_dir / ARCHIVES["annotations"]
    labels_path.write_bytes(json.dumps(labels).encode("ascii"))
    crop_labels_path = out_dir / ARCHIVES["crop_annotations"]
    crop_labels_path.write_bytes(json.dumps(crop_labels).encode("ascii"))
    return [
        write_tar_gz(out_dir / ARCHIVES["images"], images),
        labels_path,
        write_tar_gz(out_dir / ARCHIVES["crops"], crops),
        crop_labels_path,
    ]
