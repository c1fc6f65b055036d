"""Union14M-L (Jiang et al., ICCV 2023): ~3.2M word crops from 14 public datasets, REBU-Syn's group U.

Two inputs (recipes/union14m.yaml):

`images` (default) reads the release as distributed (Mountchicken/Union14M README §3.4, OneDrive/BaiduYun):
```
Union14M-L/full_images/<source>/...                 the crops (axis-aligned, de-duplicated by the authors)
Union14M-L/train_annos/mmocr-0.x/train_<level>.jsonl  {"filename", "text"} per line, level in
                                                    challenging, easy, hard, medium, normal; val_annos.jsonl
Union14M-L/train_annos/mmocr1.0/train_<level>.json  the same in MMOCR 1.x JSON (the README's tree calls the
                                                    folder mmocr1.0.x, MAERec's configs mmocr1.0: both work)
Union14M-L/Union14M-Benchmarks/<subset>/...         the test benchmark: never read here
```
Image names are relative to the `Union14M-L/` folder (Union14M's `tools/img2lmdb.py` joins them to it);
names that do not resolve there are tried under `full_images/` [?: the exact form of `filename` is not
documented].

`lmdb` reads a pre-packed STR-LMDB copy, REBU-Syn's `Union14M_L_lmdb_format/{difficult,hard,hell,medium,
simple}` (large-ocr-model Data.md): every LMDB under the extracted folder, each sample keyed
`<lmdb folder>#<index>` with the subset (the LMDB's folder name) in its meta.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from rebusyn.sources._str_lmdb import iter_lmdb_tree
from rebusyn.sources._word_labels import Entry, iter_mmocr_json, iter_mmocr_jsonl
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file

LEVELS = ("challenging", "easy", "hard", "medium", "normal")  # the five training difficulty levels
ANNOTATION_FORMATS = ("auto", "jsonl", "json")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Role `dataset` (the extracted release) or role `lmdb` (the extracted LMDB folders)."""
    if "lmdb" in ctx.files:
        subsets = ctx.options.get("lmdb_subsets")
        return iter_lmdb_tree(ctx.files["lmdb"], [subsets] if isinstance(subsets, str) else subsets)
    subsets = ctx.options.get("subsets") or list(LEVELS)
    if isinstance(subsets, str):
        subsets = [subsets]
    fmt = str(ctx.options.get("annotations", "auto"))
    if fmt not in ANNOTATION_FORMATS:
        raise ValueError(f"union14m option 'annotations' must be one of {ANNOTATION_FORMATS}, got {fmt!r}")
    return iter_release(ctx.files["dataset"], [str(s) for s in subsets], fmt)


# --- the release: images + annotation files ------------------------------------------------------------


def find_root(extracted: Path) -> Path:
    """The folder holding `train_annos/`: the extraction root, `Union14M-L/`, or one level below either."""
    candidates = [extracted, extracted / "Union14M-L"]
    candidates += sorted(p for p in extracted.iterdir() if p.is_dir())
    for folder in candidates:
        if (folder / "train_annos").is_dir():
            return folder
    for folder in sorted(p for p in extracted.iterdir() if p.is_dir()):
        if (folder / "Union14M-L" / "train_annos").is_dir():
            return folder / "Union14M-L"
    raise FileNotFoundError(
        f"{extracted}: no Union14M-L/train_annos/ folder; is this the Union14M-L release archive?"
    )


def annotation_file(root: Path, subset: str, fmt: str) -> Path | None:
    """`train_<level>` (or `val_annos` for subset `val`) in the requested format; `auto` prefers the JSON
    lines (streamed line by line; the 1.x JSON of the easy level is one ~2M-record document)."""
    stem = "val_annos" if subset == "val" else f"train_{subset}"
    jsonl = root / "train_annos" / "mmocr-0.x" / f"{stem}.jsonl"
    json_files = [d / f"{stem}.json" for d in sorted((root / "train_annos").glob("mmocr1.0*")) if d.is_dir()]
    options = {"jsonl": [jsonl], "json": json_files, "auto": [jsonl, *json_files]}[fmt]
    return next((p for p in options if p.is_file()), None)


def iter_release(extracted: Path, subsets: list[str], fmt: str = "auto") -> Iterator[WordCrop | Problem]:
    root = find_root(extracted)
    for subset in subsets:
        path = annotation_file(root, subset, fmt)
        if path is None:
            yield Problem(
                f"train_annos/*/{subset}", "missing_annotations", f"no {fmt} annotation file for {subset!r}"
            )
            continue
        where = path.relative_to(root).as_posix()
        reader = iter_mmocr_jsonl if path.suffix == ".jsonl" else iter_mmocr_json
        for entry in reader(path, where):
            yield entry if isinstance(entry, Problem) else _crop(root, entry, subset)


def _crop(root: Path, entry: Entry, subset: str) -> WordCrop | Problem:
    name = PurePosixPath(entry.image.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts:
        return Problem(entry.where, "bad_path", f"image path leaves the dataset folder: {entry.image!r}")
    for candidate in (root / name, root / "full_images" / name):
        if is_file(candidate):
            rel = candidate.relative_to(root).as_posix()
            return WordCrop(
                image=candidate, image_id=rel, text=entry.text, attrs={"image": rel, "subset": subset}
            )
    return Problem(entry.where, "missing_image", f"{entry.image} is not in {root.name}/")
