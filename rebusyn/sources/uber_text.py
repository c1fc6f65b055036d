"""Uber-Text 1.0, read from the word-crop LMDBs of STR-Fewer-Labels (Baek et al., CVPR 2021).

Uber-Text's own annotation format is not public in any form we could verify (the official page only says
"text region polygons and the corresponding transcriptions"), and PARSeq, hence REBU-Syn, used the crops
Baek et al. redistribute in `data_CVPR2021.zip`: `data_CVPR2021/training/label/real/7.Uber` and
`data_CVPR2021/validation/7.Uber` (PARSeq's `train/real/Uber/{train,val}`); `evaluation/addition/7.Uber`
is PARSeq's `test/Uber` benchmark. So this parser reads LMDBs, not native files.

Each LMDB has the deep-text-recognition-benchmark layout: `num-samples` (ASCII decimal), then for
i = 1..N `image-%09d` (the encoded crop, stored byte for byte) and `label-%09d` (UTF-8); other keys (the
`imagepath-%09d` STR-Fewer-Labels' writer adds) are ignored. Labels are re-normalized by the build's policy.
The reading itself is `rebusyn.sources._str_lmdb`.
"""

from __future__ import annotations

from collections.abc import Iterator

from rebusyn.sources._str_lmdb import find_dir, iter_lmdb, iter_lmdb_dirs
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

# the LMDB reading lives in _str_lmdb (shared with union14m and custom); re-exported for existing callers
__all__ = ["DEFAULT_LMDB_DIRS", "find_dir", "iter_lmdb", "iter_lmdb_dirs", "parse"]

DEFAULT_LMDB_DIRS = ("training/label/real/7.Uber", "validation/7.Uber")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Role `lmdb`: the extracted `data_CVPR2021.zip`; option `lmdb_dirs`: which folders to read."""
    dirs = ctx.options.get("lmdb_dirs") or list(DEFAULT_LMDB_DIRS)
    if isinstance(dirs, str):  # a single folder written without list brackets
        dirs = [dirs]
    return iter_lmdb_dirs(ctx.files["lmdb"], [str(d) for d in dirs])
