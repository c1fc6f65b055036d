"""Curved SynthText (CurvedSynth of Long et al., "Alchemy: Techniques for Rectification Based Irregular Scene
Text Recognition", arXiv 1908.11834): ~1.7M curved synthetic word crops, the `CST` set of REBU-Syn's
synthetic group (synth_generators.md §5.4, parseq_paper.md §1.2). Rendered with PkuDavidGuan/CurvedSynthText
(a SynthText fork that bends text) and distributed by the Alchemy repository (README "Data": a Baidu share
and Google Drive parts).

Two inputs (recipes/cst.yaml):

`release` (default): the dataset folder as Alchemy's `Source/datasets/synthtextlist.py` reads it and its
README describes every dataset (`./dataset/curvedsynth` in `Experiment1/*_synth_cur.sh`):
```
<dataset>/Label.json     one JSON array: [{"img": "IMG/x.jpg", "word": str, "chars": 2 x 4 x n ints}, ...]
<dataset>/IMG/<n>.jpg    the crops (with a margin: Alchemy trims it with the char boxes at load time)
```
`img` is relative to the folder holding Label.json (synthtextlist.py: `os.path.join(root, label["img"])`);
`chars` holds the character quadrilaterals as x/y x 4 corners x n characters (synthtextlist.py transposes
it to n x 4 x 2); the README also lists optional `poly_x`/`poly_y`. The crops are stored as they are, so
`chars` and `poly_*` are not read. Every Label.json in the extracted archive is read (the top folder and
up to two wrapper levels; a folder holding a Label.json is not searched further), so an archive holding
several parts works [?: how the Google Drive parts 1-3 are laid out is not documented]. The archive's
file name and top folder are not published [?].

Label.json is a single array (~1.7M records, hundreds of MB), so it is streamed with the stdlib's
`json.JSONDecoder.raw_decode`, one record at a time (`iter_json_array`): memory stays flat whatever its size.

`lmdb`: an STR-LMDB copy, REBU-Syn's `Curved_SynthText/{syntext1,syntext2}` (large-ocr-model Data.md);
every LMDB under the extracted archive is read in path order, keyed `<lmdb folder>#<index>` [?: those two
folder names are also the names of ABCNet's SynText-150k parts (synth_generators.md §5.4), so which data
REBU-Syn packed under this name is not certain].

Keys (attrs["image"]) are the crop's path under the extraction folder, e.g. `CurvedSynth/IMG/17.jpg`.
"""

from __future__ import annotations

import codecs
import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from rebusyn.sources._str_lmdb import iter_lmdb_tree
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file, natural_key

LABEL_FILE = "Label.json"
_CHUNK = 1 << 20  # characters read per step
_MAX_RECORD = 8 << 20  # a record longer than this is not a word record: stop instead of buffering the file


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Role `dataset` (the extracted release) or role `lmdb` (the extracted LMDB copy)."""
    if "lmdb" in ctx.files:
        return iter_lmdb_tree(ctx.files["lmdb"])
    return iter_release(ctx.files["dataset"])


# --- input `release`: Label.json + IMG/ ---------------------------------------------------------------------


def dataset_folders(extracted: Path, depth: int = 2) -> list[Path]:
    """Folders holding a Label.json: the extraction root and up to `depth` levels of wrapper folders below
    it, in natural path order. A dataset folder is not searched further (its IMG/ holds the crops)."""
    if (extracted / LABEL_FILE).is_file():
        return [extracted]
    if depth == 0:
        return []
    with os.scandir(extracted) as entries:
        children = sorted((e.name for e in entries if e.is_dir()), key=natural_key)
    return [found for name in children for found in dataset_folders(extracted / name, depth - 1)]


def iter_release(extracted: Path) -> Iterator[WordCrop | Problem]:
    folders = dataset_folders(extracted)
    if not folders:
        raise FileNotFoundError(
            f"{extracted}: no {LABEL_FILE} at the top or one or two folders below; is this CurvedSynth?"
        )
    seen: set[str] = set()
    for folder in folders:
        prefix = PurePosixPath(folder.relative_to(extracted).as_posix())
        where = (prefix / LABEL_FILE).as_posix()
        for item in iter_json_array(folder / LABEL_FILE, where):
            if isinstance(item, Problem):
                yield item
            else:
                yield _crop(extracted, prefix, f"{where}#{item[0]}", item[1], seen)


def _crop(
    extracted: Path, prefix: PurePosixPath, where: str, record: Any, seen: set[str]
) -> WordCrop | Problem:
    if not isinstance(record, dict):
        return Problem(where, "bad_annotation", f"expected an object, got {type(record).__name__}")
    img, word = record.get("img"), record.get("word")
    if not isinstance(img, str) or not img:
        return Problem(where, "bad_annotation", "no 'img' string")
    if not isinstance(word, str):
        return Problem(where, "bad_annotation", f"'word' of {img} is {type(word).__name__}, not a string")
    if not word:
        return Problem(where, "empty_label", f"empty word for {img}")
    rel = PurePosixPath(img.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        return Problem(where, "bad_path", f"image path leaves the dataset folder: {img!r}")
    key = (prefix / rel).as_posix()
    if key in seen:
        return Problem(where, "duplicate_image", f"{key} is listed more than once")
    seen.add(key)
    image = extracted / key
    if not is_file(image):
        return Problem(where, "missing_image", f"{key} is not in the archive")
    attrs = {"image": key, "subset": prefix.as_posix(), "annotation": where}
    if not prefix.parts:  # Label.json at the top of the archive: no dataset folder name to record
        del attrs["subset"]
    return WordCrop(image=image, image_id=key, text=word, attrs=attrs)


# --- streaming a top-level JSON array -----------------------------------------------------------------------


def iter_json_array(path: Path, where: str, chunk: int = _CHUNK) -> Iterator[tuple[int, Any] | Problem]:
    """(1-based index, value) for each element of a top-level JSON array, decoded one at a time.

    UTF-8 with an optional BOM. A file that is not an array, is cut short or malformed yields one `bad_json`
    Problem (after the elements before the fault); bytes that are not UTF-8 yield `invalid_utf8`."""
    reader = _Chunks(path, chunk)
    decoder = json.JSONDecoder()
    try:
        if not reader.expect("[", skip_bom=True):
            yield Problem(where, "bad_json", f"not a JSON array (starts with {reader.peek()!r})")
            return
        if reader.expect("]"):
            yield from _trailing(reader, where)
            return
        index = 0
        while True:
            index += 1
            value = reader.decode(decoder)
            if isinstance(value, Exception):
                yield Problem(f"{where}#{index}", "bad_json", f"{type(value).__name__}: {value}")
                return
            yield index, value[0]
            if reader.expect("]"):
                yield from _trailing(reader, where)
                return
            if not reader.expect(","):
                found = reader.peek()
                yield Problem(f"{where}#{index}", "bad_json", f"expected ',' or ']' after it, got {found!r}")
                return
    except UnicodeDecodeError as exc:
        yield Problem(where, "invalid_utf8", str(exc))
    finally:
        reader.close()


def _trailing(reader: _Chunks, where: str) -> Iterator[Problem]:
    if reader.peek():
        yield Problem(where, "bad_json", f"data after the closing ']': {reader.peek()!r}")


class _Chunks:
    """A text buffer over a file read `chunk` characters at a time, consumed from the front."""

    def __init__(self, path: Path, chunk: int) -> None:
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close(), the generator's finally
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.chunk = chunk
        self.buf = ""
        self.pos = 0
        self.eof = False

    def close(self) -> None:
        self.file.close()

    def fill(self) -> bool:
        """Read more; False at the end of the file."""
        if self.eof:
            return False
        raw = self.file.read(self.chunk)
        self.eof = not raw
        text = self.decoder.decode(raw, final=self.eof)
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(text) or not self.eof

    def skip_space(self) -> None:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.fill():
                return

    def peek(self) -> str:
        self.skip_space()
        return self.buf[self.pos : self.pos + 20]

    def expect(self, char: str, skip_bom: bool = False) -> bool:
        """Consume `char` (after white space) if it comes next."""
        self.skip_space()
        if skip_bom and self.buf.startswith("\ufeff", self.pos):
            self.pos += 1
            self.skip_space()
        if self.buf.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def decode(self, decoder: json.JSONDecoder) -> tuple[Any] | ValueError | RecursionError:
        """The next JSON value. A value that fails, ends at the buffer's end or is a number followed by
        anything but a delimiter may be cut by the chunk boundary: read more and decode again (up to
        _MAX_RECORD characters). Deep nesting and integers of more than 4300 digits fail for good."""
        self.skip_space()
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > _MAX_RECORD or not self.fill():
                    return exc
                continue
            except (ValueError, RecursionError) as exc:  # more bytes cannot make these valid
                return exc
            cut = end == len(self.buf) or (
                isinstance(value, (int, float)) and self.buf[end] not in " \t\r\n,]"
            )  # `1.5e3` split after `1`: the digits decode alone, so look at what follows
            if cut and self.fill():
                continue
            self.pos = end
            return (value,)
