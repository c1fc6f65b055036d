"""COCO-Text v2 (`cocotext.v2.json`, inside cocotext.v2.zip) over the MS-COCO train2014 images.

Layout of the JSON (the COCO-Text API's): top keys `cats`, `info`, `imgs`, `anns`, `imgToAnns`.

- `imgs`: dict keyed by the image id *as a string* -> `{"file_name": "COCO_train2014_000000522579.jpg",
  "height", "width", "id": 522579 (int), "set": "train" | "val"}`. train2014.zip extracts the files to
  `train2014/`.
- `imgToAnns`: dict keyed by the image id string -> list of *int* annotation ids (often empty: many COCO
  images have no text).
- `anns`: dict keyed by the annotation id *string* -> `{"mask": [x1, y1, ...] (flat polygon), "bbox":
  [x, y, w, h], "image_id" (int), "id" (int), "utf8_string", "legibility": "legible" | "illegible",
  "language": "english" | "not english" | "na", "class": "machine printed" | "handwritten" | "others",
  "area"}`. So an annotation is found with `anns[str(ann_id)]`.

Quirks handled: `utf8_string` holds HTML entities (`&amp;`, `&#39;`; unescaped as PARSeq does, after
stripping); `*` at either end marks unreadable characters and `#` inside marks a corrupted label (both
dropped by default, as PARSeq does); masks start at any vertex, run either way round and may have 5-7
vertices, so they are turned into reading-order quadrilaterals (`_coco_like.reading_order_quad`); the
`set` field is the split. `legibility == "illegible"` is a don't-care region.

Default filters reproduce PARSeq's tools/coco_2_converter.py: sets train and val, class machine printed,
language english, legible only, no `#` inside a label (except `#` alone), no `*` at either end. PARSeq
cropped the `bbox` with 2 px padding; `geometry: bbox` reproduces that crop, the default `polygon` warps
the mask's quadrilateral upright instead.

Memory: the whole JSON is parsed once (peak: one parsed JSON); entries are popped as they are used.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rebusyn.sample import Instance
from rebusyn.sources._coco_like import (
    ImageFinder,
    WordFilter,
    bbox_points,
    find_file,
    flat_points,
    image_id_mismatch,
    iter_keyed_json,
    merged_options,
    reading_order_quad,
)
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem

ANNOTATION_NAME = "cocotext.v2.json"
ILLEGIBLE = "illegible"

# Used when an option is missing from the recipe (e.g. in tests); the recipe documents each one.
DEFAULTS: dict[str, Any] = {
    "sets": ["train", "val"],
    "classes": ["machine printed"],
    "languages": ["english"],
    "html_unescape": True,
    "drop_hash_labels": True,
    "hash_whitelist": ["#"],
    "drop_star_marked": True,
    "geometry": "polygon",
    "bbox_padding": 2,
    "check_image_size": True,
}


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | Problem]:
    """Roles: `annotations` (cocotext.v2.zip extracted, or the JSON itself) and `images` (train2014.zip)."""
    path = find_file(ctx.files["annotations"], ANNOTATION_NAME)
    if path is None:
        yield Problem(str(ctx.files["annotations"]), "missing_annotation", f"no {ANNOTATION_NAME} found")
        return
    yield from iter_coco_text(path, [ctx.files["images"]], ctx.options)


def iter_coco_text(
    annotations: Path, image_roots: list[Path], options: dict[str, Any]
) -> Iterator[AnnotatedImage | Problem]:
    """One AnnotatedImage per image with annotations (in numeric id order), Problems for the rest."""
    options = merged_options(options, DEFAULTS)
    flt = WordFilter.from_options(options)

    def make(ann: Any, key: str, where: str, img: dict) -> tuple[Instance | None, Problem | None]:
        return word(ann, key, where, options, flt, img.get("width"), img.get("height"))

    yield from iter_keyed_json(
        annotations,
        ImageFinder(image_roots),
        make,
        sets=tuple(str(s) for s in (options.get("sets") or ())),
        check_size=bool(options.get("check_image_size")),
    )


def word(
    ann: Any,
    image_key: str,
    where: str,
    options: dict[str, Any],
    flt: WordFilter,
    width: Any = None,
    height: Any = None,
) -> tuple[Instance | None, Problem | None]:
    """One `anns` entry -> (Instance, None), or (None, Problem) when it is unusable or filtered out."""
    if not isinstance(ann, dict):
        return None, Problem(where, "malformed_annotation", f"expected an object, got {type(ann).__name__}")
    mismatch = image_id_mismatch(ann, image_key)
    if mismatch:
        return None, Problem(where, "malformed_annotation", mismatch)
    legibility = ann.get("legibility")
    if legibility not in ("legible", ILLEGIBLE):
        return None, Problem(where, "malformed_annotation", f"legibility {legibility!r}")
    ignore = legibility == ILLEGIBLE
    raw = ann.get("utf8_string")
    if not isinstance(raw, str):
        if not ignore:
            return None, Problem(where, "malformed_annotation", f"utf8_string {raw!r}")
        raw = ""  # illegible boxes may come without a transcription
    text = raw.strip()  # PARSeq: html.unescape(utf8_string.strip())
    if options.get("html_unescape"):
        text = html.unescape(text)
    points, geometry = _geometry(ann, options, width, height)
    if points is None:
        return None, Problem(where, "malformed_annotation", geometry)
    if not ignore:
        filtered = flt.reason(text, ann.get("language"), ann.get("class"))
        if filtered is not None:
            return None, Problem(where, *filtered)
    return Instance(text, points, ignore=ignore, attrs={"id": ann.get("id"), "geometry": geometry}), None


def _geometry(ann: dict, options: dict[str, Any], width: Any, height: Any) -> tuple[Any, str]:
    """(points, "mask" | "bbox"), or (None, why). The mask is preferred; a mask with fewer than 4
    vertices falls back to the bbox."""
    if options.get("geometry") == "bbox":
        points, why = bbox_points(ann.get("bbox"), int(options.get("bbox_padding") or 0), width, height)
        return (points, "bbox") if points is not None else (None, why)
    mask, why = flat_points(ann.get("mask"))
    if mask is not None and len(mask) >= 4:
        return reading_order_quad(mask), "mask"
    points, why_bbox = bbox_points(ann.get("bbox"))
    if points is not None:
        return points, "bbox"
    return None, f"mask: {why or 'fewer than 4 vertices'}; {why_bbox}"
