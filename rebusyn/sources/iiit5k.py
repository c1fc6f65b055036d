"""IIIT5K-Words (IIIT Hyderabad): 2,000 training and 3,000 test word crops, serving the `iiit5k` (train) and
`iiit5k_test` recipes; the recipe input's split picks `train` or `test`.

Input `original`: `IIIT5K-Word_V3.0.tar.gz` extracts to `IIIT5K/{train,test}/*.png`, `traindata.mat`,
`testdata.mat`, `trainCharBound.mat`, `testCharBound.mat`, `lexicon.txt`. `<split>data.mat` is a MATLAB v5
struct array `<split>data` (1 x N) with fields

- `ImgName`: the crop's path relative to `IIIT5K/` (`train/1009_2.png`, `test/3_1.png`);
- `GroundTruth`: the word, upper-case (the README: case-insensitive);
- `smallLexi` (50 words) and `mediumLexi` (1,000 words): per-image lexicons (not used: PARSeq evaluates
  lexicon-free).

`<split>CharBound.mat` (struct `<split>CharBound`: `ImgName`, `chars`, `charBB`) carries the same words
case-sensitively in `chars`; option `labels: char_bound` takes the labels from there instead (the crops
are the same). The crops are stored byte for byte.

Inputs `case_sensitive` / `case_sensitive_parseq`: the relabelled crops of Long & Yao (or PARSeq's
corrected fork), folders `iiit5k_train` / `iiit5k_test`, read by `_word_labels.iter_case_sensitive_set`
(the first line of each label file, stripped, as PARSeq's converter reads it).

Problems: a .mat that scipy cannot read (e.g. a v7.3/HDF5 file) is `unreadable_mat`, a missing variable or
field `malformed_mat`, a record without a usable ImgName `malformed_entry`, a listed crop that is not in the
archive `missing_image`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from rebusyn.sources._word_labels import iter_case_sensitive_set
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file

LABEL_FIELDS = {"ground_truth": "GroundTruth", "char_bound": "chars"}


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    split = ctx.split if ctx.split in ("train", "test") else "train"
    if ctx.input.startswith("case_sensitive"):
        return iter_case_sensitive_set(ctx.files["relabel"], f"iiit5k_{split}")
    labels = str(ctx.options.get("labels", "ground_truth"))
    if labels not in LABEL_FIELDS:
        raise ValueError(f"iiit5k option 'labels' must be one of {', '.join(LABEL_FIELDS)}, got {labels!r}")
    return iter_original(ctx.files["dataset"], split, labels)


def mat_string(value: Any) -> str | None:
    """A MATLAB char array as loadmat returns it (`array(['MAKE'], dtype='<U4')`, possibly nested in object
    arrays, or empty for '') -> str; numbers become their decimal text; None when nothing string-like."""
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        if value.dtype.kind == "U":
            return "".join(str(v) for v in value.ravel())
        if value.size != 1:
            return None
        value = value.ravel()[0]
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    return None


def find_mat(root: Path, name: str) -> Path | None:
    hits = sorted(p for p in root.rglob(name) if p.is_file())
    return hits[0] if hits else None


def load_struct(path: Path, variable: str) -> tuple[np.ndarray | None, Problem | None]:
    """The struct array `variable` of a MATLAB v5 file, flattened to 1-D."""
    try:
        mat = scipy.io.loadmat(str(path))
    except (NotImplementedError, ValueError, OSError, TypeError) as exc:  # v7.3 raises NotImplementedError
        return None, Problem(str(path), "unreadable_mat", f"{type(exc).__name__}: {exc}")
    data = mat.get(variable)
    if not isinstance(data, np.ndarray) or data.dtype.names is None:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        return None, Problem(str(path), "malformed_mat", f"no struct array {variable!r} (variables: {found})")
    return data.ravel(), None


def read_records(path: Path, variable: str, label_field: str) -> tuple[list[tuple[str, str]], list[Problem]]:
    """[(ImgName, label)] of a `<split>data` / `<split>CharBound` struct array, in file order."""
    data, problem = load_struct(path, variable)
    if problem is not None:
        return [], [problem]
    assert data is not None
    missing = [f for f in ("ImgName", label_field) if f not in data.dtype.names]
    if missing:
        return [], [Problem(str(path), "malformed_mat", f"{variable} has no field(s) {', '.join(missing)}")]
    records: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for i, rec in enumerate(data):
        name, text = mat_string(rec["ImgName"]), mat_string(rec[label_field])
        if not name or text is None:
            problems.append(
                Problem(
                    f"{path}:{variable}[{i}]", "malformed_entry", f"ImgName {name!r}, {label_field} {text!r}"
                )
            )
            continue
        records.append((name.strip().replace("\\", "/"), text))
    return records, problems


def load_split_file(
    root: Path, variable: str, label_field: str
) -> tuple[Path | None, list[tuple[str, str]], list[Problem]]:
    """Find `<variable>.mat` anywhere under the extracted archive and read its (ImgName, label) records."""
    path = find_mat(root, f"{variable}.mat")
    if path is None:
        return None, [], [Problem(str(root), "missing_annotation", f"no {variable}.mat in the archive")]
    records, problems = read_records(path, variable, label_field)
    return path, records, problems


def iter_original(root: Path, split: str, labels: str = "ground_truth") -> Iterator[WordCrop | Problem]:
    """The crops listed in `<split>data.mat`, with GroundTruth (or CharBound `chars`) as the label."""
    data_path, records, problems = load_split_file(root, f"{split}data", "GroundTruth")
    yield from problems
    by_name: dict[str, str] | None = None
    if labels == "char_bound":
        bound_path, bound, bound_problems = load_split_file(root, f"{split}CharBound", "chars")
        yield from bound_problems
        if bound_path is None:
            return
        by_name = dict(bound)
    if data_path is None:
        return
    for name, text in records:
        if by_name is not None:  # CharBound `chars` replace GroundTruth, in the data file's order
            if name not in by_name:
                yield Problem(
                    str(bound_path), "missing_annotation", f"{name} ({text!r}) has no CharBound entry"
                )
                continue
            text = by_name[name]
        image = data_path.parent / name
        if not is_file(image):
            yield Problem(f"{data_path}", "missing_image", f"{name} is listed but not in the archive")
            continue
        yield WordCrop(image, name, text, attrs={"img_name": name})
