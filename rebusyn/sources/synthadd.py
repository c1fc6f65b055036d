"""SynthAdd (Li, Wang, Shen, Zhang, "Show, Attend and Read", AAAI 2019): ~1.2M synthetic word crops, the
`SA` set of REBU-Syn's synthetic group (synth_generators.md §5.3, parseq_paper.md §1.2).

Three inputs (recipes/synthadd.yaml):

`release` (default): `SynthText_Add.zip` as distributed (Baidu share of the SAR README, code 627x; MMOCR's
recog.md names the file and unzips it into `SynthAdd/SynthText_Add/`):
```
SynthText_Add/crop_img_<n>/<file>              the crops, n = 1..20
SynthText_Add/annotationlist/gt_<n>.txt        `<file>,"<label>"` per line, <file> relative to crop_img_<n>/
```
The line format is read the way every public reader reads it: SAR's own `create_dataset.py`
(`line.split(',')`, then `content[1][1:-2]`: the label between the quotes, LF line ends) and mindocr's
SynthAdd converter (`(\\w+.jpg),\\"(.+)\\"\\n`, asserted on every line: every label is non-empty and
quoted, and a label may hold commas and quotes since the match is greedy). So: the text after the first
comma, without its outer pair of double quotes, kept verbatim. Whether quotes inside a label are doubled
(CSV style) is not documented [?]: option `quote_escape: doubled` turns `""` into `"`; the default `none`
keeps the text as SAR's reader did. Encoding: UTF-8 assumed [?: the labels are English, so ASCII in
practice]; a BOM and CRLF line ends are accepted; a line that is not UTF-8 is an `invalid_utf8` Problem.

`mmocr`: MMOCR's converted `label.txt` (https://download.openmmlab.com/mmocr/data/mixture/SynthAdd/label.txt,
`<path> <label>` per line, split at the first whitespace run) with the images of the same release archive.
MMOCR places label.txt next to `SynthText_Add/`; whether its paths start with `SynthText_Add/` or with
`crop_img_<n>/` is not documented [?], so both resolve to the same image (and the same key).

`lmdb`: an STR-LMDB copy, REBU-Syn's `SynthAdd/{data.mdb,lock.mdb}` (large-ocr-model Data.md); every LMDB
under the extracted archive is read in path order, keyed `<lmdb folder>#<index>`.

Keys (attrs["image"]) are `crop_img_<n>/<file>` for both file inputs: file names may repeat across the 20
folders [?], never within one, and a repeated entry is a `duplicate_image` Problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from rebusyn.sources._str_lmdb import iter_lmdb_tree
from rebusyn.sources._word_labels import Entry, iter_img_text, iter_text_lines
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file

TOP = "SynthText_Add"
ANNOTATIONS = "annotationlist"
QUOTE_ESCAPES = ("none", "doubled")
_GT = re.compile(r"^gt_(\d+)\.txt$")
_CROPS = re.compile(r"^crop_img_(\d+)$")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Role `dataset` (the extracted release), plus role `labels` (MMOCR's label.txt) for input `mmocr`;
    or role `lmdb` (the extracted LMDB copy)."""
    if "lmdb" in ctx.files:
        return iter_lmdb_tree(ctx.files["lmdb"])
    if "labels" in ctx.files:
        return iter_mmocr(ctx.files["dataset"], ctx.files["labels"])
    escape = str(ctx.options.get("quote_escape", "none"))
    if escape not in QUOTE_ESCAPES:
        raise ValueError(f"synthadd option 'quote_escape' must be one of {QUOTE_ESCAPES}, got {escape!r}")
    return iter_release(ctx.files["dataset"], escape)


def find_root(extracted: Path) -> Path:
    """The `SynthText_Add` folder (the one holding `annotationlist/` or `crop_img_<n>/`): the extraction
    root, `SynthText_Add/`, or up to two wrapper folders deep (MMOCR's `SynthAdd/SynthText_Add/`)."""
    level = [extracted]
    for _ in range(3):
        for folder in level:
            if _is_root(folder):
                return folder
        level = [c for f in level for c in _subdirs(f) if not _CROPS.match(c.name)]
    raise FileNotFoundError(
        f"{extracted}: no SynthText_Add/annotationlist or crop_img_<n> folder; is this SynthText_Add.zip?"
    )


def _subdirs(folder: Path) -> list[Path]:
    # TOP first, then by name: a deterministic choice when several folders qualify. scandir's cached type
    # keeps this cheap next to 60k crops.
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if e.is_dir()]
    return [folder / n for n in sorted(names, key=lambda n: (n != TOP, n))]


def _is_root(folder: Path) -> bool:
    return (folder / ANNOTATIONS).is_dir() or any(_CROPS.match(p.name) for p in _subdirs(folder))


# --- input `release`: annotationlist/gt_<n>.txt -------------------------------------------------------------


def parse_gt_line(line: str, where: str, quote_escape: str = "none") -> Entry | Problem:
    """One `<file>,"<label>"` line: the file name before the first comma, the label between the outer quotes
    of the rest (kept verbatim; with `doubled`, `""` inside becomes `"`)."""
    name, comma, rest = line.partition(",")
    name, field = name.strip(), rest.strip()
    if not comma or not field:
        return Problem(where, "missing_label", f'no ,"label" after the file name: {line!r}')
    if not name:
        return Problem(where, "bad_line", f"no file name before the comma: {line!r}")
    if len(field) < 2 or field[0] != '"' or field[-1] != '"':
        return Problem(where, "bad_line", f"the label is not in double quotes: {line!r}")
    text = field[1:-1]
    if quote_escape == "doubled":
        text = text.replace('""', '"')
    if not text:
        return Problem(where, "empty_label", f"empty label for {name}")
    return Entry(where, name, text)


def gt_files(root: Path) -> dict[int, Path]:
    folder = root / ANNOTATIONS
    if not folder.is_dir():
        return {}
    return {int(m.group(1)): p for p in folder.iterdir() if p.is_file() and (m := _GT.match(p.name))}


def crop_folders(root: Path) -> dict[int, Path]:
    return {int(m.group(1)): p for p in _subdirs(root) if (m := _CROPS.match(p.name))}


def iter_release(extracted: Path, quote_escape: str = "none") -> Iterator[WordCrop | Problem]:
    """Every gt_<n>.txt in the order of n, each line resolved under crop_img_<n>/."""
    root = find_root(extracted)
    gts, folders = gt_files(root), crop_folders(root)
    if not gts:
        raise FileNotFoundError(f"{root}: no {ANNOTATIONS}/gt_<n>.txt; is this SynthText_Add.zip?")
    for n in sorted(gts.keys() | folders.keys()):
        folder = PurePosixPath(folders[n].name if n in folders else f"crop_img_{n}")
        if n not in gts:
            yield Problem(folder.as_posix(), "missing_annotations", f"no {ANNOTATIONS}/gt_{n}.txt")
            continue
        where = f"{ANNOTATIONS}/{gts[n].name}"
        seen: set[str] = set()  # per file: each gt file names the files of its own folder
        for item in iter_text_lines(gts[n], where):
            if isinstance(item, Problem):
                yield item
                continue
            entry = parse_gt_line(item[1], item[0], quote_escape)
            if isinstance(entry, Problem):
                yield entry
                continue
            name = _relative(entry.image)
            if name is None:
                yield Problem(entry.where, "bad_path", f"image path leaves the folder: {entry.image!r}")
                continue
            yield _crop(root, folder / name, entry, seen)


def _relative(path: str) -> PurePosixPath | None:
    """A path as written in a label file (`\\` accepted), or None when it is absolute, empty or uses `..`."""
    rel = PurePosixPath(path.replace("\\", "/"))
    return None if rel.is_absolute() or ".." in rel.parts or not rel.parts else rel


def _crop(root: Path, rel: PurePosixPath, entry: Entry, seen: set[str]) -> WordCrop | Problem:
    key = rel.as_posix()
    if key in seen:
        return Problem(entry.where, "duplicate_image", f"{key} is listed more than once")
    seen.add(key)
    image = root / key
    if not is_file(image):
        return Problem(entry.where, "missing_image", f"{key} is not in {root.name}/")
    attrs = {"image": key}
    if len(rel.parts) > 1 and _CROPS.match(rel.parts[0]):
        attrs["subset"] = rel.parts[0]
    attrs["annotation"] = entry.where
    return WordCrop(image=image, image_id=key, text=entry.text, attrs=attrs)


# --- input `mmocr`: MMOCR's label.txt -----------------------------------------------------------------------


def iter_mmocr(extracted: Path, label_file: Path) -> Iterator[WordCrop | Problem]:
    """`<path> <label>` lines in file order; `<path>` with or without the leading `SynthText_Add/`."""
    root = find_root(extracted)
    seen: set[str] = set()  # one file lists all 20 folders
    for entry in iter_img_text(label_file, label_file.name):
        if isinstance(entry, Problem):
            yield entry
            continue
        rel = _relative(entry.image)
        if rel is not None and rel.parts[0] in (TOP, root.name):
            rel = _relative("/".join(rel.parts[1:]))
        if rel is None:
            yield Problem(entry.where, "bad_path", f"not an image path under {TOP}/: {entry.image!r}")
            continue
        yield _crop(root, rel, entry, seen)

