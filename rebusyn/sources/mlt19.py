"""MLT 2019 (ICDAR 2019 Multi-lingual scene text, RRC Challenge 15): detection GT and cropped-word GT.

Detection (`detection` input): `ImagesPart1.zip` + `ImagesPart2.zip` (`ImagesPart<k>/tr_img_<NNNNN>.<ext>`,
10,000 images; the extension is jpg, png or gif) and `train_gt_t13.zip` with one `tr_img_<NNNNN>.txt` per
image (`gt_<image>.txt` as in MLT 2017 is accepted too):

    x1,y1,x2,y2,x3,y3,x4,y4,script,transcription

- quadrilateral clockwise from the top-left; `script` is one of Arabic, Latin, Chinese, Japanese, Korean,
  Bangla, Hindi, Symbols, Mixed, None;
- "the transcription is anything that follows the 9th comma until the end of line. No escape characters":
  commas and quotes inside it are text;
- `###` is don't care, whatever the script field says (often `None`, sometimes a real script);
- UTF-8, a BOM is possible (read with `utf-8-sig`), CRLF or LF.

Cropped words (`word_crops` input, Task 2): `words_part_1.zip` holds `gt.txt` next to its crops, parts 2 and
3 hold more crops. Each line `<crop image>,<script>,<transcription>` (split on the first two commas, as
PARSeq's `mlt19_converter.py` does); a leading BOM is dropped. The crops are stored byte for byte.

Options: `scripts` (default `[Latin, Symbols]`, what PARSeq's converter keeps; `all` keeps every script),
`latin_only` (default false: the script field already decides), `unquote_words` (default false: strip one
pair of surrounding double quotes from word-crop transcriptions, as MindOCR's reader does).
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
    read_gt,
    split_line,
    strip_quotes,
)
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file

IGNORE_MARK = "###"
SCRIPTS = ("Arabic", "Latin", "Chinese", "Japanese", "Korean", "Bangla", "Hindi", "Symbols", "Mixed", "None")
DEFAULT_SCRIPTS = ("Latin", "Symbols")  # baudm/parseq tools/mlt19_converter.py


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    language = LanguageFilter.from_options(ctx.options, scripts=DEFAULT_SCRIPTS)
    if ctx.input == "word_crops":
        return iter_word_crops(_by_prefix(ctx.files, "crops"), language, ctx.options)
    return iter_detection(_by_prefix(ctx.files, "images"), [ctx.files["annotations"]], language)


def _by_prefix(files: dict[str, Path], prefix: str) -> list[Path]:
    return [files[r] for r in sorted((r for r in files if r.startswith(prefix)), key=numeric_key)]


def parse_gt(text: str, where: str) -> tuple[list[Instance], list[Problem]]:
    """One detection ground-truth file -> instances (script in `attrs['script']`) and malformed lines."""
    instances: list[Instance] = []
    problems: list[Problem] = []
    for lineno, line in iter_lines(text):
        parts = split_line(line, 10)
        if parts is None:
            problems.append(
                Problem(
                    f"{where}:{lineno}", "malformed_line", f"expected 8 coordinates, script, text: {line!r}"
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
        script, transcription = parts[8].strip(), parts[9]
        instances.append(
            Instance(
                text=transcription,
                points=points,
                ignore=transcription == IGNORE_MARK,
                attrs={"line": lineno, "script": script},
            )
        )
    return instances, problems


def _key(path: Path) -> str:
    stem = path.stem
    return stem[3:] if stem.startswith("gt_") else stem


def iter_detection(
    image_dirs: list[Path], gt_dirs: list[Path], language: LanguageFilter
) -> Iterator[AnnotatedImage | Problem]:
    """Pair `tr_img_<N>.*` from every image part with `tr_img_<N>.txt`, in numeric order."""
    images = find_files(image_dirs, is_image)
    gts = find_files(gt_dirs, lambda p: p.suffix.lower() == ".txt")
    for item in paired_ground_truth(images, gts, _key, _key, "tr_img_<N>.txt"):
        if isinstance(item, Problem):
            yield item
            continue
        image_id, image, gt, text = item
        instances, problems = parse_gt(text, str(gt))
        kept, filtered = language.split(instances, lambda i, gt=gt: f"{gt}:{i.attrs['line']}")
        yield AnnotatedImage(image, image_id, kept, tuple(problems) + filtered)


def parse_word_gt(
    text: str, where: str, *, unquote: bool = False
) -> tuple[list[tuple[int, str, str, str]], list[Problem]]:
    """`word_1.png,Latin,Hello, World` lines -> [(line, image name, script, transcription)]."""
    entries: list[tuple[int, str, str, str]] = []
    problems: list[Problem] = []
    for lineno, line in iter_lines(text):
        parts = split_line(line, 3)
        if parts is None or not parts[0].strip():
            problems.append(
                Problem(f"{where}:{lineno}", "malformed_line", f"expected image,script,text: {line!r}")
            )
            continue
        name, script, transcription = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if unquote:
            transcription = strip_quotes(transcription)[0]
        entries.append((lineno, name, script, transcription))
    return entries, problems


def iter_word_crops(
    crop_dirs: list[Path], language: LanguageFilter, options: dict[str, Any]
) -> Iterator[WordCrop | Problem]:
    """Every `gt.txt` entry whose script passes, resolved to its crop in any of the word-image parts."""
    gts = find_files(crop_dirs, lambda p: p.name.lower() == "gt.txt")
    if not gts:
        yield Problem(
            ", ".join(map(str, crop_dirs)), "missing_annotation", "no gt.txt in the word-image archives"
        )
        return
    by_name: dict[str, Path] = {}
    for path in find_files(crop_dirs, is_image):
        by_name.setdefault(path.name, path)
    for gt in gts:
        text, problem = read_gt(gt)
        if problem is not None:
            yield problem
            continue
        entries, problems = parse_word_gt(text, str(gt), unquote=bool(options.get("unquote_words", False)))
        yield from problems
        for lineno, name, script, transcription in entries:
            where = f"{gt}:{lineno}"
            why = language.reject(transcription, script)
            if why is not None:
                yield Problem(where, "language_filtered", f"{why}: {transcription!r}")
                continue
            image = gt.parent / name
            if not is_file(image):
                image = by_name.get(Path(name).name)
            if image is None:
                yield Problem(where, "missing_image", f"{name} is listed but in none of the word-image parts")
                continue
            yield WordCrop(image, Path(name).stem, transcription, attrs={"script": script})
