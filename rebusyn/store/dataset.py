"""One source's output in a dataset root: its shards, its Parquet index, and where they live."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rebusyn.sample import CUSTOM_GROUP, SYNTH_GROUP, TEST_GROUP, Sample
from rebusyn.store.index import IndexWriter, index_path, naming_the_file
from rebusyn.store.shards import DEFAULT_MAX_SHARD_BYTES, SHARD_PREFIX, ShardWriter

_NO_ROLLOVER = 2**62  # a test benchmark is one LMDB, however large


def source_dir(root: Path, source: str, group: str) -> Path:
    """`train/real/<group>/<source>` for real data (`train/real/custom/<name>` for a user's own data),
    `train/synth/<source>` for synthetic (group S), `test/<source>` for benchmarks (group T).
    PARSeq/CLIP4STR glob `train/{real,synth}/**/data.mdb` and open `test/<name>` directly."""
    root = Path(root)
    if group == SYNTH_GROUP:
        return root / "train" / "synth" / source
    if group == TEST_GROUP:
        return root / "test" / source
    if group == CUSTOM_GROUP:
        return root / "train" / "real" / "custom" / source
    return root / "train" / "real" / group / source


@dataclass(frozen=True)
class SourceOutput:
    directory: Path
    index: Path
    shards: list[Path]
    samples: int
    image_bytes: int


@dataclass
class Checkpoint:
    """Where an interrupted build of a source can pick up: `shards` finished shards holding `samples`
    samples are in the staging folder, and the caller's position (`state`: e.g. work items consumed and
    report counters) at the moment the last of them was finished. Valid only for the same `identity`."""

    identity: str
    shards: int
    samples: int
    image_bytes: int
    state: dict[str, Any]


CHECKPOINT_FILE = ".checkpoint.json"
ROWS_DIR = ".rows"  # index rows of each finished shard, so a resumed build writes the same index


class SourceWriter:
    """Shards + index for one source, staged and then swapped in.

    Shards are written into a hidden staging folder next to the source's folder. `close()` swaps the staged
    folder in (the previous build, if any, is removed only then) and publishes the index; `abort()` or an
    exception leaves the previous build untouched. Readers never see a mix of old and new shards.

    Resumable: with `identity` (a hash of everything that decides the output), every finished shard also
    leaves its index rows and a Checkpoint (with the caller's `state()` at that moment) in the staging
    folder. `SourceWriter.checkpoint(root, source, group, identity)` finds the last one of an interrupted
    run; passing it as `resume` keeps those shards and continues numbering after them.

    Test benchmarks (group T) are one LMDB each, `test/<name>/data.mdb`, because PARSeq opens `test/<name>`
    as an LMDB itself: the single staged shard becomes the folder, and the index names the folder.
    """

    def __init__(
        self,
        root: Path,
        source: str,
        group: str,
        *,
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        max_shard_samples: int | None = None,
        directory_name: str | None = None,
        shard_keys: dict[bytes, bytes] | None = None,
        identity: str | None = None,
        state: Callable[[], dict[str, Any]] | None = None,
        resume: Checkpoint | None = None,
    ) -> None:
        self.root = Path(root)
        self.directory = staged_directory(self.root, source, group, directory_name)
        self.index_file = index_path(self.root, source)
        self._staging = _staging_dir(self.directory)
        self.identity = identity
        self._state = state or dict
        self.flat = group == TEST_GROUP
        finished: list[Path] = []
        if resume is not None and resume.identity == identity and not self.flat:
            finished = [self._staging / f"{SHARD_PREFIX}{k:05d}" for k in range(resume.shards)]
            for extra in self._staging.iterdir():  # a half-written shard, or shards past the checkpoint
                if extra not in finished and extra.name not in (ROWS_DIR, CHECKPOINT_FILE):
                    shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
        else:
            resume = None
            shutil.rmtree(self._staging, ignore_errors=True)
        self.resumed = resume
        self._index = IndexWriter(self.index_file)
        prefix = self.directory.relative_to(self.root).as_posix()
        self._prefix = prefix
        self._shards = ShardWriter(
            self._staging,
            index_prefix=prefix,
            max_shard_bytes=_NO_ROLLOVER if self.flat else max_shard_bytes,
            max_shard_samples=None if self.flat else max_shard_samples,
            on_shard=self._shard_done,
            shard_keys=shard_keys,
            finished=finished,
        )
        if resume is not None:
            for shard in finished:  # the index gets the finished shards' rows first, as in one run
                rows = pq.read_table(self._staging / ROWS_DIR / f"{shard.name}.parquet")
                self._index.add_shard(f"{prefix}/{shard.name}", rows)
            self._shards.total = resume.samples
            self._shards.bytes_written = resume.image_bytes

    @property
    def shards_done(self) -> int:
        """Shards finished so far (resumed ones included)."""
        return len(self._shards.shards)

    @staticmethod
    def checkpoint(
        root: Path, source: str, group: str, identity: str, directory_name: str | None = None
    ) -> Checkpoint | None:
        """The checkpoint an interrupted build of the same identity left, or None."""
        staging = _staging_dir(staged_directory(Path(root), source, group, directory_name))
        try:
            data = json.loads((staging / CHECKPOINT_FILE).read_text(encoding="utf-8"))
            found = Checkpoint(**data)
        except (OSError, ValueError, TypeError):
            return None
        if found.identity != identity:
            return None
        names = [f"{SHARD_PREFIX}{k:05d}" for k in range(found.shards)]
        whole = all((staging / n / "data.mdb").is_file() and (staging / ROWS_DIR / f"{n}.parquet").is_file()
                    for n in names)  # fmt: skip
        return found if whole else None

    def _shard_done(self, shard: str, rows: pa.Table) -> None:
        if self.flat:
            self._index.add_shard(self._prefix, rows)
            return
        self._index.add_shard(shard, rows)
        if self.identity is None:
            return
        # rows first, then the checkpoint that names them; both written whole (temporary name + rename)
        name = shard.rsplit("/", 1)[1]
        rows_dir = self._staging / ROWS_DIR
        rows_dir.mkdir(exist_ok=True)
        tmp = rows_dir / f".{name}.parquet.tmp"
        with naming_the_file(tmp):
            pq.write_table(rows, tmp, compression="zstd")
        os.replace(tmp, rows_dir / f"{name}.parquet")
        count = len(self._shards.shards) + 1  # this shard is appended right after the callback
        found = Checkpoint(self.identity, count, self._shards.total + self._shards._count,  # noqa: SLF001
                           self._shards.bytes_written, self._state())  # fmt: skip
        tmp = self._staging / f"{CHECKPOINT_FILE}.tmp"
        with naming_the_file(tmp):
            tmp.write_text(json.dumps(asdict(found), sort_keys=True), encoding="utf-8")
        os.replace(tmp, self._staging / CHECKPOINT_FILE)

    def __enter__(self) -> SourceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is not None:
            self.abort()

    def add(self, sample: Sample) -> None:
        self._shards.add(sample)

    def close(self) -> SourceOutput:
        staged = self._shards.close()
        previous = self.directory.with_name(f".{self.directory.name}.previous-{os.getpid()}")
        if self.directory.exists():
            os.replace(self.directory, previous)
        if self.flat:
            if staged:
                os.replace(staged[0], self.directory)
            shutil.rmtree(self._staging, ignore_errors=True)
            shards = [self.directory] if staged else []
        else:
            shutil.rmtree(self._staging / ROWS_DIR, ignore_errors=True)
            (self._staging / CHECKPOINT_FILE).unlink(missing_ok=True)
            os.replace(self._staging, self.directory)
            shards = [self.directory / p.name for p in staged]
        index = self._index.close()
        shutil.rmtree(previous, ignore_errors=True)
        return SourceOutput(self.directory, index, shards, self._shards.total, self._shards.bytes_written)

    def abort(self) -> None:
        """Drop the unfinished shard; finished shards and their checkpoint stay for a resumed build (an
        unresumable staging folder is cleared by the next build of the source)."""
        self._shards.abort()
        self._index.abort()
        if self.identity is None:
            shutil.rmtree(self._staging, ignore_errors=True)


def staged_directory(root: Path, source: str, group: str, directory_name: str | None = None) -> Path:
    """The source's folder (see source_dir), or `directory_name` next to it (a benchmark's PARSeq name)."""
    directory = source_dir(root, source, group)
    if directory_name:  # e.g. a benchmark's folder under the name PARSeq's test.py opens (test/SVTP)
        if "/" in directory_name or directory_name.startswith("."):
            raise ValueError(f"directory name must be a plain folder name, got {directory_name!r}")
        directory = directory.with_name(directory_name)
    return directory


def _staging_dir(directory: Path) -> Path:
    # One name per source, not per process: a rerun finds the staging folder of a killed build.
    return directory.with_name(f".{directory.name}.staging")
