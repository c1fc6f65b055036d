"""A sample of OpenVINO's "Open Images V5 Text Annotation" in its native layout: the five annotation
JSONs PARSeq converted and the five Open Images subset tars they annotate.

- `train_1.tar.gz`, `train_2.tar.gz`, `train_5.tar.gz`, `train_f.tar.gz`, `validation.tar.gz` (CVDF's
  packing: `train_<x>/<ImageID>.jpg`, every ImageID of subset train_<x> starting with <x>; `validation/`).
- `text_spotting_openimages_v5_<subset>.json`: COCO instances as OpenVINO's `TextOnlyCocoAnnotation`
  writes them (json.dump defaults): `type`, `images` (`file_name`, `height`, `width`, `id`), `categories`
  (one: text), `annotations` (`bbox` [x, y, w, h] of the polygon, `segmentation` [[x1, y1, ...]] with int
  coordinates, `attributes` {`transcription`, `legible`, `language`, `chars`}, `ignore` 0, `id`,
  `image_id`, `area`, `iscrowd` = 1 - legible, `category_id` 1); ids 0-based and contiguous per file.

Traps carried: the same ids in every file, `file_name` paths that do not match the tars' folders
(`openimages_v5/train_1/...`, `openimages_v5/val/...`: the real prefix is undocumented), polygons starting
at any vertex in either direction and with 5-6 vertices, curved words as 14-vertex polygons, vertical
words, illegible words (empty transcription, `legible: false`, `iscrowd: 1`), and a non-English
(Cyrillic) word.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._coco_fixture import (
    Placed,
    Scene,
    Spec,
    json_bytes,
    render,
    scrambled,
    with_midpoint,
)
from rebusyn.samplegen.archive import write_tar_gz

SUBSETS = ("train_1", "train_2", "train_5", "train_f", "validation")
SEED = 2020


def json_name(subset: str) -> str:
    return f"text_spotting_openimages_v5_{subset}.json"


def tar_name(subset: str) -> str:
    return f"{subset}.tar.gz"


def _w(text: str, *, language: str = "english") -> Spec:
    return Spec(text, True, {"transcription": text, "language": language})


def _illegible() -> Spec:
    return Spec("xxxx", False, {"transcription": "", "language": "english"})


# (subset, ImageID, words, vertical_every, curved_every)
PLAN: list[tuple[str, str, list[Spec], int, int]] = [
    ("train_1", "1a2b3c4d5e6f7081", [_w("Exchange"), _w("Bank"), _illegible(), _w("24h")], 0, 0),
    ("train_1", "1f0e9d8c7b6a5948", [_w("GARAGE"), _w("Open"), _w("ВЫХОД", language="other")], 0, 2),
    ("train_2", "2468ace013579bdf", [_w("Cinema"), _w("ROAD"), _w("Kiosk")], 2, 0),
    ("train_2", "2b4d6f8091a3c5e7", [_w("Dental"), _illegible(), _w("Grill"), _w("MENU")], 0, 0),
    ("train_5", "5c0ffee15a7e0001", [_w("Harbour"), _w("TICKETS"), _w("Gate-3")], 0, 2),
    ("train_5", "5eed5eed5eed5eed", [_w("Library"), _w("Quiet")], 2, 0),
    ("train_f", "f00dfacecafe0042", [_w("Bakery"), _w("FRESH"), _w("bread")], 0, 0),
    ("train_f", "feedbeef12345678", [_w("Station"), _illegible(), _w("Tram")], 2, 0),
    ("validation", "0123456789abcdef", [_w("Museum"), _w("Entrance")], 0, 2),
    ("validation", "9876543210fedcba", [_w("Parking"), _w("P+R"), _w("Level")], 3, 0),
]  # fmt: skip


def file_name(subset: str, image_id: str) -> str:
    """What the JSON says (relative to wherever its author unpacked the images; not the tars' folders)."""
    folder = "val" if subset == "validation" else subset
    return f"openimages_v5/{folder}/{image_id}.jpg"


@lru_cache(maxsize=2)
def scenes(seed: int = SEED) -> tuple[Scene, ...]:
    """The ground truth: every image of PLAN as drawn, with its words' native fields."""
    rng = np.random.default_rng(seed)
    out = []
    for subset, image_id, specs, vertical_every, curved_every in PLAN:
        data, placed = render(rng, specs, vertical_every=vertical_every, curved_every=curved_every)
        out.append(Scene(image_id, data, 480, 360, tuple(placed), {"subset": subset}))
    return tuple(out)


def polygon_of(word: Placed, n: int) -> list[int]:
    """The word's polygon as CVAT gave it: int coordinates, any start vertex, either direction, sometimes
    an extra vertex. `n` (the annotation's number in its file) picks the variant."""
    if word.curved:
        pts = scrambled(word.points, start=n + 3, reverse=n % 2 == 0)
    elif n % 4 == 0:
        pts = scrambled(word.points, start=2, reverse=True)
    elif n % 4 == 1:
        pts = scrambled(with_midpoint(word.points, 0), start=1, reverse=False)  # 5 vertices
    elif n % 4 == 2:
        pts = scrambled(word.points, start=3, reverse=False)
    else:
        pts = scrambled(with_midpoint(with_midpoint(word.points, 0), 3), start=4, reverse=True)  # 6 vertices
    return [int(float(v)) for p in pts for v in p]  # the converter's int(float(x))


def annotation_json(subset: str, seed: int = SEED) -> dict:
    """text_spotting_openimages_v5_<subset>.json for the scenes of that subset."""
    images: list[dict] = []
    annotations: list[dict] = []
    for scene in scenes(seed):
        if scene.fields["subset"] != subset:
            continue
        image_index = len(images)
        images.append(
            {"file_name": file_name(subset, scene.image_id), "height": scene.height, "width": scene.width,
             "id": image_index}
        )  # fmt: skip
        for word in scene.words:
            polygon = polygon_of(word, len(annotations))
            xs, ys = polygon[0::2], polygon[1::2]
            bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            legible = word.spec.legible
            annotations.append(
                {
                    "bbox": bbox,
                    "segmentation": [polygon],
                    "attributes": {
                        "transcription": word.spec.fields["transcription"],
                        "legible": legible,
                        "language": word.spec.fields["language"],
                        "chars": [],
                    },
                    "ignore": 0,
                    "id": len(annotations),
                    "image_id": image_index,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": 1 - int(legible),
                    "category_id": 1,
                }
            )
    return {
        "type": "instances",
        "images": images,
        "categories": [{"supercategory": "none", "name": "text", "id": 1}],
        "annotations": annotations,
    }


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write the five subset tars and the five JSONs into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for subset in SUBSETS:
        members = {f"{subset}/{s.image_id}.jpg": s.jpeg for s in scenes(seed) if s.fields["subset"] == subset}
        paths.append(write_tar_gz(out_dir / tar_name(subset), members))
    for subset in SUBSETS:
        path = out_dir / json_name(subset)
        path.write_bytes(json_bytes(annotation_json(subset, seed)))
        paths.append(path)
    return paths
