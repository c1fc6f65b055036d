"""One source's output in a dataset root: its shards, its Parquet index, and where they live."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rebusyn.sample import CUSTOM_GROUP, SYNTH_GROUP, TEST_GROUP, Sample
from rebusyn.store.index import IndexWriter, index_path
from rebusyn.store.shards import DEFAULT_MAX_SHARD_BYTES, ShardWriter

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


class SourceWriter:
    """Shards + index for one source, staged and then swapped in.

    Shards are written into a hidden staging folder next to the source's folder. `close()` swaps the staged
    folder in (the previous build, if any, is removed only then) and publishes the index; `abort()` or an
    exception leaves the previous build untouched. Readers never see a mix of old and new shards.

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
    ) -> None:
        self.root = Path(root)
        self.directory = source_dir(self.root, source, group)
        if directory_name:  # e.g. a benchmark's folder under the name PARSeq's test.py opens (test/SVTP)
            if "/" in directory_name or directory_name.startswith("."):
                raise ValueError(f"directory name must be a plain folder name, got {directory_name!r}")
            self.directory = self.directory.with_name(directory_name)
        self.index_file = index_path(self.root, source)
        self._staging = self.directory.with_name(f".{self.directory.name}.staging-{os.getpid()}")
        shutil.rmtree(self._staging, ignore_errors=True)
        self._index = IndexWriter(self.index_file)
        self.flat = group == TEST_GROUP
        prefix = self.directory.relative_to(self.root).as_posix()
        self._shards = ShardWriter(
            self._staging,
            index_prefix=prefix,
            max_shard_bytes=_NO_ROLLOVER if self.flat else max_shard_bytes,
            max_shard_samples=None if self.flat else max_shard_samples,
            on_shard=(lambda _shard, rows: self._index.add_shard(prefix, rows))
            if self.flat
            else self._index.add_shard,
            shard_keys=shard_keys,
        )

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
            os.replace(self._staging, self.directory)
            shards = [self.directory / p.name for p in staged]
        index = self._index.close()
        shutil.rmtree(previous, ignore_errors=True)
        return SourceOutput(self.directory, index, shards, self._shards.total, self._shards.bytes_written)

    def abort(self) -> None:
        self._shards.abort()
        self._index.abort()
        shutil.rmtree(self._staging, ignore_errors=True)
