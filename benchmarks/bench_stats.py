"""`rebusyn stats` on large indexes, against the pandas code one would write for the same figures.

    python benchmarks/bench_stats.py [--real 1000000] [--synthetic 3000000]

Writes index files (no shards: stats reads only indexes and reports) with varied labels, raw labels and
crop sizes, then runs, each in a fresh subprocess (so its VmHWM is its own peak memory):
  pandas     read the same columns into a DataFrame; per-source count, mean label length and
             5/50/95th percentiles of width, height and aspect with groupby; the label length histogram;
             character counts of the labels and the raw labels with collections.Counter
  rebusyn    rebusyn.stats.compute(root): all of the above plus size histograms, per real/synthetic
and prints seconds, the ratio between them, and peak memory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rebusyn.store.index import INDEX_SCHEMA, index_path

PEAK = 'next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024'

REBUSYN = f"""
import json, sys, time
from rebusyn.stats import compute
start = time.perf_counter()
s = compute(sys.argv[1])
took = time.perf_counter() - start
print(json.dumps({{"took": took, "rows": s.rows, "sources": len(s.sources), "chars": len(s.chars),
                   "peak_mib": {PEAK}}}))
"""

PANDAS = f"""
import json, sys, time
from collections import Counter
from pathlib import Path
import numpy as np, pandas as pd
start = time.perf_counter()
cols = ["label", "label_raw", "source", "group", "w", "h"]
paths = sorted(Path(sys.argv[1], "index").glob("*.parquet"))
df = pd.concat([pd.read_parquet(p, columns=cols) for p in paths], ignore_index=True)
df["len"] = df["label"].str.len()
df["aspect"] = df["w"] / df["h"]
per_source = df.groupby("source").agg(rows=("label", "size"), len_mean=("len", "mean"))
spread = df.groupby("source")[["w", "h", "aspect"]].quantile([0.05, 0.5, 0.95])
lengths = np.bincount(df["len"].to_numpy())
chars = Counter("".join(df["label"]))
raw = Counter("".join(df["label_raw"]))
took = time.perf_counter() - start
print(json.dumps({{"took": took, "rows": len(df), "sources": len(per_source), "chars": len(chars),
                   "peak_mib": {PEAK}}}))
"""

ROWS_PER_SHARD = 100_000


def write_index(root: Path, source: str, group: str, n: int, seed: int) -> Path:
    """Labels of 1-20 letters and digits; raw labels capitalised with punctuation; varied crop sizes."""
    path = index_path(root, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
    words = ["".join(rng.choice(alphabet, rng.integers(1, 21))) for _ in range(50_000)]
    raws = [f"{w.capitalize()}{'.,!-'[i % 4]}" if i % 3 else w.upper() for i, w in enumerate(words)]
    words_a, raws_a = np.array(words), np.array(raws)
    with pq.ParquetWriter(path, INDEX_SCHEMA, compression="zstd") as writer:
        for start in range(0, n, ROWS_PER_SHARD):
            k = min(ROWS_PER_SHARD, n - start)
            pick = rng.integers(0, len(words), k)
            h = rng.integers(12, 120, k).astype(np.int32)
            w = (h * rng.uniform(0.5, 12, k)).astype(np.int32)
            shard = f"train/{group}/{source}/shard-{start // ROWS_PER_SHARD:05d}"
            writer.write_table(pa.Table.from_arrays([
                pa.array([shard] * k), pa.array(np.arange(1, k + 1, dtype=np.int32)),
                pa.array(words_a[pick]), pa.array(raws_a[pick]), pa.array([source] * k),
                pa.array([group] * k),
                pa.array([f"{source}/{start + i}" for i in range(k)]), pa.array(w), pa.array(h),
                pa.array(["0" * 40] * k),
            ], schema=INDEX_SCHEMA))  # fmt: skip
    return path


def run(code: str, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", type=int, default=1_000_000)
    parser.add_argument("--synthetic", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each; the best is reported")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rebusyn-bench-stats-"))
    try:
        root = work / "root"
        write_index(root, "real_a", "R", args.real // 2, 1)
        write_index(root, "real_b", "B", args.real - args.real // 2, 2)
        write_index(root, "trdg", "S", args.synthetic, 3)
        runs = {"pandas": [], "rebusyn": []}
        for _ in range(args.repeat):  # interleaved, so drift on a noisy machine hits both alike
            runs["pandas"].append(run(PANDAS, root))
            runs["rebusyn"].append(run(REBUSYN, root))
        best = {name: min(r, key=lambda x: x["took"]) for name, r in runs.items()}
        assert best["pandas"]["rows"] == best["rebusyn"]["rows"]
        assert best["pandas"]["chars"] == best["rebusyn"]["chars"]
        base = best["pandas"]["took"]
        r = best["rebusyn"]
        print(f"{r['rows']:,} index rows, {r['sources']} sources; best of {args.repeat}")
        print(f"{'run':10s} {'seconds':>8s} {'vs pandas':>10s} {'speed-up':>9s} {'peak MiB':>9s}")
        for name in ("pandas", "rebusyn"):
            r = best[name]
            print(f"{name:10s} {r['took']:8.2f} {r['took'] / base:9.2f}x {base / r['took']:8.2f}x "
                  f"{r['peak_mib']:9,.0f}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
