"""ICDAR 2015 Incidental Scene Text (RRC Challenge 4): detection ground truth and word-crop gt.txt.

Detection GT, one file `gt_img_<N>.txt` per image `img_<N>.jpg`: UTF-8 with a BOM, CRLF line ends,
`x1,y1,x2,y2,x3,y3,x4,y4,transcription` with the corners clockwise from top-left. Everything after the
eighth comma is the transcription (it may contain commas; there are no escapes). `###` marks a
don't-care region.

Word-recognition GT (`gt.txt` inside ch4_training_word_images_gt.zip): `word_1.png, "Genaxis Theatre"`,
also UTF-8 with a BOM. The file name ends at the first comma; the transcription is what follows, with
the surrounding space and one pair of double quotes removed (inner quotes and commas are kept).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from rebusyn.sample import Instance
from rebusyn.sources._rrc_txt import parse_points
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file, read_text

IGNORE_MARK = "###"
_IMAGE_ID = re.compile(r"^img_(\d+)$")
_GT_NAME = re.compile(r"^gt_(img_\d+)\.txt$")
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """`detection`: images + detection GT archives; `word_crops`: the official word-crop archive."""
    if ctx.input == "word_crops":
        return iter_word_crops(ctx.files["crops"])
    return iter_detection(ctx.files["images"], ctx.files["annotations"])


def parse_detection_gt(text: str, where: str) -> tuple[list[Instance], list[Problem]]:
    instances: list[Instance] = []
    problems: list[Problem] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.strip("\r")
        if not line.strip():
            continue
        parts = line.split(",", 8)
        if len(parts) < 9:
            problems.append(
                Problem(f"{where}:{lineno}", "malformed_line", f"expected 8 coordinates and a text: {line!r}")
            )
            continue
        try:  # decimal numbers only: float() alone would take `nan`, `inf` and `1_0`
            points = tuple((float(x), float(y)) for x, y in parse_points(parts[:8]))
        except ValueError:
            problems.append(
                Problem(f"{where}:{lineno}", "malformed_line", f"non-numeric coordinate: {line!r}")
            )
            continue
        transcription = parts[8]
        instances.append(
            Instance(
                text=transcription, points=points, ignore=transcription == IGNORE_MARK, attrs={"line": lineno}
            )
        )
    return instances, problems


def _images_by_id(images_dir: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(images_dir.rglob("*")):
        if path.suffix in _IMAGE_EXTS and _IMAGE_ID.match(path.stem):
            found.setdefault(path.stem, path)
    return found


def _image_sort_key(image_id: str) -> tuple[int, str]:
    m = _IMAGE_ID.match(image_id)
    return (int(m.group(1)) if m else 0, image_id)


def iter_detection(images_dir: Path, gt_dir: Path) -> Iterator[AnnotatedImage | Problem]:
    """Pair `img_<N>.*` with `gt_img_<N>.txt` (in numeric order) and parse each ground-truth file.

    Yields AnnotatedImage items, and Problems for unpaired files or undecodable ground truth.
    """
    images = _images_by_id(images_dir)
    gts: dict[str, Path] = {}
    for path in sorted(gt_dir.rglob("*.txt")):
        m = _GT_NAME.match(path.name)
        if m:
            gts.setdefault(m.group(1), path)
    for image_id in sorted(set(images) | set(gts), key=_image_sort_key):
        if image_id not in gts:
            yield Problem(str(images[image_id]), "missing_annotation", "no gt_<image>.txt for this image")
            continue
        if image_id not in images:
            yield Problem(
                str(gts[image_id]), "missing_image", f"no image {image_id}.jpg for this ground truth"
            )
            continue
        try:
            text = read_text(gts[image_id])
        except UnicodeDecodeError as exc:
            yield Problem(str(gts[image_id]), "invalid_utf8", str(exc))
            continue
        instances, problems = parse_detection_gt(text, str(gts[image_id]))
        yield AnnotatedImage(images[image_id], image_id, tuple(instances), tuple(problems))


def parse_word_gt(text: str, where: str) -> tuple[list[tuple[str, str]], list[Problem]]:
    """`word_1.png, "text"` lines -> [(file name, transcription)]."""
    entries: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.strip("\r")
        if not line.strip():
            continue
        name, sep, rest = line.partition(",")
        rest = rest.strip()
        if not sep or not name.strip() or len(rest) < 2 or not (rest.startswith('"') and rest.endswith('"')):
            problems.append(
                Problem(f"{where}:{lineno}", "malformed_line", f'expected name, "text": {line!r}')
            )
            continue
        entries.append((name.strip(), rest[1:-1]))
    return entries, problems


def iter_word_crops(crops_dir: Path) -> Iterator[WordCrop | Problem]:
    """Every entry of the word-crop archive's `gt.txt`, resolved to its image file."""
    gt_files = sorted(crops_dir.rglob("gt.txt"))
    if not gt_files:
        yield Problem(str(crops_dir), "missing_annotation", "no gt.txt in the word-crop archive")
        return
    gt = gt_files[0]
    try:
        entries, problems = parse_word_gt(read_text(gt), str(gt))
    except UnicodeDecodeError as exc:
        yield Problem(str(gt), "invalid_utf8", str(exc))
        return
    yield from problems
    for name, text in entries:
        image = gt.parent / name
        if not is_file(image):
            yield Problem(f"{gt}", "missing_image", f"{name} is listed but not in the archive")
            continue
        yield WordCrop(image, Path(name).stem, text)
