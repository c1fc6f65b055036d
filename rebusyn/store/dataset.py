"""One source's output in a dataset root: its shards, its Parquet index, and where they live."""

from __future__ import annotations

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
    """Shards + index for one source. Opening it removes that source's previous output, so a rebuild
    never mixes old and new shards; the index is published only when every shard is closed."""

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
        self.index_file.unlink(missing_ok=True)
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self._index = IndexWriter(self.index_file)
        self._shards = ShardWriter(
            self.directory,
            self.root,
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
        shards = self._shards.close()
        index = self._index.close()
        return SourceOutput(self.directory, index, shards, self._shards.total, self._shards.bytes_written)

    def abort(self) -> None:
        self._shards.abort()
        self._index.abort()
