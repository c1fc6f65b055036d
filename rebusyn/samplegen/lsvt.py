"""A sample of ICDAR 2019 LSVT in its native layout: the fully annotated training files of RRC Challenge 16.

- train_full_images_0.tar.gz: `train_full_images_0/gt_<N>.jpg` for the first half of the ids
- train_full_images_1.tar.gz: `train_full_images_1/gt_<N>.jpg` for the rest
- train_full_labels.json: `{"gt_<N>": [{"transcription": ..., "points": [[x, y], ...], "illegibility":
  bool}, ...]}` (no `language` field), UTF-8 written as is (Chinese not escaped)

Traps: text lines, mostly Chinese (dropped by PARSeq's CJK rule), mixed Chinese/Latin lines, Latin lines
with spaces, PARSeq's `#` whitelist (`#Find YOUR Fun#`, `Story #`, `*0#`) and blacklist (`LOFTINESS*`),
a `#` line that is dropped, illegible lines (`###`, `illegibility: true`), curved lines (6- and 8-vertex
polygons), vertical lines (Chinese stacked upright, Latin rotated) and images split over two archives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._rrc_scene import SceneWord, Word, jpeg, render_words
from rebusyn.samplegen.archive import write_tar_gz

# Per image: text lines (None = illegible), canvas size, vertical_every, curved_every, curve_points.
PLAN: list[tuple[list[str | None], tuple[int, int], int, int, int]] = [
    (["一站式购物中心", "Story #", "COFFEE", None], (480, 360), 0, 3, 4),
    (["欢迎光临", "#Find YOUR Fun#", "Open Daily"], (560, 360), 0, 3, 3),
    (["Wi-Fi", "中国银行", "*0#", None], (480, 360), 2, 0, 4),
    (["停车场", "LOFTINESS*", "WELCOME", "Exit"], (480, 400), 0, 3, 4),
    (["24小时营业", "#5 Gate", "Café", None], (480, 360), 0, 3, 3),
    (["KFC肯德基", "Story #", "Bakery", "Noodle Bar"], (512, 384), 0, 3, 4),
    (["美食广场", "Coffee", "Books", None], (480, 360), 0, 2, 3),
    (["Hotel", "书店", "Taxi", "Pharmacy"], (480, 400), 2, 0, 4),
    (["茶餐厅", "OPEN", "SALE", None], (440, 360), 0, 3, 4),
    (["中文招牌", "Metro", "Garden"], (480, 360), 0, 3, 3),
]
SPLIT = 5  # gt_0..gt_4 in train_full_images_0, the rest in train_full_images_1 [?: real split unknown]

ARCHIVES = {
    "images_0": "train_full_images_0.tar.gz",
    "images_1": "train_full_images_1.tar.gz",
    "annotations": "train_full_labels.json",
}


@dataclass(frozen=True)
class Scene:
    image_id: str
    pixels: np.ndarray
    words: tuple[SceneWord, ...]


@lru_cache(maxsize=4)
def scenes(seed: int = 1916) -> tuple[Scene, ...]:
    """The rendered images and their ground truth (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for n, (spec, (width, height), vertical_every, curved_every, curve_points) in enumerate(PLAN):
        words = [Word("xxxxx", legible=False) if w is None else Word(w, language="") for w in spec]
        pixels, placed = render_words(
            rng,
            words,
            width=width,
            height=height,
            vertical_every=vertical_every,
            curved_every=curved_every,
            curve_points=curve_points,  # 3 or 4: curved lines get 6 or 8 vertices
        )
        out.append(Scene(f"gt_{n}", pixels, tuple(placed)))
    return tuple(out)


def write(out_dir: Path, *, seed: int = 1916) -> list[Path]:
    """Write the two image archives and the JSON into `out_dir`; returns their paths."""
    parts: list[dict[str, bytes]] = [{}, {}]
    labels: dict[str, list[dict]] = {}
    for n, scene in enumerate(scenes(seed)):
        part = 0 if n < SPLIT else 1
        parts[part][f"train_full_images_{part}/{scene.image_id}.jpg"] = jpeg(scene.pixels)
        labels[scene.image_id] = [
            {
                "transcription": w.text if w.legible else "###",
                "points": [list(p) for p in w.points],
                "illegibility": not w.legible,
            }
            for w in scene.words
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    labels_path = out_dir / ARCHIVES["annotations"]
    labels_path.write_bytes(json.dumps(labels, ensure_ascii=False).encode("utf-8"))
    return [
        write_tar_gz(out_dir / ARCHIVES["images_0"], parts[0]),
        write_tar_gz(out_dir / ARCHIVES["images_1"], parts[1]),
        labels_path,
    ]
