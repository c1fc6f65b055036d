"""Export a manifest or a dataset root as HuggingFace-compatible Parquet files, straight from LMDB.

Files are `train-00000-of-0000N.parquet` with columns image (struct<bytes: binary, path: string>), label,
label_raw, source, group, synthetic, and the schema metadata key `huggingface` that `datasets` itself writes
(`Features.arrow_schema`), so `datasets.load_dataset("parquet", data_dir=out_dir)` restores the `Image`
feature. Written with pyarrow directly, one bounded row group at a time: memory stays around one row group
and there is no intermediate HF cache copy. Image bytes are written as stored (never re-encoded),
uncompressed and PLAIN-encoded like `datasets` does for images; text columns are zstd with dictionaries.
The whole export is built in a temporary directory next to `out_dir` and renamed into place at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rebusyn import __version__
from rebusyn.loaders.hf import ROW_COLUMNS, LmdbImages, check_shards, features, resolve

DEFAULT_ROW_GROUP_BYTES = 100 * 2**20  # datasets' MAX_ROW_GROUP_SIZE; the Hub viewer accepts up to 300 MB
DEFAULT_FILE_BYTES = 500 * 2**20  # datasets' MAX_SHARD_SIZE, used when rows_per_file is not given
_MAX_ROW_GROUP_BYTES = 2**30  # binary offsets are int32: a row group must stay well below 2 GiB
_TEXT_COLUMNS = ["label", "label_raw", "source", "group", "synthetic"]
_IMAGE_LEAVES = ["image.bytes", "image.path"]


@dataclass
class ExportSummary:
    out_dir: Path
    files: list[Path]
    rows: int
    row_groups: int
    image_bytes: int
    elapsed_s: float
    source: dict[str, Any] = field(default_factory=dict)


def format_summary(summary: ExportSummary) -> str:
    mb = summary.image_bytes / 2**20
    return (
        f"exported {summary.rows:,} rows ({mb:,.1f} MiB of images) into {len(summary.files)} Parquet "
        f"file(s), {summary.row_groups} row group(s), in {summary.out_dir} ({summary.elapsed_s:.2f} s)\n"
        f"load it with: datasets.load_dataset(\"parquet\", data_dir={str(summary.out_dir)!r})"
    )


def _schema(provenance: dict[str, Any]) -> pa.Schema:
    # features().arrow_schema carries b"huggingface" = {"info": {"features": ...}}, the exact metadata that
    # datasets' own Parquet writer puts there; we add our provenance under a separate key.
    schema = features().arrow_schema
    metadata = dict(schema.metadata or {})
    metadata[b"rebusyn"] = json.dumps(provenance, sort_keys=True).encode("utf-8")
    return schema.with_metadata(metadata)


def _writer_options() -> dict[str, Any]:
    compression: dict[str, str] = {leaf: "none" for leaf in _IMAGE_LEAVES}
    compression.update({name: "zstd" for name in _TEXT_COLUMNS})
    return {
        "compression": compression,
        # images: PLAIN, no dictionary (unique blobs); text: dictionary-encoded (few distinct values)
        "use_dictionary": ["label", "label_raw", "source", "group"],
        "column_encoding": {leaf: "PLAIN" for leaf in _IMAGE_LEAVES},
        "write_statistics": _TEXT_COLUMNS,  # min/max of image blobs is useless and bloats the footer
        "write_page_index": True,
        "version": "2.6",
    }


class _FileSink:
    """Buffers rows into row groups of about `row_group_bytes` and rolls files by rows or bytes."""

    def __init__(self, tmp_dir: Path, schema: pa.Schema, row_group_bytes: int,
                 rows_per_file: int | None, file_bytes: int) -> None:
        self.tmp_dir = tmp_dir
        self.schema = schema
        self.row_group_bytes = row_group_bytes
        self.rows_per_file = rows_per_file
        self.file_bytes = file_bytes
        self.files: list[Path] = []
        self.rows = 0
        self.row_groups = 0
        self.image_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._file_bytes = 0
        self._buffer: dict[str, list[Any]] = {name: [] for name in ["image", *_TEXT_COLUMNS]}
        self._buffer_bytes = 0

    def add(self, image: bytes, label: str, label_raw: str, source: str, group: str, synthetic: bool) -> None:
        if self._writer is None:
            path = self.tmp_dir / f"part-{len(self.files):05d}.parquet"
            self._writer = pq.ParquetWriter(path, self.schema, **_writer_options())
            self.files.append(path)
        buf = self._buffer
        buf["image"].append(image)
        buf["label"].append(label)
        buf["label_raw"].append(label_raw)
        buf["source"].append(source)
        buf["group"].append(group)
        buf["synthetic"].append(synthetic)
        size = len(image) + len(label) + len(label_raw) + len(source) + len(group) + 1
        self._buffer_bytes += size
        self._file_rows += 1
        self._file_bytes += size
        if self._buffer_bytes >= self.row_group_bytes:
            self._flush()
        file_full = (
            self._file_rows >= self.rows_per_file
            if self.rows_per_file is not None
            else self._file_bytes >= self.file_bytes
        )
        if file_full:
            self._close_file()

    def _flush(self) -> None:
        n = len(self._buffer["image"])
        if n == 0:
            return
        image = pa.StructArray.from_arrays(
            [pa.array(self._buffer["image"], type=pa.binary()), pa.nulls(n, type=pa.string())],
            fields=list(self.schema.field("image").type),
        )
        columns = [image] + [pa.array(self._buffer[name], type=self.schema.field(name).type)
                             for name in _TEXT_COLUMNS]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=n)  # exactly one row group per flush
        self.rows += n
        self.row_groups += 1
        self.image_bytes += sum(len(b) for b in self._buffer["image"])
        self._buffer = {name: [] for name in self._buffer}
        self._buffer_bytes = 0

    def _close_file(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._file_rows = 0
        self._file_bytes = 0

    def close(self) -> list[Path]:
        self._close_file()
        return self.files

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def export_parquet(
    path: str | Path,
    out_dir: Path,
    *,
    rows_per_file: int | None = None,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    file_bytes: int = DEFAULT_FILE_BYTES,
    overwrite: bool = False,
    root: str | Path | None = None,
) -> ExportSummary:
    """Write the rows of a manifest (or of a dataset root) as `out_dir/train-NNNNN-of-MMMMM.parquet`.

    Rows keep manifest order. Files roll over every `rows_per_file` rows, or at about `file_bytes` of payload
    when `rows_per_file` is None. Row groups hold about `row_group_bytes` of payload (at least one row).
    An existing non-empty `out_dir` is an error unless `overwrite=True`.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if rows_per_file is not None and rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1 or None, got {rows_per_file}")
    if not 1 <= row_group_bytes <= _MAX_ROW_GROUP_BYTES:
        raise ValueError(f"row_group_bytes must be in 1..{_MAX_ROW_GROUP_BYTES}, got {row_group_bytes}")
    if file_bytes < 1:
        raise ValueError(f"file_bytes must be >= 1, got {file_bytes}")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; pass overwrite=True to replace it")

    plan = resolve(path, root=root)
    check_shards(plan)
    provenance = {"kind": plan.kind, "fingerprint": plan.fingerprint, "rebusyn_version": __version__}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    sink = _FileSink(tmp_dir, _schema(provenance), row_group_bytes, rows_per_file, file_bytes)
    try:
        root_str = str(plan.root)
        with LmdbImages() as images:
            # Column batches keep the per-row Python work to the unavoidable LMDB read.
            for batch in plan.rows.select(ROW_COLUMNS).to_batches(max_chunksize=8192):
                cols = [batch.column(name).to_pylist() for name in ROW_COLUMNS]
                for shard, idx, label, label_raw, source, group, synthetic in zip(*cols):
                    image = images.read(f"{root_str}/{shard}", idx)
                    sink.add(image, label, label_raw, source, group, synthetic)
        parts = sink.close()
        n = len(parts)
        final: list[Path] = []
        for i, part in enumerate(parts):
            target = tmp_dir / f"train-{i:05d}-of-{n:05d}.parquet"
            os.replace(part, target)
            final.append(out_dir / target.name)
        _publish(tmp_dir, out_dir)
    except BaseException:
        sink.abort()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return ExportSummary(
        out_dir=out_dir,
        files=final,
        rows=sink.rows,
        row_groups=sink.row_groups,
        image_bytes=sink.image_bytes,
        elapsed_s=round(time.perf_counter() - started, 3),
        source={"path": str(path), **provenance},
    )


def _publish(tmp_dir: Path, out_dir: Path) -> None:
    """Rename the finished export into place; an old export is moved aside first and deleted after."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
        try:
            os.replace(tmp_dir, out_dir)
        except BaseException:
            os.replace(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)
