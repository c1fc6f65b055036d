"""SVT, the Street View Text dataset (Wang, Babenko & Belongie): words in Google Street View images, serving
the `svt` (train: 257 words) and `svt_test` (647 words) recipes; the recipe input's split picks the file.

Input `original`: `svt.zip` extracts to `svt1/{train.xml,test.xml,img/*.jpg}`. Each XML is

    <tagset><image><imageName>img/14_03.jpg</imageName><address>...</address><lex>LIVING,ROOM,...</lex>
      <Resolution x="1280" y="880"/><taggedRectangles>
        <taggedRectangle height="75" width="236" x="375" y="253"><tag>LIVING</tag></taggedRectangle>...

- boxes are axis-aligned, `x`,`y` the top-left corner: each word is a 2-point Instance cut from the scene;
- boxes can start at negative coordinates or reach past the image: they are clipped to the image (its
  decoded size from the file header, else `Resolution`), option `clip_boxes` (default true); a box with
  nothing left inside is `box_outside_image`;
- tags are upper-case (the dataset is case-insensitive; MMOCR lower-cases them, we keep them raw and let
  the label policy decide); `lex` is the 50-word lexicon of the image (kept in the words' attrs as a count
  only; PARSeq evaluates lexicon-free).

Inputs `case_sensitive` / `case_sensitive_parseq`: the relabelled crops of Long & Yao (or PARSeq's
fork), folders `svt_train` / `svt_test`, read by `_word_labels.iter_case_sensitive_set` (the first line of
each label file, stripped, as PARSeq's converter reads it); the crops are stored byte for byte.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from rebusyn.sample import Instance
from rebusyn.sources._word_labels import iter_case_sensitive_set
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    split = ctx.split if ctx.split in ("train", "test") else "train"
    if ctx.input.startswith("case_sensitive"):
        return iter_case_sensitive_set(ctx.files["relabel"], f"svt_{split}")
    return iter_original(ctx.files["dataset"], split, clip=bool(ctx.options.get("clip_boxes", True)))


def _text(elem: ET.Element | None) -> str:
    return (elem.text or "").strip() if elem is not None else ""


def _number(value: str | None) -> float:
    number = float(str(value).strip())
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not finite: {value!r}")
    return int(number) if number.is_integer() and abs(number) < 2**53 else number  # huge ints overflow later


def image_size(path: Path, resolution: ET.Element | None) -> tuple[int, int] | None:
    """(width, height) from the image header (cheap: PIL reads no pixels), else the XML's Resolution."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError):  # the build counts the image as unusable
        pass
    if resolution is not None:
        try:
            return int(_number(resolution.get("x"))), int(_number(resolution.get("y")))
        except (TypeError, ValueError):
            return None
    return None


def parse_rectangle(
    rect: ET.Element, size: tuple[int, int] | None, clip: bool
) -> tuple[tuple[tuple[float, float], tuple[float, float]] | None, dict, str]:
    """A taggedRectangle -> (box points or None, attrs, reason when unusable)."""
    try:
        x, y, w, h = (_number(rect.get(k)) for k in ("x", "y", "width", "height"))
    except (TypeError, ValueError):
        return None, {}, "malformed_entry"
    if w <= 0 or h <= 0:
        return None, {}, "degenerate_box"
    x0, y0, x1, y1 = x, y, x + w, y + h
    attrs: dict = {"box": [x, y, w, h]}
    if clip and size is not None:
        cx0, cy0 = max(x0, 0), max(y0, 0)
        cx1, cy1 = min(x1, size[0]), min(y1, size[1])
        if cx1 <= cx0 or cy1 <= cy0:
            return None, attrs, "box_outside_image"
        if (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
            attrs["clipped"] = True
        x0, y0, x1, y1 = cx0, cy0, cx1, cy1
    return ((x0, y0), (x1, y1)), attrs, ""


def iter_original(root: Path, split: str, clip: bool = True) -> Iterator[AnnotatedImage | Problem]:
    """Every `<image>` of `<split>.xml` (document order) with its tagged words."""
    hits = sorted(p for p in root.rglob(f"{split}.xml") if p.is_file())
    if not hits:
        yield Problem(str(root), "missing_annotation", f"no {split}.xml in the archive")
        return
    xml_path = hits[0]
    try:
        tree = ET.parse(xml_path)
    except ET.ParseError as exc:
        yield Problem(str(xml_path), "invalid_xml", str(exc))
        return
    base = xml_path.parent
    for number, elem in enumerate(tree.getroot().iter("image"), start=1):
        where = f"{xml_path}:image[{number}]"
        name = _text(elem.find("imageName")).replace("\\", "/")
        if not name:
            yield Problem(where, "malformed_entry", "no imageName")
            continue
        image = base / name
        if not is_file(image):
            yield Problem(where, "missing_image", f"{name} is listed but not in the archive")
            continue
        size = image_size(image, elem.find("Resolution"))
        lexicon = [w for w in _text(elem.find("lex")).split(",") if w.strip()]
        instances: list[Instance] = []
        problems: list[Problem] = []
        for k, rect in enumerate(elem.iter("taggedRectangle"), start=1):
            text = _text(rect.find("tag"))
            points, attrs, reason = parse_rectangle(rect, size, clip)
            if points is None:
                problems.append(Problem(f"{where}#{k}", reason, f"{dict(rect.attrib)} {text!r}"))
                continue
            attrs["lexicon_size"] = len(lexicon)
            instances.append(Instance(text, points, attrs=attrs))
        yield AnnotatedImage(image, Path(name).stem, tuple(instances), tuple(problems))
