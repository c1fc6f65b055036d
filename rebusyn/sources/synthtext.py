"""SynthText in the Wild (Gupta, Vedaldi, Zisserman, CVPR 2016): 858,750 synthetic scenes, 7,266,866 words:
REBU-Syn's "ST". Every word is cut out of its scene here, as PARSeq did with ABINet's
`crop_by_word_bb_syn90k.py` (parseq_paper.md §3) but with the spine's perspective warp by default
(`--crop bbox` gives ABINet's axis-aligned min/max box).

Input `zip` (default) reads `SynthText.zip` **in place** (synth_generators.md §5.2; MMOCR
`SynthTextAnnParser`): 41 GB is not unpacked; each scene is read from the zip when its turn comes.
```
SynthText/<1..200>/<background>_<k>_<j>.jpg     the scenes
SynthText/gt.mat                                MATLAB v7 (v5 format, compressed), 1×858750 cell arrays:
  imnames{i}   char, e.g. '8/ballet_106_0.jpg' (relative to the folder holding gt.mat)
  wordBB{i}    double 2×4×n: x/y × 4 corners clockwise from top-left × words; 2×4 when n = 1
  charBB{i}    double 2×4×m (not used)
  txt{i}       char matrix, rows padded with spaces; a row may hold several words and '\n's.
               The words are the maximal runs of non-whitespace over all rows, in order.
```
`gt.mat` is copied out of the zip once and walked with `rebusyn.sources._matv5.iter_cell`, three cursors in
lock-step (imnames, wordBB, txt), so memory stays flat instead of holding the three decoded variables.

What is counted instead of crashing: a scene whose word count differs from its box count
(`word_count_mismatch`, ABINet skips those too), a scene missing from the zip (`missing_image`), boxes that
are not 2×4 (`bad_geometry`); degenerate and outside-the-image boxes are the crop step's `degenerate_box`
and `box_outside_image`.

Inputs `dtrb_lmdb` and `parseq_lmdb` read the ready-made ST LMDBs (DTRB `training/ST`, PARSeq
`train/synth/ST`) through `rebusyn.sources._str_lmdb`.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rebusyn.sample import Instance
from rebusyn.sources._matv5 import iter_cell
from rebusyn.sources._str_lmdb import iter_lmdb_dirs, lmdb_dirs
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

GT_NAME = "gt.mat"
MAX_IMAGE_BYTES = 64 * 2**20  # SynthText scenes are ~50 KB JPEGs; refuse to load anything absurd


class SynthTextError(ValueError):
    """The zip is not SynthText as distributed (no gt.mat, or gt.mat without the expected variables)."""


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    if "lmdb" in ctx.files:
        return iter_lmdb_dirs(ctx.files["lmdb"], lmdb_dirs(ctx, "synthtext"))
    return iter_zip(ctx.files["dataset"])


def words_of(rows: list[str]) -> list[str]:
    """The words of one `txt{i}` char matrix: maximal runs of non-whitespace over all rows, in order."""
    return [w for row in rows for w in row.split()]


def boxes_of(bb: Any) -> np.ndarray:
    """`wordBB{i}` as an array of n quads (n × 4 × 2); raises ValueError unless it is 2×4 or 2×4×n."""
    try:
        arr = np.asarray(bb, dtype=np.float64)
    except TypeError as exc:  # not numbers at all (a cell of cells)
        raise ValueError(f"wordBB is not numeric: {type(bb).__name__}") from exc
    if arr.shape == (2, 4):
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[:2] != (2, 4):
        raise ValueError(f"wordBB has shape {arr.shape}, expected 2x4 or 2x4xn")
    return np.transpose(arr, (2, 1, 0))


def scene(name: str, rows: list[str], bb: Any, data: bytes) -> AnnotatedImage | Problem:
    """One scene's words and boxes paired in order, as an AnnotatedImage carrying the JPEG bytes."""
    try:
        quads = boxes_of(bb)
    except ValueError as exc:
        return Problem(name, "bad_geometry", str(exc))
    words = words_of(rows)
    if len(words) != len(quads):
        detail = f"{len(words)} words in txt, {len(quads)} boxes in wordBB"
        return Problem(name, "word_count_mismatch", detail)
    instances = tuple(
        Instance(points=tuple((float(x), float(y)) for x, y in quad), text=word)
        for word, quad in zip(words, quads)
    )
    return AnnotatedImage(image=Path(name), image_id=name, instances=instances, data=data)


def find_gt(zf: zipfile.ZipFile) -> zipfile.ZipInfo:
    candidates = [i for i in zf.infolist() if posixpath.basename(i.filename) == GT_NAME and not i.is_dir()]
    if not candidates:
        raise SynthTextError(
            f"{zf.filename} has no {GT_NAME}; SynthText.zip holds SynthText/gt.mat next to the scene folders"
        )
    return min(candidates, key=lambda i: i.filename.count("/"))  # the top-most one


def iter_zip(archive: Path) -> Iterator[AnnotatedImage | Problem]:
    with zipfile.ZipFile(archive) as zf, tempfile.TemporaryDirectory(prefix="rebusyn-synthtext-") as tmp:
        gt_info = find_gt(zf)
        gt = Path(tmp) / GT_NAME
        with zf.open(gt_info) as src, open(gt, "wb") as out:
            shutil.copyfileobj(src, out, 2**20)
        folder = posixpath.dirname(gt_info.filename)
        prefix = folder + "/" if folder else ""
        cursors = [iter_cell(gt, variable) for variable in ("imnames", "wordBB", "txt")]
        for number, imname in enumerate(cursors[0], start=1):
            bb, rows = next(cursors[1], _END), next(cursors[2], _END)
            if bb is _END or rows is _END:
                raise _length_error(archive)
            name = _name(imname)
            if name is None:
                yield Problem(f"gt.mat imnames{{{number}}}", "bad_path", repr(imname)[:200])
                continue
            data = _member(zf, prefix + name)
            yield data if isinstance(data, Problem) else scene(name, rows, bb, data)
        if next(cursors[1], _END) is not _END or next(cursors[2], _END) is not _END:
            raise _length_error(archive)


_END = object()


def _length_error(archive: Path) -> SynthTextError:
    return SynthTextError(f"{archive.name}: gt.mat's imnames, wordBB and txt have different lengths")


def _name(imname: Any) -> str | None:
    """`imnames{i}` (a one-row char array) as a safe relative path."""
    text = imname[0] if isinstance(imname, list) and len(imname) == 1 else imname
    if not isinstance(text, str):
        return None
    rel = posixpath.normpath(text.strip().replace("\\", "/"))
    if not rel or rel.startswith(("/", "../")) or rel in (".", ".."):
        return None
    return rel


def _member(zf: zipfile.ZipFile, member: str) -> bytes | Problem:
    try:
        info = zf.getinfo(member)
    except KeyError:
        return Problem(member, "missing_image", "not in the zip")
    if info.file_size > MAX_IMAGE_BYTES:
        return Problem(member, "oversized_image", f"{info.file_size} bytes")
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a damaged member: bad CRC, truncated data
        return Problem(member, "corrupt_image", f"{type(exc).__name__}: {exc}")
