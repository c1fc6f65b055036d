"""The per-source Parquet index: one row per stored sample, the only thing `mix` reads.

Written incrementally (one row group per shard, so memory stays flat however large the source) under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

INDEX_VERSION = 1

INDEX_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("idx", pa.int32()),
        ("label", pa.string()),
        ("label_raw", pa.string()),
        ("source", pa.string()),
        ("group", pa.string()),
        ("key", pa.string()),
        ("w", pa.int32()),
        ("h", pa.int32()),
        ("sha1", pa.string()),
    ],
    metadata={b"rebusyn.index_version": str(INDEX_VERSION).encode()},
)


ROW_SCHEMA = pa.schema([f for f in INDEX_SCHEMA if f.name != "shard"])  # a row before its shard is final


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Index rows (dicts with ROW_SCHEMA's fields) as an Arrow table."""
    return pa.Table.from_arrays([pa.array([r[f.name] for r in rows], type=f.type) for f in ROW_SCHEMA],
                                schema=ROW_SCHEMA)  # fmt: skip


def index_path(root: Path, source: str) -> Path:
    return Path(root) / "index" / f"{source}.parquet"


class IndexWriter:
    """Collects `ShardWriter.on_shard` callbacks into `<root>/index/<source>.parquet`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        self._writer = pq.ParquetWriter(self._tmp, INDEX_SCHEMA, compression="zstd")
        self.rows = 0

    def add_shard(self, shard: str, rows: pa.Table) -> None:
        """Append one finished shard's rows (a ROW_SCHEMA table) as a row group."""
        column = pa.array([shard] * rows.num_rows, type=pa.string())
        table = pa.Table.from_arrays([column, *rows.select(ROW_SCHEMA.names).columns], schema=INDEX_SCHEMA)
        with naming_the_file(self._tmp):
            self._writer.write_table(table)
        self.rows += rows.num_rows

    def close(self) -> Path:
        with naming_the_file(self._tmp):
            self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the unfinished index. Never raises: it runs while another error (often a full disk, which
        closing the writer would hit again) is on its way up, and must not replace it."""
        with suppress(OSError):
            self._writer.close()
        self._tmp.unlink(missing_ok=True)


@contextmanager
def naming_the_file(path: Path) -> Iterator[None]:
    """pyarrow's write errors do not say which file (e.g. "Error writing bytes to file ... No space left on
    device"): re-raise them with the path, keeping the errno so callers can tell a full disk."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"writing {path}: {exc}") from exc


def read_index(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns)


def fingerprint(path: Path) -> str:
    """sha256 of an index file's bytes: what a manifest records about its inputs."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()
