"""SCUT-CTW1500 (updated annotations): training images with 14-point text-line polygons.

`train_images.zip` -> `train_images/<NNNN>.jpg` (0001 ... 1000); `train_labels.zip` ->
`ctw1500_train_labels/<NNNN>.xml`, one XML document per image:

    <Annotations>
     <image file="0200.jpg">
      <box height="197" left="131" top="49" width="399">
       <label>OLATHE</label>
       <segs>131,58,208,49,...,165,134</segs>      14 absolute (x, y) points = 28 ints
       <pts x="183" y="95" /> ...                 one per English character centre (not needed)

`segs` runs along the top boundary left to right, then the bottom boundary right to left (clockwise); the
`box` attributes are its bounding box (kept in the instance attrs). `label` is the text line's transcription
(text-line level: spaces between words); `###` is a don't-care region (illegible, and every Chinese line in
the updated release). XML escapes (`&amp;`) are decoded by the XML parser. The official README's example
closes with a misspelled `</Annotataions>`: a document that fails to parse only because of a misspelled
closing root tag is repaired.

The test split's format (`000<NNNN>.txt` for image `<NNNN>.jpg`) is read too, when an annotation folder holds
it: one line per text line, 28 ints then `,####` then the transcription (`#######` = `###` = don't care),
split on the first `,####` so a transcription may contain commas (MMOCR's parser truncates at the first
comma). Those polygons run counter-clockwise (bottom boundary first, as MMOCR's test lines show [?]); any
counter-clockwise polygon is reversed so the top boundary comes first (option `reorient_ccw`).

Images and annotations are paired by the number in their names (`0200.jpg` <-> `0200.xml`,
`1001.jpg` <-> `0001001.txt`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rebusyn.sample import Instance
from rebusyn.sources._rrc_txt import (
    LanguageFilter,
    find_files,
    is_image,
    iter_lines,
    pair_files,
    parse_points,
    read_gt,
)
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

# Used when an option is missing from the recipe (e.g. in tests); the recipe documents each one.
DEFAULTS: dict[str, Any] = {
    "dont_care_marks": ["###"],  # transcriptions that mark a don't-care region (illegible, Chinese)
    "reorient_ccw": True,  # counter-clockwise polygons are reversed so the top boundary comes first
    "latin_only": True,  # lines with letters of another script are dropped (`language_filtered`)
}
TXT_SEPARATOR = ",####"
_DIGITS = re.compile(r"^\d+$")
_BAD_CLOSING_TAG = re.compile(rb"</\s*Annotat\w*\s*>\s*$")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Roles `images` (the extracted `train_images.zip`) and `annotations` (`train_labels.zip`)."""
    options = {**DEFAULTS, **ctx.options}
    images = find_files([ctx.files["images"]], is_image)
    labels = find_files([ctx.files["annotations"]], lambda p: p.suffix.lower() in (".xml", ".txt"))
    for item in pair_files(images, labels, _key, _key, "<NNNN>.xml (or 000<NNNN>.txt)"):
        if isinstance(item, Problem):
            yield item
            continue
        key, image, label_file = item
        if label_file.suffix.lower() == ".xml":
            instances, problems = parse_xml(label_file.read_bytes(), label_file.name, options)
        else:
            text, problem = read_gt(label_file)
            if problem is not None:
                yield problem
                continue
            assert text is not None
            instances, problems = parse_txt(text, label_file.name, options)
        yield AnnotatedImage(image, image.stem, instances, problems)


def _key(path: Path) -> str | None:
    """`0200.jpg`, `0200.xml` and `0000200.txt` all -> `200`."""
    return str(int(path.stem)) if _DIGITS.match(path.stem) else None


def parse_xml(
    data: bytes, name: str, options: dict[str, Any] | None = None
) -> tuple[tuple[Instance, ...], tuple[Problem, ...]]:
    """One training XML document -> its text lines (don't-care ones flagged) and Problems."""
    options = {**DEFAULTS, **(options or {})}
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        repaired = _BAD_CLOSING_TAG.sub(b"</Annotations>", data.rstrip())
        try:
            root = ET.fromstring(repaired)
        except ET.ParseError:
            return (), (Problem(name, "invalid_xml", str(exc)),)
    instances: list[Instance] = []
    problems: list[Problem] = []
    for number, box in enumerate(root.iter("box"), start=1):
        where = f"{name}#{number}"
        segs = box.findtext("segs")
        if segs is None:
            problems.append(Problem(where, "malformed_annotation", "no <segs> in this <box>"))
            continue
        points, problem = polygon([t for t in segs.replace("\n", ",").split(",") if t.strip()], where)
        if problem is not None:
            problems.append(problem)
            continue
        text = (box.findtext("label") or "").strip()
        attrs: dict[str, Any] = {"at": where}
        bounds = {k: _int_or_text(box.get(k)) for k in ("left", "top", "width", "height") if box.get(k)}
        if bounds:
            attrs["box"] = bounds
        instances.append(_instance(text, points, attrs, options))
    return _language_filter(instances, problems, options)


def parse_txt(
    text: str, name: str, options: dict[str, Any] | None = None
) -> tuple[tuple[Instance, ...], tuple[Problem, ...]]:
    """One test-format TXT (`x1,y1,...,x14,y14,####text` per line) -> its text lines and Problems."""
    options = {**DEFAULTS, **(options or {})}
    instances: list[Instance] = []
    problems: list[Problem] = []
    for lineno, line in iter_lines(text):
        where = f"{name}:{lineno}"
        coords, sep, transcription = line.partition(TXT_SEPARATOR)
        if not sep:
            problems.append(Problem(where, "malformed_annotation", f"no {TXT_SEPARATOR!r}: {line[:80]!r}"))
            continue
        points, problem = polygon(coords.split(","), where)
        if problem is not None:
            problems.append(problem)
            continue
        instances.append(_instance(transcription, points, {"at": where}, options))
    return _language_filter(instances, problems, options)


def polygon(tokens: list[str], where: str) -> tuple[tuple[tuple[float, float], ...], Problem | None]:
    """`x1, y1, ..., xn, yn` -> vertices, or a Problem: non-numeric or odd values, fewer than 4 vertices."""
    try:
        points = parse_points(tokens)
    except ValueError as exc:
        return (), Problem(where, "malformed_annotation", f"{exc}: {','.join(tokens)[:80]!r}")
    if len(points) < 4:  # 2 points would read as an axis-aligned box
        return (), Problem(where, "degenerate_polygon", f"{len(points)} vertices")
    return points, None


def _int_or_text(value: str | None) -> int | str | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return value


def signed_area(points: tuple[tuple[float, float], ...]) -> float:
    """Shoelace area; positive for a clockwise polygon in image coordinates (y grows downwards)."""
    n = len(points)
    return 0.5 * sum(
        points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1] for i in range(n)
    )


def _instance(
    text: str, points: tuple[tuple[float, float], ...], attrs: dict[str, Any], options: dict[str, Any]
) -> Instance:
    if options.get("reorient_ccw", True) and signed_area(points) < 0:
        # bottom boundary left to right + top boundary right to left, reversed: top L->R + bottom R->L
        points = points[::-1]
        attrs = {**attrs, "reoriented": True}
    marks = {str(m) for m in options.get("dont_care_marks") or ()}
    return Instance(text, points, ignore=text in marks, attrs=attrs)


def _language_filter(
    instances: list[Instance], problems: list[Problem], options: dict[str, Any]
) -> tuple[tuple[Instance, ...], tuple[Problem, ...]]:
    kept, filtered = LanguageFilter.from_options(options, latin_only=True).split(
        instances, lambda inst: inst.attrs["at"]
    )
    return kept, tuple(problems) + filtered
