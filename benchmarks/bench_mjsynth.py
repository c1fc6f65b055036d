"""MJSynth at scale: build a generated MJSynth-layout `mjsynth.tar.gz` of 100k and 1M images, side by side
with a streaming-read baseline; report throughput, peak memory (flat as the input grows?) and disk overhead.

    python benchmarks/bench_mjsynth.py [--sizes 100000,1000000] [--workers 2] [--dir /tmp/bench-mjsynth]

Per size:
  stream read    tarfile "r|gz" over the archive, every member's bytes read and dropped: the floor of any
                 reader of this file (gunzip + tar parsing), run in this process
  rebusyn build  `build --sources mjsynth` from a local mirror (SHA256SUMS verified), in a fresh subprocess:
                 two streaming passes, split lookup, decode check, LMDB shards, Parquet index, report
Prints samples/s, the build's time as a ratio to the stream read, the peak RSS of the build's main process
(VmHWM) and of its workers (ru_maxrss of its children), and the shards' bytes relative to the image bytes
they hold. The archive is generated once per size and kept in --dir (~1.8 KB per image) unless --clean.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from rebusyn.fetch import tar_members
from rebusyn.samplegen.archive import write_sha256sums
from rebusyn.samplegen.mjsynth import ARCHIVE, write_large

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from rebusyn.build import BuildOptions, build

def peak_mib():
    # VmHWM of this process's own address space: ru_maxrss would also carry the parent's RSS at fork
    # (Linux copies it across exec), i.e. this benchmark's own memory while it generated the archive.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
opts = BuildOptions(Path(sys.argv[1]), sources=("mjsynth",), mirror=sys.argv[2], workers=int(sys.argv[3]),
                    progress=False)
(s,) = build(opts).sources
wall = time.perf_counter() - start
print(json.dumps({
    "kept": s.kept, "dropped": s.dropped, "wall": wall, "report_elapsed": s.elapsed_s,
    "image_bytes": s.image_bytes, "shards": s.shards,
    "rss_main_mib": peak_mib(),
    "rss_workers_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def stream_read(archive: Path) -> tuple[int, float]:
    start = time.perf_counter()
    n = 0
    with tarfile.open(archive, "r|gz") as tf:
        for member in tar_members(tf):
            if member.isreg():
                src = tf.extractfile(member)
                if src is not None:
                    src.read()
                    n += 1
    return n, time.perf_counter() - start


def tree_bytes(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def run(size: int, workers: int, base: Path) -> dict:
    mirror = base / f"mirror-{size}"
    archive = mirror / ARCHIVE
    if not archive.is_file():
        mirror.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        write_large(archive, size)
        write_sha256sums(mirror)
        print(f"  generated {archive} ({archive.stat().st_size / 2**20:,.0f} MiB) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    members, read_s = stream_read(archive)
    root = base / f"root-{size}"
    shutil.rmtree(root, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(mirror), str(workers)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    shards = tree_bytes(root / "train" / "synth" / "mjsynth", "data.mdb")
    index = tree_bytes(root / "index", "mjsynth.parquet")
    result.update(
        size=size, members=members, read_s=read_s, archive_bytes=archive.stat().st_size,
        shard_bytes=shards, index_bytes=index,
    )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-mjsynth"))
    parser.add_argument("--clean", action="store_true", help="delete the generated archives at the end")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        print(f"MJSynth layout, {size:,} images, --workers {args.workers}", flush=True)
        r = run(size, args.workers, args.dir)
        rows.append(r)
        rate = r["kept"] / r["wall"]
        overhead = r["shard_bytes"] / r["image_bytes"] - 1
        print(
            f"  stream read   {r['read_s']:7.1f} s  {r['members'] / r['read_s']:9,.0f} members/s\n"
            f"  rebusyn build {r['wall']:7.1f} s  {rate:9,.0f} samples/s "
            f"({rate / args.workers:,.0f} per core), "
            f"{r['wall'] / r['read_s']:.1f}x the stream read\n"
            f"  kept {r['kept']:,}, dropped {sum(r['dropped'].values()):,}; peak RSS main "
            f"{r['rss_main_mib']:,.0f} MiB, workers {r['rss_workers_mib']:,.0f} MiB\n"
            f"  shards {r['shard_bytes'] / 2**20:,.1f} MiB for {r['image_bytes'] / 2**20:,.1f} MiB of images "
            f"(overhead {overhead:+.1%}); index {r['index_bytes'] / 2**20:.1f} MiB",
            flush=True,
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(
            f"{b['size'] // a['size']}x the input: peak RSS main "
            f"x{b['rss_main_mib'] / a['rss_main_mib']:.2f}, "
            f"workers x{b['rss_workers_mib'] / a['rss_workers_mib']:.2f}; "
            f"throughput x{(b['kept'] / b['wall']) / (a['kept'] / a['wall']):.2f}"
        )
    if args.clean:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
