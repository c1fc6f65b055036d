"""ICDAR 2013 Focused Scene Text (RRC Challenge 2): detection ground truth (Task 1) and word-recognition
ground truth (Task 3), serving `icdar2013` (train) and the `icdar2013_test_857` / `icdar2013_test_1015`
benchmarks. The recipe input's split says which file naming to expect.

Detection (`detection` input): images `<N>.jpg` (train, N = 100..328) with `gt_<N>.txt`, or `img_<N>.jpg`
(test, N = 1..233) with `gt_img_<N>.txt`. One word per line, axis-aligned `left top right bottom`:

    train:  158 128 411 181 "Footpath"          (space-separated)
    test:   38, 43, 920, 215, "Tiredness"       (", "-separated)

The transcription is double-quoted; inside it a backslash escapes a double quote or a backslash (`\\"`,
`\\\\`). The files are ASCII with CR/LF line ends; a BOM is tolerated. `###` marks a don't-care word (MMOCR's
rule; the official files have none that we know of).

Word crops (`word_crops` input): `word_<N>.png` crops with `word_<N>.png, "<text>"` lines, in `gt.txt`
inside the training archive, or in the separate `Challenge2_Test_Task3_GT.txt` for the test set. The name
ends at the first comma; the text is what follows, one pair of surrounding quotes removed and the same
backslash escapes undone. The crops are stored byte for byte.

Subsets (options, see `_benchmark_subset.py`): `drop_non_alphanumeric` (1095 -> 1015) and `min_length`
(3: 1015 -> 857) on the raw transcription; or a pre-made list (role `subset_list`, MMOCR's
`textrecog_test_<n>.json`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

from rebusyn.sample import Instance
from rebusyn.sources import icdar2015
from rebusyn.sources._benchmark_subset import SubsetRule, iter_gt_crops, select_listed
from rebusyn.sources._rrc_txt import find_files, is_image, iter_lines, paired_ground_truth
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

IGNORE_MARK = "###"
NO_SUBSET = SubsetRule()  # every word
_NUM = r"(-?\d+(?:\.\d*)?)"
_SEP = r"(?:\s*,\s*|\s+)"
# four numbers separated by ", " (test) or blanks (train), then the quoted (or, leniently, bare) text
_DET_LINE = re.compile(rf"^\s*{_NUM}{_SEP}{_NUM}{_SEP}{_NUM}{_SEP}{_NUM}{_SEP}(?:\"(.*)\"|(\S.*?))\s*$")
_ESCAPE = re.compile(r"\\([\"\\])")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    rule = SubsetRule.from_options(ctx.options)
    if ctx.input == "detection":
        return iter_detection(ctx.files["images"], ctx.files["annotations"], rule)
    listed = ctx.files.get("subset_list")
    # with a pre-made list the list alone decides (the rule would only hide list/rule disagreements)
    crops = iter_word_crops(ctx.files["crops"], ctx.files.get("annotations"), NO_SUBSET if listed else rule)
    return select_listed(listed, crops) if listed else crops


def unescape(text: str) -> str:
    """`\\"` -> `"` and `\\\\` -> `\\` (RRC: a backslash escapes double quotes and backslashes)."""
    return _ESCAPE.sub(r"\1", text)


def parse_detection_gt(text: str, where: str) -> tuple[list[Instance], list[Problem]]:
    """One Task 1 ground-truth file (either separator) -> 2-point instances and malformed lines."""
    instances: list[Instance] = []
    problems: list[Problem] = []
    for lineno, line in iter_lines(text):
        m = _DET_LINE.match(line)
        if m is None:
            problems.append(
                Problem(
                    f"{where}:{lineno}", "malformed_line", f'expected left top right bottom "text": {line!r}'
                )
            )
            continue
        x0, y0, x1, y1 = (float(v) for v in m.group(1, 2, 3, 4))
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):  # 309 digits and more are inf
            problems.append(
                Problem(f"{where}:{lineno}", "malformed_line", f"coordinate out of range: {line!r}")
            )
            continue
        quoted, bare = m.group(5), m.group(6)
        transcription = unescape(quoted) if quoted is not None else bare
        points = ((_plain(x0), _plain(y0)), (_plain(x1), _plain(y1)))
        instances.append(
            Instance(
                transcription,
                points,
                ignore=transcription == IGNORE_MARK,
                attrs={"line": lineno, "quoted": quoted is not None},
            )
        )
    return instances, problems


def _plain(v: float) -> float | int:
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


def _gt_key(path: Path) -> str | None:
    return path.stem[3:] if path.stem.startswith("gt_") and path.suffix.lower() == ".txt" else None


def iter_detection(
    images_dir: Path, gt_dir: Path, rule: SubsetRule = NO_SUBSET
) -> Iterator[AnnotatedImage | Problem]:
    """Pair `<N>.jpg` / `img_<N>.jpg` with `gt_<N>.txt` / `gt_img_<N>.txt` in numeric order."""
    images = find_files([images_dir], is_image)
    gts = find_files([gt_dir], lambda p: _gt_key(p) is not None)
    for item in paired_ground_truth(images, gts, lambda p: p.stem, _gt_key, "gt_<image>.txt"):
        if isinstance(item, Problem):
            yield item
            continue
        image_id, image, gt, text = item
        instances, problems = parse_detection_gt(text, str(gt))
        kept: list[Instance] = []
        for inst in instances:
            reason = None if inst.ignore else rule.reject(inst.text)
            if reason is None:
                kept.append(inst)
            else:
                problems.append(Problem(f"{gt}:{inst.attrs['line']}", reason, repr(inst.text)))
        yield AnnotatedImage(image, image_id, tuple(kept), tuple(problems))


def parse_word_gt(text: str, where: str) -> tuple[list[tuple[str, str]], list[Problem]]:
    """`word_1.png, "PROPER"` lines -> [(file name, transcription)]: IC15's syntax plus IC13's escapes."""
    entries, problems = icdar2015.parse_word_gt(text, where)
    return [(name, unescape(t)) for name, t in entries], problems


def iter_word_crops(
    crops_dir: Path, gt_file: Path | None = None, rule: SubsetRule = NO_SUBSET
) -> Iterator[WordCrop | Problem]:
    """Every entry of the word ground truth (`gt_file`, else the `gt.txt` in the crop archive), resolved
    to its crop; words outside the subset rule become Problems."""
    return iter_gt_crops(crops_dir, gt_file, parse_word_gt, rule)
