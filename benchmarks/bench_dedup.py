"""`rebusyn dedup`: what the threshold separates, how fast crops hash, how fast pairs are found.

    python benchmarks/bench_dedup.py [--words 1500] [--images 300] [--hashes 1000000] [--subsample 20000]

Three parts, each against a baseline run side by side:
  distances  rendered word crops (random trdg font, size, ink and background) and their variants: JPEG
             95 -> 60, resized 0.9x / 1.1x, cropped 1-2 px, plus the negatives (every pair of distinct
             words, the same word in two font families on the same / on different backgrounds,
             neighbouring words cut from one scene line). Prints the 64-bit and 256-bit distances and
             the share of each case the default threshold calls a duplicate.
  hashing    crops cut by `rebusyn build` from a generated ICDAR-2015-layout mirror (like bench_build):
             baseline = read every crop from the shards and cv2.imdecode it (the floor of any pixel
             hash); then `dedup` from an empty cache with --workers 1 and 2, and a cached re-run.
  pairing    `near_pairs` (multi-index hashing) on synthetic 64-bit hashes with planted near pairs,
             against brute-force all-pairs popcount on a subsample (also checked for equal results);
             brute force on the full set is extrapolated as (n / subsample)^2.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import shutil
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rebusyn.build import BuildOptions, build
from rebusyn.dedup import (
    DEFAULT_THRESHOLD,
    FINE_PER_COARSE,
    DedupOptions,
    brute_force_pairs,
    choose_bands,
    decode,
    dedup,
    hash_image,
    near_pairs,
    popcount64,
)
from rebusyn.samplegen import icdar2015
from rebusyn.samplegen._word_images import render as _render
from rebusyn.samplegen._word_images import scene_line
from rebusyn.samplegen.archive import write_sha256sums
from rebusyn.samplegen.scene import sample_font_path
from rebusyn.store.shards import ShardReader, find_shards, image_key

# ---------------------------------------------------------------------------------------------------
# Rendered word crops


def fonts() -> list[Path]:
    path = sample_font_path()
    if path is None:
        raise SystemExit("needs trdg's fonts (pip install trdg --no-deps)")
    return sorted(path.parent.glob("*.ttf"))


def family(font: Path) -> str:
    return re.split(r"[-_]", font.stem)[0].lower().replace("caviardreams", "caviar")


def words() -> list[str]:
    with gzip.open(files("rebusyn") / "data" / "corpus_en.txt.gz", "rt", encoding="utf-8") as f:
        return [w for w in f.read().split() if w.isalpha() and 3 <= len(w) <= 12][:20000]


def encode(rgb: np.ndarray, fmt: str = "JPEG", quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def rgb(data: bytes) -> np.ndarray:
    return cv2.cvtColor(decode(data), cv2.COLOR_BGR2RGB)


def variants(original: np.ndarray) -> tuple[bytes, dict[str, bytes]]:
    """The stored crop (JPEG q95) and the variants a second road would deliver."""
    stored = encode(original)
    j = rgb(stored)
    h, w = j.shape[:2]

    def resized(scale: float, img: np.ndarray = j) -> np.ndarray:
        ih, iw = img.shape[:2]
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        return cv2.resize(img, (round(iw * scale), round(ih * scale)), interpolation=interp)

    c = np.ascontiguousarray
    return stored, {
        "JPEG 95 -> 60": encode(j, quality=60),
        "resize 0.9x": encode(resized(0.9)),
        "resize 1.1x": encode(resized(1.1)),
        "crop 1 px every side": encode(c(j[1 : h - 1, 1 : w - 1])),
        "crop 1 px left+top": encode(c(j[1:, 1:])),
        "crop 2 px every side": encode(c(j[2 : h - 2, 2 : w - 2])),
        "crop 2 px left+top": encode(c(j[2:, 2:])),
        "crop 2 px right": encode(c(j[:, : w - 2])),
        "crop 2 px + 0.9x + JPEG 60": encode(resized(0.9, c(j[2 : h - 2, 2 : w - 2])), quality=60),
    }


def distances(n_words: int, threshold: int) -> None:
    rng = np.random.default_rng(0)
    font_list, vocab = fonts(), words()
    fine = FINE_PER_COARSE * threshold

    def pick_font() -> Path:
        return font_list[int(rng.integers(len(font_list)))]

    def hashes(data: bytes) -> tuple[int, np.ndarray]:
        h = hash_image(data)
        assert h is not None
        return h.phash, np.frombuffer(h.phash256, np.uint64)

    def dist(x: tuple[int, np.ndarray], y: tuple[int, np.ndarray]) -> tuple[int, int]:
        d64 = int(popcount64(np.uint64(x[0]) ^ np.uint64(y[0])))
        return d64, int(popcount64(x[1] ^ y[1]).sum())

    positives: dict[str, list[tuple[int, int, int]]] = {}
    originals = []
    for _ in range(n_words):
        img = render(rng, vocab[int(rng.integers(len(vocab)))], pick_font(), int(rng.integers(18, 48)))
        stored, variant = variants(img)
        base = hashes(stored)
        originals.append(base)
        if len(originals) <= 600:  # variants of the first 600 crops
            for name, data in variant.items():
                positives.setdefault(name, []).append((*dist(base, hashes(data)), img.shape[0]))
    negatives: dict[str, np.ndarray] = {}
    h64 = np.array([o[0] for o in originals], np.uint64)
    h256 = np.stack([o[1] for o in originals])
    iu, ju = np.triu_indices(len(originals), 1)
    negatives["distinct words (all pairs)"] = np.stack(
        [popcount64(h64[iu] ^ h64[ju]), popcount64(h256[iu] ^ h256[ju]).sum(-1)], 1
    )
    same_bg, diff_bg = [], []
    for i in range(400):
        text = vocab[int(rng.integers(len(vocab)))]
        while True:
            f1, f2 = pick_font(), pick_font()
            if family(f1) != family(f2):
                break
        size = int(rng.integers(20, 44))
        a = render(np.random.default_rng(10_000 + i), text, f1, size)
        b = render(np.random.default_rng(10_000 + i), text, f2, size)  # same background and ink
        same_bg.append(dist(hashes(encode(a)), hashes(encode(b))))
        a, b = render(rng, text, f1, size), render(rng, text, f2, size)
        diff_bg.append(dist(hashes(encode(a)), hashes(encode(b))))
    negatives["same word, other family, same background"] = np.array(same_bg)
    negatives["same word, other family, other background"] = np.array(diff_bg)
    scene = []
    for _ in range(200):
        crops = scene_line(
            rng,
            [vocab[int(k)] for k in rng.integers(len(vocab), size=4)],
            pick_font(),
            int(rng.integers(20, 40)),
        )
        hs = [hashes(encode(c)) for c in crops]
        scene += [dist(hs[a], hs[b]) for a in range(4) for b in range(a + 1, 4)]
    negatives["neighbouring words of one scene line"] = np.array(scene)

    print(f"\n== distances: {n_words} rendered words, threshold {threshold}/64 and {fine}/256")
    print(
        f"{'positive (must match)':30s} {'n':>5s} {'d64 mean':>8s} {'p99':>5s} {'max':>4s} "
        f"{'max h>=32':>9s} {'d64<=t':>7s} {'found':>7s} {'found h>=32':>11s}"
    )
    for name, rows in positives.items():
        a = np.array(rows)
        big = a[:, 2] >= 32
        ok = (a[:, 0] <= threshold) & (a[:, 1] <= fine)
        print(
            f"{name:30s} {len(a):5d} {a[:, 0].mean():8.2f} {np.percentile(a[:, 0], 99):5.1f} "
            f"{a[:, 0].max():4d} {a[big, 0].max():9d} {(a[:, 0] <= threshold).mean():7.1%} {ok.mean():7.1%} "
            f"{ok[big].mean():11.1%}"
        )
    every = np.concatenate([np.array(r) for r in positives.values()])
    coarse = every[:, 0] <= threshold
    print(
        f"all positives: {coarse.mean():.2%} within {threshold}/64; of those, "
        f"{(every[coarse, 1] <= fine).mean():.2%} within {fine}/256; "
        f"crops >= 32 px high: {(every[:, 2] >= 32).mean():.0%} of the set"
    )
    print(
        f"{'negative (must not match)':42s} {'pairs':>9s} {'d64 min':>7s} {'p0.1':>5s} {'mean':>5s} "
        f"{'d64<=t':>9s} {'matched':>9s}"
    )
    for name, a in negatives.items():
        coarse = a[:, 0] <= threshold
        both = coarse & (a[:, 1] <= fine)
        print(
            f"{name:42s} {len(a):9,d} {a[:, 0].min():7d} {np.percentile(a[:, 0], 0.1):5.1f} "
            f"{a[:, 0].mean():5.1f} {coarse.mean():9.2e} {both.mean():9.2e}"
        )


# ---------------------------------------------------------------------------------------------------
# Hashing throughput


def hashing(images: int, work: Path) -> None:
    mirror, root = work / "mirror", work / "root"
    icdar2015.write(mirror, images=images, size=(1280, 720))
    write_sha256sums(mirror)
    build(BuildOptions(root=root, sources=("icdar2015",), mirror=str(mirror), progress=False))
    shards = find_shards(root / "train")
    start = time.perf_counter()
    crops = 0
    for path in shards:
        reader = ShardReader(path)
        with reader.env.begin(buffers=True) as txn:
            for idx in range(1, len(reader) + 1):
                cv2.imdecode(np.frombuffer(txn.get(image_key(idx)), np.uint8), cv2.IMREAD_COLOR)
                crops += 1
        reader.close()
    base = time.perf_counter() - start
    print(f"\n== hashing: {crops} crops cut by `rebusyn build` from {images} scenes of 1280x720")
    print(f"{'run':40s} {'seconds':>8s} {'crops/s':>8s} {'per core':>9s} {'time/decode':>12s}")
    print(
        f"{'baseline: read + cv2.imdecode':40s} {base:8.2f} {crops / base:8.0f} {crops / base:9.0f} "
        f"{1.0:11.2f}x"
    )
    for workers in (1, 2):
        shutil.rmtree(root / "dedup", ignore_errors=True)
        start = time.perf_counter()
        s = dedup(DedupOptions(root=root, workers=workers, progress=False))
        took = time.perf_counter() - start
        assert s.hashed == crops - s.same_bytes_reused, (s.hashed, crops)
        print(
            f"{f'dedup, empty cache, --workers {workers}':40s} {took:8.2f} {crops / took:8.0f} "
            f"{crops / took / workers:9.0f} {took / base:11.2f}x   (hash phase {s.hash_s:.2f} s)"
        )
    start = time.perf_counter()
    s = dedup(DedupOptions(root=root, progress=False))
    took = time.perf_counter() - start
    print(f"{'dedup, cached re-run':40s} {took:8.2f} {crops / took:8.0f} {'-':>9s} {took / base:11.2f}x")


# ---------------------------------------------------------------------------------------------------
# Pairing


def planted_hashes(n: int, planted: int, threshold: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**64, size=n - planted, dtype=np.uint64)
    src = h[rng.integers(0, len(h), planted)]
    flips = np.zeros(planted, np.uint64)
    for k, bits in enumerate(rng.integers(0, threshold + 3, planted)):
        for b in rng.choice(64, int(bits), replace=False):
            flips[k] |= np.uint64(1) << np.uint64(int(b))
    out = np.concatenate([h, src ^ flips])
    return out[rng.permutation(len(out))]


def pairing(n: int, subsample: int, threshold: int) -> None:
    h = planted_hashes(n, n // 100, threshold)
    sub = h[:subsample]
    start = time.perf_counter()
    bf = brute_force_pairs(sub, threshold)
    bf_s = time.perf_counter() - start
    start = time.perf_counter()
    mih = near_pairs(sub, threshold)
    mih_sub_s = time.perf_counter() - start
    assert all(np.array_equal(x, y) for x, y in zip(mih, bf)), "multi-index hashing differs from brute force"
    start = time.perf_counter()
    i, _, _ = near_pairs(h, threshold)
    mih_s = time.perf_counter() - start
    extrapolated = bf_s * (n / subsample) ** 2
    print(
        f"\n== pairing: threshold {threshold}, {choose_bands(n, threshold)} bands for {n:,} hashes "
        f"({n // 100:,} planted near copies)"
    )
    print(f"{'run':52s} {'pairs':>9s} {'seconds':>9s} {'vs brute force':>15s}")
    print(f"{f'brute force, {subsample:,} hashes':52s} {len(bf[0]):9,d} {bf_s:9.2f} {1.0:14.2f}x")
    print(
        f"{f'multi-index hashing, {subsample:,} hashes (same pairs)':52s} {len(mih[0]):9,d} {mih_sub_s:9.2f} "
        f"{bf_s / mih_sub_s:14.1f}x"
    )
    print(f"{f'brute force, {n:,} hashes (extrapolated)':52s} {'-':>9s} {extrapolated:9.0f} {1.0:14.2f}x")
    print(
        f"{f'multi-index hashing, {n:,} hashes':52s} {len(i):9,d} {mih_s:9.2f} {extrapolated / mih_s:14.0f}x"
    )


def render(rng: np.random.Generator, text: str, font: Path, size: int) -> np.ndarray:
    # the measurements in docs/dedup.md were taken with 2 px minimum padding
    return _render(rng, text, font, size, min_pad=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=1500, help="rendered words for the distance study")
    parser.add_argument("--images", type=int, default=300, help="scene images for the hashing run")
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--subsample", type=int, default=20_000)
    parser.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: distances,hashing,pairing")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    work = Path(tempfile.mkdtemp(prefix="rebusyn-bench-dedup-"))
    try:
        if "distances" not in skip:
            distances(args.words, args.threshold)
        if "hashing" not in skip:
            hashing(args.images, work)
        if "pairing" not in skip:
            pairing(args.hashes, args.subsample, args.threshold)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
