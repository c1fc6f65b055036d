"""A sample of COCO-Text v2 in its native layout: cocotext.v2.zip (cocotext.v2.json) and train2014.zip.

- train2014.zip: `train2014/COCO_train2014_%012d.jpg`, also images without any text (most COCO images).
- cocotext.v2.json: `cats`, `info`, `imgs` / `anns` / `imgToAnns` dicts keyed by *string* ids holding int
  `id`/`image_id` fields, `imgToAnns` lists of *int* annotation ids, `set` train/val.

Traps carried: HTML entities in `utf8_string` (`AT&amp;T`, `Ben&#39;s`, `&quot;`), surrounding spaces, `*`
unreadable-character marks at either end, `#` inside labels (and `#` alone, which PARSeq keeps), `not
english` words (German, Cyrillic), `handwritten` and `others` classes, illegible boxes with an empty
`utf8_string` and language `na`, masks starting at any vertex and running either way round, masks with an
extra vertex, a curved word as a 14-vertex mask, vertical words, a word too long for max-len 25, val
images, images listed with no annotations, and an image id (9) whose string key sorts after "10..." keys.
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
    rounded,
    scrambled,
    with_midpoint,
    xywh,
)
from rebusyn.samplegen.archive import write_zip

ANNOTATIONS = "cocotext.v2.zip"
JSON_NAME = "cocotext.v2.json"
IMAGES = "train2014.zip"
SEED = 2016
WIDTH, HEIGHT = 480, 360


def _w(
    text: str, utf8: str | None = None, *, language: str = "english", cls: str = "machine printed"
) -> Spec:
    return Spec(
        text, True, {"utf8_string": text if utf8 is None else utf8, "language": language, "class": cls}
    )


def _illegible(language: str = "na") -> Spec:
    return Spec("xxxx", False, {"utf8_string": "", "language": language, "class": "machine printed"})


# (image id, set, words, vertical_every, curved_every): the words as drawn, with their JSON fields
PLAN: list[tuple[int, str, list[Spec], int, int]] = [
    (9, "train", [_w("STOP"), _w("AT&T", "AT&amp;T"), _w("Ben's", "Ben&#39;s"), _illegible(),
                  _w("EXIT")], 0, 0),
    (100022, "train", [_w("Coffee", " Coffee "), _w("*ILK"), _w("Straße", language="not english"),
                       _w("Taxi"), _w("PIZZ*")], 4, 0),
    (1001, "train", [_w("No#5"), _w("#"), _w("Hotel"), _w("hello", cls="handwritten"),
                     _illegible("english")], 0, 0),
    (522579, "train", [_w('"FRESH"', "&quot;FRESH&quot;"), _w("Sale", cls="others"),
                       _w("МОСКВА", language="not english"), _w("CIRCUS")], 0, 4),
    (262161, "train", [_w("littlefilmfestival.it/info/it"), _w("BUS 42"), _w("OPEN"), _w("Park")], 3, 0),
    (196610, "val", [_w("Market"), _w("Books"), _illegible(), _w("Metro")], 0, 0),
    (419096, "val", [_w("Welcome"), _w("Pharmacy"), _w("Delta")], 3, 0),
]  # fmt: skip
SIZES = {262161: (640, 427), 419096: (360, 480)}  # (width, height); the others are WIDTH x HEIGHT
NO_TEXT = [30, 34]  # listed in `imgs` with an empty imgToAnns list
NOT_LISTED = [36]  # in train2014.zip only


def file_name(image_id: int) -> str:
    return f"COCO_train2014_{image_id:012d}.jpg"


@lru_cache(maxsize=2)
def scenes(seed: int = SEED) -> tuple[Scene, ...]:
    """The ground truth: every image of PLAN as drawn, with its words and their native fields."""
    rng = np.random.default_rng(seed)
    out = []
    for image_id, split, specs, vertical_every, curved_every in PLAN:
        width, height = SIZES.get(image_id, (WIDTH, HEIGHT))
        data, placed = render(
            rng, specs, width=width, height=height, vertical_every=vertical_every, curved_every=curved_every
        )
        out.append(Scene(str(image_id), data, width, height, tuple(placed), {"set": split}))
    return tuple(out)


def mask_of(word: Placed, n: int) -> list[float]:
    """The word's polygon as COCO-Text stores it: from any vertex, either way round, sometimes with an
    extra vertex. `n` (the annotation's running number) picks the variant."""
    if word.curved:
        pts = scrambled(word.points, start=n, reverse=n % 2 == 1)
    elif n % 4 == 0:
        pts = scrambled(word.points, start=0, reverse=True)  # TL, BL, BR, TR (MMOCR's sample)
    elif n % 4 == 1:
        pts = scrambled(word.points, start=1, reverse=False)  # TR, BR, BL, TL (bgshih/cocotext data)
    elif n % 4 == 2:
        pts = scrambled(with_midpoint(word.points, 2), start=3, reverse=False)  # 5 vertices
    else:
        pts = list(word.points)
    return rounded(pts)


def annotation_json(seed: int = SEED) -> dict:
    """cocotext.v2.json for the scenes (without the images)."""
    imgs: dict[str, dict] = {}
    anns: dict[str, dict] = {}
    img_to_anns: dict[str, list[int]] = {}
    ann_id = 1200000
    n = 0
    for scene in scenes(seed):
        image_id = int(scene.image_id)
        imgs[str(image_id)] = _img(image_id, scene.width, scene.height, scene.fields["set"])
        img_to_anns[str(image_id)] = []
        for word in scene.words:
            mask = mask_of(word, n)
            bbox = xywh(np.reshape(mask, (-1, 2)))
            anns[str(ann_id)] = {
                "mask": mask,
                "class": word.spec.fields["class"],
                "bbox": bbox,
                "image_id": image_id,
                "id": ann_id,
                "language": word.spec.fields["language"],
                "area": round(bbox[2] * bbox[3], 2),
                "utf8_string": word.spec.fields["utf8_string"],
                "legibility": "legible" if word.spec.legible else "illegible",
            }
            img_to_anns[str(image_id)].append(ann_id)
            ann_id += 7
            n += 1
    for image_id in NO_TEXT:
        imgs[str(image_id)] = _img(image_id, WIDTH, HEIGHT, "train")
        img_to_anns[str(image_id)] = []
    return {
        "cats": {},
        "info": {
            "author": "sample mirror",
            "version": "2.0",
            "description": "COCO-Text v2 layout, rendered images",
        },
        "imgs": imgs,
        "anns": anns,
        "imgToAnns": img_to_anns,
    }


def _img(image_id: int, width: int, height: int, split: str) -> dict:
    return {"file_name": file_name(image_id), "height": height, "width": width, "id": image_id, "set": split}


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write cocotext.v2.zip and train2014.zip into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {f"train2014/{file_name(int(s.image_id))}": s.jpeg for s in scenes(seed)}
    rng = np.random.default_rng(seed + 1)
    for image_id in NO_TEXT + NOT_LISTED:
        data, _ = render(rng, [], width=WIDTH, height=HEIGHT)
        images[f"train2014/{file_name(image_id)}"] = data
    return [
        write_zip(out_dir / ANNOTATIONS, {JSON_NAME: json_bytes(annotation_json(seed))}),
        write_zip(out_dir / IMAGES, images),
    ]
