"""Total-Text (ICDAR 2017): training images with word polygons, in any of its three ground-truth releases.

Images: `totaltext.zip` -> `Images/Train/img<N>.jpg` (some `.JPG`) and `Images/Test/...`. Ground truth, one
file per image, in one of:

- refined training GT (`TT_new_train_GT.zip`, the default input): MATLAB `gt_img<N>.mat`, variable `gt`,
  every polygon with exactly 10 vertices whose first vertex is the word's top-left in reading order.
- legacy `.mat` (`groundtruth_text.zip`): `poly_gt_img<N>.mat`, variable `polygt`.
- legacy `.txt` (`txt_format.zip`): `poly_gt_img<N>.txt`, one record per word, Python 2 reprs of the numpy
  arrays the `.mat` loads to:

      x: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], transcriptions: [u'nauGHTY']

Both `.mat` layouts are an N x 6 cell array: `'x:'`, the x coordinates, `'y:'`, the y coordinates, the
transcription, the orientation (`c` curved, `h` horizontal, `m` multi-oriented, `#` don't care).
Coordinates may be int16/uint16/double row or column vectors; they are flattened.

Quirks handled:
- txt: numbers separated by variable runs of spaces (numpy pads them: `[[ 53 120 121  56]]`); a record
  wraps over several physical lines when numpy wraps a long array (a record starts at a line beginning with
  `x:`, every other line continues it); strings are Python 2 literals (`u'...'`, or `u"..."` when the text
  has an apostrophe, non-ASCII as `\\xe9` / `\\u2019` escapes, commas and brackets inside the quotes), read
  with `ast.literal_eval` (never `eval`); `transcriptions: []` is an empty transcription; a BOM is dropped;
  negative coordinates are kept.
- mat: an empty transcription loads as an empty array (TextSnake and friends read it as `#`).
- Don't care: transcription `#` (or empty), or orientation `#` (both mark don't-care regions).
- Fewer than 4 vertices: `degenerate_polygon` (2 points would read as a box). Odd counts (5, 7, ...) are
  passed through: the cropper uses their minimum-area rectangle.
- Only the training split is read: files under a `Test` folder (images and ground truth), and the
  `Rectangular` boxes of the legacy `.mat` release, are skipped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from rebusyn.sample import Instance
from rebusyn.sources._rrc_txt import LanguageFilter, find_files, is_image, pair_files, read_gt
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

# Used when an option is missing from the recipe (e.g. in tests); the recipe documents each one.
DEFAULTS: dict[str, Any] = {
    "dont_care_marks": ["#"],  # transcriptions that mark a don't-care region (an empty one always does)
    "ornt_dont_care": True,  # orientation `#` marks a don't-care region too
    "latin_only": True,  # words with letters of another script are dropped (`language_filtered`)
}
MAT_VARIABLES = ("gt", "polygt")  # refined GT, legacy GT
_SKIPPED_FOLDERS = frozenset({"test", "rectangular"})
_IMAGE = re.compile(r"^img\d+$", re.IGNORECASE)
_GT = re.compile(r"^(?:poly_)?gt_(img\d+)$", re.IGNORECASE)
_RECORD = re.compile(
    r"^x:\s*\[\[(?P<x>[^\]]*)\]\]\s*,\s*y:\s*\[\[(?P<y>[^\]]*)\]\]\s*,\s*"
    r"ornt:\s*\[(?P<ornt>[^\]]*)\]\s*,\s*transcriptions:\s*\[(?P<text>.*)\]\s*$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Record:
    """One ground-truth entry as read, before the don't-care and language rules."""

    where: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    text: str
    ornt: str


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Roles `images` (the extracted `totaltext.zip`) and `annotations` (any of the three GT archives)."""
    options = {**DEFAULTS, **ctx.options}
    images_root, gt_root = ctx.files["images"], ctx.files["annotations"]
    images = find_files([images_root], lambda p: is_image(p) and _training(p, images_root))
    gts = find_files([gt_root], lambda p: p.suffix.lower() in (".txt", ".mat") and _training(p, gt_root))
    for item in pair_files(images, gts, _image_key, _gt_key, "poly_gt_<image>.txt/.mat or gt_<image>.mat"):
        if isinstance(item, Problem):
            yield item
            continue
        key, image, gt = item
        if gt.suffix.lower() == ".mat":
            records, problems = read_mat_gt(gt)
        else:
            text, problem = read_gt(gt)
            if problem is not None:
                yield problem
                continue
            assert text is not None
            records, problems = parse_txt_gt(text, gt.name)
        instances, dropped = to_instances(records, options)
        yield AnnotatedImage(image, key, instances, tuple(problems) + dropped)


def _training(path: Path, root: Path) -> bool:
    """False for files of the test split and for the legacy rectangular boxes."""
    folders = path.relative_to(root).parts[:-1]
    return not any(f.casefold() in _SKIPPED_FOLDERS for f in folders)


def _image_key(path: Path) -> str | None:
    return path.stem.lower() if _IMAGE.match(path.stem) else None


def _gt_key(path: Path) -> str | None:
    m = _GT.match(path.stem)
    return m.group(1).lower() if m else None


# --- legacy txt ----------------------------------------------------------------------------------------


def parse_txt_gt(text: str, name: str) -> tuple[list[Record], list[Problem]]:
    """Records of one `poly_gt_img<N>.txt` (text already decoded, BOM and CRs removed)."""
    chunks: list[tuple[int, list[str]]] = []
    problems: list[Problem] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        if line.startswith("x:"):
            chunks.append((lineno, [line]))
        elif chunks:  # numpy wrapped a long array: this line continues the record above
            chunks[-1][1].append(line)
        else:
            problems.append(
                Problem(f"{name}:{lineno}", "malformed_annotation", f"no record starts here: {line!r}")
            )
    records: list[Record] = []
    for lineno, lines in chunks:
        where = f"{name}:{lineno}"
        record, why = _txt_record(" ".join(lines), where)
        if record is None:
            problems.append(Problem(where, "malformed_annotation", why))
        else:
            records.append(record)
    return records, problems


def _txt_record(raw: str, where: str) -> tuple[Record | None, str]:
    m = _RECORD.match(raw)
    if m is None:
        return None, f"expected `x: [[..]], y: [[..]], ornt: [..], transcriptions: [..]`: {raw[:120]!r}"
    try:
        xs = tuple(_number(t) for t in m.group("x").split())
        ys = tuple(_number(t) for t in m.group("y").split())
    except ValueError as exc:
        return None, f"non-numeric coordinate: {exc}"
    texts, ornts = _py2_strings(m.group("text")), _py2_strings(m.group("ornt"))
    if texts is None or ornts is None or len(texts) > 1 or len(ornts) > 1:
        return None, f"transcription/orientation must be a list of at most one string: {raw[:120]!r}"
    return Record(where, xs, ys, texts[0] if texts else "", ornts[0] if ornts else ""), ""


def _number(token: str | float) -> float:
    value = float(token)
    if not np.isfinite(value):
        raise ValueError(token)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value  # huge ints overflow later


def _py2_strings(inner: str) -> list[str] | None:
    """`u'Caf\\xe9', u"it's"` (the inside of a Python 2 list repr) -> ['Café', "it's"]; None if not that."""
    try:
        values = ast.literal_eval(f"[{inner}]")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    out = []
    for v in values:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if not isinstance(v, str):
            return None
        out.append(_undo_byte_escapes(v))
    return out


def _undo_byte_escapes(text: str) -> str:
    """A Python 2 byte string (`'caf\\xc3\\xa9'`, no `u`) reads as Latin-1 mojibake: decode it as UTF-8."""
    if any("\x80" <= ch <= "\xff" for ch in text) and all(ch <= "\xff" for ch in text):
        try:
            return text.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            return text
    return text


# --- mat (legacy polygt and refined gt) ----------------------------------------------------------------


def read_mat_gt(path: Path) -> tuple[list[Record], list[Problem]]:
    """Records of one `.mat` ground truth (variable `gt` or `polygt`)."""
    try:
        data = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises many types for unreadable files; a parser must not raise
        return [], [Problem(path.name, "unreadable_mat", f"{type(exc).__name__}: {exc}")]
    return parse_mat_gt(data, path.name)


def parse_mat_gt(data: dict[str, Any], name: str) -> tuple[list[Record], list[Problem]]:
    """Records of a loaded `.mat` (what `scipy.io.loadmat` returns)."""
    variable = next((v for v in MAT_VARIABLES if v in data), None)
    if variable is None:
        found = sorted(k for k in data if not k.startswith("__"))
        return [], [
            Problem(name, "malformed_annotation", f"no variable {' or '.join(MAT_VARIABLES)}: {found}")
        ]
    cells = np.asarray(data[variable])
    if cells.size == 0:
        return [], []  # an image without any word
    if cells.ndim != 2 or cells.shape[1] < 6:
        return [], [
            Problem(name, "malformed_annotation", f"{variable} is {cells.shape}, expected N x 6 cells")
        ]
    records: list[Record] = []
    problems: list[Problem] = []
    for row_number, row in enumerate(cells, start=1):
        where = f"{name}#{row_number}"
        try:
            xs = tuple(_number(v) for v in np.asarray(row[1], dtype=np.float64).ravel())
            ys = tuple(_number(v) for v in np.asarray(row[3], dtype=np.float64).ravel())
            text, ornt = _mat_string(row[4]), _mat_string(row[5])
        except (TypeError, ValueError) as exc:
            problems.append(Problem(where, "malformed_annotation", str(exc)))
            continue
        records.append(Record(where, xs, ys, text, ornt))
    return records, problems


def _mat_string(cell: Any) -> str:
    """A MATLAB char cell: array(['PAUL']) -> 'PAUL'; an empty char loads as an empty array -> ''."""
    arr = np.asarray(cell)
    if arr.size == 0:
        return ""
    if arr.dtype.kind not in "US":
        raise ValueError(f"expected text, got {arr.dtype} {arr.ravel()[:4]}")
    value = arr.ravel()[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# --- records -> instances ------------------------------------------------------------------------------


def to_instances(
    records: list[Record], options: dict[str, Any]
) -> tuple[tuple[Instance, ...], tuple[Problem, ...]]:
    """Apply the don't-care rules and the language filter; unusable polygons become Problems."""
    marks = {str(m) for m in options.get("dont_care_marks") or ()}
    ornt_dont_care = bool(options.get("ornt_dont_care", True))
    instances: list[Instance] = []
    problems: list[Problem] = []
    for r in records:
        if len(r.xs) != len(r.ys):
            problems.append(
                Problem(r.where, "malformed_annotation", f"{len(r.xs)} x vs {len(r.ys)} y values")
            )
            continue
        if len(r.xs) < 4:
            problems.append(Problem(r.where, "degenerate_polygon", f"{len(r.xs)} vertices"))
            continue
        ignore = r.text.strip() == "" or r.text in marks or (ornt_dont_care and r.ornt == "#")
        points = tuple(zip(r.xs, r.ys))
        instances.append(
            Instance(r.text, points, ignore=ignore, attrs={"at": r.where, "orientation": r.ornt})
        )
    kept, filtered = LanguageFilter.from_options(options, latin_only=True).split(
        instances, lambda inst: inst.attrs["at"]
    )
    return kept, tuple(problems) + filtered
