"""Uber-Text 1.0, read from the word-crop LMDBs of STR-Fewer-Labels (Baek et al., CVPR 2021).

Uber-Text's own annotation format is not public in any form we could verify (the official page only says
"text region polygons and the corresponding transcriptions"), and PARSeq, hence REBU-Syn, used the crops
Baek et al. redistribute in `data_CVPR2021.zip`: `data_CVPR2021/training/label/real/7.Uber` and
`data_CVPR2021/validation/7.Uber` (PARSeq's `train/real/Uber/{train,val}`); `evaluation/addition/7.Uber`
is PARSeq's `test/Uber` benchmark. So this parser reads LMDBs, not native files.

Each LMDB has the deep-text-recognition-benchmark layout: `num-samples` (ASCII decimal), then for
i = 1..N `image-%09d` (the encoded crop, stored byte for byte) and `label-%09d` (UTF-8); other keys (the
`imagepath-%09d` STR-Fewer-Labels' writer adds) are ignored. Labels are re-normalized by the build's policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb

from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

DEFAULT_LMDB_DIRS = ("training/label/real/7.Uber", "validation/7.Uber")


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Role `lmdb`: the extracted `data_CVPR2021.zip`; option `lmdb_dirs`: which folders to read."""
    dirs = ctx.options.get("lmdb_dirs") or list(DEFAULT_LMDB_DIRS)
    if isinstance(dirs, str):  # a single folder written without list brackets
        dirs = [dirs]
    return iter_lmdb_dirs(ctx.files["lmdb"], [str(d) for d in dirs])


def find_dir(root: Path, rel: str) -> Path | None:
    """`root/rel`, or `root/<one wrapper folder>/rel` (the zip's top folder is `data_CVPR2021/`)."""
    direct = root / rel
    if direct.is_dir():
        return direct
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if (child / rel).is_dir():
            return child / rel
    return None


def iter_lmdb_dirs(root: Path, dirs: list[str]) -> Iterator[WordCrop | Problem]:
    """Every LMDB (a folder holding data.mdb) under each configured folder, in the configured order."""
    for rel in dirs:
        folder = find_dir(root, rel.strip("/"))
        if folder is None:
            yield Problem(f"{root.name}/{rel}", "missing_lmdb", "folder not in the archive")
            continue
        envs = sorted({p.parent for p in folder.rglob("data.mdb")})
        if not envs:
            yield Problem(str(folder), "missing_lmdb", "no data.mdb in this folder")
        for env_dir in envs:
            yield from iter_lmdb(env_dir, env_dir.relative_to(root).as_posix())


def iter_lmdb(path: Path, name: str) -> Iterator[WordCrop | Problem]:
    """Samples 1..num-samples of one STR-layout LMDB; `name` is the provenance prefix (`<name>#<i>`)."""
    try:
        # read-only and lock-free, as PARSeq and DTRB open it: works on read-only media and shared copies
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=1)
    except lmdb.Error as exc:
        yield Problem(str(path), "corrupt_lmdb", str(exc))
        return
    try:
        with env.begin(write=False) as txn:
            count = _num_samples(txn.get(b"num-samples"))
            if count is None:
                yield Problem(
                    f"{name}#num-samples", "corrupt_lmdb", f"num-samples is {txn.get(b'num-samples')!r}"
                )
                return
            for i in range(1, count + 1):
                yield _sample(txn, name, i)
    except lmdb.Error as exc:
        yield Problem(str(path), "corrupt_lmdb", str(exc))
    finally:
        env.close()


def _num_samples(raw: bytes | None) -> int | None:
    try:
        value = int(raw.decode("ascii").strip()) if raw is not None else None
    except (UnicodeDecodeError, ValueError):
        return None
    return value if value is not None and value >= 0 else None


def _sample(txn: Any, name: str, i: int) -> WordCrop | Problem:
    where = f"{name}#{i}"
    label = txn.get(f"label-{i:09d}".encode())
    image = txn.get(f"image-{i:09d}".encode())
    if label is None:
        return Problem(where, "missing_label", f"no label-{i:09d} (num-samples says it exists)")
    if image is None:
        return Problem(where, "missing_image", f"no image-{i:09d} (num-samples says it exists)")
    try:
        text = bytes(label).decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(where, "invalid_utf8", str(exc))
    return WordCrop(image=None, image_id=where, text=text, data=bytes(image), attrs={"lmdb_index": i})
