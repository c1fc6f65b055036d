"""`rebusyn mix --materialize`: a manifest written out as STR LMDB shards in PARSeq's layout.

PARSeq and CLIP4STR train on every `data.mdb` under `<root_dir>/train/<train_dir>` (a recursive glob,
parseq_paper.md §4.3): they cannot read a manifest. Materializing copies the manifest's rows, in manifest
order and with its repeats, into

```
<out>/train/real/shard-NNNNN/{data.mdb,lock.mdb}     the real rows
<out>/train/synth/shard-NNNNN/{data.mdb,lock.mdb}    the synthetic rows
<out>/test -> <dataset root>/test                    the benchmarks, when the root has them (a symlink)
<out>/materialized.json                              the manifest's name, sha256 and row counts
```

so `./train.py data.root_dir=<out> data.train_dir=.` (both parts) trains on exactly the mix, with no change
to their code. Images are copied byte for byte; the label is the manifest's (already normalized) label, and
each sample's `meta-` keeps its provenance plus the manifest row number.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from tqdm import tqdm

from rebusyn.mix import MANIFEST_FILE, MANIFEST_JSON
from rebusyn.sample import Sample
from rebusyn.store.index import fingerprint
from rebusyn.store.shards import DEFAULT_MAX_SHARD_BYTES, ShardReader, ShardWriter

MARKER = "materialized.json"


@dataclass
class MaterializeSummary:
    out: Path
    real: int
    synthetic: int
    shards: int
    image_bytes: int


def materialize(
    manifest_dir: Path,
    out: Path,
    *,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    progress: bool = True,
) -> MaterializeSummary:
    """Write the manifest in `manifest_dir` as PARSeq-layout shards under `out` (see the module doc).

    `out` must not exist yet, or be an earlier materialization (it is replaced only once the new one is
    complete: the shards are written into a hidden sibling folder first)."""
    manifest_dir, out = Path(manifest_dir), Path(out)
    spec = json.loads((manifest_dir / MANIFEST_JSON).read_text(encoding="utf-8"))
    manifest_path = manifest_dir / MANIFEST_FILE
    if fingerprint(manifest_path) != spec["manifest"]["sha256"]:
        raise ValueError(f"{manifest_path} does not match the sha256 in {MANIFEST_JSON}: write it again")
    root = Path(spec["root"])
    if out.exists() and not (out / MARKER).is_file():
        raise FileExistsError(f"{out} exists and is not a materialized manifest; choose another --out")
    staging = out.with_name(f".{out.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    readers: dict[str, ShardReader] = {}
    try:
        # Batches of the manifest, both parts' writers open at once: memory does not grow with its length.
        def writer(part: str) -> ShardWriter:
            folder = staging / "train" / part
            return ShardWriter(folder, index_prefix=f"train/{part}", max_shard_bytes=max_shard_bytes)

        with (
            writer("real") as real,
            writer("synth") as synth,
            tqdm(total=spec["manifest"]["rows"], desc="materialize", unit="img", disable=not progress) as bar,
        ):
            number = 0
            for batch in pq.ParquetFile(manifest_path).iter_batches(batch_size=1 << 16, columns=_COLUMNS):
                data = batch.to_pydict()
                for i in range(batch.num_rows):
                    row = {c: data[c][i] for c in _COLUMNS}
                    (synth if row["synthetic"] else real).add(_sample(readers, root, row, number))
                    number += 1
                bar.update(batch.num_rows)
        counts = {"real": real.total, "synth": synth.total}
        shards = len(real.shards) + len(synth.shards)
        image_bytes = real.bytes_written + synth.bytes_written
        if (root / "test").is_dir():
            os.symlink(root / "test", staging / "test", target_is_directory=True)
        (staging / MARKER).write_text(json.dumps({
            "manifest": spec["name"], "manifest_sha256": spec["manifest"]["sha256"], "root": str(root),
            "real": counts["real"], "synthetic": counts["synth"], "shards": shards,
        }, indent=2) + "\n", encoding="utf-8")  # fmt: skip
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        for reader in readers.values():
            reader.close()
    return MaterializeSummary(out, counts["real"], counts["synth"], shards, image_bytes)


_COLUMNS = ["shard", "idx", "label", "label_raw", "source", "group", "synthetic", "key"]


def _sample(readers: dict[str, ShardReader], root: Path, row: dict[str, Any], number: int) -> Sample:
    reader = readers.get(row["shard"])
    if reader is None:
        reader = readers[row["shard"]] = ShardReader(root / row["shard"])
    image, _label, meta = reader.get(row["idx"])
    extra = {k: v for k, v in meta.items() if k not in ("label_raw", "source", "group", "key", "w", "h")}
    extra["manifest_row"] = number
    return Sample(image=image, label=row["label"], label_raw=row["label_raw"], source=row["source"],
                  group=row["group"], key=row["key"], width=int(meta.get("w", 0)),
                  height=int(meta.get("h", 0)), extra=extra)  # fmt: skip


def format_summary(summary: MaterializeSummary) -> str:
    return (
        f"materialized {summary.real + summary.synthetic:,} samples ({summary.real:,} real, "
        f"{summary.synthetic:,} synthetic) into {summary.shards} shard(s), "
        f"{summary.image_bytes / 2**20:,.1f} MiB, under {summary.out}\n"
        f"train PARSeq/CLIP4STR on it: ./train.py data.root_dir={summary.out} data.train_dir=."
    )
