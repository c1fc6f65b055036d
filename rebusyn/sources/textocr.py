"""TextOCR v0.1 (`TextOCR_0.1_train.json`, `TextOCR_0.1_val.json`) over train_val_images.zip.

The JSON "mostly follows COCO-Text v2, except the `mask` field in `anns` is named `points`" (dataset card):
top keys `info`, `imgs`, `anns`, `imgToAnns`, every id a *string*: the image id is the OpenImages ImageID
(`a4ea732cd3d5948a`), an annotation id is `<image id>_<n>`.

- `imgs[id] = {"id", "width", "height", "set": "train" | "val", "file_name": "train/<id>.jpg"}`; the zip
  extracts to `train_images/`, not `train/`, and holds the val images too: images are found by base name.
- `anns[id] = {"id", "image_id", "bbox": [x, y, w, h] (the horizontal box of the points), "points": [x1, y1,
  x2, y2, ...], "utf8_string", "area"}`. The points run clockwise and (x1, y1) is the top-left corner *of
  the text in its own orientation*, so rotated and upside-down words come out upright; 4 points are the
  rule, more are drawn for curved text (passed through: an even count is read as the top boundary then
  the bottom one, as the cropper expects; an odd count is cut with its minimum-area rectangle).
- `utf8_string == "."` marks an illegible *or non-English* word: a don't-care region. Transcriptions are
  case-sensitive and keep punctuation.

Default filters reproduce PARSeq's tools/textocr_converter.py, which drops only the `.` words (its comment
says "illegible or non-English", but no other language filter exists). PARSeq cropped the `bbox`;
`geometry: bbox` reproduces that crop, the default `polygon` warps the points upright.

Memory: each JSON is parsed once (peak: one parsed JSON, about 2-2.5 GB for the 272 MB train file);
entries are popped as they are used and the JSON is dropped before the next file is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rebusyn.sample import Instance
from rebusyn.sources._coco_like import (
    ImageFinder,
    bbox_points,
    flat_points,
    image_id_mismatch,
    iter_keyed_json,
    merged_options,
    roles,
)
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem

DEFAULTS: dict[str, Any] = {
    "illegible_marks": ["."],
    "geometry": "polygon",
    "check_image_size": True,
}


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | Problem]:
    """Roles: `images` (train_val_images.zip) and `annotations_<split>` (one JSON per split, read in recipe
    order: train, then val; each is dropped before the next is read)."""
    finder = ImageFinder(roles(ctx.files, "images"))
    for path in roles(ctx.files, "annotations"):
        yield from iter_textocr(path, finder, ctx.options)


def iter_textocr(
    annotations: Path, finder: ImageFinder, options: dict[str, Any]
) -> Iterator[AnnotatedImage | Problem]:
    """One AnnotatedImage per annotated image of one JSON (in id order), Problems for what is unusable."""
    options = merged_options(options, DEFAULTS)
    marks = tuple(str(m) for m in (options.get("illegible_marks") or ()))
    use_bbox = options.get("geometry") == "bbox"

    def make(ann: Any, key: str, where: str, img: dict) -> tuple[Instance | None, Problem | None]:
        inst, why = word(ann, key, marks, use_bbox, img.get("width"), img.get("height"))
        return (inst, None) if inst is not None else (None, Problem(where, "malformed_annotation", why))

    yield from iter_keyed_json(annotations, finder, make, check_size=bool(options.get("check_image_size")))


def word(
    ann: Any,
    image_key: str,
    illegible_marks: tuple[str, ...] = (".",),
    use_bbox: bool = False,
    width: Any = None,
    height: Any = None,
) -> tuple[Instance | None, str]:
    """One `anns` entry -> (Instance, "") or (None, why it is malformed)."""
    if not isinstance(ann, dict):
        return None, f"expected an object, got {type(ann).__name__}"
    mismatch = image_id_mismatch(ann, image_key)
    if mismatch:
        return None, mismatch
    text = ann.get("utf8_string")
    if not isinstance(text, str):
        return None, f"utf8_string {text!r}"
    if use_bbox:
        points, why = bbox_points(ann.get("bbox"), 0, width, height)
        geometry = "bbox"
    else:
        points, why = flat_points(ann.get("points"))
        geometry = "points"
        if points is not None and len(points) < 4:
            points, why = bbox_points(ann.get("bbox"))  # 2-3 points carry no quadrilateral
            geometry = "bbox"
    if points is None:
        return None, why
    # compared as given: PARSeq's converter tests `utf8_string == '.'` exactly
    ignore = text in illegible_marks
    return Instance(text, points, ignore=ignore, attrs={"id": ann.get("id"), "geometry": geometry}), ""
