"""rebusyn synth: trdg rendering end to end, determinism, corpus loading, font filtering."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import string
from pathlib import Path

import lmdb
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageFont

from rebusyn.sample import LabelPolicy
from rebusyn.synth import fonts as fontmod
from rebusyn.synth.corpus import EMBEDDED_CORPUS, EMBEDDED_CORPUS_META, CorpusError, load_corpus
from rebusyn.synth.run import SynthOptions, synthesize

N = 200
CHARS_36_AND_UPPER = string.ascii_lowercase + string.digits + string.ascii_uppercase


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, cache_env: None) -> dict:
    out = {}
    for name, seed, workers, n in (("w1", 0, 1, N), ("w2", 0, 2, N), ("seed1", 1, 1, 40)):
        root = tmp_path_factory.mktemp(name)
        opts = SynthOptions(n=n, root=root, engine="trdg", seed=seed, workers=workers, progress=False)
        out[name] = (root, synthesize(opts))
    return out


def _read_shards(root: Path) -> list[tuple[str, bytes, str, dict]]:
    """Read with plain py-lmdb, as PARSeq/DTRB readers do (not rebusyn's ShardReader)."""
    shards = sorted(p.parent for p in (root / "train" / "synth" / "trdg").rglob("data.mdb"))
    assert shards, "no shard written"
    rows = []
    for shard in shards:
        env = lmdb.open(str(shard), readonly=True, lock=False, readahead=False, meminit=False)
        with env.begin() as txn:
            n = int(txn.get(b"num-samples"))
            assert txn.get(b"image-%09d" % 0) is None  # keys are 1-based
            assert txn.get(b"image-%09d" % (n + 1)) is None
            for i in range(1, n + 1):
                meta = json.loads(txn.get(b"meta-%09d" % i))
                label = txn.get(b"label-%09d" % i).decode()
                rows.append((shard.name, txn.get(b"image-%09d" % i), label, meta))
        env.close()
    return rows


def test_end_to_end_shards(runs: dict) -> None:
    root, summary = runs["w1"]
    assert summary.kept == N and summary.n_requested == N
    # one shard per work unit: the first covers indices 0-199, a second tops up the dropped ones
    assert summary.shards == summary.units == 2 and summary.output_dir == root / "train" / "synth" / "trdg"
    assert not list(summary.output_dir.rglob("*.jpg")) and not list(summary.output_dir.rglob("*.png"))
    rows = _read_shards(root)
    assert len(rows) == N
    policy = LabelPolicy("36", 25)
    keys = set()
    for _, image, label, meta in rows:
        img = Image.open(io.BytesIO(image))
        img.load()
        assert img.format == "JPEG" and img.height == 32 and img.width >= 8
        assert (img.width, img.height) == (meta["w"], meta["h"])
        assert label == policy.normalize(meta["label_raw"])[0]
        assert meta["source"] == "trdg" and meta["group"] == "S"
        assert meta["key"] == f"trdg/0/{meta['index']}"
        assert meta["font"].endswith(".ttf") and "trdg" in meta and "engine" in meta
        keys.add(meta["key"])
    assert len(keys) == N
    # Some lines have several words, as trdg's multi-word lines.
    assert any(" " in meta["label_raw"] for *_, meta in rows)


def test_index_and_report(runs: dict) -> None:
    root, summary = runs["w1"]
    index = pq.read_table(summary.index).to_pandas()
    assert len(index) == N
    # rows in unit order, 1-based within each unit's shard; keys name the rendered index
    per_shard = index.groupby("shard", sort=False)["idx"].apply(list)
    assert list(per_shard.index) == ["train/synth/trdg/shard-00000", "train/synth/trdg/shard-00001"]
    assert all(v == list(range(1, len(v) + 1)) for v in per_shard)
    rendered = [int(k.rsplit("/", 1)[1]) for k in index["key"]]
    assert rendered == sorted(rendered) and len(set(rendered)) == N
    assert (index["source"] == "trdg").all() and (index["group"] == "S").all()
    report = json.loads(summary.report.read_text())
    assert report["status"] == "complete" and report["kept"] == N
    assert report["dropped"] == summary.dropped
    meta = json.loads(EMBEDDED_CORPUS_META.read_text())
    assert report["options"]["corpus"]["sha256"] == meta["sha256_gz"]
    assert "BEBAS___.ttf" in report["options"]["fonts"]["excluded"]
    assert len(report["options"]["fonts"]["used"]) == len(summary.fonts_used) > 50


def test_same_seed_same_bytes_whatever_workers(runs: dict) -> None:
    (_, s1), (_, s2) = runs["w1"], runs["w2"]
    a = pq.read_table(s1.index).to_pandas()
    b = pq.read_table(s2.index).to_pandas()
    assert list(a["sha1"]) == list(b["sha1"])
    assert list(a["label"]) == list(b["label"]) and list(a["key"]) == list(b["key"])
    assert s1.dropped == s2.dropped


def test_different_seed_differs(runs: dict) -> None:
    a = pq.read_table(runs["w1"][1].index).to_pandas()
    c = pq.read_table(runs["seed1"][1].index).to_pandas()
    assert len(c) == 40
    assert not set(a["sha1"]) & set(c["sha1"])
    assert list(a["label_raw"][:40]) != list(c["label_raw"])
    assert all(k.startswith("trdg/1/") for k in c["key"])


def test_drops_are_counted_before_rendering_and_n_counts_kept(tmp_path: Path, cache_env: None) -> None:
    corpus = tmp_path / "words.txt"
    corpus.write_text("hello\n---\n" + "x" * 30 + "\nworld\n", encoding="utf-8")
    s = synthesize(SynthOptions(n=30, root=tmp_path / "root", engine="trdg", corpus=corpus, progress=False))
    assert s.kept == 30
    assert s.dropped.get("empty_label", 0) > 0 and s.dropped.get("label_too_long", 0) > 0
    assert s.attempts == 30 + sum(s.dropped.values())
    labels = set(pq.read_table(s.index).to_pandas()["label"])
    assert labels <= {"hello", "world", "helloworld", "worldhello", "hellohello", "worldworld"} | {
        a + b + c for a in ("hello", "world") for b in ("hello", "world") for c in ("hello", "world")}


def test_impossible_drop_rate_fails_clearly(tmp_path: Path, cache_env: None) -> None:
    corpus = tmp_path / "punct.txt"
    corpus.write_text("!!!\n...\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"only 0 of 5 samples kept.*empty_label"):
        synthesize(SynthOptions(n=5, root=tmp_path / "root", engine="trdg", corpus=corpus, progress=False))
    report = json.loads((tmp_path / "root" / "reports" / "trdg.json").read_text())
    assert report["status"] == "failed"


def test_text_goes_to_a_font_that_can_draw_it(tmp_path: Path, cache_env: None) -> None:
    # Pacifico has no Cyrillic/Greek; Roboto has. No font has CJK: those texts are dropped and counted.
    latin = fontmod.trdg_fonts_dir()
    fonts_dir = tmp_path / "fonts"
    fonts_dir.mkdir()
    for name in ("Roboto-Regular.ttf", "Pacifico.ttf"):
        shutil.copy(latin / name, fonts_dir / name)
    corpus = tmp_path / "mixed.txt"
    corpus.write_text("жук\nΩmega\nhello\n中文\n", encoding="utf-8")
    s = synthesize(SynthOptions(n=40, root=tmp_path / "root", engine="trdg", corpus=corpus, fonts=fonts_dir,
                                charset="unicode", progress=False))
    assert s.kept == 40 and s.dropped.get("no_font_for_text", 0) > 0
    rows = _read_shards(tmp_path / "root")
    used = {meta["font"] for *_, meta in rows}
    assert used == {"Roboto-Regular.ttf", "Pacifico.ttf"}
    for *_, label, meta in rows:
        assert label == meta["label_raw"]
        assert "中" not in label
        if "ж" in label or "Ω" in label:
            assert meta["font"] == "Roboto-Regular.ttf"


def test_load_corpus_user_file(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    path.write_bytes("\ufeffalpha\r\n\r\nbeta\n  gamma delta  \nalpha\n\nbeta\nCafe\u0301\n".encode())
    assert load_corpus(path) == ["alpha", "beta", "gamma delta", "Caf\u00e9"]


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf\n"])
def test_load_corpus_empty_file_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match="empty.txt"):
        load_corpus(path)


def test_load_corpus_unreadable_names_it(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="missing.txt"):
        load_corpus(tmp_path / "missing.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="latin1.txt.*UTF-8"):
        load_corpus(bad)


def test_embedded_corpus() -> None:
    entries = load_corpus(None)
    assert len(entries) >= 700_000 and len(set(entries)) == len(entries)
    assert entries == sorted(entries)
    assert all(e.isprintable() and " " not in e and e.isascii() for e in entries[::997])
    meta = json.loads(EMBEDDED_CORPUS_META.read_text())
    assert meta["entries"] == len(entries)
    assert meta["sha256_gz"] == hashlib.sha256(EMBEDDED_CORPUS.read_bytes()).hexdigest()
    with gzip.open(EMBEDDED_CORPUS, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == meta["sha256_text"]


# -- fonts ---------------------------------------------------------------------------------------------


def test_font_filter_detects_offenders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh cache directory: the offenders are detected now, not read from an old cache.
    monkeypatch.setenv("REBUSYN_CACHE_DIR", str(tmp_path / "cache"))
    fontmod.clear_cache()
    try:
        infos = {f.name: f for f in fontmod.font_infos()}
        defaults = fontmod.default_fonts()
    finally:
        fontmod.clear_cache()
    names = {p.name for p in defaults}
    for offender in ("BEBAS___.ttf", "Capture_it.ttf", "Capture_it_2.ttf", "AmaticSC-Regular.ttf"):
        assert offender not in names
        assert infos[offender].problem
    assert "reuses the capital glyphs" in infos["BEBAS___.ttf"].problem
    assert "small capitals" in infos["AmaticSC-Regular.ttf"].problem
    assert {"`", "~"} <= infos["Capture_it.ttf"].missing  # no glyph: drawn as the .notdef box
    assert len(defaults) >= 80 and "Roboto-Regular.ttf" in names
    assert (tmp_path / "cache" / "fonts-v1.json").is_file()


def test_every_default_font_draws_and_distinguishes_case(cache_env: None) -> None:
    for info in fontmod.font_infos():
        if not info.usable:
            continue
        assert set(fontmod.REQUIRED_CHARS) <= info.chars, info.name
        font = ImageFont.truetype(str(info.path), 48, layout_engine=ImageFont.Layout.BASIC)
        same = sum(bytes(font.getmask(a)) == bytes(font.getmask(b))
                   for a, b in zip(string.ascii_lowercase, string.ascii_uppercase))
        assert same <= 2, (info.name, same)
        # lower case has ascenders above the x-height: not small capitals
        assert font.getbbox("h")[1] < font.getbbox("x")[1] - 2, info.name


def test_every_font_char_pair_renders_a_real_glyph(cache_env: None) -> None:
    """For each (default font, character of the 36 charset + upper case): not .notdef, not empty."""
    for path in fontmod.default_fonts():
        font = ImageFont.truetype(str(path), 32, layout_engine=ImageFont.Layout.BASIC)
        notdef = {_mask_key(font, u) for u in ("\uffff", "\U0010fffd")}
        for ch in CHARS_36_AND_UPPER:
            mask = font.getmask(ch)
            assert mask.size[0] > 0 and mask.size[1] > 0 and max(bytes(mask)) > 0, (path.name, ch)
            assert _mask_key(font, ch) not in notdef, (path.name, ch)


def _mask_key(font: ImageFont.FreeTypeFont, ch: str) -> tuple:
    mask = font.getmask(ch)
    return mask.size, bytes(mask)


def test_fonts_from_dir(tmp_path: Path, cache_env: None) -> None:
    latin = fontmod.trdg_fonts_dir()
    for name in ("Roboto-Regular.ttf", "BEBAS___.ttf", "Lato-Bold.ttf"):
        shutil.copy(latin / name, tmp_path / name)
    (tmp_path / "README.txt").write_text("not a font")
    assert [p.name for p in fontmod.fonts_from_dir(tmp_path)] == ["Lato-Bold.ttf", "Roboto-Regular.ttf"]
    with pytest.raises(FileNotFoundError):
        fontmod.fonts_from_dir(tmp_path / "nope")


def test_trdg_clipped_text_is_detected() -> None:
    # trdg cuts descenders at the image edge ("Pageantry" reads "Pageantru"); its character mask shows it
    from rebusyn.synth.trdg_engine import clipped

    mask = Image.new("RGB", (40, 20))
    mask.paste((0, 0, 1), (5, 3, 30, 17))  # character 1, 3 px inside every edge
    assert not clipped(mask)
    mask.paste((0, 0, 2), (30, 10, 34, 20))  # character 2 runs into the bottom row
    assert clipped(mask)


def test_every_font_char_pair_of_the_94_charset_is_judged_right(cache_env: None) -> None:
    """Every (usable font, printable ASCII character) pair, rendered once: the characters a font is said to
    draw have a real glyph (ink, not .notdef); the others have none (no engine gives them that font)."""
    for info in fontmod.font_infos():
        if not info.usable:
            continue
        font = ImageFont.truetype(str(info.path), 32, layout_engine=ImageFont.Layout.BASIC)
        notdef = {_mask_key(font, u) for u in ("\uffff", "\U0010fffd")}
        for ch in fontmod.PRINTABLE_ASCII:
            mask = font.getmask(ch)
            real = mask.size[0] > 0 and mask.size[1] > 0 and max(bytes(mask)) > 0
            real = real and _mask_key(font, ch) not in notdef
            assert real == (ch in info.chars), (info.name, ch)
