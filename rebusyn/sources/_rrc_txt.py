"""Shared pieces for the per-image comma-separated ground truths of RCTW-17 and MLT 2019 (the ICDAR/RRC
family `icdar2015.py` also reads), plus the script filters those Chinese/multi-lingual sources need.

- `split_line`: `x1,y1,...,x4,y4,<field>,...,<transcription>` split on the first N commas only, because the
  transcription is "anything that follows" and may itself contain commas (no escapes exist).
- `parse_points`: flat coordinates (ints or floats; 8 for a quadrilateral) -> vertices.
- `pair_files`: images and ground truths matched by a key derived from their names, in numeric order.
- `non_latin_chars` / `LanguageFilter`: what a Latin-only (REBU-Syn/PARSeq-style) training set must drop:
  words that contain letters of another script. The 36-character label policy would otherwise turn
  `创于1989` into the label `1989` for a crop that shows four Chinese characters too.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rebusyn.sample import Instance
from rebusyn.sources.base import Problem, read_text

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp"})  # compared lower-cased
Point = tuple[float, float]


def split_line(line: str, fields: int) -> list[str] | None:
    """Split on the first `fields - 1` commas: the last field keeps any commas it contains."""
    parts = line.split(",", fields - 1)
    return parts if len(parts) == fields else None


# A decimal number as annotation tools write it. float() alone would also take `nan`, `inf`, `1_000` and
# digits of other scripts; `1e999` still overflows to inf and is refused below.
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _number(token: str) -> float:
    text = token.strip()
    value = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise ValueError(f"not a finite decimal number: {token!r}")
    # ints only where floats are exact: an int of 1e306 would overflow the float arithmetic of geometry
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def parse_points(tokens: Sequence[str | int | float]) -> tuple[Point, ...]:
    """Flat `x1, y1, x2, y2, ...` (strings or numbers) -> ((x1, y1), ...); ValueError when not numeric."""
    if len(tokens) < 4 or len(tokens) % 2:
        raise ValueError(f"expected an even number (>= 4) of coordinates, got {len(tokens)}")
    values = []
    for t in tokens:
        if isinstance(t, bool):  # JSON true/false are ints to Python; never coordinates
            raise ValueError(f"not a coordinate: {t!r}")
        values.append(_number(str(t)))
    return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))


def strip_quotes(text: str) -> tuple[str, bool]:
    """Remove one pair of surrounding double quotes (inner quotes and commas stay); (text, was_quoted)."""
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return text[1:-1], True
    return text, False


def read_gt(path: Path) -> tuple[str | None, Problem | None]:
    """A ground-truth text file as UTF-8 (BOM dropped, CRLF -> LF), or an `invalid_utf8` Problem."""
    try:
        return read_text(path), None
    except UnicodeDecodeError as exc:
        return None, Problem(str(path), "invalid_utf8", str(exc))


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) for every non-blank line; stray CRs and a mid-file BOM removed."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if lineno == 1:
            line = line.lstrip("\ufeff")
        if line.strip():
            yield lineno, line


def numeric_key(name: str) -> tuple[int, str]:
    """Sort key: the last run of digits in the name as a number (`image_10` after `image_9`)."""
    digits = re.findall(r"\d+", name)
    return (int(digits[-1]) if digits else -1, name)


def find_files(folders: Iterable[Path], keep: Callable[[Path], bool]) -> list[Path]:
    """Every file under the folders that `keep` accepts, in a deterministic order."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_file():
            candidates: Iterable[Path] = [folder]
        else:
            candidates = sorted(folder.rglob("*"))
        found += [p for p in candidates if p.is_file() and not p.name.startswith(".") and keep(p)]
    return found


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def paired_ground_truth(
    images: Iterable[Path],
    annotations: Iterable[Path],
    image_key: Callable[[Path], str | None],
    annotation_key: Callable[[Path], str | None],
    annotation_hint: str,
) -> Iterator[tuple[str, Path, Path, str] | Problem]:
    """`pair_files`, then each ground truth read as text: (image id, image, gt file, gt text) or a Problem."""
    for item in pair_files(images, annotations, image_key, annotation_key, annotation_hint):
        if isinstance(item, Problem):
            yield item
            continue
        image_id, image, gt = item
        text, problem = read_gt(gt)
        if problem is not None:
            yield problem
        else:
            yield image_id, image, gt, text


def pair_files(
    images: Iterable[Path],
    annotations: Iterable[Path],
    image_key: Callable[[Path], str | None],
    annotation_key: Callable[[Path], str | None],
    annotation_hint: str,
) -> Iterator[tuple[str, Path, Path] | Problem]:
    """Match images and ground truths by key, in numeric order of the key.

    The first file wins when a key occurs twice (e.g. the same image in two archive parts); an image without
    ground truth is `missing_annotation`, a ground truth without image `missing_image`.
    """
    by_image: dict[str, Path] = {}
    for path in images:
        key = image_key(path)
        if key is not None:
            by_image.setdefault(key, path)
    by_gt: dict[str, Path] = {}
    for path in annotations:
        key = annotation_key(path)
        if key is not None:
            by_gt.setdefault(key, path)
    for key in sorted(set(by_image) | set(by_gt), key=numeric_key):
        if key not in by_gt:
            yield Problem(str(by_image[key]), "missing_annotation", f"no {annotation_hint} for this image")
        elif key not in by_image:
            yield Problem(str(by_gt[key]), "missing_image", f"no image {key}.* for this ground truth")
        else:
            yield key, by_image[key], by_gt[key]


# --- script / language filters ----------------------------------------------------------------------


def _foreign(ch: str) -> bool:
    """A letter of a non-Latin script, or a digit that is not 0-9 (Arabic-Indic, Bengali, Devanagari...).

    Full-width Latin (`ＫＦＣ`, common on Chinese signboards) is Latin; marks, punctuation and symbols are
    judged by the label policy, not here."""
    category = unicodedata.category(ch)
    if category.startswith("L"):
        return "LATIN" not in unicodedata.name(ch, "")
    if category == "Nd":
        return not ("0" <= ch <= "9" or unicodedata.name(ch, "").startswith("FULLWIDTH DIGIT"))
    return False


def non_latin_chars(text: str) -> str:
    """The characters of `text` that are letters (or digits) of a script other than Latin, in order."""
    return "".join(ch for ch in text if _foreign(ch))


@dataclass(frozen=True)
class LanguageFilter:
    """`latin_only`: drop words with any letter outside the Latin script (CJK, Hangul, Kana, Arabic, ...).

    `scripts`: for sources whose ground truth names a script per word (MLT), keep only these scripts; None
    keeps every script. Both produce the report reason `language_filtered`."""

    latin_only: bool = False
    scripts: frozenset[str] | None = None

    @classmethod
    def from_options(
        cls, options: dict, *, latin_only: bool = False, scripts: Sequence[str] | None = None
    ) -> LanguageFilter:
        """Read `latin_only` and `scripts` from recipe options (the keyword defaults apply when absent)."""
        latin = bool(options.get("latin_only", latin_only))
        raw = options.get("scripts", scripts)
        if raw is None or raw == "all":
            chosen = None
        elif isinstance(raw, str):
            chosen = frozenset(s.strip() for s in raw.split(",") if s.strip())
        else:
            chosen = frozenset(str(s) for s in raw)
        return cls(latin, chosen)

    def reject(self, text: str, script: str | None = None) -> str | None:
        """Why a legible word must not become a sample (None: keep it)."""
        if self.scripts is not None and script is not None and script not in self.scripts:
            return f"script {script!r} is not one of {sorted(self.scripts)}"
        if self.latin_only:
            foreign = non_latin_chars(text)
            if foreign:
                return f"non-Latin characters {foreign[:12]!r}"
        return None

    def split(
        self, instances: Iterable[Instance], where: Callable[[Instance], str]
    ) -> tuple[tuple[Instance, ...], tuple[Problem, ...]]:
        """Instances to crop and `language_filtered` Problems for the rest. Don't-care instances pass
        through untouched (the build counts them as `dont_care`, whatever script they carry)."""
        kept: list[Instance] = []
        problems: list[Problem] = []
        for inst in instances:
            why = None if inst.ignore else self.reject(inst.text, inst.attrs.get("script"))
            if why is None:
                kept.append(inst)
            else:
                problems.append(Problem(where(inst), "language_filtered", f"{why}: {inst.text!r}"))
        return tuple(kept), tuple(problems)
