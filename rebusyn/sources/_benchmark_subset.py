"""Subset rules of the evaluation benchmarks (IC13 857/1015, IC15 1811), shared by their parsers.

Two ways to select a subset:

- a rule on the native transcription (`SubsetRule`): `drop_non_alphanumeric` drops words with any
  character outside [A-Za-z0-9] (IC13 1095 -> 1015), `min_length` drops words with fewer characters
  (IC13 1015 -> 857 with 3). Rejected words become Problems `subset_non_alphanumeric` / `subset_too_short`.
- a list of the kept crops (`SubsetList`): MMOCR's pre-made `textrecog_test_<n>.json` files name every
  crop of a subset (`data_list[*].img_path`). Needed where the rule is not reproducible from the native
  data (IC15 1811 also removed "extremely rotated, perspective-shifted and curved" words by hand).
  Crops not on the list are `subset_not_listed`; listed names that match no crop `subset_list_unmatched`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rebusyn.sources._coco_like import load_json
from rebusyn.sources._rrc_txt import find_files, is_image, read_gt
from rebusyn.sources.base import Problem, WordCrop

_ALNUM = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class SubsetRule:
    """`drop_non_alphanumeric` and `min_length` (0 = off) on the raw transcription."""

    drop_non_alphanumeric: bool = False
    min_length: int = 0

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SubsetRule:
        return cls(bool(options.get("drop_non_alphanumeric", False)), int(options.get("min_length", 0) or 0))

    @property
    def active(self) -> bool:
        return self.drop_non_alphanumeric or self.min_length > 0

    def reject(self, text: str) -> str | None:
        """The Problem reason for a word outside the subset, or None. Alphanumeric means ASCII letters and
        digits: the benchmarks' rule predates Unicode (a `Café` is not in IC13 1015)."""
        if self.drop_non_alphanumeric and not _ALNUM.fullmatch(text):
            return "subset_non_alphanumeric"
        if len(text) < self.min_length:
            return "subset_too_short"
        return None


@dataclass(frozen=True)
class SubsetList:
    """The crop file names (basenames) a pre-made subset list keeps, in list order."""

    path: Path
    names: tuple[str, ...]

    @classmethod
    def load(cls, path: Path) -> tuple[SubsetList | None, Problem | None]:
        """MMOCR 1.x recognition JSON (`{"data_list": [{"img_path": ...}, ...]}`); a bare list of such
        entries or of names, and 0.x `filename` keys, are accepted too."""
        data, problem = load_json(path)
        if problem is not None:
            return None, problem
        entries = data.get("data_list") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            return None, Problem(str(path), "malformed_json", "expected {'data_list': [...]} or a list")
        names: list[str] = []
        for i, entry in enumerate(entries):
            name = entry.get("img_path", entry.get("filename")) if isinstance(entry, dict) else entry
            # img_path is relative to MMOCR's data root (textrecog_imgs/test/word_1.png): match the file name
            base = PurePosixPath(name.strip().replace("\\", "/")).name if isinstance(name, str) else ""
            if not base:  # no name, or one that names a folder (`/`, `data/`)
                return None, Problem(f"{path}:data_list[{i}]", "malformed_json", f"no img_path: {entry!r}")
            names.append(base)
        return cls(path, tuple(names)), None

    def select(self, crops: Iterable[WordCrop | Problem]) -> Iterator[WordCrop | Problem]:
        """Pass the listed crops (in their native order), reject the rest, then report unmatched names."""
        wanted = set(self.names)
        seen: set[str] = set()
        for item in crops:
            if isinstance(item, WordCrop):
                name = item.image.name if item.image is not None else item.image_id
                if name not in wanted:
                    yield Problem(name, "subset_not_listed", f"{item.text!r} is not in {self.path.name}")
                    continue
                seen.add(name)
            yield item
        for name in dict.fromkeys(self.names):
            if name not in seen:
                yield Problem(f"{self.path}", "subset_list_unmatched", f"{name} is listed but not in the GT")


def select_listed(path: Path, crops: Iterable[WordCrop | Problem]) -> Iterator[WordCrop | Problem]:
    """The crops a subset list at `path` keeps; a list that cannot be read yields its Problem and nothing
    else (a broken list must not silently become the full benchmark)."""
    subset, problem = SubsetList.load(path)
    if problem is not None:
        yield problem
        return
    assert subset is not None
    yield from subset.select(crops)


WordEntries = Callable[[str, str], tuple[list[tuple[str, str]], list[Problem]]]


def iter_gt_crops(
    crops_dir: Path, gt_file: Path | None, parse_entries: WordEntries, rule: SubsetRule | None = None
) -> Iterator[WordCrop | Problem]:
    """The RRC word-recognition layout: every `(crop name, text)` entry `parse_entries` reads from `gt_file`
    (else the `gt.txt` inside the crop archive), resolved to its crop, in file order. Words the rule
    rejects become Problems; the crops are stored byte for byte."""
    rule = rule or SubsetRule()
    if gt_file is None:
        hits = sorted(crops_dir.rglob("gt.txt")) if crops_dir.is_dir() else []
        gt_file = hits[0] if hits else None
    if gt_file is None:
        yield Problem(str(crops_dir), "missing_annotation", "no ground-truth file for the word crops")
        return
    text, problem = read_gt(gt_file)
    if problem is not None:
        yield problem
        return
    entries, problems = parse_entries(text, str(gt_file))
    yield from problems
    by_name = {p.name: p for p in find_files([crops_dir], is_image)}
    for name, transcription in entries:
        where = f"{gt_file}:{name}"
        reason = rule.reject(transcription)
        if reason is not None:
            yield Problem(where, reason, repr(transcription))
            continue
        image = by_name.get(PurePosixPath(name.replace("\\", "/")).name)
        if image is None:
            yield Problem(where, "missing_image", f"{name} is listed but not in the crop archive")
            continue
        yield WordCrop(image, Path(image.name).stem, transcription)
