"""STR-layout LMDB shards: the layout deep-text-recognition-benchmark, PARSeq, CLIP4STR and MMOCR read.

Keys (1-based): `num-samples` (ASCII int), `image-%09d` (encoded bytes as given, never re-encoded),
`label-%09d` (UTF-8), plus `meta-%09d` (JSON provenance that those readers ignore).

Writing is atomic per shard: a shard is written under `.shard-NNNNN.tmp-<pid>` and renamed to
`shard-NNNNN` only after `num-samples` is committed and the environment is closed. The temporary name is
hidden, so readers that glob `**/data.mdb` (PARSeq, CLIP4STR; Python's glob skips dot-names) never see half
a shard.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb
import pyarrow as pa

from rebusyn.sample import Sample
from rebusyn.store.index import rows_table

SHARD_PREFIX = "shard-"
DEFAULT_MAX_SHARD_BYTES = 512 * 2**20
DEFAULT_COMMIT_EVERY = 1000
_INITIAL_MAP_SIZE = 64 * 2**20
# Data format 0.9 (v1) stays readable by py-lmdb < 3, which most training environments still run.
# meminit: zero the unused parts of pages, so the same samples give the same file bytes in any process
# (uninitialized memory would differ between a local worker and a Ray task: tests/test_distributed.py)
_LMDB_OPEN = {"subdir": True, "meminit": True, "map_async": False}


def image_key(idx: int) -> bytes:
    return b"image-%09d" % idx


def label_key(idx: int) -> bytes:
    return b"label-%09d" % idx


def meta_key(idx: int) -> bytes:
    return b"meta-%09d" % idx


def index_row(sample: Sample, idx: int) -> dict[str, Any]:
    """What the Parquet index records for one stored sample (the shard path is added when it is final)."""
    return {
        "idx": idx,
        "label": sample.label,
        "label_raw": sample.label_raw,
        "source": sample.source,
        "group": sample.group,
        "key": sample.key,
        "w": sample.width,
        "h": sample.height,
        "sha1": hashlib.sha1(sample.image).hexdigest(),
    }


class ShardWriter:
    """Writes Samples into a sequence of shards under `out_dir`, rolling over at `max_shard_bytes`.

    `on_shard(shard, rows)` is called once per shard after it is complete and renamed, with the shard's
    index path (`index_prefix/shard-NNNNN`: where it will live relative to the dataset root, which differs
    from `out_dir` while a source is staged) and its index rows as an Arrow table (ROW_SCHEMA; converted at
    every commit, so a shard of 200k tiny MJSynth crops holds a few MB of rows, not ~150 MB of dicts). An
    index built from those calls only names finished shards. Use as a context manager: leaving the block
    with an exception deletes the unfinished shard instead of publishing it.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        index_prefix: str,
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        max_shard_samples: int | None = None,
        commit_every: int = DEFAULT_COMMIT_EVERY,
        on_shard: Callable[[str, pa.Table], None] | None = None,
        shard_keys: dict[bytes, bytes] | None = None,
        shard_name: Callable[[int], str] | None = None,
        finished: list[Path] | None = None,
    ) -> None:
        """`finished`: shards an interrupted run completed in `out_dir`; numbering continues after them."""
        if max_shard_bytes <= 0 or commit_every <= 0:
            raise ValueError("max_shard_bytes and commit_every must be positive")
        self.out_dir = Path(out_dir)
        self.index_prefix = index_prefix.strip("/")
        self.max_shard_bytes = max_shard_bytes
        self.max_shard_samples = max_shard_samples
        self.commit_every = commit_every
        self.on_shard = on_shard
        # written into every shard with num-samples (e.g. the synth engine's effect config); never the
        # keys of a sample or num-samples itself
        self.shard_keys = dict(shard_keys or {})
        for key in self.shard_keys:
            if key == b"num-samples" or key.startswith((b"image-", b"label-", b"meta-")):
                raise ValueError(f"shard key {key!r} would clash with the STR layout")
        # the k-th shard's folder name (0-based); work units name theirs after the unit (synth)
        self.shard_name = shard_name or (lambda k: f"{SHARD_PREFIX}{k:05d}")
        self.shards: list[Path] = list(finished or [])
        self.total = 0
        self.bytes_written = 0
        self._env: lmdb.Environment | None = None
        self._tmp: Path | None = None
        self._final: Path | None = None
        self._count = 0
        self._shard_bytes = 0
        self._pending: list[tuple[bytes, bytes]] = []
        self._rows: list[dict[str, Any]] = []  # rows since the last commit
        self._row_tables: list[pa.Table] = []  # rows of the shard's earlier commits
        self.out_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add(self, sample: Sample) -> None:
        size = len(sample.image) + len(sample.label.encode()) + 64
        full = self._count > 0 and (
            self._shard_bytes + size > self.max_shard_bytes
            or (self.max_shard_samples is not None and self._count >= self.max_shard_samples)
        )
        if full:
            self._finish_shard()
        if self._env is None:
            self._open_shard()
        self._count += 1
        self._shard_bytes += size
        idx = self._count
        self._pending += [
            (image_key(idx), sample.image),
            (label_key(idx), sample.label.encode("utf-8")),
            (meta_key(idx), json.dumps(sample.meta(), ensure_ascii=False, sort_keys=True).encode("utf-8")),
        ]
        self._rows.append(index_row(sample, idx))
        if len(self._pending) >= 3 * self.commit_every:
            self._commit()

    def close(self) -> list[Path]:
        if self._env is not None:
            self._finish_shard()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written; finished shards stay (they are whole)."""
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._pending.clear()
        self._rows.clear()
        self._row_tables.clear()

    # -- internals -------------------------------------------------------------------------------
    def _open_shard(self) -> None:
        name = self.shard_name(len(self.shards))
        self._final = self.out_dir / name
        if self._final.exists():
            raise FileExistsError(f"refusing to overwrite finished shard {self._final}")
        self._tmp = self.out_dir / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._env = lmdb.open(str(self._tmp), map_size=_INITIAL_MAP_SIZE, **_LMDB_OPEN)
        self._count = 0
        self._shard_bytes = 0

    def _commit(self, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        items = self._pending + (extra or [])
        assert self._env is not None
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    cursor = txn.cursor()
                    cursor.putmulti(items)
                break
            except lmdb.MapFullError:
                # The transaction was aborted; grow the map (address space only) and redo the batch.
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
            except lmdb.Error as exc:  # e.g. "mdb_txn_commit: No space left on device": say which shard
                raise _shard_error(self._tmp, exc) from exc
        self.bytes_written += sum(len(v) for _, v in self._pending)
        self._pending = []
        if self._rows:
            self._row_tables.append(rows_table(self._rows))
            self._rows = []

    def _finish_shard(self) -> None:
        assert self._env is not None and self._tmp is not None and self._final is not None
        # num-samples last: a shard without it is not a shard to any STR reader.
        self._commit(extra=[*self.shard_keys.items(), (b"num-samples", str(self._count).encode("ascii"))])
        try:
            self._env.sync(True)
        except lmdb.Error as exc:
            raise _shard_error(self._tmp, exc) from exc
        self._env.close()
        self._env = None
        os.replace(self._tmp, self._final)
        _fsync_dir(self.out_dir)
        rel = f"{self.index_prefix}/{self._final.name}" if self.index_prefix else self._final.name
        if self.on_shard is not None:
            self.on_shard(rel, pa.concat_tables(self._row_tables) if self._row_tables else rows_table([]))
        self.total += self._count
        self.shards.append(self._final)
        self._tmp = None
        self._row_tables = []


def _shard_error(path: Path | None, exc: lmdb.Error) -> OSError:
    """An LMDB write error as an OSError that names the shard and keeps ENOSPC recognisable."""
    code = errno.ENOSPC if "No space left on device" in str(exc) else errno.EIO
    return OSError(code, f"writing LMDB shard {path}: {exc}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------------
# Reading


_OPEN_READERS: weakref.WeakSet[ShardReader] = weakref.WeakSet()
_READERS_LOCK = threading.Lock()


@dataclass
class _SharedEnv:
    env: lmdb.Environment
    pid: int
    users: int


# py-lmdb >= 2 refuses to open a path that is already open in the process, so every ShardReader of one
# shard in a process shares one environment (by real path), closed when its last reader closes. Without
# this, a loader that has read a shard breaks any other reader of it in the same process (materialize,
# preview, a second dataset over the same root).
_SHARED_ENVS: dict[str, _SharedEnv] = {}


def _close_all_before_fork() -> None:
    # An env must not be used across fork(): close every env before fork, so parent and child reopen
    # lazily (each reader sees its env gone and opens again on next use).
    with _READERS_LOCK:
        for shared in _SHARED_ENVS.values():
            shared.env.close()
        _SHARED_ENVS.clear()
        for reader in list(_OPEN_READERS):
            reader._env = None
            reader._pid = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_all_before_fork)


class ShardReader:
    """Read-only access to one shard; the environment opens lazily in whichever process reads.

    Picklable (only the path travels), safe to create in a parent before DataLoader workers fork.
    """

    def __init__(self, path: str | os.PathLike[str], *, readahead: bool = False) -> None:
        self.path = Path(path)
        self.readahead = readahead
        self._env: lmdb.Environment | None = None
        self._pid: int | None = None
        self._key = ""  # real path of the shared environment while open
        self._len: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "readahead": self.readahead, "_len": self._len}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], readahead=state["readahead"])
        self._len = state["_len"]

    @property
    def env(self) -> lmdb.Environment:
        if self._env is None or self._pid != os.getpid():
            if not (self.path / "data.mdb").is_file():
                raise FileNotFoundError(f"not an LMDB shard (no data.mdb): {self.path}")
            pid, key = os.getpid(), os.path.realpath(self.path)
            with _READERS_LOCK:
                shared = _SHARED_ENVS.get(key)
                if shared is None or shared.pid != pid:
                    # lock=False: finished shards are immutable; readers need no write access to a lock file.
                    # The first reader's readahead setting holds for every reader sharing the env.
                    env = lmdb.open(key, readonly=True, lock=False, readahead=self.readahead, meminit=False,
                                    max_readers=1, create=False, subdir=True)  # fmt: skip
                    shared = _SHARED_ENVS[key] = _SharedEnv(env, pid, 0)
                shared.users += 1
                self._env, self._pid, self._key = shared.env, pid, key
                _OPEN_READERS.add(self)
        return self._env

    def close(self) -> None:
        if self._env is not None and self._pid == os.getpid():
            with _READERS_LOCK:
                shared = _SHARED_ENVS.get(self._key)
                if shared is not None and shared.env is self._env:
                    shared.users -= 1
                    if shared.users == 0:
                        del _SHARED_ENVS[self._key]
                        shared.env.close()
        self._env = None
        self._pid = None

    def __len__(self) -> int:
        if self._len is None:
            with self.env.begin(buffers=False) as txn:
                raw = txn.get(b"num-samples")
            if raw is None:
                raise ValueError(f"{self.path}: no num-samples key (incomplete or not an STR LMDB)")
            self._len = int(raw.decode("ascii").strip())
        return self._len

    def _check(self, idx: int) -> None:
        if not 1 <= idx <= len(self):
            raise IndexError(f"{self.path}: index {idx} outside 1..{len(self)}")

    def image(self, idx: int) -> bytes:
        self._check(idx)
        with self.env.begin() as txn:
            value = txn.get(image_key(idx))
        if value is None:
            raise KeyError(f"{self.path}: missing image-{idx:09d}")
        return value

    def get(self, idx: int) -> tuple[bytes, str, dict[str, Any]]:
        """(image bytes, label, meta) of the 1-based sample `idx`; meta is {} for foreign LMDBs."""
        self._check(idx)
        with self.env.begin() as txn:
            image = txn.get(image_key(idx))
            label = txn.get(label_key(idx))
            meta = txn.get(meta_key(idx))
        if image is None or label is None:
            raise KeyError(f"{self.path}: missing image/label for index {idx}")
        return image, label.decode("utf-8"), (json.loads(meta) if meta else {})

    def __iter__(self) -> Iterator[tuple[int, bytes, str, dict[str, Any]]]:
        """Sequential scan in key order with one transaction (fast path for export and re-sharding)."""
        n = len(self)
        with self.env.begin() as txn:
            for idx in range(1, n + 1):
                image = txn.get(image_key(idx))
                label = txn.get(label_key(idx))
                meta = txn.get(meta_key(idx))
                if image is None or label is None:
                    raise KeyError(f"{self.path}: missing image/label for index {idx}")
                yield idx, image, label.decode("utf-8"), (json.loads(meta) if meta else {})


@contextmanager
def shared_env(path: str | os.PathLike[str], *, readahead: bool = False) -> Iterator[lmdb.Environment]:
    """The process's read-only environment of an LMDB folder, for code that wants the env itself (verify,
    LMDB inputs): shared with every ShardReader of the same folder, released on exit. Raises
    FileNotFoundError without data.mdb, lmdb.Error when it cannot be opened."""
    reader = ShardReader(path, readahead=readahead)
    env = reader.env
    try:
        yield env
    finally:
        reader.close()


def find_shards(directory: Path) -> list[Path]:
    """Finished shards under `directory`: folders holding data.mdb, skipping hidden (temporary or staged)
    folders the way PARSeq's glob does. Sorted."""
    base = Path(directory)
    found = (p.parent for p in base.rglob("data.mdb"))
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(base).parts))
