"""`rebusyn mix` on large indexes, against the floor of reading those indexes, side by side.

    python benchmarks/bench_mix.py [--real 2000000] [--synthetic 6000000]

Writes index files of the given sizes (no shards: mix reads only indexes), then times
  baseline   pyarrow reading every index column mix needs (the I/O floor)
  mix 3:1    the whole `rebusyn mix --ratio 3:1` (draw, shuffle, write manifest.parquet + manifest.json)
and prints seconds, the ratio to the baseline, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rebusyn.mix import MixOptions, mix
from rebusyn.store.index import INDEX_SCHEMA, index_path

ROWS_PER_SHARD = 100_000


def write_index(root: Path, source: str, group: str, n: int) -> Path:
    path = index_path(root, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(source))
    words = np.array([f"w{i:06d}" for i in range(50_000)])
    with pq.ParquetWriter(path, INDEX_SCHEMA, compression="zstd") as writer:
        for start in range(0, n, ROWS_PER_SHARD):
            k = min(ROWS_PER_SHARD, n - start)
            labels = words[rng.integers(0, len(words), k)]
            shard = f"train/{group}/{source}/shard-{start // ROWS_PER_SHARD:05d}"
            writer.write_table(
                pa.Table.from_arrays(
                    [
                        pa.array([shard] * k),
                        pa.array(np.arange(1, k + 1, dtype=np.int32)),
                        pa.array(labels),
                        pa.array(labels),
                        pa.array([source] * k),
                        pa.array([group] * k),
                        pa.array([f"{source}/{start + i}" for i in range(k)]),
                        pa.array(np.full(k, 100, np.int32)),
                        pa.array(np.full(k, 32, np.int32)),
                        pa.array(["0" * 40] * k),
                    ],
                    schema=INDEX_SCHEMA,
                )
            )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=int, default=2_000_000)
    parser.add_argument("--synthetic", type=int, default=6_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rebusyn-bench-mix-"))
    try:
        root = work / "root"
        paths = [
            write_index(root, "real_a", "R", args.real // 2),
            write_index(root, "real_b", "B", args.real - args.real // 2),
            write_index(root, "trdg", "S", args.synthetic),
        ]
        start = time.perf_counter()
        rows = sum(
            pq.read_table(
                p, columns=["shard", "idx", "label", "label_raw", "source", "group", "key"]
            ).num_rows
            for p in paths
        )
        base = time.perf_counter() - start
        start = time.perf_counter()
        summary = mix(MixOptions(root=root, ratio=(3.0, 1.0), out=work / "manifests"))
        took = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{rows:,} index rows -> manifest of {summary.real + summary.synthetic:,} rows "
            f"({summary.real:,} real + {summary.synthetic:,} synthetic)"
        )
        print(f"{'run':36s} {'seconds':>8s} {'vs baseline':>12s}")
        print(f"{'baseline: read the index columns':36s} {base:8.2f} {1.0:11.2f}x")
        print(f"{'rebusyn mix --ratio 3:1':36s} {took:8.2f} {took / base:11.2f}x")
        print(f"peak RSS of this process: {peak_mib:,.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
