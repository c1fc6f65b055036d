"""Build throughput on a generated ICDAR-2015-layout mirror, against baselines run side by side.

    python benchmarks/bench_build.py [--images 200] [--width 1280 --height 720]

On the same scene images (1280x720 like the real ICDAR 2015 images by default, 4-7 words each):
  pure decode      cv2.imdecode of every image once, nothing else (the floor of any crop pipeline)
  per-word reopen  what PARSeq's converters do: for every word open the image with PIL, cut its
                   axis-aligned box and save a JPEG (the image is decoded once per word)
  rebusyn build    a rebuild with the archives already fetched and extracted (checksums re-verified):
                   parse, decode once per image, warp every word, JPEG-encode, LMDB shards, Parquet
                   index, report; with --workers 1 and 2
Prints crops/s, crops/s per core, and each run's time as a ratio to pure decode.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rebusyn.build import BuildOptions, build
from rebusyn.samplegen import icdar2015
from rebusyn.samplegen.archive import write_sha256sums
from rebusyn.sources.icdar2015 import iter_detection


def pure_decode(images: list[Path]) -> float:
    start = time.perf_counter()
    for path in images:
        cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    return time.perf_counter() - start


def per_word_reopen(items: list) -> tuple[int, float]:
    start = time.perf_counter()
    crops = 0
    for item in items:
        for inst in item.instances:
            if inst.ignore:
                continue
            xs, ys = [p[0] for p in inst.points], [p[1] for p in inst.points]
            with Image.open(item.image) as img:
                crop = img.crop((min(xs), min(ys), max(xs), max(ys)))
                crop.save(io.BytesIO(), format="JPEG")
            crops += 1
    return crops, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rebusyn-bench-"))
    try:
        mirror = work / "mirror"
        icdar2015.write(mirror, images=args.images, size=(args.width, args.height))
        write_sha256sums(mirror)
        root = work / "root"
        first = build(BuildOptions(root=root, sources=("icdar2015",), mirror=str(mirror), progress=False))
        extract = root / "cache" / "extract" / "icdar2015"
        items = list(
            iter_detection(
                extract / "ch4_training_images", extract / "ch4_training_localization_transcription_gt"
            )
        )
        images = [i.image for i in items]
        decode_t = pure_decode(images)
        rows = [("pure decode (cv2.imdecode)", len(images), 0, decode_t, 1)]
        n, t = per_word_reopen(items)
        rows.append(("per-word reopen (PARSeq converters)", len(images), n, t, 1))
        for workers in (1, 2):
            start = time.perf_counter()
            result = build(
                BuildOptions(
                    root=root, sources=("icdar2015",), mirror=str(mirror), workers=workers, progress=False
                )
            )
            rows.append(
                (
                    f"rebusyn build --workers {workers}",
                    len(images),
                    result.sources[0].kept,
                    time.perf_counter() - start,
                    workers,
                )
            )
        assert first.sources[0].kept == rows[-1][2]
        print(f"{len(images)} scene images of {args.width}x{args.height}, {rows[-1][2]} words kept")
        print(
            f"{'run':38s} {'crops':>6s} {'seconds':>8s} {'crops/s':>8s} {'per core':>9s} {'time/decode':>12s}"
        )
        for label, _, crops, t, cores in rows:
            rate = f"{crops / t:8.0f}" if crops else f"{'-':>8s}"
            per_core = f"{crops / t / cores:9.0f}" if crops else f"{'-':>9s}"
            print(f"{label:38s} {crops:6d} {t:8.2f} {rate} {per_core} {t / decode_t:11.2f}x")
        w1, w2 = rows[-2][3], rows[-1][3]
        print(f"speed-up of 2 workers over 1: {w1 / w2:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
