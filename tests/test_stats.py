"""`rebusyn stats`: figures computed from real indexes, manifests and build reports, checked against values
worked out independently here (Counter, numpy, a pandas merge); the terminal, JSON and HTML outputs."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rebusyn.cli import main
from rebusyn.mix import MixOptions, mix
from rebusyn.report import SourceReport
from rebusyn.sample import Sample
from rebusyn.stats import MAX_LENGTH_BIN, char_counts, compute, format_text
from rebusyn.stats_html import render
from rebusyn.store.dataset import SourceWriter
from tests.conftest_helpers import png_bytes

LONG = "a" * (MAX_LENGTH_BIN + 5)  # counted in the last length bin
# source -> (group, [(label, label_raw, width, height)])
SAMPLES = {
    "alpha": ("R", [("ab", "AB", 20, 10), ("abc", "a-b-c", 30, 10), ("hello", "Héllo!", 50, 10),
                    ("x1", "X 1", 12, 6), ("zzzz", "zzzz", 40, 8)]),
    "beta": ("B", [("cafe", "Café", 16, 8), ("no", "N°", 24, 8), ("tag", "<script>tag</script>", 0, 0)]),
    "syn": ("S", [("ab", "ab", 10, 32), ("ab", "ab", 70, 32), ("q", "q", 33, 32), (LONG, LONG, 400, 32)]),
}  # fmt: skip
# what the 36-char policy removed from those raw labels, worked out by hand ('É', 'é', 'A'.. fold into labels)
REMOVED = {"-": 2, "!": 1, " ": 1, "°": 1, "<": 2, ">": 2, "/": 1}


def write_root(root: Path) -> Path:
    shade = 0
    for source, (group, rows) in SAMPLES.items():
        with SourceWriter(root, source, group) as writer:
            for i, (label, raw, w, h) in enumerate(rows):
                shade += 1
                writer.add(Sample(image=png_bytes(max(w, 4), max(h, 4), shade), label=label, label_raw=raw,
                                  source=source, group=group, key=f"{source}/{i}", width=w,
                                  height=h))  # fmt: skip
            writer.close()
    report = SourceReport("alpha", "R")
    report.kept = 5
    report.dropped.update({"dont_care": 3, "label_too_long": 1})
    report.finish()
    report.write(root)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_root(tmp_path_factory.mktemp("stats") / "root")


def labels_of(*sources: str) -> list[str]:
    return [label for s in sources for label, *_ in SAMPLES[s][1]]


def test_root_counts_lengths_and_characters(root: Path) -> None:
    stats = compute(root)
    assert (stats.kind, stats.rows, stats.real, stats.synthetic) == ("root", 12, 8, 4)
    assert stats.ratio == 2.0
    assert [(s.group, s.name, s.rows, s.synthetic) for s in stats.sources] == [
        ("R", "alpha", 5, False), ("B", "beta", 3, False), ("S", "syn", 4, True)]  # fmt: skip
    assert stats.groups() == {"R": 5, "B": 3, "S": 4}

    for kind, sources in (("real", ("alpha", "beta")), ("synthetic", ("syn",))):
        expected = Counter(min(len(label), MAX_LENGTH_BIN) for label in labels_of(*sources))
        hist = stats.label_length[kind]
        assert {i: n for i, n in enumerate(hist) if n} == dict(expected)
    assert stats.label_length["synthetic"][MAX_LENGTH_BIN] == 1  # LONG

    expected_chars = Counter("".join(labels_of("alpha", "beta", "syn")))
    assert dict(stats.chars) == dict(expected_chars)
    assert stats.chars[0] == expected_chars.most_common(1)[0]
    assert stats.chars_total == sum(expected_chars.values())
    assert dict(stats.removed_chars) == REMOVED
    assert stats.sources[0].label_length_mean == pytest.approx(np.mean([len(x) for x in labels_of("alpha")]))


def test_sizes_and_percentiles(root: Path) -> None:
    stats = compute(root)
    alpha = stats.sources[0]
    heights = [h for *_, h in SAMPLES["alpha"][1]]
    assert (alpha.height.p5, alpha.height.p50, alpha.height.p95) == tuple(
        pytest.approx(v) for v in np.percentile(heights, [5, 50, 95])
    )
    aspects = [w / h for *_, w, h in SAMPLES["alpha"][1]]
    assert alpha.aspect.p50 == pytest.approx(np.median(aspects), abs=0.01)
    beta = stats.sources[1]
    assert beta.width.p50 == pytest.approx(20)  # the row without a size (0 x 0) is left out
    assert stats.unknown_size == 1
    # every sized row lands in exactly one bin, including the 400 px one clipped into range
    assert sum(stats.width["real"].counts) == 7 and sum(stats.width["synthetic"].counts) == 4
    assert sum(stats.aspect["synthetic"].counts) == 4
    edges = np.asarray(stats.height["synthetic"].edges)
    assert stats.height["synthetic"].counts[int(np.searchsorted(edges, 32, side="right")) - 1] == 4


def test_root_reports_give_kept_and_dropped_by_reason(root: Path) -> None:
    alpha, beta, _ = compute(root).sources
    assert (alpha.kept, alpha.dropped) == (5, 4)
    assert alpha.dropped_by_reason == {"dont_care": 3, "label_too_long": 1}
    assert beta.kept is None and beta.dropped is None  # no report: nothing invented
    text = format_text(compute(root))
    assert "4 (44%): dont_care 3, label_too_long 1" in text


def test_manifest_rows_as_drawn_with_sizes_from_the_indexes(root: Path, tmp_path: Path) -> None:
    manifest = mix(MixOptions(root=root, out=tmp_path / "m", ratio=(3.0, 1.0), seed=5)).manifest_path
    stats = compute(manifest.parent)
    table = pq.read_table(manifest).to_pandas()
    assert stats.kind == "manifest" and stats.rows == len(table)
    assert {s.name: s.rows for s in stats.sources} == table["source"].value_counts().to_dict()
    assert stats.real == int((~table["synthetic"]).sum()) and stats.synthetic == int(table["synthetic"].sum())
    # widths by an independent path: a pandas merge of the manifest with the indexes
    index = pd.concat(pq.read_table(p, columns=["shard", "idx", "w"]).to_pandas()
                      for p in sorted((root / "index").glob("*.parquet")))  # fmt: skip
    merged = table.merge(index, on=["shard", "idx"], how="left", validate="many_to_one")
    for source in stats.sources:
        widths = merged.loc[(merged["source"] == source.name) & (merged["w"] > 0), "w"]
        assert source.width.p50 == pytest.approx(float(np.median(widths)))


def test_manifest_with_epochs_says_so(root: Path, tmp_path: Path) -> None:
    manifest = mix(MixOptions(root=root, out=tmp_path / "m", epochs=2, seed=1)).manifest_path
    stats = compute(manifest.parent)
    assert stats.epochs == 2 and stats.rows == pq.read_metadata(manifest).num_rows
    assert any("2 epochs" in note for note in stats.notes)


def test_test_split_of_a_root(root: Path, tmp_path: Path) -> None:
    test_root = write_root(tmp_path / "r")
    with SourceWriter(test_root, "bench", "T") as writer:
        writer.add(Sample(image=png_bytes(8, 8, 1), label="go", label_raw="GO", source="bench", group="T",
                          key="bench/0", width=8, height=8))  # fmt: skip
        writer.close()
    stats = compute(test_root, split="test")
    assert [(s.name, s.rows) for s in stats.sources] == [("bench", 1)]
    assert "bench" not in {s.name for s in compute(test_root).sources}


@pytest.mark.parametrize(
    "values",
    [
        ["ab", "ba", "", None, "zz"],
        ["日本語", "naïve", "e\u0301", "🙂🙂", "a"],  # CJK, precomposed and combining accents, astral plane
        ["x" * 300, "", ""],
    ],
)
def test_char_counts_match_counter(values: list[str | None]) -> None:
    expected = Counter("".join(v for v in values if v))
    array = pa.array(values, type=pa.string())
    assert char_counts(array) == dict(expected)
    # a slice (non-zero offset) and a chunked column read the right bytes
    assert char_counts(array.slice(1)) == dict(Counter("".join(v for v in values[1:] if v)))
    chunked = pa.chunked_array([array.slice(0, 2), array.slice(2)])
    assert char_counts(chunked) == dict(expected)


def test_cli_text_and_json(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    assert main(["stats", str(root), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "real : synthetic = 8 : 4 = 2.00 : 1 (66.7% real)" in printed
    assert re.search(r"^\s+R\s+alpha\s+5\s+41\.7%", printed, re.M)
    assert f"JSON: {out}" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["rows"] == 12 and data["ratio_real_to_synthetic"] == 2.0
    assert data["groups"] == {"R": 5, "B": 3, "S": 4}
    assert dict(map(tuple, data["removed_chars"])) == REMOVED


def test_html_needs_matplotlib_and_says_so_before_any_work(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    out = tmp_path / "s.html"
    assert main(["stats", str(root), "--html", str(out)]) == 1
    captured = capsys.readouterr()
    assert "rebusyn[plots]" in captured.err
    assert captured.out == "" and not out.exists()


def test_html_page_is_self_contained_and_escaped(root: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    sheet = io.BytesIO()
    Image.new("RGB", (40, 20), "red").save(sheet, "PNG")
    page = render(compute(root), preview_png=sheet.getvalue())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == 4  # rows per source, label length, characters, sizes
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page
    # nothing is fetched: no script, stylesheet link or URL outside data: URIs
    assert not re.search(r"<script|<link|<iframe|\b(src|href)=\"(?!data:|#)|url\((?!#|data:)", page)
    embedded = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert embedded and Image.open(io.BytesIO(base64.b64decode(embedded.group(1)))).size == (40, 20)
    # the raw label "<script>tag</script>" only ever appears as escaped characters
    assert "&lt;" in page and "<script>" not in page
    assert "alpha" in page and "dont_care 3" in page


def test_stats_of_something_else_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(tmp_path)]) == 1
    assert "neither a manifest" in capsys.readouterr().err


def test_charset_named_by_the_reports_decides_what_was_removed(tmp_path: Path) -> None:
    root = write_root(tmp_path / "r")
    for source, (group, _) in SAMPLES.items():  # every report says --charset 94
        report = SourceReport(source, group)
        report.options = {"charset": "94", "max_len": 25}
        report.finish()
        report.write(root)
    stats = compute(root)
    assert (stats.charset, stats.charset_from) == ("94", "reports")
    assert dict(stats.removed_chars) == {" ": 1, "°": 1}  # 94 keeps punctuation, folds 'é' to 'e'
    assert "charset policy (94) removed" in format_text(stats)
