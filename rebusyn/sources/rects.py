"""ReCTS 2019 (ICDAR 2019 Reading Chinese Text on Signboard, RRC Challenge 12): per-image JSON ground truth.

Distribution: one archive `ReCTS.zip` with `img/` (20,000 training images), `gt/` and `gt_unicode/` (one
`<image name>.json` per image in each). MMOCR reads `gt_unicode/` and deletes `gt/`; this parser reads the
folder named by the `annotation_folder` option (default `gt_unicode`). Each JSON:

    {"chars": [{"points": [x1,y1,...,x4,y4], "transcription": "金", "ignore": 0}, ...],
     "lines": [{"points": [x1,y1,...,x4,y4], "transcription": "HOKI", "ignore": 0}, ...]}

- `points`: 4 vertices clockwise from the upper-left (an even number > 8 is taken as a polygon);
- `ignore: 1` (or true) marks a don't-care region; a `###` transcription is treated the same way;
- `lines` are the text lines (the training samples by default), `chars` the single characters inside them
  (`level: chars` builds those instead);
- UTF-8 (a BOM is tolerated); `\\uXXXX` escapes and raw characters are both plain JSON.

Options: `level` (`lines` | `chars`), `annotation_folder` (`gt_unicode` | `gt`), `latin_only` (default true:
entries with Chinese or other non-Latin letters are dropped as `language_filtered`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rebusyn.sample import Instance
from rebusyn.sources._rrc_txt import LanguageFilter, find_files, is_image, pair_files, parse_points
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

IGNORE_MARK = "###"
LEVELS = ("lines", "chars")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    return iter_detection(ctx.files["dataset"], ctx.options)


def find_folder(root: Path, name: str) -> Path | None:
    """`root/<name>`, or the shallowest folder called `name` below it (archives may add a top folder)."""
    if root.name == name and root.is_dir():
        return root
    if (root / name).is_dir():
        return root / name
    found = sorted((p for p in root.rglob(name) if p.is_dir()), key=lambda p: (len(p.parts), str(p)))
    return found[0] if found else None


def parse_json(text: str, where: str, level: str = "lines") -> tuple[list[Instance], list[Problem]]:
    """One ground-truth JSON's text -> the instances of `level` and the entries that could not be used."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also deep nesting and integers of > 4300 digits
        return [], [Problem(where, "malformed_json", f"{type(exc).__name__}: {exc}")]
    if not isinstance(data, dict) or not isinstance(data.get(level, []), list):
        return [], [Problem(where, "malformed_json", f"expected an object with a {level!r} list")]
    instances: list[Instance] = []
    problems: list[Problem] = []
    for index, entry in enumerate(data.get(level, [])):
        at = f"{where}:{level}[{index}]"
        if not isinstance(entry, dict):
            problems.append(Problem(at, "malformed_entry", f"not an object: {entry!r}"))
            continue
        points, text_, flag = entry.get("points"), entry.get("transcription"), entry.get("ignore", 0)
        if not isinstance(points, list) or len(points) < 8:
            problems.append(Problem(at, "malformed_entry", f"points must be >= 8 numbers: {points!r}"))
            continue
        try:
            quad = parse_points(points)
        except ValueError as exc:
            problems.append(Problem(at, "malformed_entry", f"bad points {points!r}: {exc}"))
            continue
        if not isinstance(text_, str):
            problems.append(Problem(at, "malformed_entry", f"transcription is not a string: {text_!r}"))
            continue
        if flag not in (0, 1, True, False):
            problems.append(Problem(at, "malformed_entry", f"ignore must be 0 or 1: {flag!r}"))
            continue
        ignore = bool(flag) or text_ == IGNORE_MARK
        instances.append(Instance(text=text_, points=quad, ignore=ignore, attrs={"entry": index}))
    return instances, problems


def iter_detection(root: Path, options: dict[str, Any]) -> Iterator[AnnotatedImage | Problem]:
    """Pair `img/<name>.jpg` with `<annotation_folder>/<name>.json`, in numeric order."""
    level = str(options.get("level", "lines"))
    if level not in LEVELS:
        raise ValueError(f"rects: option level must be one of {', '.join(LEVELS)}, got {level!r}")
    language = LanguageFilter.from_options(options, latin_only=True)
    folder_name = str(options.get("annotation_folder", "gt_unicode"))
    images_dir, gt_dir = find_folder(root, "img"), find_folder(root, folder_name)
    if images_dir is None or gt_dir is None:
        missing = "img/" if images_dir is None else f"{folder_name}/"
        yield Problem(
            str(root),
            "missing_annotation" if gt_dir is None else "missing_image",
            f"no {missing} in ReCTS.zip",
        )
        return
    images = find_files([images_dir], is_image)
    gts = find_files([gt_dir], lambda p: p.suffix.lower() == ".json")
    for item in pair_files(images, gts, lambda p: p.stem, lambda p: p.stem, f"{folder_name}/<name>.json"):
        if isinstance(item, Problem):
            yield item
            continue
        image_id, image, gt = item
        try:
            text = gt.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            yield Problem(str(gt), "invalid_utf8", str(exc))
            continue
        instances, problems = parse_json(text, str(gt), level)
        kept, filtered = language.split(instances, lambda i, gt=gt: f"{gt}:{level}[{i.attrs['entry']}]")
        yield AnnotatedImage(image, image_id, kept, tuple(problems) + filtered)
