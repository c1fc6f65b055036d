"""Label files of word-crop datasets, read line by line with every bad piece turned into a Problem.

- `read_lines`: a text file as (line number, text): UTF-8 with or without BOM (UTF-16 with a BOM too, as
  Windows editors save "Unicode"), LF or CRLF; a line that is not valid UTF-8 is an `invalid_utf8` Problem.
- `iter_img_text`: MMOCR 0.x recognition lists `img text` (SVTP's `gt.txt`) and `img text x y` (CUTE80's
  `test_label.txt`), split on whitespace runs.
- `iter_mmocr_jsonl` / `iter_mmocr_json`: MMOCR 0.x JSON lines `{"filename", "text"}` and MMOCR 1.x
  `{"metainfo", "data_list": [{"img_path", "instances": [{"text"}]}]}` (Union14M-L ships both).
- `iter_case_sensitive`: one label file per crop, `IMG/<i>.jpg` + `label/<i>.txt` (the case-sensitive
  relabels of IIIT5k/SVT/SVTP/CUTE80 by Long & Yao that PARSeq used; PARSeq reads the first line, stripped).

The readers yield `Entry(where, image, text)` (image as written in the file) or `Problem`; callers resolve
image paths, because each dataset roots them differently.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebusyn.sources._str_lmdb import find_dir
from rebusyn.sources.base import Problem, WordCrop, natural_key

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Entry:
    """One labelled crop as a label file names it: `where` is `file:line` (or `file#n`)."""

    where: str
    image: str
    text: str


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def decode_bytes(raw: bytes) -> str | None:
    """UTF-8 (BOM optional) or BOM-marked UTF-16; None when the bytes are neither."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(codec)
            except UnicodeDecodeError:
                return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def read_lines(path: Path, where: str) -> Iterator[tuple[int, str] | Problem]:
    """(line number, text without the line break) for every line; undecodable lines become Problems."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = decode_bytes(raw)
        if text is None:
            yield Problem(where, "invalid_utf16", "the file starts with a UTF-16 BOM but does not decode")
            return
        for number, line in enumerate(text.split("\n"), start=1):
            yield number, line.rstrip("\r")
        return
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    # decoded per line, so one bad line does not cost the whole file
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            yield number, line.rstrip(b"\r").decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Problem(f"{where}:{number}", "invalid_utf8", str(exc))


def iter_text_lines(path: Path, where: str) -> Iterator[tuple[str, str] | Problem]:
    """The non-blank lines as (`where:number`, text); undecodable lines as Problems."""
    for item in read_lines(path, where):
        if isinstance(item, Problem):
            yield item
        elif item[1].strip():
            yield f"{where}:{item[0]}", item[1]


def iter_img_text(path: Path, where: str, extra_fields: int = 0) -> Iterator[Entry | Problem]:
    """`img text` lines (the text is the rest of the line), or with `extra_fields` > 0 exactly
    `img text f1 .. fk` (CUTE80's `timage/001.jpg RONALDO 1 RONALDO`: the text is the second field)."""
    for item in iter_text_lines(path, where):
        if isinstance(item, Problem):
            yield item
            continue
        at, line = item
        parts = line.split() if extra_fields else line.strip().split(maxsplit=1)
        if len(parts) < 2:
            yield Problem(at, "missing_label", f"no text after the image name: {line!r}")
        elif extra_fields and len(parts) != 2 + extra_fields:
            yield Problem(at, "bad_line", f"expected {2 + extra_fields} fields, got {len(parts)}: {line!r}")
        else:
            yield Entry(at, parts[0], parts[1])


def iter_mmocr_jsonl(path: Path, where: str) -> Iterator[Entry | Problem]:
    """MMOCR 0.x recognition JSON lines: `{"filename": ..., "text": ...}` per line."""
    for item in iter_text_lines(path, where):
        if isinstance(item, Problem):
            yield item
            continue
        at, line = item
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:  # also deep nesting and integers of > 4300 digits
            yield Problem(at, "bad_json", f"{type(exc).__name__}: {exc}")
            continue
        yield _entry(at, record, "filename", lambda r: r.get("text"))


def iter_mmocr_json(path: Path, where: str) -> Iterator[Entry | Problem]:
    """MMOCR 1.x recognition JSON: `data_list[i] = {"img_path", "instances": [{"text"}]}`."""
    text = decode_bytes(path.read_bytes())
    if text is None:
        yield Problem(where, "invalid_utf8", "neither UTF-8 nor UTF-16 with a BOM")
        return
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also deep nesting and integers of > 4300 digits
        yield Problem(where, "bad_json", f"{type(exc).__name__}: {exc}")
        return
    records = data.get("data_list") if isinstance(data, dict) else None
    if not isinstance(records, list):
        yield Problem(where, "bad_json", "not an MMOCR 1.x annotation file (no data_list list)")
        return
    for number, record in enumerate(records, start=1):
        yield _entry(f"{where}#{number}", record, "img_path", _single_instance_text)


def _single_instance_text(record: dict[str, Any]) -> Any:
    instances = record.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return None  # a recognition record holds exactly one word
    return instances[0].get("text")


def _entry(where: str, record: Any, image_key: str, get_text: Any) -> Entry | Problem:
    if not isinstance(record, dict):
        return Problem(where, "bad_annotation", f"expected an object, got {type(record).__name__}")
    image, text = record.get(image_key), get_text(record)
    if not isinstance(image, str) or not image:
        return Problem(where, "bad_annotation", f"no {image_key!r} string")
    if not isinstance(text, str):
        return Problem(where, "bad_annotation", f"no text string for {image}")
    return Entry(where, image, text)


def read_label_file(path: Path, where: str) -> str | Problem:
    """One crop's label file: its first line, stripped (as PARSeq's converter reads it)."""
    text = decode_bytes(path.read_bytes())
    if text is None:
        return Problem(where, "invalid_utf8", "label file is not UTF-8")
    lines = text.splitlines()
    label = lines[0].strip() if lines else ""
    return label if label else Problem(where, "empty_label", "label file is empty")


def iter_case_sensitive(folder: Path, prefix: str) -> Iterator[WordCrop | Problem]:
    """`IMG/<i>.<ext>` + `label/<i>.txt`, in natural order of i; `prefix` names the folder in keys and
    Problems. A label without an image is `missing_image`, an image without a label `missing_label`;
    other files (`.DS_Store`, thumbnails) are ignored."""
    labels = {p.stem: p for p in (folder / "label").iterdir() if p.is_file() and p.suffix.lower() == ".txt"}
    images: dict[str, Path] = {}
    # jpg before png, as PARSeq's converter prefers it
    for path in sorted((folder / "IMG").iterdir(), key=lambda p: (_suffix_rank(p), p.name)):
        if path.is_file() and is_image(path):
            images.setdefault(path.stem, path)
    for stem in sorted(labels.keys() | images.keys(), key=natural_key):
        if stem not in images:
            yield Problem(f"{prefix}/label/{stem}.txt", "missing_image", f"no IMG/{stem}.jpg or .png")
            continue
        rel = f"{prefix}/IMG/{images[stem].name}"
        if stem not in labels:
            yield Problem(rel, "missing_label", f"no label/{stem}.txt")
            continue
        text = read_label_file(labels[stem], f"{prefix}/label/{stem}.txt")
        if isinstance(text, Problem):
            yield text
            continue
        yield WordCrop(image=images[stem], image_id=rel, text=text, attrs={"image": rel})


def _suffix_rank(path: Path) -> int:
    suffix = path.suffix.lower()
    return IMAGE_SUFFIXES.index(suffix) if suffix in IMAGE_SUFFIXES else len(IMAGE_SUFFIXES)


def iter_case_sensitive_set(extracted: Path, name: str) -> Iterator[WordCrop | Problem]:
    """One set (`svtp_test`, `cute80_test`, ...) of the extracted Case-Sensitive-Scene-Text-Recognition-
    Datasets archive (GitHub wraps it in `<repo>-<branch>/`). A missing set is a whole-input fault."""
    folder = find_dir(extracted, name)
    if folder is None or not (folder / "IMG").is_dir() or not (folder / "label").is_dir():
        raise FileNotFoundError(f"{extracted}: no {name}/IMG and {name}/label folders in the archive")
    return iter_case_sensitive(folder, name)
