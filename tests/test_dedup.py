"""`rebusyn dedup` on real LMDB shards of rendered word crops with planted duplicates.

Every planted pair is known by its two keys; the pipeline must report exactly those pairs (all found, and
no pair among the hundreds of distinct words, the same words in other fonts, or neighbouring words of one
scene line).
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rebusyn.cli import main
from rebusyn.dedup import (
    DEFAULT_THRESHOLD,
    DROP_SCHEMA,
    FINE_PER_COARSE,
    GROUP_PRIORITY,
    PAIRS_SCHEMA,
    DedupOptions,
    band_layout,
    brute_force_pairs,
    choose_bands,
    dedup,
    format_summary,
    hamming,
    hamming256,
    hash_image,
    load_drop_set,
    load_drop_table,
    near_pairs,
)
from rebusyn.sample import Sample
from rebusyn.samplegen._word_images import render, scene_line
from rebusyn.samplegen.scene import sample_font_path
from rebusyn.store.dataset import SourceWriter

FONT_DIR = sample_font_path().parent if sample_font_path() else None
if FONT_DIR is None:  # pragma: no cover - trdg ships the fonts; without it there is nothing to render
    pytest.skip("trdg's fonts are needed to render word crops", allow_module_level=True)

# visibly different families: "the same word in another font" must not be a duplicate
FONTS = [
    FONT_DIR / name
    for name in (
        "Roboto-Regular.ttf",
        "Pacifico.ttf",
        "Capture_it.ttf",
        "AmaticSC-Regular.ttf",
        "Walkway_Bold.ttf",
        "FFF_Tusj.ttf",
        "Raleway-Regular.ttf",
        "Lato-Bold.ttf",
        "OpenSans-Italic.ttf",
        "Sansation-Regular.ttf",
        "CaviarDreams.ttf",
        "RobotoCondensed-Bold.ttf",
    )
    if (FONT_DIR / name).is_file()
]
T = DEFAULT_THRESHOLD
SOURCES = {"bench_a": "T", "bench_b": "T", "real_a": "R", "real_e": "E", "real_u": "U", "syn": "S"}


# ---------------------------------------------------------------------------------------------------
# Rendering


def words(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(letters, int(rng.integers(4, 11)))).capitalize())
    return sorted(out)


def png(rgb: np.ndarray, level: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=interp)


def cropped(rgb: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(rgb[top : h - bottom, left : w - right])


# ---------------------------------------------------------------------------------------------------
# The planted root


@dataclass
class Planted:
    root: Path
    samples: dict[str, list[tuple[str, bytes, str]]] = field(default_factory=dict)  # source -> (key, ...)
    pairs: dict[frozenset[str], str] = field(default_factory=dict)  # {key_a, key_b} -> exact | near
    synthetic_pairs: dict[frozenset[str], str] = field(default_factory=dict)

    def add(self, source: str, name: str, data: bytes, label: str) -> str:
        key = f"{source}/{name}"
        self.samples.setdefault(source, []).append((key, data, label))
        return key

    def group(self, key: str) -> str:
        return SOURCES[key.split("/")[0]]

    def write(self, sources: list[str] | None = None, *, max_shard_samples: int = 60) -> None:
        for source in sources or list(self.samples):
            writer = SourceWriter(self.root, source, SOURCES[source], max_shard_samples=max_shard_samples)
            with writer:
                for key, data, label in self.samples[source]:
                    writer.add(Sample(data, label, label, source, SOURCES[source], key, 1, 1))
                writer.close()


def plant(root: Path) -> Planted:
    rng = np.random.default_rng(2024)
    p = Planted(root)
    vocab = words(420)
    pool = iter(vocab)

    def font() -> Path:
        return FONTS[int(rng.integers(len(FONTS)))]

    def word_crop(size: tuple[int, int] = (28, 41)) -> tuple[str, np.ndarray]:
        text = next(pool)
        return text, render(rng, text, font(), int(rng.integers(*size)))

    def pair(a: str, b: str, kind: str) -> None:
        p.pairs[frozenset((a, b))] = kind

    for n in range(2):  # byte-identical copies of a test crop in two training sources
        text, img = word_crop()
        data = png(img)
        t = p.add("bench_a", f"copy{n}", data, text)
        a, u = p.add("real_a", f"copy{n}", data, text), p.add("real_u", f"copy{n}", data, text)
        pair(t, a, "exact"), pair(t, u, "exact"), pair(a, u, "exact")
    for n in range(2):  # the same pixels in other bytes: PNG at two compression levels
        text, img = word_crop()
        pair(
            p.add("real_a", f"png{n}", png(img, 1), text),
            p.add("real_u", f"png{n}", png(img, 9), text),
            "exact",
        )
    for n in range(3):  # JPEG 95 -> 60
        text, img = word_crop()
        stored = jpeg(img, 95)
        pair(
            p.add("bench_a", f"q60_{n}", stored, text),
            p.add("real_e", f"q60_{n}", jpeg(pixels(stored), 60), text),
            "near",
        )
    for n in range(2):  # PNG vs JPEG q100: pixels differ a little, so near (not exact)
        text, img = word_crop()
        pair(
            p.add("bench_b", f"q100_{n}", png(img), text),
            p.add("real_a", f"q100_{n}", jpeg(img, 100), text),
            "near",
        )
    for n, (scale, a_src, b_src) in enumerate(
        [
            (0.9, "bench_b", "real_u"),
            (0.9, "bench_b", "real_u"),
            (1.1, "real_a", "real_u"),
            (1.1, "real_a", "real_u"),
        ]
    ):
        text, img = word_crop()
        stored = jpeg(img)
        pair(
            p.add(a_src, f"scale{n}", stored, text),
            p.add(b_src, f"scale{n}", jpeg(resized(pixels(stored), scale)), text),
            "near",
        )
    for n, (box, b_src) in enumerate(
        [
            ((1, 1, 1, 1), "real_e"),
            ((1, 1, 1, 1), "real_e"),
            ((2, 2, 0, 0), "real_u"),
            ((0, 0, 2, 0), "real_u"),
        ]
    ):
        text, img = word_crop()
        stored = jpeg(img)
        pair(
            p.add("real_a", f"crop{n}", stored, text),
            p.add(b_src, f"crop{n}", jpeg(cropped(pixels(stored), *box)), text),
            "near",
        )
    text, img = word_crop()  # a duplicate inside one source
    stored = jpeg(img)
    pair(
        p.add("real_a", "same_a", stored, text),
        p.add("real_a", "same_b", jpeg(pixels(stored), 60), text),
        "near",
    )
    # blank crops: an exact copy is a duplicate; two different blanks are not (no near matching on flat)
    blank = png(np.full((30, 90, 3), 128, np.uint8))
    pair(p.add("bench_a", "blank", blank, "x"), p.add("real_a", "blank", blank, "x"), "exact")
    p.add("real_u", "blank2", png(np.full((24, 70, 3), 200, np.uint8)), "y")
    # a synthetic copy of a test crop: only compared when the synthetic source is named
    p.add("real_e", "broken", b"not an image", "broken")

    # negatives: distinct words, the same word in two other fonts, neighbouring words of one scene line
    train = ["real_a", "real_e", "real_u"]
    for n in range(300):
        text = next(pool)
        img = render(rng, text, font(), int(rng.integers(20, 45)))
        source = "bench_a" if n < 25 else "bench_b" if n < 50 else train[n % 3]
        p.add(source, f"word{n}", jpeg(img) if n % 2 else png(img), text)
    for n in range(20):
        text = vocab[n]  # words already used above, now in other fonts, sizes and colours
        f1, f2 = rng.choice(len(FONTS), 2, replace=False)
        size = int(rng.integers(26, 41))
        p.add(train[n % 3], f"font{n}a", jpeg(render(rng, text, FONTS[f1], size)), text)
        p.add(train[(n + 1) % 3], f"font{n}b", jpeg(render(rng, text, FONTS[f2], size)), text)
    for n in range(8):
        texts = [next(pool) for _ in range(4)]
        for k, crop in enumerate(scene_line(rng, texts, font(), int(rng.integers(24, 38)))):
            p.add(train[(n + k) % 3] if n % 2 else "bench_b", f"scene{n}_{k}", jpeg(crop), texts[k])
    p.add("syn", "own", jpeg(word_crop()[1]), "own")
    key, data, _ = next(s for s in p.samples["bench_a"] if s[0] == "bench_a/word0")
    p.synthetic_pairs[frozenset((key, p.add("syn", "copy", data, "s")))] = "exact"
    p.write()
    return p


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return plant(tmp_path_factory.mktemp("dedup") / "root")


@pytest.fixture(scope="module")
def reported(planted: Planted):  # noqa: ANN201
    """One report-policy run on the shared root (later tests that change the root work on copies)."""
    return dedup(DedupOptions(root=planted.root, progress=False))


def copy_root(planted: Planted, tmp_path: Path) -> Planted:
    root = tmp_path / "root"
    shutil.copytree(planted.root, root)
    return Planted(root, planted.samples, planted.pairs, planted.synthetic_pairs)


def found_pairs(path: Path) -> dict[frozenset[str], str]:
    rows = pq.read_table(path, columns=["a_key", "b_key", "kind"]).to_pylist()
    out = {frozenset((r["a_key"], r["b_key"])): r["kind"] for r in rows}
    assert len(out) == len(rows), "a pair was reported twice"
    return out


# ---------------------------------------------------------------------------------------------------
# Hashes of single crops


def test_exact_hash_is_about_pixels_not_bytes() -> None:
    img = render(np.random.default_rng(1), "Pixels", FONTS[0], 32)
    a, b, c = hash_image(png(img, 1)), hash_image(png(img, 9)), hash_image(jpeg(img, 100))
    assert a is not None and b is not None and c is not None
    assert png(img, 1) != png(img, 9) and a == b  # same pixels, other bytes: every hash equal
    assert c.pixel_hash != a.pixel_hash and hamming(a.phash, c.phash) <= 2
    assert not a.flat and hash_image(png(np.full((20, 60, 3), 90, np.uint8))).flat
    assert hash_image(b"not an image") is None and hash_image(b"") is None
    assert hash_image(png(np.zeros((1, 1, 3), np.uint8))) is not None  # degenerate sizes do not crash


VARIANTS = {
    "jpeg60": lambda px: jpeg(px, 60),
    "resize0.9": lambda px: jpeg(resized(px, 0.9)),
    "resize1.1": lambda px: jpeg(resized(px, 1.1)),
    "crop1_all": lambda px: jpeg(cropped(px, 1, 1, 1, 1)),
    "crop2_left_top": lambda px: jpeg(cropped(px, 2, 2, 0, 0)),
    "crop2_right": lambda px: jpeg(cropped(px, 0, 0, 2, 0)),
    "crop2_0.9_jpeg60": lambda px: jpeg(resized(cropped(px, 2, 2, 2, 2), 0.9), 60),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_stay_within_threshold(variant: str) -> None:
    """The measurements behind DEFAULT_THRESHOLD: 12 words at 28-40 px (docs/dedup.md has 600 per case)."""
    rng = np.random.default_rng(7)
    worst = (0, 0)
    for n, text in enumerate(words(12, seed=5)):
        stored = jpeg(render(rng, text, FONTS[n % len(FONTS)], int(rng.integers(28, 41))))
        other = VARIANTS[variant](pixels(stored))
        a, b = hash_image(stored), hash_image(other)
        d64 = int(hamming(a.phash, b.phash))
        d256 = int(hamming256(np.frombuffer(a.phash256, np.uint64), np.frombuffer(b.phash256, np.uint64))[0])
        worst = (max(worst[0], d64), max(worst[1], d256))
    assert worst[0] <= T and worst[1] <= FINE_PER_COARSE * T, worst


# ---------------------------------------------------------------------------------------------------
# Multi-index hashing


def planted_hashes(n: int, planted: int, max_flips: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64, size=n - planted, dtype=np.uint64)
    src = base[rng.integers(0, len(base), planted)]
    flips = np.zeros(planted, np.uint64)
    for k, bits in enumerate(rng.integers(0, max_flips + 1, planted)):  # 0 flips: identical values too
        for b in rng.choice(64, int(bits), replace=False):
            flips[k] |= np.uint64(1) << np.uint64(int(b))
    out = np.concatenate([base, src ^ flips])
    return out[rng.permutation(len(out))]


@pytest.fixture(scope="module")
def hashes_20k() -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    h = planted_hashes(20_000, 1_500, 14)
    return h, brute_force_pairs(h, 12)


@pytest.mark.parametrize(
    ("threshold", "bands"),
    [(0, None), (3, None), (3, 2), (5, 4), (8, None), (8, 3), (8, 9), (12, None)],
)
def test_multi_index_hashing_equals_brute_force(hashes_20k, threshold: int, bands: int | None) -> None:  # noqa: ANN001
    h, (bi, bj, bd) = hashes_20k
    keep = bd <= threshold
    i, j, d = near_pairs(h, threshold, bands=bands)
    assert len(i) == keep.sum() > (0 if threshold == 0 else 100)
    np.testing.assert_array_equal(i, bi[keep])
    np.testing.assert_array_equal(j, bj[keep])
    np.testing.assert_array_equal(d, bd[keep])


def test_band_layout_is_a_pigeonhole() -> None:
    for t in range(0, 17):
        for k in range(1, 17):
            layout = band_layout(t, k)
            assert sum(w for _, w, _ in layout) == 64
            assert sum(r + 1 for _, _, r in layout) == t + 1 or any(r == w for _, w, r in layout)
    assert choose_bands(1_000_000, 8) == 3 and choose_bands(20_000, 8) >= 3


# ---------------------------------------------------------------------------------------------------
# The pipeline


def test_finds_exactly_the_planted_pairs(planted: Planted, reported) -> None:  # noqa: ANN001
    s = reported
    found = found_pairs(s.pairs_path)
    missing = {tuple(sorted(k)): v for k, v in planted.pairs.items() if found.get(k) != v}
    extra = {tuple(sorted(k)): v for k, v in found.items() if k not in planted.pairs}
    assert not missing and not extra, (missing, extra)
    assert s.exact_pairs == sum(v == "exact" for v in planted.pairs.values())
    assert s.near_pairs == sum(v == "near" for v in planted.pairs.values())
    assert "syn" not in s.sources and set(s.sources) == set(SOURCES) - {"syn"}
    assert s.undecodable == 1 and s.flat == 3
    assert s.crops == sum(len(v) for k, v in planted.samples.items() if k != "syn")
    assert s.hashed + s.same_bytes_reused == s.crops and s.same_bytes_reused == 5  # 2 x 2 copies + blank
    table = pq.read_table(s.pairs_path)
    assert table.schema.remove_metadata() == PAIRS_SCHEMA
    for row in table.to_pylist():
        tests = [planted.group(row["a_key"]), planted.group(row["b_key"])].count("T")
        assert row["relation"] == ["train-train", "train-test", "test-test"][tests]
        if row["relation"] == "train-test":
            assert row["a_group"] == "T" and row["b_group"] != "T"  # the test crop on the left
        assert row["distance"] <= T and row["distance256"] <= FINE_PER_COARSE * T
        if row["kind"] == "exact":
            assert row["distance"] == row["distance256"] == 0
        copies = row["a_key"].split("/")[1] == row["b_key"].split("/")[1] in ("copy0", "copy1", "blank")
        assert row["same_bytes"] == copies


def test_counts_and_report(planted: Planted, reported) -> None:  # noqa: ANN001
    s = reported
    leak: dict[str, dict[str, set[str]]] = {}
    for keys in planted.pairs:
        a, b = sorted(keys, key=lambda k: planted.group(k) != "T")
        if planted.group(a) == "T" and planted.group(b) != "T":
            d = leak.setdefault(a.split("/")[0], {"test": set(), "train": set()})
            d["test"].add(a)
            d["train"].add(b)
    assert set(s.leakage) == set(leak) == {"bench_a", "bench_b"}
    for test, d in leak.items():
        got = s.leakage[test]
        assert got["test_crops"] == len(d["test"]) and got["train_crops"] == len(d["train"])
        by: dict[str, int] = {}
        for k in d["train"]:
            by[k.split("/")[0]] = by.get(k.split("/")[0], 0) + 1
        assert got["train_by_source"] == by
    assert s.relations == {
        "train-test": sum(len(d["train"]) for d in leak.values()),
        "train-train": 2 + 2 + 2 + 4 + 1,  # copy a~u (x2), png, scale 1.1, crops, same-source
        "test-test": 0,
    }
    assert s.per_source["real_a"]["train_vs_test"] == 5 and s.per_source["real_u"]["group"] == "U"
    assert s.source_pairs["real_a ~ real_u"] == {"exact": 4, "near": 4}
    report = json.loads(s.report_path.read_text())
    assert s.report_path == planted.root / "reports" / "dedup.json"
    assert report["threshold"] == T and report["threshold_256"] == FINE_PER_COARSE * T
    assert report["leakage"] == s.leakage and report["counts"]["exact_pairs"] == s.exact_pairs
    assert len(report["pairs"]) == s.exact_pairs + s.near_pairs
    first = report["pairs"][0]
    assert {"a_key", "a_source", "a_group", "a_label", "b_key", "distance", "kind"} <= set(first)
    assert report["method"]["near"].startswith("DCT hash") and report["outputs"]["drop"] is None
    text = format_summary(s)
    assert "bench_a" in text and "exact" in text and "undecodable" in text


def expected_drops(planted: Planted) -> dict[str, str]:
    """An independent reading of the rule: the training side of every train-test pair; then, best-ranked
    first, a training crop paired with a kept better-ranked crop."""

    def rank(key: str) -> tuple:
        return (GROUP_PRIORITY[planted.group(key)], key.split("/")[0], key)

    dropped: dict[str, str] = {}
    for keys in planted.pairs:
        a, b = sorted(keys, key=rank)
        if planted.group(a) == "T" and planted.group(b) != "T":
            dropped[b] = "test-leak"
    train = [sorted(k, key=rank) for k in planted.pairs if all(planted.group(x) != "T" for x in k)]
    for a, b in sorted(train, key=lambda ab: (rank(ab[1]), rank(ab[0]))):
        if a not in dropped and b not in dropped:
            dropped[b] = "train-duplicate"
    return dropped


def test_drop_from_train_picks_the_training_side(planted: Planted, tmp_path: Path) -> None:
    p = copy_root(planted, tmp_path)
    s = dedup(DedupOptions(root=p.root, policy="drop-from-train", progress=False))
    table = load_drop_table(p.root)
    assert table is not None and table.schema.remove_metadata() == DROP_SCHEMA
    got = {r["key"]: r["reason"] for r in table.to_pylist()}
    assert got == expected_drops(planted) and s.dropped == len(got)
    assert all(not k.startswith("bench") for k in got)
    # R beats U, E and U lose to R, and inside one source the first key stays
    assert got["real_u/png0"] == "train-duplicate" and "real_a/png0" not in got
    assert got["real_e/crop0"] == "train-duplicate" and got["real_a/same_b"] == "train-duplicate"
    assert got["real_u/copy0"] == got["real_a/copy0"] == "test-leak"
    rows = {r["key"]: r for r in table.to_pylist()}
    assert rows["real_u/png0"]["kept_key"] == "real_a/png0"
    assert (
        rows["real_e/q60_0"]["kept_key"] == "bench_a/q60_0"
        and rows["real_e/q60_0"]["kept_source"] == "bench_a"
    )
    drop_set = load_drop_set(p.root)
    assert drop_set == {(r["shard"], r["idx"]) for r in table.to_pylist()}
    assert all(isinstance(shard, str) and (p.root / shard / "data.mdb").is_file() for shard, _ in drop_set)
    # a drop list must not outlive the indexes it names: rebuilding a source makes it stale
    p.samples["real_u"] = p.samples["real_u"][1:]
    p.write(["real_u"])
    with pytest.raises(ValueError, match="stale.*real_u"):
        load_drop_set(p.root)
    assert len(load_drop_set(p.root, strict=False)) == s.dropped
    assert load_drop_set(tmp_path / "nowhere") == set()


def test_cache_rehashes_only_changed_sources(planted: Planted, tmp_path: Path) -> None:
    p = copy_root(planted, tmp_path)
    first = dedup(DedupOptions(root=p.root, progress=False))
    again = dedup(DedupOptions(root=p.root, progress=False))
    assert again.hashed == 0 and again.same_bytes_reused == 0 and again.cached == first.crops
    assert found_pairs(again.pairs_path) == found_pairs(first.pairs_path)
    # one source rebuilt with one new crop: only that crop is decoded (the rest match cached bytes)
    extra = jpeg(render(np.random.default_rng(9), "Rebuilt", FONTS[1], 30))
    p.samples["real_e"] = [*p.samples["real_e"], ("real_e/rebuilt", extra, "rebuilt")]
    p.write(["real_e"])
    third = dedup(DedupOptions(root=p.root, progress=False))
    assert third.hashed == 1 and third.cached == first.crops - len(p.samples["real_e"]) + 1
    assert third.same_bytes_reused == len(p.samples["real_e"]) - 1
    # a narrower run keeps the other sources' hashes in the cache
    narrow = dedup(DedupOptions(root=p.root, sources=("real_a",), progress=False))
    assert set(narrow.sources) == {"real_a", "bench_a", "bench_b"} and narrow.hashed == 0
    cached_sources = set(pq.read_table(narrow.hashes_path, columns=["source"]).column("source").to_pylist())
    assert cached_sources == set(SOURCES) - {"syn"}
    assert all(not any(x.startswith(("real_e", "real_u")) for x in k) for k in found_pairs(narrow.pairs_path))


def test_synthetic_only_when_named_and_workers_agree(planted: Planted, tmp_path: Path, reported) -> None:  # noqa: ANN001
    p = copy_root(planted, tmp_path)
    shutil.rmtree(p.root / "dedup")
    s = dedup(
        DedupOptions(root=p.root, sources=("syn", "real_a", "real_e", "real_u"), workers=2, progress=False)
    )
    found = found_pairs(s.pairs_path)
    assert found == {**planted.pairs, **planted.synthetic_pairs}
    assert s.leakage["bench_a"]["train_by_source"]["syn"] == 1
    # two workers, same answer as the single-process run on the shared root
    without_syn = {k: v for k, v in found.items() if k not in planted.synthetic_pairs}
    assert without_syn == found_pairs(reported.pairs_path)


def test_cli_writes_report_drop_list_and_sheet(planted: Planted, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    p = copy_root(planted, tmp_path)
    sheet = tmp_path / "pairs.png"
    code = main(
        [
            "dedup",
            "--root",
            str(p.root),
            "--policy",
            "drop-from-train",
            "--threshold",
            str(T),
            "--workers",
            "1",
            "--sheet",
            str(sheet),
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "train-vs-test leakage" in out and "drop-from-train" in out and str(sheet) in out
    assert (p.root / "dedup" / "drop.parquet").is_file() and (p.root / "reports" / "dedup.json").is_file()
    with Image.open(sheet) as img:
        assert img.width == 560 and img.height > 100
    with pytest.raises(SystemExit):
        main(["dedup", "--root", str(p.root), "--policy", "keep-all"])
    assert main(["dedup", "--root", str(p.root), "--sources", "missing_source", "-q"]) == 1
    assert "missing_source" in capsys.readouterr().err


def test_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="policy"):
        DedupOptions(root=tmp_path, policy="delete")
    with pytest.raises(ValueError, match="threshold"):
        DedupOptions(root=tmp_path, threshold=40)
    with pytest.raises(ValueError, match="workers"):
        DedupOptions(root=tmp_path, workers=0)
    with pytest.raises(FileNotFoundError, match="no Parquet indexes"):
        dedup(DedupOptions(root=tmp_path, progress=False))
