"""A user's own word crops: `rebusyn build --custom NAME --from DIR|FILE` (written to train/real/custom/NAME).

The layouts people have when they ask how to train PARSeq on their data (baudm/parseq#7, #9, #44, #84):

1. **A label list**: one crop per line, `path<TAB>label` (what deep-text-recognition-benchmark's
   `create_lmdb_dataset.py` reads: the path may contain spaces) or `path label` split on the first run of
   whitespace (what PARSeq's copy reads). Both may be mixed: a line with a tab is split on its first tab.
   When a space-separated path does not exist, later whitespace runs are tried as the split point, so
   `my photo.jpg Hello` still finds `my photo.jpg`. Relative paths resolve against the list file's
   folder (and, when they start with that folder's own name, against its parent). `--from` names the
   list file, or a folder that holds exactly one `*.txt` list (or one of gt.txt, labels.txt, label.txt,
   lmdb.txt among several).
2. **A folder of crops with one label file per image**: `IMG/<i>.jpg` + `label/<i>.txt` (the layout of the
   case-sensitive benchmark relabels PARSeq used), or `name.jpg` next to `name.txt` (any depth).
3. **An STR LMDB** (`num-samples`, `image-%09d`, `label-%09d`): a folder with data.mdb, the data.mdb
   itself, or a folder of several LMDB folders (all read, in path order).

Text files may be UTF-8 with or without BOM (or UTF-16 with BOM), with LF or CRLF line ends. Every unusable
line or file is a Problem whose `where` names the file (and line): `missing_image`, `missing_label`,
`empty_label`, `invalid_utf8`. A folder whose layout cannot be told raises a ValueError that says why.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from rebusyn.sources._str_lmdb import find_lmdbs, iter_lmdb
from rebusyn.sources._word_labels import is_image, iter_case_sensitive, iter_text_lines, read_label_file
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file, natural_key

log = logging.getLogger(__name__)

LIST_NAMES = ("gt.txt", "labels.txt", "label.txt", "lmdb.txt")  # preferred when a folder has several lists


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Role `input`: the --from path. The layout is detected now, so an unusable path fails before any
    output is written."""
    source = Path(ctx.files["input"])
    layout, target = detect(source)
    log.info("custom data %s: %s layout (%s)", source, layout, target)
    if layout == "list":
        return iter_label_list(target, target.name)
    if layout == "img_label":
        return iter_case_sensitive(target, target.name)
    if layout == "side_by_side":
        return iter_side_by_side(target)
    return iter_lmdbs(target)


def detect(path: Path) -> tuple[str, Path]:
    """(layout, the file or folder to read) for a --from path; raises ValueError when it is none of them."""
    if path.is_file():
        return ("lmdb", path.parent) if path.name == "data.mdb" else ("list", path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if (path / "data.mdb").is_file():
        return "lmdb", path
    if (path / "IMG").is_dir() and (path / "label").is_dir():
        return "img_label", path
    if _has_side_by_side_labels(path):
        return "side_by_side", path
    lists = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".txt")
    lmdbs = find_lmdbs(path)
    if lists:
        chosen = lists[0] if len(lists) == 1 else _preferred_list(path, lists)
        if lmdbs:
            log.warning(
                "%s: reading the label list %s; the LMDB folders below it are ignored", path, chosen.name
            )
        return "list", chosen
    if lmdbs:
        return "lmdb", path
    raise ValueError(
        f"{path}: cannot tell the layout. Expected a label list (path<TAB>label or 'path label' lines, "
        "e.g. gt.txt next to the images), crops with label files (IMG/1.jpg + label/1.txt, or name.jpg + "
        "name.txt), or an STR LMDB (a folder with data.mdb). See docs/custom.md."
    )


def _preferred_list(folder: Path, lists: list[Path]) -> Path:
    named = [p for p in lists if p.name.lower() in LIST_NAMES]
    if len(named) == 1:
        return named[0]
    names = ", ".join(p.name for p in lists)
    raise ValueError(
        f"{folder}: several label lists ({names}); pass the one to use with --from {folder}/<list>.txt"
    )


def _has_side_by_side_labels(folder: Path) -> bool:
    """Whether some image has a same-named .txt next to it (one directory listing per folder, no stats)."""
    for _dirpath, _dirs, files in os.walk(folder):
        stems = {Path(f).stem for f in files if Path(f).suffix.lower() == ".txt"}
        if stems and any(Path(f).stem in stems for f in files if is_image(Path(f))):
            return True
    return False


# --- 1. label lists ------------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s+")


def iter_label_list(list_file: Path, display: str) -> Iterator[WordCrop | Problem]:
    """Every line of a label list; `display` names the file in Problems (`gt.txt:12`)."""
    folder = list_file.parent
    for item in iter_text_lines(list_file, display):
        yield item if isinstance(item, Problem) else _list_entry(folder, *item)


def _splits(line: str) -> list[tuple[str, str]]:
    """(path, label) readings of a line: the first tab, else each whitespace run (PARSeq's first)."""
    if "\t" in line:
        name, _, label = line.partition("\t")
        return [(name.strip(), label.strip())]
    text = line.strip()
    return [(text[: m.start()], text[m.end() :]) for m in _WHITESPACE.finditer(text)]


def _list_entry(folder: Path, where: str, line: str) -> WordCrop | Problem:
    readings = _splits(line)
    if not readings:
        return Problem(where, "missing_label", f"no label after the image path: {line.strip()!r}")
    for name, label in readings:
        image = _resolve(folder, name)
        if image is not None:
            if not label:
                return Problem(where, "empty_label", f"{name}: the label is empty")
            rel = _relative(image, folder)
            return WordCrop(image=image, image_id=rel, text=label, attrs={"image": rel})
    name = readings[0][0]
    return Problem(where, "missing_image", f"{name} not found (relative paths resolve against {folder})")


def _resolve(folder: Path, name: str) -> Path | None:
    if not name:
        return None
    path = Path(name)
    candidates = [path] if path.is_absolute() else [folder / path]
    if not path.is_absolute() and path.parts[0] == folder.name:
        candidates.append(folder.parent / path)  # `data/img/1.jpg` listed in data/gt.txt
    return next((c for c in candidates if is_file(c)), None)


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.as_posix()


# --- 2. one label file per image -----------------------------------------------------------------------


def iter_side_by_side(folder: Path) -> Iterator[WordCrop | Problem]:
    """`name.<img>` + `name.txt` in the same folder, in natural path order; a label file without an image
    is `missing_image`, an image without a label file `missing_label`."""
    for dirpath, dirs, files in os.walk(folder):
        dirs.sort(key=natural_key)  # os.walk visits in this order: deterministic
        here = Path(dirpath)
        image_stems = {Path(f).stem for f in files if is_image(Path(f))}
        labels = {Path(f).stem: f for f in files if Path(f).suffix.lower() == ".txt"}
        for name in sorted(files, key=natural_key):
            path = here / name
            where = f"{folder.name}/{path.relative_to(folder).as_posix()}"
            if is_image(path):
                yield _side_by_side_crop(folder, path, labels.get(path.stem), where)
            elif path.suffix.lower() == ".txt" and path.stem not in image_stems:
                yield Problem(where, "missing_image", f"no image named {path.stem}.* next to it")


def _side_by_side_crop(folder: Path, image: Path, label_name: str | None, where: str) -> WordCrop | Problem:
    if label_name is None:
        return Problem(where, "missing_label", f"no {image.stem}.txt next to it")
    label_file = image.with_name(label_name)
    text = read_label_file(label_file, f"{folder.name}/{label_file.relative_to(folder).as_posix()}")
    if isinstance(text, Problem):
        return text
    rel = image.relative_to(folder).as_posix()
    return WordCrop(image=image, image_id=rel, text=text, attrs={"image": rel})


# --- 3. STR LMDBs --------------------------------------------------------------------------------------


def iter_lmdbs(folder: Path) -> Iterator[WordCrop | Problem]:
    """The LMDB at `folder`, or every LMDB folder below it; keys `<folder>/<sub>#<i>`."""
    envs = [folder] if (folder / "data.mdb").is_file() else find_lmdbs(folder)
    for env_dir in envs:
        name = folder.name if env_dir == folder else f"{folder.name}/{env_dir.relative_to(folder).as_posix()}"
        yield from iter_lmdb(env_dir, name)
