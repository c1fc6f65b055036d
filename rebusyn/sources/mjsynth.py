"""MJSynth / Synth90k (Jaderberg et al. 2014): ~8.9M synthetic 32-px word images, REBU-Syn's "MJ".

Input `tar` (default) reads the official `mjsynth.tar.gz` (synth_generators.md §5.1; MMOCR
`dataset_zoo/mjsynth`) **without unpacking it**: 8.9M small files would cost hours of file-system work and
inodes for nothing, so the tar is streamed, twice:

```
mnt/ramdisk/max/90kDICT32px/<1..4000>/<1..7>/<n>_<Word>_<lexicon index>.jpg
mnt/ramdisk/max/90kDICT32px/annotation_{train,val,test}.txt   ./3000/7/182_slinking_71711.jpg 71711
mnt/ramdisk/max/90kDICT32px/lexicon.txt                        88,172 words; the number is a 0-based line
mnt/ramdisk/max/90kDICT32px/annotation.txt, imlist.txt         (not needed)
```

1. The first pass reads only the split lists and the lexicon (it stops as soon as it has them; the tar gives
   no index, so at worst it decompresses the whole archive once). Each split becomes a sorted array of 64-bit
   path hashes: 8 bytes per image (71 MB for all 8.9M) instead of a set of Python strings (~1 GB).
2. The second pass yields every image of the selected splits in archive order, with its bytes.

The label is the word in the file name, which keeps the original case (PARSeq: "case-sensitive labels
extracted from image filenames"); `label_from: lexicon` takes the lexicon's word instead. A file-name word
that is not the lexicon entry its index names (case-insensitively) is dropped as `lexicon_mismatch`.
Known defects are counted, never fatal: empty (0-byte) images (`empty_image`), images that do not decode
(the build's `corrupt_image`), images in no split list (`unlisted_image`), listed images absent from the
archive (`missing_image`), file names that do not follow the pattern (`bad_name`).

Inputs `dtrb_lmdb` and `parseq_lmdb` read ready-made LMDBs (deep-text-recognition-benchmark's
`training/MJ/{MJ_train,MJ_valid,MJ_test}`, PARSeq's `train/synth/MJ/{train,val,test}`) through
`rebusyn.sources._str_lmdb`; labels are re-normalized by the build's policy and each sample keeps its LMDB
and index as provenance.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shutil
import tarfile
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from rebusyn.fetch import tar_members
from rebusyn.sources._str_lmdb import iter_lmdb_dirs, lmdb_dirs
from rebusyn.sources.base import ParseContext, Problem, WordCrop, read_text

SPLITS = ("train", "val", "test")
LEXICON = "lexicon.txt"
MAX_IMAGE_BYTES = 16 * 2**20  # MJSynth crops are a few KB; a bigger member is not a word image
_NAME = re.compile(r"^(\d+)_(.+)_(\d+)\.jpg$")  # <n>_<word>_<lexicon index>.jpg; the word may hold '_'


class MJSynthError(ValueError):
    """The archive is not MJSynth as distributed (a split list or the lexicon is missing)."""


def parse(ctx: ParseContext) -> Iterator[WordCrop | Problem]:
    if "lmdb" in ctx.files:
        return iter_lmdb_dirs(ctx.files["lmdb"], lmdb_dirs(ctx, "mjsynth"))
    splits = ctx.options.get("splits") or list(SPLITS)
    splits = [splits] if isinstance(splits, str) else [str(s) for s in splits]
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"mjsynth option 'splits': unknown {unknown}; choose from {', '.join(SPLITS)}")
    label_from = str(ctx.options.get("label_from", "filename"))
    if label_from not in ("filename", "lexicon"):
        raise ValueError(f"mjsynth option 'label_from' must be filename or lexicon, got {label_from!r}")
    return iter_tar(ctx.files["dataset"], splits, label_from)


def path_hash(rel: str) -> int:
    """64-bit hash of an image path relative to the 90kDICT32px folder (`3000/7/182_slinking_71711.jpg`).
    A member name that was not UTF-8 (tarfile keeps its bytes as surrogate escapes) hashes its raw bytes."""
    data = rel.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


@dataclass
class SplitList:
    """One annotation file as sorted path hashes, with a flag per entry for 'seen in the archive'."""

    name: str
    file: Path  # a copy of the annotation file, re-read only to name missing images
    hashes: np.ndarray
    seen: np.ndarray

    @classmethod
    def read(cls, name: str, file: Path) -> tuple[SplitList, list[Problem]]:
        values, problems = array("Q"), []
        for rel, _, problem in _annotation_lines(file, name):
            if problem is not None:
                problems.append(problem)
            else:
                values.append(path_hash(rel))
        hashes = np.unique(np.frombuffer(values, dtype=np.uint64))
        return cls(name, file, hashes, np.zeros(len(hashes), dtype=bool)), problems

    def lookup(self, h: int) -> int:
        """Position of `h` in this list, or -1."""
        i = int(np.searchsorted(self.hashes, np.uint64(h)))
        return i if i < len(self.hashes) and int(self.hashes[i]) == h else -1

    def missing(self) -> Iterator[Problem]:
        """Listed images the archive did not hold (named by re-reading the annotation copy)."""
        if self.seen.all():
            return
        for rel, line_no, problem in _annotation_lines(self.file, self.name):
            if problem is None:
                i = self.lookup(path_hash(rel))
                if i >= 0 and not self.seen[i]:
                    self.seen[i] = True  # a path listed twice is reported once
                    where = f"annotation_{self.name}.txt:{line_no}"
                    yield Problem(where, "missing_image", f"{rel} is not in the archive")


def _annotation_lines(file: Path, split: str) -> Iterator[tuple[str, int, Problem | None]]:
    """(relative path, line number, problem) per non-blank line of `./3000/7/182_slinking_71711.jpg 71711`."""
    with open(file, encoding="utf-8-sig", errors="replace", newline=None) as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            rel = _normalize(fields[0])
            if rel is None or len(fields) != 2 or not fields[1].isdigit():
                where = f"annotation_{split}.txt:{line_no}"
                yield "", line_no, Problem(where, "bad_annotation", line.strip()[:200])
            else:
                yield rel, line_no, None


def _normalize(path: str) -> str | None:
    """`./3000/7/x.jpg` -> `3000/7/x.jpg`; None for paths that leave the folder."""
    rel = posixpath.normpath(path.replace("\\", "/"))
    if rel.startswith(("/", "../")) or rel in (".", ".."):
        return None
    return rel


def _open_stream(archive: Path) -> tarfile.TarFile:
    # "r|*": sequential, no seeking back; the only way to read a .tar.gz without an index in bounded memory
    return tarfile.open(archive, mode="r|*")


def _copy_member(tf: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    src = tf.extractfile(member)
    if src is None:
        raise MJSynthError(f"{member.name} is not a regular file")
    with src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 2**20)


def read_lists(archive: Path, workdir: Path) -> tuple[str, dict[str, Path]]:
    """First pass: copy the three split lists and the lexicon out of the archive (into `workdir`), stopping
    as soon as all four are found. Returns the archive folder that holds them (`mnt/.../90kDICT32px`)."""
    wanted = {f"annotation_{s}.txt": s for s in SPLITS} | {LEXICON: "lexicon"}
    found: dict[str, Path] = {}
    folder: str | None = None
    with _open_stream(archive) as tf:
        for member in tar_members(tf):
            base = posixpath.basename(member.name)
            if base not in wanted or not member.isreg():
                continue
            parent = posixpath.dirname(_normalize(member.name) or "")
            if folder is not None and parent != folder:
                raise MJSynthError(f"{archive.name}: {member.name} is not in {folder}/ with the other lists")
            folder = parent
            dest = workdir / base
            _copy_member(tf, member, dest)
            found[wanted[base]] = dest
            if len(found) == len(wanted):
                break
    missing = [name for name, key in wanted.items() if key not in found]
    if missing or folder is None:
        raise MJSynthError(
            f"{archive.name} has no {', '.join(missing)}; MJSynth's tar (mjsynth.tar.gz) holds them in "
            "mnt/ramdisk/max/90kDICT32px/. Is this the right archive?"
        )
    return folder, found


def read_lexicon(path: Path) -> list[str]:
    try:
        return read_text(path).split("\n")
    except UnicodeDecodeError as exc:
        raise MJSynthError(f"{LEXICON} is not UTF-8 ({exc}); is this MJSynth's lexicon?") from exc


def iter_tar(archive: Path, splits: list[str], label_from: str = "filename") -> Iterator[WordCrop | Problem]:
    with tempfile.TemporaryDirectory(prefix="rebusyn-mjsynth-") as tmp:
        folder, files = read_lists(archive, Path(tmp))
        lexicon = read_lexicon(files["lexicon"])
        lists: dict[str, SplitList] = {}
        for split in SPLITS:
            lists[split], problems = SplitList.read(split, files[split])
            if split in splits:
                yield from problems
        prefix = folder + "/" if folder else ""
        with _open_stream(archive) as tf:
            for member in tar_members(tf):
                if not member.isreg() or not member.name.endswith(".jpg"):
                    continue
                rel = _normalize(member.name)
                if rel is None or not rel.startswith(prefix):
                    continue
                rel = rel[len(prefix) :]
                item = _image(tf, member, rel, lists, splits, lexicon, label_from)
                if item is not None:
                    yield item
        for split in splits:
            yield from lists[split].missing()


def _image(
    tf: tarfile.TarFile,
    member: tarfile.TarInfo,
    rel: str,
    lists: dict[str, SplitList],
    splits: list[str],
    lexicon: list[str],
    label_from: str,
) -> WordCrop | Problem | None:
    h = path_hash(rel)
    split = None
    for name, listing in lists.items():
        i = listing.lookup(h)
        if i >= 0:
            listing.seen[i] = True
            split = split or name
    if split is None:
        return Problem(rel, "unlisted_image", "in no annotation_{train,val,test}.txt")
    if split not in splits:
        return None  # a split the recipe does not read: skipped, not a defect
    match = _NAME.match(posixpath.basename(rel))
    if match is None:
        return Problem(rel, "bad_name", "not <n>_<word>_<lexicon index>.jpg")
    word, index = match.group(2), int(match.group(3))
    if index >= len(lexicon) or lexicon[index].strip().lower() != word.lower():
        entry = repr(lexicon[index].strip()) if index < len(lexicon) else "beyond the lexicon"
        return Problem(rel, "lexicon_mismatch", f"lexicon line {index} is {entry}")
    if member.size == 0:
        return Problem(rel, "empty_image", "0-byte file")
    if member.size > MAX_IMAGE_BYTES:
        return Problem(rel, "oversized_image", f"{member.size} bytes")
    data = _read(tf.extractfile(member))
    text = word if label_from == "filename" else lexicon[index].strip()
    return WordCrop(
        image=None, image_id=rel, text=text, data=data, attrs={"image": rel, "split": split, "lexicon": index}
    )


def _read(src: IO[bytes] | None) -> bytes:
    if src is None:
        return b""
    with src:
        return src.read()
