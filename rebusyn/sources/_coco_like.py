"""What COCO-Text v2, TextOCR and OpenVINO's Open Images V5 text annotations share.

All three ship one big COCO-like JSON per split (hundreds of MB: TextOCR_0.1_train.json is 272 MB) over
a large image archive, with words as polygons plus an axis-aligned `bbox` [x, y, w, h]:

- COCO-Text v2 and TextOCR: `{"imgs": {id: {...}}, "anns": {id: {...}}, "imgToAnns": {image id: [ann
  ids]}}`, dicts keyed by *string* ids (COCO-Text's `id`/`image_id` fields inside are ints).
- OpenVINO: COCO-instances `{"images": [...], "annotations": [...]}` with int ids.

Memory: a parser loads its JSON once (the bytes are decoded and dropped before parsing), walks the images
in a deterministic order and builds the Instances of one image at a time, popping every entry it has used
from the parsed structure. Peak memory is therefore one parsed JSON (measured: CPython needs about 7.5 times
the file size for it, 8.5 times at the peak of parsing), never a second index of the whole file.

Images are resolved by the annotation's `file_name`: first as a path relative to an extracted image
archive, then by its base name in any folder of those archives that holds images (TextOCR's JSON says
`train/<id>.jpg` while its zip extracts to `train_images/`; OpenVINO's subset prefix is not documented).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
from PIL import Image

from rebusyn.sample import Instance
from rebusyn.sources.base import AnnotatedImage, Problem, finite_number, is_file

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png"})
GEOMETRIES = ("polygon", "bbox")

Points = tuple[tuple[float, float], ...]


def merged_options(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The recipe's options over the parser's defaults (used when an option is missing, e.g. in tests)."""
    merged = {**defaults, **{k: v for k, v in options.items() if k in defaults}}
    geometry = merged.get("geometry")
    if geometry is not None and geometry not in GEOMETRIES:
        raise ValueError(f"option geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    return merged


def id_key(key: Any) -> tuple[int, int, str]:
    """Sort key for ids: numeric ids (COCO-Text's "9", "10", "100022") by value, others (TextOCR's hex
    ImageIDs) as text."""
    text = str(key)
    return (0, int(text), "") if text.isascii() and text.isdigit() else (1, 0, text)


# --- files --------------------------------------------------------------------------------------------------


def find_file(path: Path, name: str) -> Path | None:
    """`path` itself when it is a file (an annotation JSON downloaded as is), else `name` inside the
    extracted archive folder `path` (e.g. cocotext.v2.json inside cocotext.v2.zip)."""
    if path.is_file():
        return path
    hits = sorted(path.rglob(name)) if path.is_dir() else []
    return hits[0] if hits else None


def load_json(path: Path) -> tuple[Any, Problem | None]:
    """The parsed file, or a Problem when it cannot be used at all.

    The bytes are decoded (UTF-8, an optional BOM) and dropped before parsing, so at the peak only the
    text and the growing parsed structure coexist; the text is dropped as soon as parsing ends."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, Problem(str(path), "missing_annotation", str(exc))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, Problem(str(path), "invalid_utf8", str(exc))
    del raw
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also deep nesting and integers of > 4300 digits
        return None, Problem(str(path), "invalid_json", f"{type(exc).__name__}: {exc}")
    return data, None


class ImageFinder:
    """Resolve an annotation's `file_name` inside the extracted image archives (see the module doc)."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = [Path(r) for r in roots]
        # Only the folders that hold images are remembered, not the files: OpenImages subsets hold
        # ~100,000 images each, and a path per file would cost more than the folders' listing.
        self.dirs: list[Path] = []
        for root in self.roots:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                if any(os.path.splitext(f)[1].lower() in IMAGE_EXTS for f in filenames):
                    self.dirs.append(Path(dirpath))

    def find(self, file_name: str) -> Path | None:
        rel = PurePosixPath(file_name.replace("\\", "/"))
        if not rel.name:
            return None
        if not rel.is_absolute() and ".." not in rel.parts:
            for root in self.roots:
                candidate = root.joinpath(*rel.parts)
                if is_file(candidate):
                    return candidate
        for directory in self.dirs:
            candidate = directory / rel.name
            if is_file(candidate):
                return candidate
        return None


def size_problem(path: Path, width: Any, height: Any, where: str) -> Problem | None:
    """A Problem when the file's pixel size is not the annotated one (the words would be misplaced, e.g. an
    OpenImages image stored rotated). Only the image header is read; unreadable files are left to the
    build, which counts them as `corrupt_image`."""
    if not (_positive_int(width) and _positive_int(height)):
        return None
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if (w, h) == (width, height):
        return None
    hint = " (rotated by 90 degrees?)" if (w, h) == (height, width) else ""
    return Problem(
        where, "image_size_mismatch", f"annotated {width}x{height}, file {w}x{h}{hint}: {path.name}"
    )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# --- geometry -----------------------------------------------------------------------------------------------


def flat_points(raw: Any) -> tuple[Points | None, str]:
    """`[x1, y1, x2, y2, ...]` -> ((x1, y1), ...), or (None, why). Values are kept as given."""
    if not isinstance(raw, list) or not raw:
        return None, f"expected a flat list [x1, y1, ...], got {type(raw).__name__} {raw!r:.60}"
    if len(raw) % 2 or not all(finite_number(v) for v in raw):
        return None, f"expected an even number of coordinates, got {raw!r:.80}"
    return tuple((raw[i], raw[i + 1]) for i in range(0, len(raw), 2)), ""


def bbox_points(raw: Any, pad: int = 0, width: Any = None, height: Any = None) -> tuple[Points | None, str]:
    """COCO `bbox` [x, y, w, h] -> the 2-point box PARSeq's converters crop: corners floored/ceiled to whole
    pixels, `pad` pixels added on each side (COCO-Text: 2), clipped to the annotated image size.

    As in PARSeq, the far corner is `x0 + ceil(w) + 2 * pad` after x0 was clipped at 0."""
    if not (isinstance(raw, list) and len(raw) == 4 and all(finite_number(v) for v in raw)):
        return None, f"bbox must be [x, y, w, h], got {raw!r:.80}"
    x, y, w, h = raw
    if w <= 0 or h <= 0:
        return None, f"bbox has no area: {raw!r}"
    if max(abs(x), abs(y), w, h) >= 2**53:  # x + w would be no float any more
        return None, f"bbox beyond any image: {raw!r:.80}"
    x0, y0 = max(0, math.floor(x) - pad), max(0, math.floor(y) - pad)
    x1, y1 = x0 + math.ceil(w) + 2 * pad, y0 + math.ceil(h) + 2 * pad
    if _positive_int(width):
        x1 = min(width, x1)
    if _positive_int(height):
        y1 = min(height, y1)
    return ((x0, y0), (x1, y1)), ""


def _signed_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def reading_order_quad(points: Points) -> Points:
    """A polygon whose vertex order carries no meaning -> a quadrilateral TL, TR, BR, BL.

    COCO-Text masks (and OpenVINO's CVAT polygons) start at any vertex, run either way round and often
    have 5-7 vertices. A 4-vertex polygon keeps its vertices (a self-intersecting one is replaced by its
    convex hull); any other polygon becomes its minimum-area rotated rectangle. The quad is put clockwise
    (image y grows downwards) and started at the vertex whose outgoing edge points most to the right:
    the top edge of a word rotated by less than 45 degrees. Vertical words thus come out tall, and the
    cropper's vertical rule turns them."""
    pts = np.asarray(points, dtype=np.float64)
    if np.abs(pts).max() >= 2.0**31:  # beyond any image, and beyond OpenCV's float32: its min/max box
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        x0, y0, x1, y1 = (_plain(v) for v in (x0, y0, x1, y1))
        return (x0, y0), (x1, y0), (x1, y1), (x0, y1)
    quad: np.ndarray | None = None
    if len(pts) == 4:
        hull = cv2.convexHull(pts.astype(np.float32))
        hull = hull.reshape(-1, 2) if hull is not None else pts[:0]  # None when every vertex coincides
        if len(hull) == 4:
            # the hull may start elsewhere: keep the given coordinates, in the hull's cyclic order
            order = [int(np.argmin(np.linalg.norm(pts - h, axis=1))) for h in hull]
            if len(set(order)) == 4:
                quad = pts[order]
    if quad is None:
        box = cv2.boxPoints(cv2.minAreaRect(pts.astype(np.float32))).astype(np.float64)
        quad = np.round(box, 2)
    if _signed_area(quad) < 0:
        quad = quad[[0, 3, 2, 1]]
    edges = np.roll(quad, -1, axis=0) - quad
    lengths = np.linalg.norm(edges, axis=1)
    rightward = np.where(lengths > 0, edges[:, 0] / np.where(lengths > 0, lengths, 1), -np.inf)
    quad = np.roll(quad, -int(np.argmax(rightward)), axis=0)
    return tuple((_plain(x), _plain(y)) for x, y in quad)


def _plain(v: float) -> float | int:
    """numpy scalars back to plain numbers (ints stay ints), so points compare and serialize simply."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


# --- label filters ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordFilter:
    """PARSeq's per-word filters (each switchable through the recipe; empty lists keep everything).

    - `languages`: keep words whose `language` is one of these (compared case-insensitively).
    - `classes`: keep words whose `class` is one of these (COCO-Text: machine printed / handwritten / others).
    - `drop_hash_labels` + `hash_whitelist`: drop labels containing `#` unless whitelisted.
    - `drop_star_marked`: drop labels starting or ending with `*` (COCO-Text's unreadable-character mark).
    """

    languages: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    drop_hash_labels: bool = False
    hash_whitelist: tuple[str, ...] = ()
    drop_star_marked: bool = False

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> WordFilter:
        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(x) for x in (options.get(key) or ()))

        return cls(
            languages=tuple(x.casefold() for x in strings("languages")),
            classes=tuple(x.casefold() for x in strings("classes")),
            drop_hash_labels=bool(options.get("drop_hash_labels", False)),
            hash_whitelist=strings("hash_whitelist"),
            drop_star_marked=bool(options.get("drop_star_marked", False)),
        )

    def reason(self, text: str, language: Any = None, word_class: Any = None) -> tuple[str, str] | None:
        """(reason, detail) when the word is filtered out, else None."""
        if self.languages and str(language).casefold() not in self.languages:
            return "language_filtered", f"language {language!r} not in {list(self.languages)}"
        if self.classes and str(word_class).casefold() not in self.classes:
            return "class_filtered", f"class {word_class!r} not in {list(self.classes)}"
        if self.drop_hash_labels and "#" in text and text not in self.hash_whitelist:
            return "hash_in_label", repr(text)
        if self.drop_star_marked and (text.startswith("*") or text.endswith("*")):
            return "star_marked", repr(text)
        return None


def roles(files: dict[str, Path], prefix: str) -> list[Path]:
    """The files of every role named `prefix` or `prefix_<something>`, in recipe order."""
    return [path for role, path in files.items() if role == prefix or role.startswith(prefix + "_")]


# --- the COCO-Text API layout (COCO-Text v2, TextOCR) -------------------------------------------------------

# (annotation entry, image key, where, image entry) -> (Instance, None) | (None, Problem) | (None, None)
WordFn = Callable[[Any, str, str, dict], tuple[Instance | None, Problem | None]]


def iter_keyed_json(
    annotations: Path,
    finder: ImageFinder,
    word: WordFn,
    *,
    sets: Sequence[str] = (),
    check_size: bool = True,
) -> Iterator[AnnotatedImage | Problem]:
    """Walk `imgs` / `imgToAnns` / `anns` (dicts keyed by string ids) image by image, in id order.

    One AnnotatedImage per image with annotations, its words built by `word`. Images without annotations
    are skipped silently (most COCO images have no text); images outside `sets` (the `set` field), without
    a file, or whose file size differs from the annotated one are one Problem each. Every entry is popped
    once used, so the parsed JSON shrinks as the walk proceeds; what is left at the end (lists of unknown
    images, annotations listed under no image) is reported."""
    data, problem = load_json(annotations)
    if problem is not None:
        yield problem
        return
    name = annotations.name
    if not (
        isinstance(data, dict) and all(isinstance(data.get(k), dict) for k in ("imgs", "anns", "imgToAnns"))
    ):
        yield Problem(
            str(annotations), "invalid_json", "expected dicts 'imgs', 'anns' and 'imgToAnns' keyed by ids"
        )
        return
    imgs, anns, img_to_anns = data["imgs"], data["anns"], data["imgToAnns"]
    del data  # `info`, `cats` go with it
    for key in sorted(imgs, key=id_key):
        img = imgs.pop(key)
        ann_ids = img_to_anns.pop(key, [])
        where = f"{name}:imgs/{key}"
        if not isinstance(img, dict) or not isinstance(ann_ids, list):
            yield Problem(where, "malformed_annotation", "image entry or its imgToAnns list is malformed")
            continue
        if not ann_ids:
            continue
        skip: Problem | None = None
        image = None
        if sets and img.get("set") not in sets:
            skip = Problem(
                where, "set_filtered", f"set {img.get('set')!r} not in {list(sets)}; {len(ann_ids)} words"
            )
        else:
            file_name = img.get("file_name")
            image = finder.find(file_name) if isinstance(file_name, str) else None
            if image is None:
                skip = Problem(where, "missing_image", f"{file_name!r} is not in the image archive")
            elif check_size:
                skip = size_problem(image, img.get("width"), img.get("height"), where)
        if skip is not None or image is None:
            for ann_id in ann_ids:
                anns.pop(str(ann_id), None)  # free them; the report counts the image once
            if skip is not None:
                yield skip
            continue
        instances: list[Instance] = []
        drops: list[Problem] = []
        for ann_id in ann_ids:
            ann = anns.pop(str(ann_id), None)  # string keys even where the ids are ints (COCO-Text)
            if ann is None:
                drops.append(
                    Problem(f"{name}:imgToAnns/{key}", "missing_annotation", f"no anns[{str(ann_id)!r}]")
                )
                continue
            inst, drop = word(ann, str(key), f"{name}:anns/{ann_id}", img)
            if drop is not None:
                drops.append(drop)
            if inst is not None:
                instances.append(inst)
        yield AnnotatedImage(image, str(key), tuple(instances), tuple(drops))
    for key in sorted(img_to_anns, key=id_key):
        if img_to_anns[key]:
            yield Problem(
                f"{name}:imgToAnns/{key}", "missing_image", f"no imgs[{key!r}] for these annotations"
            )
    for key in sorted(anns, key=id_key):
        yield Problem(f"{name}:anns/{key}", "orphan_annotation", "listed under no image in imgToAnns")


def image_id_mismatch(ann: dict, image_key: str) -> str:
    """Why `ann` does not belong to the image it is listed under ("" when it does). Ids are compared as
    text: COCO-Text's `image_id` is an int under a string key, TextOCR's a string."""
    if str(ann.get("image_id")) != str(image_key):
        return f"image_id {ann.get('image_id')!r} but listed under image {image_key}"
    return ""
