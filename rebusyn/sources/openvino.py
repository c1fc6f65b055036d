"""OpenVINO "Open Images V5 Text Annotation" (Krylov et al. 2021) over Open Images train subsets.

One COCO-instances JSON per Open Images subset (`text_spotting_openimages_v5_{train_1, train_2, train_5,
train_f, validation}.json`), written by OpenVINO's training_extensions:

`{"type": "instances", "images": [{"file_name", "height", "width", "id"}], "categories": [{"supercategory":
"none", "name": "text", "id": 1}], "annotations": [{"bbox": [x, y, w, h], "segmentation": [[x1, y1, ...]],
"attributes": {"transcription", "legible", "language"}, "ignore": 0, "id", "image_id", "area",
"iscrowd": 1 - legible, "category_id": 1}]}`

Ids are ints, 0-based and contiguous per file, so they repeat across files; images are named by their
file's stem (the Open Images ImageID). `file_name` is relative to wherever the converter's author unpacked
the subsets (the prefix is not documented), so images are found by base name in the extracted subset
tars (train_1.tar.gz extracts to `train_1/<ImageID>.jpg`). The polygons come from CVAT and their vertex
order carries no reading direction, so they are turned into reading-order quadrilaterals like COCO-Text's
masks. An older version of the writer stored the attributes under `text` instead of `attributes`; both
are read. `legible == false` (`iscrowd == 1`) is a don't-care region.

Default filters reproduce PARSeq's tools/openvino_converter.py: legible words with `language ==
"english"` only. PARSeq cropped the `bbox` without padding; `geometry: bbox` reproduces that crop, the
default `polygon` warps the polygon's quadrilateral upright.

Memory: each JSON is parsed once (peak: one parsed JSON plus a list of annotation positions per image);
annotations are released as they are used and the JSON is dropped before the next file is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from rebusyn.sample import Instance
from rebusyn.sources._coco_like import (
    ImageFinder,
    WordFilter,
    bbox_points,
    flat_points,
    load_json,
    merged_options,
    reading_order_quad,
    roles,
    size_problem,
)
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem

DEFAULTS: dict[str, Any] = {
    "languages": ["english"],
    "geometry": "polygon",
    "check_image_size": True,
}


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | Problem]:
    """Roles: `images_<subset>` (the Open Images subset tars) and `annotations_<subset>` (one JSON each),
    read in recipe order; every image is looked up in every subset folder."""
    finder = ImageFinder(roles(ctx.files, "images"))
    for path in roles(ctx.files, "annotations"):
        yield from iter_openvino(path, finder, ctx.options)


def iter_openvino(
    annotations: Path, finder: ImageFinder, options: dict[str, Any]
) -> Iterator[AnnotatedImage | Problem]:
    """One AnnotatedImage per image with annotations, in the file's `images` order."""
    options = merged_options(options, DEFAULTS)
    data, problem = load_json(annotations)
    if problem is not None:
        yield problem
        return
    name = annotations.name
    if not (
        isinstance(data, dict)
        and isinstance(data.get("images"), list)
        and isinstance(data.get("annotations"), list)
    ):
        yield Problem(
            str(annotations), "invalid_json", "expected COCO instances with 'images' and 'annotations' lists"
        )
        return
    images, annotations_list = data["images"], data["annotations"]
    del data
    flt = WordFilter.from_options(options)
    use_bbox = options.get("geometry") == "bbox"
    check_size = bool(options.get("check_image_size"))
    # positions of each image's annotations, in file order: small next to the parsed JSON itself
    by_image: dict[Any, list[int]] = {}
    for pos, ann in enumerate(annotations_list):
        image_id = ann.get("image_id") if isinstance(ann, dict) else None
        if _hashable(image_id):
            by_image.setdefault(image_id, []).append(pos)
        else:
            yield Problem(f"{name}:annotations[{pos}]", "malformed_annotation", f"image_id {image_id!r}")
            annotations_list[pos] = None
    seen: set[Any] = set()
    for index, img in enumerate(images):
        images[index] = None  # released as we go
        image_id = img.get("id") if isinstance(img, dict) else None
        where = f"{name}:images/{image_id if _hashable(image_id) else index}"
        if not _hashable(image_id) or not isinstance(img.get("file_name"), str):
            yield Problem(where, "malformed_annotation", "image entry without an id or a file_name")
            continue
        if image_id in seen:
            yield Problem(where, "duplicate_image", f"image id {image_id!r} listed twice")
            continue
        seen.add(image_id)
        positions = by_image.pop(image_id, [])
        if not positions:
            continue
        file_name = img["file_name"]
        image = finder.find(file_name)
        skip = None
        if image is None:
            skip = Problem(where, "missing_image", f"{file_name!r} is not in the image archives")
        elif check_size:
            skip = size_problem(image, img.get("width"), img.get("height"), where)
        if skip is not None or image is None:
            for pos in positions:
                annotations_list[pos] = None
            if skip is not None:
                yield skip
            continue
        instances: list[Instance] = []
        drops: list[Problem] = []
        for pos in positions:
            ann = annotations_list[pos]
            annotations_list[pos] = None
            at = f"{name}:annotations/{ann.get('id', pos)}"
            inst, drop = word(ann, at, flt, use_bbox, img.get("width"), img.get("height"))
            if drop is not None:
                drops.append(drop)
            if inst is not None:
                instances.append(inst)
        yield AnnotatedImage(
            image, PurePosixPath(file_name.replace("\\", "/")).stem, tuple(instances), tuple(drops)
        )
    for image_id in sorted(by_image, key=str):
        yield Problem(
            f"{name}:images/{image_id}",
            "missing_image",
            f"{len(by_image[image_id])} annotations of an unlisted image",
        )


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def word(
    ann: dict,
    where: str,
    flt: WordFilter,
    use_bbox: bool = False,
    width: Any = None,
    height: Any = None,
) -> tuple[Instance | None, Problem | None]:
    """One annotation -> (Instance, None), or (None, Problem) when it is unusable or filtered out."""
    attrs = ann.get("attributes")
    if attrs is None and isinstance(ann.get("text"), dict):
        attrs = ann["text"]  # the writer's older key
    if not isinstance(attrs, dict):
        return None, Problem(where, "malformed_annotation", "no 'attributes' object")
    text = attrs.get("transcription")
    legible = attrs.get("legible", None)
    if legible is None and ann.get("iscrowd") in (0, 1):
        legible = ann["iscrowd"] == 0  # iscrowd = 1 - legible
    if not isinstance(legible, bool) and legible not in (0, 1):
        return None, Problem(where, "malformed_annotation", f"legible {legible!r}")
    ignore = not legible or bool(ann.get("ignore"))
    if not isinstance(text, str):
        if not ignore:
            return None, Problem(where, "malformed_annotation", f"transcription {text!r}")
        text = ""
    if use_bbox:
        points, why = bbox_points(ann.get("bbox"), 0, width, height)
    else:
        points, why = _polygon(ann)
    if points is None:
        return None, Problem(where, "malformed_annotation", why)
    if not ignore:
        filtered = flt.reason(text, attrs.get("language"))
        if filtered is not None:
            return None, Problem(where, *filtered)
    return Instance(
        text, points, ignore=ignore, attrs={"id": ann.get("id"), "language": attrs.get("language")}
    ), None


def _polygon(ann: dict) -> tuple[Any, str]:
    """The first polygon of `segmentation` as a reading-order quad; the bbox when there is none."""
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg and isinstance(seg[0], list):
        points, why = flat_points(seg[0])
        if points is not None and len(points) >= 4:
            return reading_order_quad(points), ""
    points, why_bbox = bbox_points(ann.get("bbox"))
    if points is not None:
        return points, ""
    return None, f"no usable segmentation polygon; {why_bbox}"
