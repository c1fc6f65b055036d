"""Build throughput on a generated ICDAR-2015-layout mirror, against baselines run side by side.

    python benchmarks/bench_build.py [--images 300]

Runs, in one process and on the same archives:
  baseline   decode each scene image + axis-aligned bounding-box crop + JPEG encode per word
             (what PARSeq's / MMOCR's converters do; no parsing, no LMDB, no index)
  rebusyn    the full `build` path (extract, parse, quad warp, normalize, LMDB shards, Parquet index,
             report) with --workers 1 and --workers 2
and prints samples/s and ratios against the baseline (absolute times on these machines are noisy).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

from rebusyn.build import BuildOptions, build
from rebusyn.samplegen import icdar2015
from rebusyn.samplegen.archive import write_sha256sums


def baseline(mirror: Path) -> tuple[int, float]:
    start = time.perf_counter()
    words = 0
    with (
        zipfile.ZipFile(mirror / icdar2015.ARCHIVES["images"]) as images,
        zipfile.ZipFile(mirror / icdar2015.ARCHIVES["annotations"]) as gts,
    ):
        for name in images.namelist():
            image = cv2.imdecode(np.frombuffer(images.read(name), np.uint8), cv2.IMREAD_COLOR)
            for line in gts.read(f"gt_{Path(name).stem}.txt").decode("utf-8-sig").splitlines():
                parts = line.split(",", 8)
                if len(parts) < 9 or parts[8] == "###":
                    continue
                pts = np.array([float(v) for v in parts[:8]]).reshape(4, 2)
                x0, y0 = np.maximum(pts.min(0).astype(int), 0)
                x1, y1 = pts.max(0).astype(int)
                crop = image[y0:y1, x0:x1]
                if crop.size:
                    cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    words += 1
    return words, time.perf_counter() - start


def run_build(mirror: Path, root: Path, workers: int) -> tuple[int, float]:
    start = time.perf_counter()
    result = build(
        BuildOptions(root=root, sources=("icdar2015",), mirror=str(mirror), workers=workers, progress=False)
    )
    return result.sources[0].kept, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rebusyn-bench-"))
    try:
        mirror = work / "mirror"
        icdar2015.write(mirror, images=args.images)
        write_sha256sums(mirror)
        base_n, base_t = baseline(mirror)
        rows = [("baseline: decode + bbox crop + encode", base_n, base_t)]
        for workers in (1, 2):
            n, t = run_build(mirror, work / f"root{workers}", workers)
            rows.append((f"rebusyn build --workers {workers}", n, t))
        base_rate = base_n / base_t
        print(f"{args.images} scene images (640x480), {base_n} legible words")
        print(f"{'run':42s} {'samples':>8s} {'seconds':>8s} {'samples/s':>10s} {'vs baseline':>12s}")
        for label, n, t in rows:
            print(f"{label:42s} {n:8d} {t:8.2f} {n / t:10.0f} {n / t / base_rate:11.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
