"""A sample of TextOCR v0.1 in its native layout: train_val_images.zip, TextOCR_0.1_train.json and
TextOCR_0.1_val.json.

- train_val_images.zip: `train_images/<ImageID>.jpg` for the train *and* val images (plus one image that is
  in neither JSON, as TextOCR removed 274 TextVQA images).
- the JSONs: `info`, `imgs`, `anns`, `imgToAnns`, every id a *string* (image id = 16-hex OpenImages
  ImageID, annotation id `<image id>_<n>`); `file_name` is `train/<id>.jpg` although the zip's folder is
  `train_images/`; `bbox` [x, y, w, h] is the horizontal box of `points`, a flat clockwise polygon starting
  at the text's own top-left corner.

Traps carried: `.` for illegible words and for non-English (Greek, Cyrillic) words that are perfectly
legible in the image, a literal `...` that is not the marker, punctuation and case, curved words as
14-point polygons, vertical words whose first point is the image's top-right corner (the text's own
top-left), and a scene stored upside down (its words' first points are at their bottom-right on screen).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from rebusyn.samplegen._coco_fixture import Placed, Scene, Spec, jpeg, json_bytes, render, rounded, xywh
from rebusyn.samplegen.archive import write_zip

IMAGES = "train_val_images.zip"
TRAIN_JSON = "TextOCR_0.1_train.json"
VAL_JSON = "TextOCR_0.1_val.json"
ILLEGIBLE = "."
SEED = 2021


def _w(text: str, legible: bool = True, annotated: str | None = None) -> Spec:
    """A word drawn as `text`, annotated as `annotated` (`.` for illegible or non-English words)."""
    if annotated is None:
        annotated = text if legible else ILLEGIBLE
    return Spec(text, legible, {"utf8_string": annotated})


# (image id, set, (width, height), words, vertical_every, curved_every, stored upside down)
PLAN: list[tuple[str, str, tuple[int, int], list[Spec], int, int, bool]] = [
    ("0a2f1c6b9e3d4a51", "train", (480, 360),
     [_w("Coca-Cola"), _w("I'M"), _w("xxxx", False), _w("$4.99"), _w("Street")], 0, 0, False),
    ("1b7e44d0c2a9f803", "train", (480, 360),
     [_w("ΑΘΗΝΑ", annotated="."), _w("OPEN"), _w("No.7"), _w("BAKERY")], 3, 0, False),
    ("2c91d3e5f6a7b8c9", "train", (480, 360),
     [_w("Welcome"), _w("SALE!"), _w("..."), _w("Tel:6123")], 0, 2, False),
    ("3d04e5f6a7b8c9d0", "train", (360, 480),
     [_w("Привет", annotated="."), _w("Pizza"), _w("xxxx", False), _w("Hotel")], 0, 0, False),
    ("4e5f6a7b8c9d0e1f", "train", (480, 360), [_w("Theatre"), _w("EXIT"), _w("Books")], 0, 3, True),
    ("6a7b8c9d0e1f2a3b", "train", (480, 360), [_w("Lane"), _w("MARKET"), _w("Zone-B")], 2, 0, False),
    ("a1b2c3d4e5f60718", "val", (480, 360),
     [_w("Coffee"), _w("xxxx", False), _w("CIRCUS"), _w("Metro")], 0, 3, False),
    ("f0e1d2c3b4a59687", "val", (480, 360), [_w("Pharmacy"), _w("PUSH"), _w("Ltd.")], 2, 0, False),
]  # fmt: skip
NOT_ANNOTATED = "7b8c9d0e1f2a3b4c"  # in the zip, in neither JSON


@lru_cache(maxsize=2)
def scenes(seed: int = SEED) -> tuple[Scene, ...]:
    """The ground truth: every image of PLAN as stored, its words with points in TextOCR's order."""
    rng = np.random.default_rng(seed)
    out = []
    for image_id, split, (width, height), specs, vertical_every, curved_every, flipped in PLAN:
        data, placed = render(
            rng,
            specs,
            width=width,
            height=height,
            vertical_every=vertical_every,
            curved_every=curved_every,
        )
        words = [_text_order(w) for w in placed]
        if flipped:  # the scene stored rotated by 180 degrees: same vertex order, new positions
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            data = jpeg(np.ascontiguousarray(pixels[::-1, ::-1]))
            words = [replace(w, points=tuple((width - x, height - y) for x, y in w.points)) for w in words]
        fields = {"set": split, "upside_down": flipped}
        out.append(Scene(image_id, data, width, height, tuple(words), fields))
    return tuple(out)


def _text_order(word: Placed) -> Placed:
    """TextOCR starts at the text's own top-left: for a word written top to bottom (turned 90 degrees
    clockwise, annotated with its upright box TL, TR, BR, BL) that is the box's top-right corner."""
    if word.vertical:
        tl, tr, br, bl = word.points
        return replace(word, points=(tr, br, bl, tl))
    return word


def annotation_json(split: str, seed: int = SEED) -> dict:
    """TextOCR_0.1_<split>.json for the scenes of that split."""
    imgs: dict[str, dict] = {}
    anns: dict[str, dict] = {}
    img_to_anns: dict[str, list[str]] = {}
    for scene in scenes(seed):
        if scene.fields["set"] != split:
            continue
        imgs[scene.image_id] = {
            "id": scene.image_id,
            "width": scene.width,
            "height": scene.height,
            "set": split,
            "file_name": f"train/{scene.image_id}.jpg",
        }
        img_to_anns[scene.image_id] = []
        for n, word in enumerate(scene.words, start=1):
            ann_id = f"{scene.image_id}_{n}"
            points = rounded(word.points, 2)
            bbox = xywh(np.reshape(points, (-1, 2)), 2)
            anns[ann_id] = {
                "id": ann_id,
                "image_id": scene.image_id,
                "bbox": bbox,
                "utf8_string": word.spec.fields["utf8_string"],
                "points": points,
                "area": round(bbox[2] * bbox[3], 2),
            }
            img_to_anns[scene.image_id].append(ann_id)
    return {"info": {"version": "0.1", "description": "TextOCR layout, rendered images"}, "imgs": imgs,
            "anns": anns, "imgToAnns": img_to_anns}  # fmt: skip


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write train_val_images.zip and the two JSONs into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {f"train_images/{s.image_id}.jpg": s.jpeg for s in scenes(seed)}
    extra, _ = render(np.random.default_rng(seed + 1), [Spec("Untouched")])
    images[f"train_images/{NOT_ANNOTATED}.jpg"] = extra
    (out_dir / TRAIN_JSON).write_bytes(json_bytes(annotation_json("train", seed)))
    (out_dir / VAL_JSON).write_bytes(json_bytes(annotation_json("val", seed)))
    return [write_zip(out_dir / IMAGES, images), out_dir / TRAIN_JSON, out_dir / VAL_JSON]
