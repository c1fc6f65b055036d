"""RCTW-17 (ICDAR 2017 Reading Chinese Text in the Wild): training images and per-image ground truth.

Distribution: `train_images.zip.001` + `train_images.zip.002` (one zip split in two; independent zips are
accepted too, see `_split_archive`) and `train_gts.zip`. One `<image name>.txt` per `<image name>.jpg`:

    390,902,1856,902,1856,1225,390,1225,0,"金氏眼镜"

- 8 coordinates (quadrilateral, clockwise from the top-left vertex), then `difficult` (0/1), then the
  transcription in double quotes. The line is split on the first 9 commas only: the transcription may contain
  commas and quotes. One pair of surrounding quotes is removed, everything inside is kept verbatim (no escape
  convention is documented); an unquoted transcription is accepted as is.
- `difficult` other than 0 (MMOCR: `!= '0'`) or the transcription `###` marks a don't-care region.
- UTF-8, read with `utf-8-sig` (a BOM is possible) and universal newlines (CRLF).

Options (recipe `options`): `keep_difficult` (false: difficult regions are don't care), `latin_only` (true:
words with CJK or other non-Latin letters are dropped as `language_filtered`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rebusyn.sample import Instance
from rebusyn.sources._rrc_txt import (
    LanguageFilter,
    find_files,
    is_image,
    iter_lines,
    numeric_key,
    paired_ground_truth,
    parse_points,
    split_line,
    strip_quotes,
)
from rebusyn.sources._split_archive import extract_parts
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

IGNORE_MARK = "###"


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    folders, problems = image_folders(ctx.files)
    yield from problems
    yield from iter_detection(folders, [ctx.files["annotations"]], ctx.options)


def image_folders(files: dict[str, Path]) -> tuple[list[Path], list[Problem]]:
    """The folders holding the images: roles `images`, `images_part1`, `images_part2`, ... Parts that reached
    the parser as plain files (the build does not extract `*.zip.001`) are joined and extracted here."""
    roles = sorted((r for r in files if r.startswith("images")), key=numeric_key)
    folders = [files[r] for r in roles if files[r].is_dir()]
    parts = [files[r] for r in roles if files[r].is_file()]
    extracted, problems = extract_parts(parts)
    return folders + extracted, problems


def parse_gt(text: str, where: str, *, keep_difficult: bool = False) -> tuple[list[Instance], list[Problem]]:
    """One ground-truth file's text -> its instances (don't-care ones flagged `ignore`) and bad lines."""
    instances: list[Instance] = []
    problems: list[Problem] = []
    for lineno, line in iter_lines(text):
        parts = split_line(line, 10)
        if parts is None:
            problems.append(
                Problem(
                    f"{where}:{lineno}",
                    "malformed_line",
                    f"expected 8 coordinates, difficult, text: {line!r}",
                )
            )
            continue
        try:
            points = parse_points(parts[:8])
        except ValueError:
            problems.append(
                Problem(f"{where}:{lineno}", "malformed_line", f"non-numeric coordinate: {line!r}")
            )
            continue
        flag = parts[8].strip()
        if not flag.lstrip("-").isdigit():
            problems.append(Problem(f"{where}:{lineno}", "malformed_line", f"difficult is not 0/1: {line!r}"))
            continue
        difficult = flag != "0"
        text_, quoted = strip_quotes(parts[9])
        ignore = text_ == IGNORE_MARK or (difficult and not keep_difficult)
        attrs: dict[str, Any] = {"line": lineno, "difficult": difficult}
        if not quoted:
            attrs["unquoted"] = True
        instances.append(Instance(text=text_, points=points, ignore=ignore, attrs=attrs))
    return instances, problems


def _key(path: Path) -> str:
    stem = path.stem
    return stem[3:] if stem.startswith("gt_") else stem


def iter_detection(
    image_dirs: list[Path], gt_dirs: list[Path], options: dict[str, Any]
) -> Iterator[AnnotatedImage | Problem]:
    """Pair `<name>.jpg` with `<name>.txt` in numeric order and parse each ground truth."""
    keep_difficult = bool(options.get("keep_difficult", False))
    language = LanguageFilter.from_options(options, latin_only=True)
    images = find_files(image_dirs, is_image)
    gts = find_files(gt_dirs, lambda p: p.suffix.lower() == ".txt")
    for item in paired_ground_truth(images, gts, _key, _key, "<image name>.txt"):
        if isinstance(item, Problem):
            yield item
            continue
        image_id, image, gt, text = item
        instances, problems = parse_gt(text, str(gt), keep_difficult=keep_difficult)
        kept, filtered = language.split(instances, lambda i, gt=gt: f"{gt}:{i.attrs['line']}")
        yield AnnotatedImage(image, image_id, kept, tuple(problems) + filtered)
