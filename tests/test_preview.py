"""`rebusyn preview`: seeded random crops read from real LMDB shards onto a contact sheet. Every crop here is
a solid colour unique to its row, so the sheet's pixels say which rows it shows and whether each crop came
from the right shard and index."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image

from rebusyn.cli import main
from rebusyn.mix import MixOptions, mix
from rebusyn.preview import CAPTION_H, CELL_H, CELL_W, pick_rows, preview
from rebusyn.sample import Sample
from rebusyn.store.dataset import SourceWriter

SOURCES = {"alpha": ("R", 30), "beta": ("B", 5), "syn": ("S", 120)}  # 30 + 5 + 120 rows
HEAD = 28  # the title band of a sheet with a title


def colour_of(source: str, i: int) -> tuple[int, int, int]:
    """A colour unique to (source, i) for these sizes, far from white and from the grid's greys."""
    base = {"alpha": 0, "beta": 1, "syn": 2}[source]
    return (40 + base * 80, 20 + (i * 7) % 200, 30 + (i * 3) % 60)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("preview") / "root"
    for source, (group, n) in SOURCES.items():
        with SourceWriter(root, source, group, max_shard_samples=16) as writer:
            for i in range(n):
                buf = io.BytesIO()
                Image.new("RGB", (96, 32), colour_of(source, i)).save(buf, "PNG")
                writer.add(Sample(image=buf.getvalue(), label=f"{source}{i}",
                                  label_raw=f"{source.upper()}-{i}", source=source, group=group,
                                  key=f"{source}/{i}", width=96, height=32))  # fmt: skip
            writer.close()
    return root


def cell_colour(sheet: np.ndarray, k: int, columns: int) -> tuple[int, int, int]:
    """The colour at the centre of the crop area of cell k."""
    x = (k % columns) * CELL_W + CELL_W // 2
    y = HEAD + (k // columns) * (CELL_H + CAPTION_H) + CELL_H // 2
    return tuple(int(v) for v in sheet[y, x])  # type: ignore[return-value]


def row_number(label: str, source: str) -> int:
    return int(label[len(source) :])


def test_sheet_shows_the_drawn_rows_from_the_right_shards(root: Path, tmp_path: Path) -> None:
    summary = preview(root, tmp_path / "p.png", n=20, seed=3, columns=5)
    assert (summary.shown, summary.rows, summary.undecodable) == (20, 155, 0)
    sheet = np.asarray(Image.open(summary.out).convert("RGB"))
    assert sheet.shape == (HEAD + 4 * (CELL_H + CAPTION_H), 5 * CELL_W, 3)
    _, rows, _ = pick_rows(root, n=20, seed=3)
    for k, (source, label) in enumerate(zip(*(rows.column(c).to_pylist() for c in ("source", "label")))):
        assert cell_colour(sheet, k, 5) == colour_of(source, row_number(label, source))
    assert sum(summary.sources.values()) == 20


def test_seeded_draw_without_repeats(root: Path) -> None:
    keys = lambda seed, n=40: pick_rows(root, n=n, seed=seed)[1].column("label").to_pylist()  # noqa: E731
    assert keys(1) == keys(1)
    assert keys(1) != keys(2)
    assert len(set(keys(1, 155))) == 155  # n = all rows: every row once
    assert len(keys(1, 10_000)) == 155  # more than there are: all of them


def test_source_and_group_filters(root: Path) -> None:
    _, rows, drawn_from = pick_rows(root, n=64, sources=["beta"])
    assert drawn_from == 5 and set(rows.column("source").to_pylist()) == {"beta"}
    _, rows, drawn_from = pick_rows(root, n=64, groups=["R", "S"])
    assert drawn_from == 150 and set(rows.column("source").to_pylist()) == {"alpha", "syn"}
    with pytest.raises(ValueError, match=r"no source 'gamma'.*alpha, beta, syn"):
        pick_rows(root, sources=["gamma"])


def test_per_source_shows_every_source_side_by_side(root: Path) -> None:
    _, rows, _ = pick_rows(root, n=100, per_source=4, seed=7)
    sources = rows.column("source").to_pylist()
    assert sources == ["alpha"] * 4 + ["beta"] * 4 + ["syn"] * 4
    # the rows of each source are its first draws in the seeded order
    order = pick_rows(root, n=155, seed=7)[1].column("label").to_pylist()
    alpha_first = [label for label in order if label.startswith("alpha")][:4]
    assert rows.column("label").to_pylist()[:4] == alpha_first


def test_manifest_input(root: Path, tmp_path: Path) -> None:
    manifest = mix(MixOptions(root=root, out=tmp_path / "m", seed=2)).manifest_path.parent
    summary = preview(manifest, tmp_path / "m.png", n=12, columns=4)
    sheet = np.asarray(Image.open(summary.out).convert("RGB"))
    _, rows, drawn_from = pick_rows(manifest, n=12)
    assert drawn_from == summary.rows
    for k, (source, label) in enumerate(zip(*(rows.column(c).to_pylist() for c in ("source", "label")))):
        assert cell_colour(sheet, k, 4) == colour_of(source, row_number(label, source))


def test_undecodable_crop_is_a_red_cell_and_counted(root: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(root, tmp_path / "broken"))
    shard = broken / "train" / "real" / "B" / "beta" / "shard-00000"
    env = lmdb.open(str(shard), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"image-000000003", b"\x89PNG\r\n\x1a\n truncated")
    env.close()
    summary = preview(broken, tmp_path / "b.png", n=5, sources=["beta"], columns=5)
    assert summary.undecodable == 1
    sheet = np.asarray(Image.open(summary.out).convert("RGB"))
    _, rows, _ = pick_rows(broken, n=5, sources=["beta"])
    k = rows.column("label").to_pylist().index("beta2")  # idx 3 is the third row
    assert cell_colour(sheet, k, 5) == (255, 0, 0)


def test_cli(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sheet.png"
    assert main(["preview", str(root), "--source", "alpha,beta", "--n", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"written to {out}" in printed and "preview: 8 crops of 35 rows" in printed
    assert Image.open(out).size == (8 * CELL_W, HEAD + CELL_H + CAPTION_H)
    assert main(["preview", str(root), "--source", "nope", "--out", str(tmp_path / "x.png")]) == 1
    assert "no source 'nope'" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
