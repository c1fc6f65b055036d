"""`rebusyn mix` never draws what `dedup --policy drop-from-train` listed, and refuses a stale list."""

import io
import json

import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from rebusyn.dedup import DedupOptions, dedup
from rebusyn.mix import MixOptions, mix
from rebusyn.sample import Sample
from rebusyn.samplegen.scene import load_font
from rebusyn.store.dataset import SourceWriter

WORDS = ["harbour", "lantern", "orchard", "velvet", "quarry", "meadow", "cobalt", "fjord", "zenith", "pylon"]


def crop(text: str, shade: int) -> bytes:
    img = Image.new("RGB", (24 + 16 * len(text), 40), (shade, 230 - shade // 3, 200))
    ImageDraw.Draw(img).text((10, 6), text, fill=(20, 20, 20), font=load_font(26))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write(root, source, group, items):
    with SourceWriter(root, source, group) as w:
        for i, (text, data) in enumerate(items):
            w.add(Sample(data, text, text, source, group, f"{source}/{i}", 10, 10))
        w.close()


@pytest.fixture
def root(tmp_path):
    real_a = [(w, crop(w, 40 + 9 * i)) for i, w in enumerate(WORDS[:5])]
    real_b = [(w, crop(w, 120 + 9 * i)) for i, w in enumerate(WORDS[5:])]
    real_b[0] = real_a[2]  # the same crop reached two sources
    write(tmp_path, "alpha", "R", real_a)
    write(tmp_path, "beta", "R", real_b)
    write(tmp_path, "bench", "T", [real_a[4]])  # a training crop that is also a test crop
    write(tmp_path, "trdg", "S", [(f"s{i}", crop(f"synth{i}", 10 * i)) for i in range(12)])
    return tmp_path


def test_mix_skips_listed_duplicates(root, tmp_path):
    summary = dedup(DedupOptions(root=root, policy="drop-from-train", progress=False))
    drop = pq.read_table(root / "dedup" / "drop.parquet").to_pylist()
    assert len(drop) == 2 and summary.exact_pairs >= 2
    mixed = mix(MixOptions(root=root, ratio=(3.0, 1.0), out=tmp_path / "m"))
    rows = pq.read_table(mixed.manifest_path).to_pylist()
    drawn = {(r["shard"], r["idx"]) for r in rows}
    assert not drawn & {(d["shard"], d["idx"]) for d in drop}
    assert mixed.real == 8 and mixed.synthetic == 3  # 10 real crops minus 2 duplicates, then 3:1
    manifest = json.loads(mixed.json_path.read_text())
    assert manifest["deduplicated_rows"] == 2 and any("dedup" in n for n in mixed.notes)


def test_stale_drop_list_is_refused(root, tmp_path):
    dedup(DedupOptions(root=root, policy="drop-from-train", progress=False))
    write(root, "alpha", "R", [(w, crop(w, 70)) for w in WORDS[:3]])  # rebuilt: (shard, idx) mean other crops
    with pytest.raises(ValueError, match="stale"):
        mix(MixOptions(root=root, ratio=(3.0, 1.0), out=tmp_path / "m"))


def test_build_dedup_runs_after_the_build(tmp_path, capsys):
    from rebusyn.cli import main
    from rebusyn.samplegen import write_samples
    from tests.httpserver import FileServer

    write_samples(tmp_path / "M", ["icdar2015"])
    with FileServer(tmp_path / "M") as server:
        code = main(
            [
                "build",
                "--sources",
                "icdar2015",
                "--mirror",
                server.base_url,
                "--root",
                str(tmp_path / "r"),
                "--dedup",
                "report",
                "-q",
            ]
        )
    out = capsys.readouterr().out
    assert code == 0 and (tmp_path / "r" / "reports" / "dedup.json").is_file()
    report = json.loads((tmp_path / "r" / "reports" / "dedup.json").read_text())
    # The sample mirror renders some words on several scenes in the same font; the only pairs allowed are
    # such same-word crops (a perceptual hash cannot tell them from copies), never two different words.
    assert report["counts"]["exact_pairs"] == 0
    assert all(p["a_label"] == p["b_label"] for p in report["pairs"])
    assert "dedup" in out.lower()
