"""What ArT 2019 and LSVT 2019 share: the RRC JSON ground truth keyed `gt_<N>`.

One JSON object for the whole split: `{"gt_1": [{"points": [[x1, y1], ..., [xn, yn]], "transcription": str,
"illegibility": bool, "language": str}, ...], ...}` (LSVT has no `language`). The image of key `gt_<N>` is
`gt_<N>.jpg`. Points are absolute pixels, 4 or more vertices, clockwise from the word's top-left; curved
words are polygons (top boundary left to right, then bottom boundary right to left) and are passed through
unchanged, the cropper rectifies them. `illegibility: true` (and, as OpenVINO's converter also treats it,
the transcription `###`) marks a don't-care region.

The filters PARSeq's converters applied are applied here (each switchable through the recipe options), and
everything they remove becomes a Problem with its own reason so the build report counts it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebusyn.sample import Instance
from rebusyn.sources.base import AnnotatedImage, Problem, WordCrop, finite_number, read_text

IGNORE_MARK = "###"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
_DIGITS = re.compile(r"(\d+)")
# PARSeq's lsvt_converter drops any label with a character in the CJK Unified Ideographs block.
CJK = re.compile(r"[\u4e00-\u9fff]")


class DuplicateKeyError(ValueError):
    pass


@dataclass(frozen=True)
class TextFilter:
    """PARSeq's label filters for ArT and LSVT, each switchable (see the recipes for the defaults).

    - `languages`: keep only entries whose `language` is one of these (case-insensitive, as PARSeq's
      `language.lower() == 'latin'`); empty = keep every language. Sources without the field skip it.
    - `drop_cjk`: drop labels containing a CJK ideograph (PARSeq's LSVT rule; LSVT has no language field).
    - `drop_hash_labels` + `hash_whitelist`: drop labels containing `#` unless whitelisted (PARSeq treats
      them as corrupted annotations).
    - `blacklist`: labels dropped outright.
    - `strip`: compare the stripped transcription with the lists (ArT's converter strips, LSVT's does not).
    """

    languages: tuple[str, ...] = ()
    drop_cjk: bool = False
    drop_hash_labels: bool = False
    hash_whitelist: tuple[str, ...] = ()
    blacklist: tuple[str, ...] = ()
    strip: bool = False

    @classmethod
    def from_options(cls, options: dict[str, Any], defaults: dict[str, Any]) -> TextFilter:
        merged = {**defaults, **{k: v for k, v in options.items() if k in defaults}}
        return cls(
            languages=tuple(str(x).casefold() for x in (merged.get("languages") or ())),
            drop_cjk=bool(merged.get("drop_cjk", False)),
            drop_hash_labels=bool(merged.get("drop_hash_labels", False)),
            hash_whitelist=tuple(str(x) for x in (merged.get("hash_whitelist") or ())),
            blacklist=tuple(str(x) for x in (merged.get("blacklist") or ())),
            strip=bool(merged.get("strip", False)),
        )

    def reason(self, text: str, language: str | None) -> tuple[str, str] | None:
        """(reason, detail) when the entry is filtered out, else None."""
        if self.languages and language is not None and language.casefold() not in self.languages:
            return "language_filtered", f"language {language!r} not in {list(self.languages)}"
        if self.drop_cjk and CJK.search(text):
            return "language_filtered", f"CJK characters in {text!r}"
        label = text.strip() if self.strip else text
        if label in self.blacklist:
            return "blacklisted_label", repr(text)
        if self.drop_hash_labels and "#" in label and label not in self.hash_whitelist:
            return "hash_in_label", repr(text)
        return None


def natural_key(key: str) -> tuple[tuple[int, int, str], ...]:
    """Digit runs compare as numbers: `gt_2` before `gt_10`, `gt_9_0` before `gt_2836_0`."""
    # isdecimal, not isdigit: `²` is a digit that int() refuses
    return tuple((0, int(t), "") if t.isdecimal() else (1, 0, t) for t in _DIGITS.split(key) if t)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


def load_json(path: Path) -> tuple[dict[str, Any] | None, Problem | None]:
    """The whole annotation object, or a Problem when the file cannot be used at all."""
    try:
        text = read_text(path)
    except UnicodeDecodeError as exc:
        return None, Problem(str(path), "invalid_utf8", str(exc))
    except OSError as exc:
        return None, Problem(str(path), "missing_annotation", str(exc))
    try:
        # duplicate keys would silently keep the last one: only top-level keys are image ids
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except DuplicateKeyError as exc:
        return None, Problem(str(path), "invalid_json", f"duplicate key {exc}")
    except (ValueError, RecursionError) as exc:  # also deep nesting and integers of > 4300 digits
        return None, Problem(str(path), "invalid_json", f"{type(exc).__name__}: {exc}")
    if not isinstance(data, dict):
        return None, Problem(
            str(path), "invalid_json", f"expected an object of gt_<N> keys, got {type(data).__name__}"
        )
    return data, None


def parse_points(raw: Any) -> tuple[tuple[tuple[float, float], ...] | None, str]:
    """[[x, y], ...] -> points, or (None, why). Accepts ints and floats; keeps the values as given."""
    if not isinstance(raw, list):
        return None, f"points must be a list of [x, y], got {type(raw).__name__}"
    points = []
    for p in raw:
        if not (isinstance(p, (list, tuple)) and len(p) == 2 and finite_number(p[0]) and finite_number(p[1])):
            return None, f"bad vertex {p!r}"
        points.append((p[0], p[1]))
    return tuple(points), ""


@dataclass(frozen=True)
class Entry:
    """One validated annotation entry."""

    text: str
    points: tuple[tuple[float, float], ...]
    illegible: bool
    language: str | None


def parse_entry(raw: Any, *, has_language: bool) -> tuple[Entry | None, str]:
    """Validate one `{points, transcription, illegibility[, language]}` dict: (entry, "") or (None, why)."""
    if not isinstance(raw, dict):
        return None, f"expected an object, got {type(raw).__name__}"
    text = raw.get("transcription")
    if not isinstance(text, str):
        return None, f"transcription must be a string, got {text!r}"
    illegible = raw.get("illegibility", False)
    if not isinstance(illegible, bool):
        return None, f"illegibility must be true or false, got {illegible!r}"
    language = None
    if has_language:
        language = raw.get("language")
        if not isinstance(language, str):
            return None, f"language must be a string, got {language!r}"
    points, why = parse_points(raw.get("points"))
    if points is None:
        return None, why
    return Entry(text, points, illegible or text.strip() == IGNORE_MARK, language), ""


def index_images(dirs: Iterable[Path]) -> tuple[dict[str, Path], list[Problem]]:
    """Image stem -> file over every images folder (LSVT splits its images over two archives)."""
    found: dict[str, Path] = {}
    problems: list[Problem] = []
    for directory in dirs:
        for path in sorted(directory.rglob("*")):
            if path.suffix not in IMAGE_EXTS or not path.is_file():
                continue
            if path.stem in found:
                problems.append(
                    Problem(str(path), "duplicate_image", f"{path.stem} already read from {found[path.stem]}")
                )
                continue
            found[path.stem] = path
    return found, problems


def iter_scene_images(
    annotations: Path,
    image_dirs: list[Path],
    text_filter: TextFilter,
    *,
    has_language: bool,
) -> Iterator[AnnotatedImage | Problem]:
    """One AnnotatedImage per key (in `gt_<N>` numeric order), then Problems for images without a key."""
    data, problem = load_json(annotations)
    if problem is not None:
        yield problem
        return
    assert data is not None
    images, problems = index_images(image_dirs)
    yield from problems
    name = annotations.name
    for key in sorted(data, key=natural_key):
        where = f"{name}:{key}"
        value = data[key]
        if not isinstance(value, list):
            yield Problem(
                where, "malformed_annotation", f"expected a list of entries, got {type(value).__name__}"
            )
            continue
        image = images.get(key)
        if image is None:
            yield Problem(where, "missing_image", f"no image {key}.jpg for this key ({len(value)} entries)")
            continue
        instances: list[Instance] = []
        drops: list[Problem] = []
        for number, raw in enumerate(value, start=1):
            at = f"{where}#{number}"
            entry, why = parse_entry(raw, has_language=has_language)
            if entry is None:
                drops.append(Problem(at, "malformed_annotation", why))
                continue
            if len(entry.points) < 4:
                # 2 points would read as an axis-aligned box, 3 cannot be paired into top/bottom
                drops.append(
                    Problem(at, "degenerate_polygon", f"{len(entry.points)} vertices: {list(entry.points)}")
                )
                continue
            if not entry.illegible:
                filtered = text_filter.reason(entry.text, entry.language)
                if filtered is not None:
                    drops.append(Problem(at, *filtered))
                    continue
            attrs: dict[str, Any] = {"key": key, "entry": number}
            if entry.language is not None:
                attrs["language"] = entry.language
            instances.append(Instance(entry.text, entry.points, ignore=entry.illegible, attrs=attrs))
        yield AnnotatedImage(image, key, tuple(instances), tuple(drops))
    for stem in sorted(set(images) - set(data), key=natural_key):
        yield Problem(str(images[stem]), "missing_annotation", f"no key {stem} in {name}")


def iter_word_crops(
    annotations: Path,
    crops_dir: Path,
    text_filter: TextFilter,
    *,
    keep_ignored: bool = False,
) -> Iterator[WordCrop | Problem]:
    """ArT Task 2: `{"gt_2836_0": [ {one entry} ]}`, each key's crop is `<key>.jpg`, stored byte for byte.

    Every value must be a list of exactly one entry (PARSeq's converter checks the same); the entry's points
    are relative to the crop and are not needed."""
    data, problem = load_json(annotations)
    if problem is not None:
        yield problem
        return
    assert data is not None
    crops, problems = index_images([crops_dir])
    yield from problems
    name = annotations.name
    for key in sorted(data, key=natural_key):
        where = f"{name}:{key}"
        value = data[key]
        if not isinstance(value, list) or len(value) != 1:
            got = f"{len(value)} entries" if isinstance(value, list) else type(value).__name__
            yield Problem(where, "malformed_annotation", f"expected a list of exactly one entry, got {got}")
            continue
        entry, why = parse_entry(value[0], has_language=True)
        if entry is None:
            yield Problem(where, "malformed_annotation", why)
            continue
        if entry.illegible and not keep_ignored:
            yield Problem(where, "dont_care")
            continue
        if not entry.illegible:
            filtered = text_filter.reason(entry.text, entry.language)
            if filtered is not None:
                yield Problem(where, *filtered)
                continue
        crop = crops.get(key)
        if crop is None:
            yield Problem(where, "missing_image", f"no crop {key}.jpg in the archive")
            continue
        yield WordCrop(crop, key, entry.text, attrs={"language": entry.language})
    for stem in sorted(set(crops) - set(data), key=natural_key):
        yield Problem(str(crops[stem]), "missing_annotation", f"no key {stem} in {name}")
