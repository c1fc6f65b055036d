"""`rebusyn mix` on large indexes, against the floor of reading those indexes, side by side.

    python benchmarks/bench_mix.py [--real 2000000] [--synthetic 6000000]

Writes index files of the given sizes (no shards: mix reads only indexes), then times
  baseline   pyarrow reading every index column mix needs (the I/O floor)
  mix 3:1    the whole `rebusyn mix --ratio 3:1` (draw, shuffle, write manifest.parquet + manifest.json)
and prints seconds, the ratio to the baseline, and the mix's peak memory. The mix runs in a fresh
subprocess, whose own peak (VmHWM) is its memory: this process's RSS holds the generated indexes.

    python benchmarks/bench_mix.py --real 6000000 --synthetic 19000000   # the 25M-row target
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rebusyn.store.index import INDEX_SCHEMA, index_path

CHILD = r"""
import json, sys, time
from pathlib import Path
from rebusyn.mix import MixOptions, mix
start = time.perf_counter()
s = mix(MixOptions(root=Path(sys.argv[1]), ratio=(3.0, 1.0), out=Path(sys.argv[2])))
took = time.perf_counter() - start
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"took": took, "real": s.real, "synthetic": s.synthetic, "peak_mib": peak / 1024}))
"""

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
        out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(work / "manifests")],
                             check=True, capture_output=True, text=True)  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{rows:,} index rows -> manifest of {r['real'] + r['synthetic']:,} rows "
            f"({r['real']:,} real + {r['synthetic']:,} synthetic)"
        )
        print(f"{'run':36s} {'seconds':>8s} {'vs baseline':>12s}")
        print(f"{'baseline: read the index columns':36s} {base:8.2f} {1.0:11.2f}x")
        print(f"{'rebusyn mix --ratio 3:1':36s} {r['took']:8.2f} {r['took'] / base:11.2f}x")
        print(f"peak memory of the mix process (VmHWM): {r['peak_mib']:,.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
