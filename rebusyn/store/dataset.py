"""One source's output in a dataset root: its shards, its Parquet index, and where they live."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rebusyn.sample import Sample
from rebusyn.store.index import IndexWriter, index_path
from rebusyn.store.shards import DEFAULT_MAX_SHARD_BYTES, ShardWriter


def source_dir(root: Path, source: str, group: str) -> Path:
    """`train/real/<group>/<source>` for real data, `train/synth/<source>` for synthetic (group S),
    `test/<source>` for benchmarks (group T). PARSeq/CLIP4STR glob `train/{real,synth}/**/data.mdb`."""
    root = Path(root)
    if group == "S":
        return root / "train" / "synth" / source
    if group == "T":
        return root / "test" / source
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
    """

    def __init__(
        self,
        root: Path,
        source: str,
        group: str,
        *,
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        max_shard_samples: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.directory = source_dir(self.root, source, group)
        self.index_file = index_path(self.root, source)
        self._staging = self.directory.with_name(f".{self.directory.name}.staging-{os.getpid()}")
        shutil.rmtree(self._staging, ignore_errors=True)
        self._index = IndexWriter(self.index_file)
        self._shards = ShardWriter(
            self._staging,
            index_prefix=self.directory.relative_to(self.root).as_posix(),
            max_shard_bytes=max_shard_bytes,
            max_shard_samples=max_shard_samples,
            on_shard=self._index.add_shard,
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
        os.replace(self._staging, self.directory)
        index = self._index.close()
        shutil.rmtree(previous, ignore_errors=True)
        shards = [self.directory / p.name for p in staged]
        return SourceOutput(self.directory, index, shards, self._shards.total, self._shards.bytes_written)

    def abort(self) -> None:
        self._shards.abort()
        self._index.abort()
        shutil.rmtree(self._staging, ignore_errors=True)
