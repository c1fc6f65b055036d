"""Find duplicate word crops across sources (and between training data and the test benchmarks).

The same pictures reach REBU-Syn by several roads (ArT holds Total-Text and CTW1500 images, Union14M-L
repackages R sources, benchmark training splits sit beside their test sets), and training on test images
inflates results. `dedup` hashes every crop once, finds pairs, reports them, and with
`policy="drop-from-train"` writes `<root>/dedup/drop.parquet`: the training samples `mix` should skip.
Shards are never rewritten.

Method (docs/dedup.md has the measurements behind every constant):

- exact duplicates: same decoded pixels. `pixel_hash` is 64 bits of SHA-1 over the decoded 8-bit BGR
  pixels and their shape, so PNG re-encodes and byte copies match while a JPEG re-encode does not. The index's
  sha1 of the encoded bytes is the cheaper first pass: a byte-identical file is never decoded twice.
- near duplicates: a two-level DCT hash of the crop after *moment normalisation*: the grayscale crop is
  re-framed on its gradient-energy centroid +- 2 standard deviations (so 1-2 px of padding more or less
  barely moves it), resampled to 128x32 and DCT-transformed. `phash` (64 bits: rows 0-3 x columns 1-16,
  above-median) drives the search; `phash256` (rows 0-7 x columns 1-32) verifies. A pair is near when
  Hamming(phash) <= threshold and Hamming(phash256) <= FINE_PER_COARSE * threshold.
- the search is multi-index hashing: the 64 bits are split into k bands; a pair within `threshold` agrees
  within radius r_j on at least one band when sum(r_j + 1) = threshold + 1 (pigeonhole), so probing each
  band's table with radius r_j finds every pair without ever comparing all pairs. k comes from a cost model
  (n items, uniform bands); with r_j = 0 this is plain "t < k bands, one band matches exactly".
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from rebusyn import __version__
from rebusyn.executors import DEFAULT_RETRIES, EXECUTORS, UnitFailure, make_executor
from rebusyn.sample import SYNTH_GROUP, TEST_GROUP
from rebusyn.store.index import fingerprint
from rebusyn.store.shards import ShardReader, image_key

log = logging.getLogger(__name__)

POLICIES = ("report", "drop-from-train")
# Hamming radius on the 64-bit phash. Measured on 600 rendered words per case (docs/dedup.md): JPEG 95->60,
# +-10 % resizes and 1-2 px crops are within 8 for >= 99.5 % of crops >= 32 px high (95-100 % of smaller
# ones); 8.9e-7 of distinct-word pairs are within 8, and none of those pass the 256-bit check.
DEFAULT_THRESHOLD = 8
MAX_THRESHOLD = 16
# The 256-bit verification radius per unit of the 64-bit one: positives move ~6x more bits on the long
# hash; 7x keeps 99.6 % of the positives the short hash accepts and removes the distinct-word tail.
FINE_PER_COARSE = 7
HASH_VERSION = 1
CANON_W, CANON_H = 128, 32
MOMENT_K = 2.0
# A crop whose canonical image has less contrast than this (grey levels, std) is "flat" (blank, fog,
# a solid sign): its DCT bits are noise, so it takes part in exact matching only.
FLAT_STD = 3.0
# Training-side priority for "which copy stays" (lower = kept first): R are the original real datasets,
# E and B next, U (Union14M-L) repackages R sources, S is synthetic. Test (T) always ranks first.
GROUP_PRIORITY = {TEST_GROUP: 0, "R": 1, "E": 2, "B": 3, "U": 4, SYNTH_GROUP: 5}
# A set of crops with one identical hash larger than this (e.g. thousands of copies of one logo) is
# reported as a star around its best-ranked member instead of every pair (n^2/2 would swamp the report).
MAX_CLIQUE = 200
MAX_CROSS = 40_000
MAX_JSON_PAIRS = 10_000
TASK_CROPS = 20_000  # crops per hashing task: shards are split so a process pool stays balanced

HASHES_FILE = "hashes.parquet"
PAIRS_FILE = "pairs.parquet"
DROP_FILE = "drop.parquet"
REPORT_NAME = "dedup.json"
_META_KEY = b"rebusyn.dedup"

# Stride permutation of the 64 coefficient bits: contiguous MIH bands then mix DCT rows and columns, which
# evens out band-value frequencies (on 4,000 crops a row-0 band collided 15x more than uniform, mixed 2-7x).
_BIT_ORDER = (np.arange(64) * 23) % 64

HASH_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("idx", pa.int32()),
        ("source", pa.string()),
        ("group", pa.string()),
        ("sha1", pa.string()),
        ("pixel_hash", pa.uint64()),
        ("phash", pa.uint64()),
        ("phash256", pa.binary(32)),
        ("flat", pa.bool_()),
        ("ok", pa.bool_()),
    ]
)

_SIDE_COLUMNS = ("shard", "idx", "source", "group", "key", "label")
PAIRS_SCHEMA = pa.schema(
    [
        (f"{side}_{name}", pa.int32() if name == "idx" else pa.string())
        for side in "ab"
        for name in _SIDE_COLUMNS
    ]
    + [
        ("kind", pa.string()),  # exact | near
        ("relation", pa.string()),  # train-test | train-train | test-test
        ("distance", pa.int32()),  # Hamming distance of the 64-bit phash
        ("distance256", pa.int32()),
        ("same_bytes", pa.bool_()),
    ]
)

DROP_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("idx", pa.int32()),
        ("source", pa.string()),
        ("group", pa.string()),
        ("key", pa.string()),
        ("reason", pa.string()),  # test-leak | train-duplicate
        ("kept_shard", pa.string()),
        ("kept_idx", pa.int32()),
        ("kept_source", pa.string()),
        ("kept_key", pa.string()),
        ("distance", pa.int32()),
    ]
)


# ---------------------------------------------------------------------------------------------------
# Options and summary


@dataclass(frozen=True)
class DedupOptions:
    """What `rebusyn dedup` takes.

    `sources`: empty = every source under `<root>/index` except synthetic ones (group S: rendered here,
    they cannot hold benchmark pictures). Named sources are compared together with every test benchmark
    (group T), so leakage is always checked; name a synthetic source to include it.
    """

    root: Path
    policy: str = "report"
    threshold: int = DEFAULT_THRESHOLD
    sources: tuple[str, ...] = ()
    workers: int = 1
    sheet: Path | None = None
    progress: bool = True
    executor: str = "local"  # where the hashing runs: local (`workers` processes) | ray (a Ray cluster)
    ray_address: str | None = None  # with executor ray: auto, ray://host:10001; None starts Ray here
    retries: int = DEFAULT_RETRIES  # attempts per hashing task beyond the first

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "sources", tuple(self.sources))
        if self.sheet is not None:
            object.__setattr__(self, "sheet", Path(self.sheet))
        if self.policy not in POLICIES:
            raise ValueError(f"unknown policy {self.policy!r}; choose one of {', '.join(POLICIES)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise ValueError(f"threshold must be an integer, got {self.threshold!r}")
        if not 0 <= self.threshold <= MAX_THRESHOLD:
            raise ValueError(f"threshold must be in 0..{MAX_THRESHOLD} (bits of 64), got {self.threshold}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}; choose one of {', '.join(EXECUTORS)}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")


@dataclass
class DedupSummary:
    root: Path
    policy: str
    threshold: int
    fine_threshold: int
    sources: list[str]
    crops: int  # crops compared
    hashed: int  # crops decoded and hashed in this run
    cached: int  # hashes reused from <root>/dedup/hashes.parquet
    same_bytes_reused: int  # hashes copied from a byte-identical crop (sha1 first pass)
    undecodable: int
    flat: int
    exact_pairs: int
    near_pairs: int
    relations: dict[str, int]  # train-test / train-train / test-test pair counts
    per_source: dict[str, dict[str, Any]]  # group, crops, train_vs_test, train_vs_train (crops involved)
    source_pairs: dict[str, dict[str, int]]  # "a ~ b" -> {"exact": n, "near": n}
    leakage: dict[str, dict[str, Any]]  # test source -> test crops hit, train crops, by train source
    report_path: Path
    pairs_path: Path
    hashes_path: Path
    sheet_path: Path | None = None
    drop_path: Path | None = None
    dropped: int | None = None  # training crops listed in drop.parquet (policy drop-from-train)
    large_groups: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    hash_s: float = 0.0
    pair_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def crops_per_s(self) -> float | None:
        """Hashing throughput of this run (None when everything came from the cache)."""
        return self.hashed / self.hash_s if self.hashed and self.hash_s > 0 else None


def format_summary(s: DedupSummary) -> str:
    """The CLI's report: what was compared, the pairs found, leakage per benchmark, where it went."""
    rate = f", {s.crops_per_s:,.0f} crops/s" if s.crops_per_s else ""
    lines = [
        f"dedup: {s.crops:,} crops from {len(s.sources)} source(s); hashed {s.hashed:,}{rate}, "
        f"{s.cached:,} from cache, {s.same_bytes_reused:,} byte-identical reused"
        + (f", {s.undecodable:,} undecodable" if s.undecodable else ""),
        f"pairs: {s.exact_pairs:,} exact + {s.near_pairs:,} near (threshold {s.threshold}/64, "
        f"verify {s.fine_threshold}/256) = " + ", ".join(f"{v:,} {k}" for k, v in s.relations.items()),
    ]
    if s.leakage:
        lines.append("train-vs-test leakage (test crops with a training duplicate / training crops):")
        for test, c in s.leakage.items():
            by = ", ".join(f"{src} {n:,}" for src, n in c["train_by_source"].items())
            lines.append(f"  {test:<24} {c['test_crops']:>8,} / {c['train_crops']:>8,}  ({by})")
    else:
        lines.append("train-vs-test leakage: none found")
    involved = {k: v for k, v in s.per_source.items() if v["train_vs_test"] or v["train_vs_train"]}
    if involved:
        lines.append("crops with a duplicate, per source (vs test / vs other training crops):")
        for name, c in involved.items():
            lines.append(
                f"  {name:<24} group {c['group']}  {c['train_vs_test']:>8,} / {c['train_vs_train']:>8,}"
                f"  of {c['crops']:,}"
            )
    if s.dropped is not None:
        lines.append(f"drop-from-train: {s.dropped:,} training crops listed in {s.drop_path}")
    lines += [f"  note: {n}" for n in s.notes]
    written = [str(s.report_path), s.pairs_path.name] + ([str(s.sheet_path)] if s.sheet_path else [])
    lines.append(f"wrote {', '.join(written)} in {s.elapsed_s:.2f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Hashing one crop


@dataclass(frozen=True)
class CropHash:
    pixel_hash: int
    phash: int
    phash256: bytes
    flat: bool


def decode(data: bytes | memoryview) -> np.ndarray | None:
    """Encoded bytes -> 8-bit BGR pixels (cv2; PIL for formats this cv2 build lacks); None if unreadable."""
    buf = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None and buf.size:
        try:
            from PIL import Image

            with Image.open(io.BytesIO(bytes(data))) as pil:
                img = cv2.cvtColor(np.asarray(pil.convert("RGB")), cv2.COLOR_RGB2BGR)
        except Exception:  # noqa: BLE001 - any decoder failure means "not an image"
            return None
    return img


def pixel_hash(bgr: np.ndarray) -> int:
    """First 8 bytes of SHA-1 over shape + decoded pixels (SHA-1: hardware-accelerated on most CPUs)."""
    h = hashlib.sha1(np.asarray(bgr.shape, np.int64).tobytes())
    h.update(np.ascontiguousarray(bgr).data)
    return int.from_bytes(h.digest()[:8], "little")


def canonical(gray: np.ndarray) -> np.ndarray:
    """The crop re-framed on its gradient-energy centroid +- MOMENT_K std and resampled to 128x32 (float32).

    Why: a plain resize moves every DCT coefficient when an annotation box is 1-2 px larger or smaller;
    moments of the text's edges hardly move, so the frame follows the text, not the box."""
    f = gray.astype(np.float32)
    h, w = f.shape
    cx, cy, sx, sy = w / 2, h / 2, w / math.sqrt(12), h / math.sqrt(12)
    if h >= 3 and w >= 3:
        gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
        e = cv2.magnitude(gx, gy)
        # the outermost rows/columns see the reflected border: a crop edge is not an image edge
        e[0, :] = e[-1, :] = 0
        e[:, 0] = e[:, -1] = 0
        m = cv2.moments(e)
        if m["m00"] > 1e-3:
            # cv2 puts pixel centres at integers; here they sit at +0.5 (pixel i covers [i, i + 1))
            cx, cy = m["m10"] / m["m00"] + 0.5, m["m01"] / m["m00"] + 0.5
            sx, sy = math.sqrt(max(m["mu20"] / m["m00"], 0.0)), math.sqrt(max(m["mu02"] / m["m00"], 0.0))
    ww, wh = max(2 * MOMENT_K * sx, 2.0), max(2 * MOMENT_K * sy, 2.0)
    x0, y0 = cx - ww / 2, cy - wh / 2
    step_x, step_y = ww / CANON_W, wh / CANON_H  # source pixels per canonical pixel
    # shrink with INTER_AREA first so the linear warp below never skips source pixels (no aliasing)
    fx, fy = min(1.0, 1 / step_x), min(1.0, 1 / step_y)
    if fx < 1 or fy < 1:
        f = cv2.resize(f, (max(1, round(w * fx)), max(1, round(h * fy))), interpolation=cv2.INTER_AREA)
        fx, fy = f.shape[1] / w, f.shape[0] / h
    matrix = np.array(
        [
            [step_x * fx, 0, x0 * fx + 0.5 * step_x * fx - 0.5],
            [0, step_y * fy, y0 * fy + 0.5 * step_y * fy - 0.5],
        ],
        np.float32,
    )
    return cv2.warpAffine(
        f,
        matrix,
        (CANON_W, CANON_H),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _dct_basis(n: int, k: int) -> np.ndarray:
    """The first k rows of the orthonormal n-point DCT-II matrix (what cv2.dct applies per axis)."""
    rows = np.arange(k)[:, None]
    basis = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * rows / (2 * n)) * np.sqrt(2 / n)
    basis[0] /= np.sqrt(2)
    return basis.astype(np.float32)


# Only the low-frequency corner is used: two small matrix products instead of a full 128x32 DCT.
_DCT_ROWS = _dct_basis(CANON_H, 8)
_DCT_COLS = _dct_basis(CANON_W, 33).T.copy()


def _top_half(values: np.ndarray) -> np.ndarray:
    """Bits set for the larger half of `values` (above the median; ties broken by position)."""
    bits = np.zeros(len(values), bool)
    bits[np.argsort(values, kind="stable")[len(values) // 2 :]] = True
    return bits


def perceptual_hashes(gray: np.ndarray) -> tuple[int, bytes, bool]:
    """(phash as an unsigned 64-bit int, phash256 as 32 bytes, flat) of a grayscale crop."""
    canon = canonical(gray)
    flat = float(cv2.meanStdDev(canon)[1][0, 0]) < FLAT_STD
    d = _DCT_ROWS @ canon @ _DCT_COLS  # rows 0-7 x columns 0-32 of the 2-D DCT
    coarse_bits = np.packbits(_top_half(d[:4, 1:17].ravel()[_BIT_ORDER]), bitorder="little")
    fine_bits = np.packbits(_top_half(d[:, 1:33].ravel()), bitorder="little")
    return int(coarse_bits.view("<u8")[0]), fine_bits.tobytes(), flat


def hash_image(data: bytes | memoryview) -> CropHash | None:
    """All hashes of one encoded crop; None when it cannot be decoded."""
    bgr = decode(data)
    if bgr is None or bgr.size == 0:
        return None
    phash, phash256, flat = perceptual_hashes(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    return CropHash(pixel_hash(bgr), phash, phash256, flat)


def _hash_task(task: tuple[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Hash the crops `idxs` of one shard, read in key order in one transaction (sequential pages)."""
    path, idxs = task
    n = len(idxs)
    pix = np.zeros(n, np.uint64)
    ph = np.zeros(n, np.uint64)
    ph256 = np.zeros((n, 32), np.uint8)
    flat = np.zeros(n, bool)
    ok = np.zeros(n, bool)
    reader = ShardReader(path)
    try:
        with reader.env.begin(buffers=True) as txn:
            for k, idx in enumerate(idxs.tolist()):
                data = txn.get(image_key(idx))
                result = hash_image(data) if data is not None else None
                if result is None:
                    continue
                pix[k], ph[k], flat[k], ok[k] = result.pixel_hash, result.phash, result.flat, True
                ph256[k] = np.frombuffer(result.phash256, np.uint8)
    finally:
        reader.close()
    return pix, ph, ph256, flat, ok


# ---------------------------------------------------------------------------------------------------
# Hamming distances and multi-index hashing

_POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2 has a native popcount; older numpy uses a byte table)."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int32)
    bytes_ = np.ascontiguousarray(x).reshape(-1).view(np.uint8)
    return _POP8[bytes_].reshape(*x.shape, 8).sum(-1, dtype=np.int32)


def hamming(a: int | np.ndarray, b: int | np.ndarray) -> np.ndarray:
    return popcount64(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64)))


def hamming256(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance of (n, 4) uint64 arrays (or 32-byte values)."""
    a = np.asarray(a).view(np.uint64).reshape(-1, 4)
    b = np.asarray(b).view(np.uint64).reshape(-1, 4)
    return popcount64(a ^ b).sum(-1, dtype=np.int32)


def band_layout(threshold: int, bands: int) -> list[tuple[int, int, int]]:
    """(first bit, width, radius) of each band. Radii satisfy sum(r + 1) = threshold + 1, so a pair within
    `threshold` bits is within r on some band (pigeonhole); radius -1 means the band is never probed."""
    if not 1 <= bands <= 64:
        raise ValueError(f"bands must be in 1..64, got {bands}")
    widths = [64 // bands + (1 if b < 64 % bands else 0) for b in range(bands)]
    q, extra = divmod(threshold + 1, bands)
    radii = [q if b < extra else q - 1 for b in range(bands)]
    layout, lo = [], 0
    for width, radius in zip(widths, radii):
        layout.append((lo, width, min(radius, width)))
        lo += width
    return layout


def _volume(width: int, radius: int) -> int:
    return sum(comb(width, i) for i in range(radius + 1)) if radius >= 0 else 0


def choose_bands(n: int, threshold: int) -> int:
    """The band count with the lowest modelled cost: probes (n x masks) + candidate pairs (uniform band
    values) + table sizes. Band widths above 24 bits use sorted search instead of a table."""
    best, best_cost = 1, math.inf
    for k in range(1, min(threshold + 1, 16) + 1):
        cost = 0.0
        for _, width, radius in band_layout(threshold, k):
            if radius < 0:
                continue
            vol = _volume(width, radius)
            cost += n * vol * (1.0 if width <= 24 else 4.0)  # sorted search ~4x a table lookup
            cost += 3.0 * n * n / 2 * vol / 2.0**width
            cost += 0.5 * 2.0**width if width <= 24 else n * math.log2(max(n, 2))
        if cost < best_cost:
            best, best_cost = k, cost
    return best


def _expand(
    src: np.ndarray, lo: np.ndarray, cnt: np.ndarray, order: np.ndarray, budget: int = 1 << 22
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs (src[p], order[lo[p] + o]) for o < cnt[p], in blocks of about `budget` pairs."""
    hit = np.flatnonzero(cnt)
    if not len(hit):
        return
    src, lo, cnt = src[hit], lo[hit], cnt[hit]
    if len(hit) <= budget and int(cnt.max()) == 1:  # the common case with sparse buckets: no expansion
        yield src, order[lo]
        return
    ends = np.cumsum(cnt)
    start = 0
    while start < len(cnt):
        base = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, base + budget, side="right")), start + 1)
        c = cnt[start:stop]
        total = int(c.sum())
        offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
        yield np.repeat(src[start:stop], c), order[np.repeat(lo[start:stop], c) + offsets]
        start = stop


def near_pairs(
    hashes: np.ndarray, threshold: int, *, bands: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (i, j, d) with i < j and Hamming(hashes[i], hashes[j]) = d <= threshold, sorted by (i, j).

    Multi-index hashing: never all pairs. Each band's values are sorted once; a band of <= 24 bits gets a
    bucket table (start, count per value), wider bands use binary search. A candidate found on band b is
    kept only if no earlier band would have found it too, so every pair comes out exactly once."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64).ravel()
    n = len(h)
    if threshold < 0:
        raise ValueError("threshold must be >= 0")
    empty = np.zeros(0, np.int64)
    if n < 2:
        return empty, empty.copy(), np.zeros(0, np.int32)
    layout = band_layout(threshold, bands or choose_bands(n, threshold))
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_d: list[np.ndarray] = []
    positions = np.arange(n, dtype=np.int64)

    def verify(blocks: Iterator[tuple[np.ndarray, np.ndarray]], earlier: list[tuple[int, int, int]]) -> None:
        for a, c in blocks:
            i, j = np.minimum(a, c), np.maximum(a, c)
            x = h[i] ^ h[j]
            d = popcount64(x)
            keep = d <= threshold
            for lo2, w2, r2 in earlier:  # found on an earlier band already: skip
                keep &= popcount64((x >> np.uint64(lo2)) & np.uint64((1 << w2) - 1)) > r2
            if keep.any():
                found_i.append(i[keep])
                found_j.append(j[keep])
                found_d.append(d[keep])

    for b, (lo_bit, width, radius) in enumerate(layout):
        if radius < 0:
            continue
        v = (h >> np.uint64(lo_bit)) & np.uint64((1 << width) - 1)
        order = np.argsort(v, kind="stable").astype(np.int64)
        sv = v[order]
        earlier = [(lo2, w2, r2) for lo2, w2, r2 in layout[:b] if r2 >= 0]
        # radius 0: runs of equal band values in sorted order; each position pairs with the later ones
        run_start = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]])
        run_len = np.diff(np.r_[run_start, n])
        later = np.repeat(run_start + run_len, run_len) - positions - 1
        verify(_expand(order, positions + 1, later, order), earlier)
        if radius == 0:
            continue
        if width <= 24:
            counts = np.bincount(sv.astype(np.intp), minlength=1 << width)
            starts = np.cumsum(counts) - counts
            if n < 2**31:  # half the memory traffic for the table lookups
                counts, starts = counts.astype(np.int32), starts.astype(np.int32)
        for top in range(width):
            # A pair whose band values differ by `mask` is probed only from the end whose value has the
            # mask's top bit clear: each pair is met once, and half the items are probed per mask. Probing
            # in sorted order keeps the table lookups close together (sv ^ mask is piecewise monotone).
            clear = np.flatnonzero(((sv >> np.uint64(top)) & np.uint64(1)) == 0)
            sv_clear, src = sv[clear], order[clear]
            for r in range(radius):
                for low_bits in itertools.combinations(range(top), r):
                    mask = np.uint64((1 << top) | sum(1 << k for k in low_bits))
                    q = sv_clear ^ mask
                    if width <= 24:
                        lo, cnt = starts[q], counts[q]
                    else:
                        lo = np.searchsorted(sv, q, side="left")
                        cnt = np.searchsorted(sv, q, side="right") - lo
                    verify(_expand(src, lo, cnt, order), earlier)
    if not found_i:
        return empty, empty.copy(), np.zeros(0, np.int32)
    i, j, d = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def brute_force_pairs(
    hashes: np.ndarray, threshold: int, *, block: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The all-pairs reference for `near_pairs` (tests, benchmark): O(n^2) popcounts, block by block."""
    h = np.ascontiguousarray(hashes, dtype=np.uint64).ravel()
    out_i, out_j, out_d = [], [], []
    for start in range(0, len(h), block):
        rows = h[start : start + block]
        d = popcount64(rows[:, None] ^ h[None, :])
        i, j = np.nonzero(d <= threshold)
        i = i + start
        keep = j > i
        out_i.append(i[keep].astype(np.int64))
        out_j.append(j[keep].astype(np.int64))
        out_d.append(d[i[keep] - start, j[keep]].astype(np.int32))
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
    i, j, d = np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


# ---------------------------------------------------------------------------------------------------
# Reading the indexes and the hash cache

_INDEX_COLUMNS = ["shard", "idx", "label", "source", "group", "key", "sha1"]


def _index_files(root: Path) -> dict[str, Path]:
    index_dir = root / "index"
    paths = sorted(index_dir.glob("*.parquet")) if index_dir.is_dir() else []
    return {p.stem: p for p in paths}


def _select_sources(root: Path, wanted: Sequence[str]) -> tuple[dict[str, pa.Table], dict[str, str]]:
    files = _index_files(root)
    if not files:
        raise FileNotFoundError(
            f"no Parquet indexes under {root / 'index'}: build sources (`rebusyn build`) into this root first"
        )
    unknown = sorted(set(wanted) - set(files))
    if unknown:
        raise ValueError(f"no index for source(s) {', '.join(unknown)} under {root / 'index'}")
    tables: dict[str, pa.Table] = {}
    prints: dict[str, str] = {}
    for name, path in files.items():
        try:
            # the group column decides; the other columns are read only for selected sources
            groups = set(pc.unique(pq.read_table(path, columns=["group"]).column("group")).to_pylist())
            is_test, synthetic = TEST_GROUP in groups, groups == {SYNTH_GROUP}
            if (wanted and (name in wanted or is_test)) or (not wanted and not synthetic):
                tables[name] = pq.read_table(path, columns=_INDEX_COLUMNS)
                prints[name] = fingerprint(path)
        except (pa.ArrowInvalid, KeyError) as err:
            need = ", ".join(_INDEX_COLUMNS)
            raise ValueError(f"{path}: not a rebusyn index (need columns {need})") from err
    return tables, prints


def _read_cache(path: Path) -> tuple[pa.Table | None, dict[str, str]]:
    if not path.is_file():
        return None, {}
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    except (pa.ArrowInvalid, OSError, ValueError) as err:
        log.warning("ignoring unreadable hash cache %s: %s", path, err)
        return None, {}
    if meta.get("version") != HASH_VERSION or table.schema.remove_metadata() != HASH_SCHEMA:
        return None, {}
    return table, dict(meta.get("sources", {}))


def _write_parquet(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class _Hashes:
    pixel: np.ndarray  # uint64
    phash: np.ndarray  # uint64
    phash256: np.ndarray  # (n, 32) uint8
    flat: np.ndarray
    ok: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Hashes:
        return cls(
            np.zeros(n, np.uint64),
            np.zeros(n, np.uint64),
            np.zeros((n, 32), np.uint8),
            np.zeros(n, bool),
            np.zeros(n, bool),
        )

    @classmethod
    def from_table(cls, t: pa.Table) -> _Hashes:
        fixed = t.column("phash256").combine_chunks()
        data = fixed.buffers()[1]
        raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
        ph256 = raw[fixed.offset * 32 : (fixed.offset + len(fixed)) * 32].reshape(-1, 32)
        return cls(
            t.column("pixel_hash").to_numpy().astype(np.uint64),
            t.column("phash").to_numpy().astype(np.uint64),
            ph256.copy(),
            t.column("flat").to_numpy(zero_copy_only=False).astype(bool),
            t.column("ok").to_numpy(zero_copy_only=False).astype(bool),
        )

    def take(self, rows: np.ndarray) -> _Hashes:
        return _Hashes(
            self.pixel[rows], self.phash[rows], self.phash256[rows], self.flat[rows], self.ok[rows]
        )

    def put(self, rows: np.ndarray, other: _Hashes) -> None:
        self.pixel[rows], self.phash[rows], self.phash256[rows] = other.pixel, other.phash, other.phash256
        self.flat[rows], self.ok[rows] = other.flat, other.ok

    def table(self, index: pa.Table) -> pa.Table:
        ph256 = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(32),
            len(self.pixel),
            [None, pa.py_buffer(np.ascontiguousarray(self.phash256).tobytes())],
        )
        return pa.Table.from_arrays(
            [
                index.column("shard"),
                index.column("idx"),
                index.column("source"),
                index.column("group"),
                index.column("sha1"),
                pa.array(self.pixel, pa.uint64()),
                pa.array(self.phash, pa.uint64()),
                ph256,
                pa.array(self.flat),
                pa.array(self.ok),
            ],
            schema=HASH_SCHEMA,
        )


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    return (
        a.num_rows == b.num_rows
        and a.column("shard").equals(b.column("shard"))
        and a.column("idx").equals(b.column("idx"))
    )


def _hash_sources(
    opts: DedupOptions, tables: dict[str, pa.Table], prints: dict[str, str]
) -> tuple[pa.Table, _Hashes, dict[str, int], float]:
    """Hashes for every row of `tables` (concatenated in source order), from the cache where the source's
    index is unchanged; updates the cache file. Returns (items, hashes, counts, seconds spent hashing)."""
    cache_path = opts.root / "dedup" / HASHES_FILE
    cache, cache_prints = _read_cache(cache_path)
    cached_rows: dict[str, pa.Table] = {}
    if cache is not None:
        for name in cache_prints:
            cached_rows[name] = cache.filter(pc.equal(cache.column("source"), name))
    names = sorted(tables)
    items = pa.concat_tables([tables[n] for n in names]).combine_chunks()
    offsets = np.cumsum([0] + [tables[n].num_rows for n in names])
    hashes = _Hashes.empty(items.num_rows)
    known = np.zeros(items.num_rows, bool)
    counts = Counter()
    for k, name in enumerate(names):
        rows = cached_rows.get(name)
        # a source whose index file changed is re-hashed whole: its (shard, idx) may now hold other crops
        if rows is not None and cache_prints.get(name) == prints[name] and _same_rows(rows, tables[name]):
            hashes.put(np.arange(offsets[k], offsets[k + 1]), _Hashes.from_table(rows))
            known[offsets[k] : offsets[k + 1]] = True
            counts["cached"] += rows.num_rows
    # sha1 first pass: a crop byte-identical to one hashed before is not decoded again. Donors are every
    # cached row (of any source, even one whose index changed: same bytes, same hashes) ...
    if cache is not None and cache.num_rows and (~known).any():
        todo = np.flatnonzero(~known)
        pos = pc.index_in(items.column("sha1").take(pa.array(todo)), value_set=cache.column("sha1"))
        hit = ~pc.is_null(pos).to_numpy(zero_copy_only=False)
        if hit.any():
            rows = todo[hit]
            donors = pc.drop_null(pos).to_numpy().astype(np.int64)
            hashes.put(rows, _Hashes.from_table(cache.take(pa.array(donors))))
            known[rows] = True
            counts["same_bytes"] += len(rows)
    # ... and, inside this run, the first row with the same sha1.
    todo = np.flatnonzero(~known)
    codes = (
        pc.dictionary_encode(items.column("sha1").take(pa.array(todo))).combine_chunks().indices.to_numpy()
    )
    order = np.lexsort((np.arange(len(todo)), codes))
    first = np.r_[True, codes[order][1:] != codes[order][:-1]] if len(order) else np.zeros(0, bool)
    donor = np.empty(len(todo), np.int64)
    donor[order] = order[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
    need = todo[donor == np.arange(len(todo))]  # the first of its bytes: must be decoded
    copies, copy_from = todo[donor != np.arange(len(todo))], todo[donor[donor != np.arange(len(todo))]]
    started = time.perf_counter()
    if len(need):
        shards = items.column("shard").to_numpy(zero_copy_only=False)[need]
        idxs = items.column("idx").to_numpy()[need]
        order = np.lexsort((idxs, shards))  # shard by shard, key order inside: sequential LMDB reads
        need, shards, idxs = need[order], shards[order], idxs[order]
        hashes_now, hash_s = _hash_rows(opts, need, shards, idxs, items.column("source"))
        hashes.put(need, hashes_now)
    else:
        hash_s = time.perf_counter() - started
    if len(copies):
        hashes.put(copies, hashes.take(copy_from))
    counts["hashed"] = len(need)
    counts["same_bytes"] += len(copies)
    # cache: this run's sources, plus cached sources not selected whose index is unchanged
    keep = [items]
    keep_hashes = [hashes]
    keep_prints = {n: prints[n] for n in names}
    files = _index_files(opts.root)
    for name, rows in cached_rows.items():
        if name in tables or name not in files or cache_prints.get(name) != fingerprint(files[name]):
            continue
        keep.append(rows.select(["shard", "idx", "source", "group", "sha1"]))
        keep_hashes.append(_Hashes.from_table(rows))
        keep_prints[name] = cache_prints[name]
    out = pa.concat_tables([h.table(t) for t, h in zip(keep, keep_hashes)])
    meta = {"version": HASH_VERSION, "sources": dict(sorted(keep_prints.items()))}
    _write_parquet(cache_path, out.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()}))
    return items, hashes, dict(counts), hash_s


class HashingFailed(RuntimeError):
    """Hashing tasks failed on every attempt; the message names their shards. Nothing was written."""


def _hash_rows(
    opts: DedupOptions, rows: np.ndarray, shards: np.ndarray, idxs: np.ndarray, sources: pa.ChunkedArray
) -> tuple[_Hashes, float]:
    """Decode and hash the crops (shards[k], idxs[k]), sorted by shard then idx, on `opts.executor`.

    Returns their hashes in that order and the seconds spent hashing (Ray's start-up excluded). A task is
    a run of up to TASK_CROPS crops of one shard; its result is put back by its position, so the hashes
    depend on neither the executor nor the task size. Local runs use LocalExecutor rather than
    ordered_map: as fast on 15,694 crops (1.85 s on 1 worker, 0.95 s on 2, both), and a killed worker
    costs a retry instead of hanging the pool."""
    executor = make_executor(
        opts.executor, workers=opts.workers, retries=opts.retries, ray_address=opts.ray_address
    )
    try:
        parallel = opts.workers if opts.executor == "local" else _cluster_cpus()
        # several tasks per worker even for one shard, so the pool stays busy to the end
        per_task = TASK_CROPS if parallel == 1 else max(256, min(TASK_CROPS, -(-len(rows) // (8 * parallel))))
        # absolute: Ray workers may run in another directory (or on another node sharing the filesystem)
        base = opts.root.absolute()
        cuts = np.flatnonzero(np.r_[True, shards[1:] != shards[:-1], True])
        tasks: list[tuple[str, np.ndarray]] = []
        spans: list[tuple[int, int]] = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            for s in range(a, b, per_task):
                e = min(s + per_task, b)
                tasks.append((str(base / shards[a]), idxs[s:e].astype(np.int64)))
                spans.append((s, e))
        out = _Hashes.empty(len(rows))
        started = time.perf_counter()
        bar = tqdm(total=len(rows), desc="dedup: hashing", unit="crop", disable=not opts.progress)
        failed: list[tuple[int, UnitFailure]] = []
        try:
            for position, result in executor.run(_hash_task, tasks):
                if isinstance(result, UnitFailure):
                    failed.append((position, result))
                    continue
                s, e = spans[position]
                out.put(np.arange(s, e), _Hashes(*result))
                bar.update(e - s)
        finally:
            bar.close()
        if failed:
            raise HashingFailed(_failure_message(failed, spans, shards, sources.take(pa.array(rows))))
        return out, time.perf_counter() - started
    finally:
        executor.close()


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _failure_message(
    failed: list[tuple[int, UnitFailure]], spans: list[tuple[int, int]], shards: np.ndarray,
    sources: pa.ChunkedArray,
) -> str:  # fmt: skip
    """One clause per failed shard: its source, path under the root, crops lost, attempts and last error."""
    by_shard: dict[str, dict[str, Any]] = {}
    for position, failure in sorted(failed, key=lambda f: f[0]):
        s, e = spans[position]
        entry = by_shard.setdefault(
            str(shards[s]), {"source": sources[s].as_py(), "crops": 0, "failure": failure}
        )
        entry["crops"] += e - s
    # a Ray error carries the remote traceback; its last line is the exception itself
    clauses = [
        f"{shard} (source {v['source']}, {v['crops']} crop(s), {v['failure'].attempts} attempt(s)): "
        f"{_last_line(v['failure'].error)}"
        for shard, v in by_shard.items()
    ]
    shown = clauses[:10] + ([f"and {len(clauses) - 10} more shard(s)"] if len(clauses) > 10 else [])
    return (
        f"dedup: hashing failed for {len(by_shard)} shard(s): {'; '.join(shown)}. No dedup output was "
        "written; rebuild the source(s), or check that every worker can read the root, and re-run."
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


# ---------------------------------------------------------------------------------------------------
# Pairing


@dataclass
class _Items:
    """The compared crops: the index rows plus integer codes the pairing and the counts work on."""

    table: pa.Table
    source: np.ndarray  # int32 code into source_names
    source_names: list[str]
    test: np.ndarray  # group T
    rank: np.ndarray  # position in the keep-first order

    @classmethod
    def of(cls, table: pa.Table) -> _Items:
        encoded = pc.dictionary_encode(table.column("source")).combine_chunks()
        group = table.column("group")
        prio = pc.fill_null(pc.index_in(group, value_set=pa.array(list(GROUP_PRIORITY))), len(GROUP_PRIORITY))
        keyed = pa.table({"prio": prio, **{c: table.column(c) for c in ("source", "key", "shard", "idx")}})
        # keep-first order: group priority (T, R, E, B, U, S), then source, key, shard, idx
        order = pc.sort_indices(keyed, sort_keys=[(c, "ascending") for c in keyed.column_names]).to_numpy()
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        return cls(
            table,
            encoded.indices.to_numpy().astype(np.int32),
            encoded.dictionary.to_pylist(),
            pc.equal(group, TEST_GROUP).to_numpy(zero_copy_only=False).astype(bool),
            rank,
        )


@dataclass
class _Pairs:
    a: np.ndarray
    b: np.ndarray
    d64: np.ndarray
    d256: np.ndarray
    large: list[tuple[int, int]] = field(default_factory=list)  # (best-ranked crop, size) of star groups


def _group_pairs(
    members: np.ndarray, rank: np.ndarray, large: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of one group of items with one identical hash; a star around the best-ranked member
    when the group is larger than MAX_CLIQUE."""
    members = members[np.argsort(rank[members], kind="stable")]
    if len(members) > MAX_CLIQUE:
        large.append((int(members[0]), len(members)))
        return np.full(len(members) - 1, members[0]), members[1:]
    i, j = np.triu_indices(len(members), 1)
    return members[i], members[j]


def _groups(keys: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
    """Rows sharing a key value, for every value held by 2+ rows."""
    if len(rows) < 2:
        return
    order = np.argsort(keys[rows], kind="stable")
    sk = keys[rows][order]
    cuts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1], True])
    big = np.flatnonzero(np.diff(cuts) > 1)
    for g in big:
        yield rows[order[cuts[g] : cuts[g + 1]]]


def _find_pairs(hashes: _Hashes, rank: np.ndarray, threshold: int) -> _Pairs:
    fine = FINE_PER_COARSE * threshold
    ph256 = hashes.phash256.view(np.uint64)  # (n, 4)
    a_parts: list[np.ndarray] = []
    b_parts: list[np.ndarray] = []
    large: list[tuple[int, int]] = []
    # exact duplicates among flat crops (they take no part in near matching)
    flat = np.flatnonzero(hashes.ok & hashes.flat)
    for g in _groups(hashes.pixel, flat):
        a, b = _group_pairs(g, rank, large)
        a_parts.append(a)
        b_parts.append(b)
    # near matching runs on distinct phash values; identical values pair inside their group (d = 0)
    live = np.flatnonzero(hashes.ok & ~hashes.flat)
    values, inverse, counts = np.unique(hashes.phash[live], return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    members_order = np.argsort(inverse, kind="stable")
    member_rows = live[members_order]
    member_start = np.cumsum(counts) - counts
    for u in np.flatnonzero(counts > 1):
        group = member_rows[member_start[u] : member_start[u] + counts[u]]
        a, b = _group_pairs(group, rank, large)
        a_parts.append(a)
        b_parts.append(b)
    ui, uj, _ = near_pairs(values, threshold)
    if len(ui):
        cu, cv = counts[ui], counts[uj]
        big = cu * cv > MAX_CROSS
        small = np.flatnonzero(~big)
        if len(small):
            per = cu[small] * cv[small]
            pair_of = np.repeat(small, per)
            offset = np.arange(int(per.sum()), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
            ia = offset // cv[pair_of]
            ib = offset % cv[pair_of]
            a_parts.append(member_rows[member_start[ui[pair_of]] + ia])
            b_parts.append(member_rows[member_start[uj[pair_of]] + ib])
        for p in np.flatnonzero(big):  # rare: a star on each side's best-ranked member
            ga = member_rows[member_start[ui[p]] : member_start[ui[p]] + cu[p]]
            gb = member_rows[member_start[uj[p]] : member_start[uj[p]] + cv[p]]
            ra, rb = ga[np.argmin(rank[ga])], gb[np.argmin(rank[gb])]
            a_parts += [np.full(len(gb), ra), ga[ga != ra]]
            b_parts += [gb, np.full(len(ga) - 1, rb)]
            large.append((int(ra), int(cu[p] + cv[p])))
    if not a_parts:
        z = np.zeros(0, np.int64)
        return _Pairs(z, z.copy(), np.zeros(0, np.int32), np.zeros(0, np.int32), large)
    a, b = np.concatenate(a_parts).astype(np.int64), np.concatenate(b_parts).astype(np.int64)
    # orient: a is the better-ranked side (the test crop in a train-test pair, the kept one otherwise)
    swap = rank[a] > rank[b]
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    d64 = hamming(hashes.phash[a], hashes.phash[b])
    d256 = hamming256(ph256[a], ph256[b])
    keep = d256 <= fine
    a, b, d64, d256 = a[keep], b[keep], d64[keep], d256[keep]
    order = np.lexsort((rank[b], rank[a]))
    return _Pairs(a[order], b[order], d64[order], d256[order], large)


# ---------------------------------------------------------------------------------------------------
# Outputs


_RELATIONS = np.array(["train-train", "train-test", "test-test"])


def _relation_codes(items: _Items, p: _Pairs) -> np.ndarray:
    """0 train-train, 1 train-test, 2 test-test."""
    return items.test[p.a].astype(np.int8) + items.test[p.b]


def _pairs_table(items: _Items, hashes: _Hashes, p: _Pairs) -> pa.Table:
    cols: list[pa.Array] = []
    for side in (p.a, p.b):
        take = pa.array(side)
        for name in _SIDE_COLUMNS:
            cols.append(items.table.column(name).take(take))
    exact = (hashes.pixel[p.a] == hashes.pixel[p.b]) & (p.d256 == 0)
    sha1 = items.table.column("sha1")
    cols += [
        pa.array(np.where(exact, "exact", "near")),
        pa.array(_RELATIONS[_relation_codes(items, p)]),
        pa.array(p.d64.astype(np.int32)),
        pa.array(p.d256.astype(np.int32)),
        pc.equal(sha1.take(pa.array(p.a)), sha1.take(pa.array(p.b))),
    ]
    return pa.Table.from_arrays(cols, schema=PAIRS_SCHEMA)


def _drop_table(items: _Items, p: _Pairs) -> pa.Table:
    """Training crops to exclude. Train-vs-test: the training side, always. Train-vs-train: greedy in
    keep-first order (group R, E, B, U, S; then source, key): a crop is dropped when it pairs with a
    better-ranked crop that is itself kept, so of two copies exactly one stays and chains do not cascade."""
    rel = _relation_codes(items, p)
    rank = items.rank
    n = len(rank)
    reason = np.zeros(n, np.int8)  # 0 kept, 1 test-leak, 2 train-duplicate
    partner = np.full(n, -1, np.int64)
    dist = np.zeros(n, np.int32)
    leak = np.flatnonzero(rel == 1)
    if len(leak):
        # one row per training crop, recording its best-ranked test duplicate (pairs are in rank order)
        leak = leak[np.lexsort((rank[p.a[leak]], rank[p.b[leak]]))]
        _, first = np.unique(p.b[leak], return_index=True)
        e = leak[first]
        reason[p.b[e]], partner[p.b[e]], dist[p.b[e]] = 1, p.a[e], p.d64[e]
    tt = np.flatnonzero(rel == 0)
    # edges in order of the worse-ranked end: its better neighbours are all decided when it is reached
    a, b, d = (x[tt[np.lexsort((rank[p.a[tt]], rank[p.b[tt]]))]].tolist() for x in (p.a, p.b, p.d64))
    for u, v, duv in zip(a, b, d):
        if not reason[u] and not reason[v]:
            reason[v], partner[v], dist[v] = 2, u, duv
    rows = np.flatnonzero(reason)
    rows = rows[np.argsort(rank[rows], kind="stable")]
    take, kept = pa.array(rows), pa.array(partner[rows])
    t = items.table
    return pa.Table.from_arrays(
        [
            *(t.column(c).take(take) for c in ("shard", "idx", "source", "group", "key")),
            pa.array(np.array(["", "test-leak", "train-duplicate"])[reason[rows]]),
            *(t.column(c).take(kept) for c in ("shard", "idx", "source", "key")),
            pa.array(dist[rows]),
        ],
        schema=DROP_SCHEMA,
    )


def load_drop_table(root: Path, *, strict: bool = True) -> pa.Table | None:
    """`<root>/dedup/drop.parquet` (DROP_SCHEMA), or None when `dedup --policy drop-from-train` never ran.

    With `strict`, raises ValueError when an index the list was computed from has changed or gone since:
    its (shard, idx) pairs may then name other crops. Re-run `rebusyn dedup --policy drop-from-train`."""
    root = Path(root)
    path = root / "dedup" / DROP_FILE
    if not path.is_file():
        return None
    table = pq.read_table(path)
    if strict:
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        files = _index_files(root)
        stale = sorted(
            name
            for name, digest in meta.get("sources", {}).items()
            if name not in files or fingerprint(files[name]) != digest
        )
        if stale:
            raise ValueError(
                f"{path} is stale: the index of {', '.join(stale)} changed since it was written; "
                "re-run `rebusyn dedup --policy drop-from-train`"
            )
    return table


def load_drop_set(root: Path, *, strict: bool = True) -> set[tuple[str, int]]:
    """The (shard, idx) pairs `mix` should skip; empty when there is no drop list. See load_drop_table."""
    table = load_drop_table(root, strict=strict)
    if table is None:
        return set()
    return set(zip(table.column("shard").to_pylist(), table.column("idx").to_pylist()))


SHEET_CELL_W, SHEET_CELL_H, SHEET_CAPTION_H = 280, 64, 36


def _sheet(root: Path, pairs: pa.Table, out: Path, threshold: int, limit: int = 24) -> Path | None:
    """Two columns, one pair per row (left: the test or kept crop, right: its duplicate). Near pairs with
    the largest distances come first (the ones worth eyeballing), train-vs-test before the rest."""
    from PIL import Image, ImageDraw

    from rebusyn.samplegen.scene import load_font

    if pairs.num_rows == 0:
        return None
    meta = pairs.select(["kind", "relation", "distance256"]).to_pylist()
    order = sorted(
        range(len(meta)),
        key=lambda r: (
            meta[r]["kind"] != "near",
            meta[r]["relation"] != "train-test",
            -meta[r]["distance256"],
            r,
        ),
    )[:limit]
    rows = pairs.take(pa.array(order, pa.int64())).to_pylist()
    head, row_h = 26, SHEET_CELL_H + SHEET_CAPTION_H
    sheet = Image.new("RGB", (2 * SHEET_CELL_W, head + len(rows) * row_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = load_font(12)
    draw.text(
        (6, 6),
        f"dedup: {len(rows)} of {pairs.num_rows} pairs, threshold {threshold}/64",
        fill="black",
        font=load_font(14),
    )
    readers: dict[str, ShardReader] = {}
    try:
        for r, row in enumerate(rows):
            y = head + r * row_h
            for c, side in enumerate("ab"):
                x = c * SHEET_CELL_W
                shard = row[f"{side}_shard"]
                reader = readers.setdefault(shard, ShardReader(root / shard))
                bgr = decode(reader.image(row[f"{side}_idx"]))
                if bgr is None:
                    crop = Image.new("RGB", (SHEET_CELL_W - 8, SHEET_CELL_H - 8), "red")
                else:
                    crop = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                scale = min((SHEET_CELL_W - 8) / crop.width, (SHEET_CELL_H - 8) / crop.height)
                size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
                crop = crop.resize(size, Image.BICUBIC)
                sheet.paste(
                    crop, (x + (SHEET_CELL_W - crop.width) // 2, y + (SHEET_CELL_H - crop.height) // 2)
                )
                caption = f"{row[f'{side}_source']} [{row[f'{side}_group']}] {row[f'{side}_label']}"
                draw.text((x + 4, y + SHEET_CELL_H), caption[:44], fill="black", font=font)
                draw.rectangle((x, y, x + SHEET_CELL_W - 1, y + row_h - 1), outline=(220, 220, 220))
            line = f"{row['kind']} {row['relation']}  d={row['distance']}/64 {row['distance256']}/256"
            draw.text((4, y + SHEET_CELL_H + 16), line, fill=(110, 110, 110), font=font)
    finally:
        for reader in readers.values():
            reader.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out


def _per_source_counts(
    items: _Items, pairs: pa.Table, p: _Pairs
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, int]], dict[str, dict[str, Any]]]:
    names = items.source_names
    k = len(names)
    crops = np.bincount(items.source, minlength=k)
    group_of = items.table.column("group").take(pa.array(np.unique(items.source, return_index=True)[1]))
    rel = _relation_codes(items, p)
    exact = pc.equal(pairs.column("kind"), "exact").to_numpy(zero_copy_only=False).astype(bool)

    def crops_in(rows: np.ndarray) -> np.ndarray:  # crops, not pairs: three copies of one crop count once
        return np.bincount(items.source[np.unique(rows)], minlength=k)

    vs_test = crops_in(p.b[rel == 1])
    vs_train = crops_in(np.r_[p.a[rel == 0], p.b[rel == 0]])
    per_source = {
        names[s]: {
            "group": group_of[i].as_py(),
            "crops": int(crops[s]),
            "train_vs_test": int(vs_test[s]),
            "train_vs_train": int(vs_train[s]),
        }
        for i, s in enumerate(np.unique(items.source))
    }
    per_source = dict(sorted(per_source.items()))
    sa, sb = items.source[p.a], items.source[p.b]
    lo, hi = np.minimum(sa, sb).astype(np.int64), np.maximum(sa, sb).astype(np.int64)
    code = (lo * k + hi) * 2 + exact
    pair_counts: dict[str, dict[str, int]] = {}
    for c, count in zip(*np.unique(code, return_counts=True)):
        x, y = divmod(int(c) // 2, k)
        label = " ~ ".join(sorted((names[x], names[y])))
        pair_counts.setdefault(label, {"exact": 0, "near": 0})["exact" if c % 2 else "near"] += int(count)
    leakage: dict[str, dict[str, Any]] = {}
    leak = np.flatnonzero(rel == 1)
    for s in np.unique(items.source[p.a[leak]]):
        sel = leak[items.source[p.a[leak]] == s]
        train_rows = np.unique(p.b[sel])
        by = np.bincount(items.source[train_rows], minlength=k)
        leakage[names[s]] = {
            "test_crops": int(len(np.unique(p.a[sel]))),
            "train_crops": int(len(train_rows)),
            "train_by_source": {
                names[t]: int(by[t]) for t in sorted(np.flatnonzero(by), key=lambda t: names[t])
            },
            "pairs": {"exact": int(exact[sel].sum()), "near": int((~exact[sel]).sum())},
        }
    return per_source, dict(sorted(pair_counts.items())), dict(sorted(leakage.items()))


# ---------------------------------------------------------------------------------------------------
# The command


def dedup(opts: DedupOptions) -> DedupSummary:
    """Hash, pair, report (and with policy drop-from-train, list the training crops to skip)."""
    started = time.perf_counter()
    root = opts.root
    tables, prints = _select_sources(root, opts.sources)
    if not tables:
        raise ValueError(f"nothing to compare under {root / 'index'}: only synthetic sources (name them)")
    table, hashes, counts, hash_s = _hash_sources(opts, tables, prints)
    pair_start = time.perf_counter()
    items = _Items.of(table)
    found = _find_pairs(hashes, items.rank, opts.threshold)
    pairs = _pairs_table(items, hashes, found)
    pair_s = time.perf_counter() - pair_start
    out_dir = root / "dedup"
    pairs_path = out_dir / PAIRS_FILE
    meta = {
        _META_KEY: json.dumps(
            {"version": HASH_VERSION, "sources": dict(sorted(prints.items())), "threshold": opts.threshold}
        ).encode()
    }
    _write_parquet(pairs_path, pairs.replace_schema_metadata(meta))
    per_source, source_pairs, leakage = _per_source_counts(items, pairs, found)
    for name in tables:  # an empty index still shows up
        per_source.setdefault(name, {"group": None, "crops": 0, "train_vs_test": 0, "train_vs_train": 0})
    per_source = dict(sorted(per_source.items()))
    kinds = Counter(pairs.column("kind").to_pylist())
    relations = Counter(pairs.column("relation").to_pylist())
    undecodable = int((~hashes.ok).sum())
    notes: list[str] = []
    if undecodable:
        notes.append(f"{undecodable} crop(s) could not be decoded; they were not compared")
    if found.large:
        notes.append(
            f"{len(found.large)} group(s) of more than {MAX_CLIQUE} crops with one hash reported as stars "
            "around their best-ranked crop (see large_groups in the report)"
        )
    summary = DedupSummary(
        root=root,
        policy=opts.policy,
        threshold=opts.threshold,
        fine_threshold=FINE_PER_COARSE * opts.threshold,
        sources=sorted(tables),
        crops=table.num_rows,
        hashed=counts.get("hashed", 0),
        cached=counts.get("cached", 0),
        same_bytes_reused=counts.get("same_bytes", 0),
        undecodable=undecodable,
        flat=int((hashes.ok & hashes.flat).sum()),
        exact_pairs=kinds.get("exact", 0),
        near_pairs=kinds.get("near", 0),
        relations={k: relations.get(k, 0) for k in ("train-test", "train-train", "test-test")},
        per_source=per_source,
        source_pairs=source_pairs,
        leakage=leakage,
        report_path=root / "reports" / REPORT_NAME,
        pairs_path=pairs_path,
        hashes_path=out_dir / HASHES_FILE,
        large_groups=[
            {
                "size": size,
                **{c: table.column(c)[row].as_py() for c in ("source", "key", "shard", "idx")},
            }
            for row, size in found.large
        ],
        hash_s=hash_s,
        pair_s=pair_s,
        notes=notes,
    )
    if opts.policy == "drop-from-train":
        drop = _drop_table(items, found)
        summary.drop_path = out_dir / DROP_FILE
        summary.dropped = drop.num_rows
        _write_parquet(summary.drop_path, drop.replace_schema_metadata(meta))
    if opts.sheet is not None:
        summary.sheet_path = _sheet(root, pairs, opts.sheet, opts.threshold)
        if summary.sheet_path is None:
            summary.notes.append("no pairs: no sample sheet written")
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    _write_report(summary, pairs, prints)
    return summary


def _write_report(s: DedupSummary, pairs: pa.Table, prints: dict[str, str]) -> Path:
    listed = pairs.slice(0, MAX_JSON_PAIRS).to_pylist()  # already train-test first (rank order)
    report = {
        "status": "complete",
        "method": {
            "exact": "SHA-1 (64 bits) of the decoded 8-bit BGR pixels and shape; sha1 of the bytes first",
            "near": (
                "DCT hash of the grayscale crop re-framed on its gradient-energy centroid +- "
                f"{MOMENT_K:g} std, resampled to {CANON_W}x{CANON_H}: 64 bits (rows 0-3 x cols 1-16, "
                "above median) searched by multi-index hashing, 256 bits (rows 0-7 x cols 1-32) verified"
            ),
            "flat_std": FLAT_STD,
            "keep_order": "group T, R, E, B, U, S; then source, key, shard, idx",
            "hash_version": HASH_VERSION,
        },
        "threshold": s.threshold,
        "threshold_256": s.fine_threshold,
        "policy": s.policy,
        "sources": {name: {**s.per_source[name], "index_sha256": prints[name]} for name in s.sources},
        "counts": {
            "crops": s.crops,
            "hashed": s.hashed,
            "cached": s.cached,
            "same_bytes_reused": s.same_bytes_reused,
            "undecodable": s.undecodable,
            "flat": s.flat,
            "exact_pairs": s.exact_pairs,
            "near_pairs": s.near_pairs,
            **{k.replace("-", "_"): v for k, v in s.relations.items()},
            "large_groups": len(s.large_groups),
            "dropped": s.dropped,
        },
        "leakage": s.leakage,
        "source_pairs": s.source_pairs,
        "large_groups": s.large_groups,
        "outputs": {
            "pairs": s.pairs_path.relative_to(s.root).as_posix(),
            "hashes": s.hashes_path.relative_to(s.root).as_posix(),
            "drop": s.drop_path.relative_to(s.root).as_posix() if s.drop_path else None,
            "sheet": str(s.sheet_path) if s.sheet_path else None,
        },
        "pairs_listed": len(listed),
        "pairs": listed,
        "notes": s.notes,
        "tool": {"name": "rebusyn", "version": __version__},
        "elapsed_s": s.elapsed_s,
        "hash_s": round(s.hash_s, 3),
        "pair_s": round(s.pair_s, 3),
        "crops_per_s": round(s.crops_per_s, 1) if s.crops_per_s else None,
    }
    path = s.report_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
