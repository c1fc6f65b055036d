"""Reading STR-layout LMDBs (deep-text-recognition-benchmark / PARSeq / MMOCR / Union14M `img2lmdb.py`).

Layout: `num-samples` (ASCII decimal), then for i = 1..N `image-%09d` (the encoded crop, stored byte for
byte) and `label-%09d` (UTF-8). Other keys (`imagepath-%09d` from STR-Fewer-Labels' writer, `meta-%09d`
from ours) are ignored. Each sample becomes a `WordCrop(image=None, image_id="<name>#<i>", data=<bytes>)`;
labels are re-normalized by the build's policy.

Used by Uber-Text (STR-Fewer-Labels' LMDBs), Union14M-L (`Union14M_L_lmdb_format/<subset>`), the synthetic
packs (DTRB's and PARSeq's MJ and ST, REBU-Syn's Curved_SynthText and SynthAdd) and a user's own LMDBs
(`rebusyn build --custom`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import lmdb

from rebusyn.sources.base import ParseContext, Problem, WordCrop, natural_key
from rebusyn.store.shards import shared_env


def find_dir(root: Path, rel: str) -> Path | None:
    """`root/rel`, or `root/<one wrapper folder>/rel` (archives often add a top folder)."""
    direct = root / rel
    if direct.is_dir():
        return direct
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if (child / rel).is_dir():
            return child / rel
    return None


def find_lmdbs(folder: Path) -> list[Path]:
    """Every folder at or below `folder` that holds a `data.mdb`, sorted by path (deterministic)."""
    return sorted({p.parent for p in folder.rglob("data.mdb") if p.is_file()}, key=lambda p: p.as_posix())


def lmdb_dirs(ctx: ParseContext, source: str) -> list[str]:
    """The recipe option `lmdb_dirs`: a list, or a mapping input name -> list (one source, several packs)."""
    dirs = ctx.options.get("lmdb_dirs") or []
    if isinstance(dirs, dict):
        dirs = dirs.get(ctx.input) or []
    if not dirs or not all(isinstance(d, str) for d in dirs):
        raise ValueError(f"{source}: option lmdb_dirs gives no LMDB folders for input {ctx.input!r}")
    return list(dirs)


def iter_lmdb_dirs(root: Path, dirs: list[str]) -> Iterator[WordCrop | Problem]:
    """Every LMDB (a folder holding data.mdb) under each configured folder, in the configured order."""
    for rel in dirs:
        folder = find_dir(root, rel.strip("/"))
        if folder is None:
            yield Problem(f"{root.name}/{rel}", "missing_lmdb", "folder not in the archive")
            continue
        envs = find_lmdbs(folder)
        if not envs:
            yield Problem(str(folder), "missing_lmdb", "no data.mdb in this folder")
        for env_dir in envs:
            yield from iter_lmdb(env_dir, env_dir.relative_to(root).as_posix())


def iter_lmdb_tree(folder: Path, names: Iterable[str] | None = None) -> Iterator[WordCrop | Problem]:
    """Every LMDB at or below an extracted archive's `folder`, in natural path order (`syntext2` before
    `syntext10`). Each is named by its path below `folder` (by `folder`'s own name when data.mdb sits at the
    top) and gives its folder name as the crops' `subset`. With `names`, only LMDB folders of those names
    are read, and each one that is absent is a `missing_lmdb` Problem."""
    wanted = list(names or [])
    envs = sorted(find_lmdbs(folder), key=lambda p: natural_key(p.relative_to(folder).as_posix()))
    if wanted:
        found = {p.name for p in envs}
        for name in wanted:
            if name not in found:
                yield Problem(f"{folder.name}/{name}", "missing_lmdb", "no LMDB folder of that name")
        envs = [p for p in envs if p.name in wanted]
    elif not envs:
        yield Problem(folder.name, "missing_lmdb", "no data.mdb anywhere in the archive")
    for env_dir in envs:
        name = env_dir.relative_to(folder).as_posix() if env_dir != folder else folder.name
        yield from iter_lmdb(env_dir, name, {"subset": env_dir.name})


def iter_lmdb(path: Path, name: str, attrs: dict[str, Any] | None = None) -> Iterator[WordCrop | Problem]:
    """Samples 1..num-samples of one STR-layout LMDB; `name` is the provenance prefix (`<name>#<i>`) and
    `attrs` are added to every crop's attributes (they end up in the sample's meta)."""
    opened = ExitStack()
    try:
        # read-only and lock-free, as PARSeq and DTRB open it: works on read-only media and shared copies;
        # shared with any other reader of it in this process (py-lmdb refuses a second open of a path)
        env = opened.enter_context(shared_env(path))
    except (lmdb.Error, FileNotFoundError) as exc:
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
                yield _sample(txn, name, i, attrs or {})
    except lmdb.Error as exc:
        yield Problem(str(path), "corrupt_lmdb", str(exc))
    finally:
        opened.close()


def _num_samples(raw: bytes | None) -> int | None:
    try:
        value = int(raw.decode("ascii").strip()) if raw is not None else None
    except (UnicodeDecodeError, ValueError):
        return None
    return value if value is not None and value >= 0 else None


def _sample(txn: Any, name: str, i: int, attrs: dict[str, Any]) -> WordCrop | Problem:
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
    return WordCrop(
        image=None, image_id=where, text=text, data=bytes(image), attrs={**attrs, "lmdb_index": i}
    )
