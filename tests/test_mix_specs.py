"""Mix specs: per-source weights, ratio sweeps sharing the real part, and spec files (the shipped ones and
their validation), through the library and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rebusyn.cli import main
from rebusyn.mix import (
    MixOptions,
    _allocate,
    load_spec,
    mix,
    mix_sweep,
    parse_weights,
    resolve_options,
    specs_dir,
)
from tests.conftest_helpers import make_root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 30 real (20 + 10), 100 synthetic (60 + 40)
    return make_root(
        tmp_path_factory.mktemp("specs") / "root",
        {"alpha": ("R", 20), "beta": ("E", 10), "syn_a": ("S", 60), "syn_b": ("S", 40)},
    )


def _keys(summary, synthetic: bool) -> set[str]:  # noqa: ANN001
    rows = pq.read_table(summary.manifest_path, columns=["key", "synthetic"]).to_pylist()
    return {r["key"] for r in rows if r["synthetic"] == synthetic}


def test_weighted_allocation_is_exact() -> None:
    assert _allocate(10, np.array([60, 40]), [1.0, 1.0]).tolist() == [6, 4]
    assert _allocate(10, np.array([60, 40]), [1.0, 3.0]).tolist() == [3, 7]  # 60 : 120
    assert _allocate(10, np.array([60, 40]), [0.0, 1.0]).tolist() == [0, 10]
    big = _allocate(25_000_000, np.array([7_224_612, 5_522_808, 1_700_000, 1_200_000]), [1, 1, 2.5, 0.5])
    assert big.sum() == 25_000_000 and big.tolist()[2] > big.tolist()[3] * 3  # no int64 overflow, exact sum


def test_weights_shift_draws_and_are_recorded(root: Path, tmp_path: Path) -> None:
    s = mix(MixOptions(root=root, out=tmp_path, ratio=(1, 1), weights={"syn_b": 3.0}))
    # 30 synthetic draws over 60 x 1 : 40 x 3 -> 10 : 20
    assert (s.per_source["syn_a"]["drawn"], s.per_source["syn_b"]["drawn"]) == (10, 20)
    assert s.per_source["syn_b"]["weight"] == 3.0
    spec = json.loads(s.json_path.read_text())
    assert spec["spec"]["weights"] == {"syn_b": 3.0}
    zero = mix(MixOptions(root=root, out=tmp_path, ratio=(1, 1), weights={"syn_a": 0}, name="z"))
    assert zero.per_source["syn_a"]["drawn"] == 0 and zero.per_source["syn_b"]["drawn"] == 30
    # a real source weighted 0 leaves the size too: every row of the others once, none repeated
    no_beta = mix(MixOptions(root=root, out=tmp_path, ratio=(1, 1), weights={"beta": 0}, name="nb"))
    assert (no_beta.per_source["alpha"]["drawn"], no_beta.per_source["beta"]["drawn"]) == (20, 0)
    assert no_beta.per_source["alpha"]["repeats"] == 0 and no_beta.synthetic == 20
    with pytest.raises(ValueError, match="no training index.*nope"):
        mix(MixOptions(root=root, out=tmp_path, weights={"nope": 2}))
    with pytest.raises(ValueError, match=r"this part \(synthetic\) has weight 0: syn_a, syn_b"):
        mix(MixOptions(root=root, out=tmp_path, weights={"syn_a": 0, "syn_b": 0}))


def test_parse_weights() -> None:
    assert parse_weights("coco_text=2, mjsynth=0.5") == {"coco_text": 2.0, "mjsynth": 0.5}
    for bad in ("coco_text", "=2", "a=x", "a=-1", "a=inf"):
        with pytest.raises(ValueError):
            parse_weights(bad)


def test_sweep_shares_the_real_part(root: Path, tmp_path: Path) -> None:
    ratios = [(1, 0.5), (1, 1), (1, 2)]
    summaries = mix_sweep(MixOptions(root=root, out=tmp_path), ratios)
    assert [s.name for s in summaries] == ["rebusyn-1to0.5", "rebusyn-1to1", "rebusyn-1to2"]
    assert [s.synthetic for s in summaries] == [15, 30, 60] and {s.real for s in summaries} == {30}
    reals = [_keys(s, False) for s in summaries]
    assert reals[0] == reals[1] == reals[2] and len(reals[0]) == 30
    synth = [_keys(s, True) for s in summaries]
    assert len(synth[0]) == 15 and len(synth[2]) == 60
    with pytest.raises(ValueError, match="repeats a ratio"):
        mix_sweep(MixOptions(root=root, out=tmp_path), [(1, 1), (1, 1.0)])


def test_shipped_specs_load() -> None:
    assert sorted(p.name for p in specs_dir().glob("*.yaml")) == [
        "ratio-sweep.yaml", "rebu-syn-1to3.yaml", "rebu-syn-3to1.yaml"
    ]  # fmt: skip
    expected = {"name": "rebu-syn-3to1", "ratio": (3.0, 1.0), "seed": 0, "weights": {}}
    assert load_spec("rebu-syn-3to1") == expected
    assert load_spec("rebu-syn-1to3")["ratio"] == (1.0, 3.0)
    assert load_spec("ratio-sweep")["sweep"] == [(1, 0.5), (1, 1), (1, 2), (1, 3), (1, 4), (1, 5)]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("schema: 2\n", "schema"),
        ("schema: true\n", "schema"),
        ("schema: 1\nratio: 3-1\n", "ratio"),
        ("schema: 1\nsweep: []\n", "sweep"),
        ("schema: 1\nseed: x\n", "seed"),
        ("schema: 1\nweights: {a: -1}\n", "weight of 'a'"),
        ("schema: 1\nepochz: 3\n", "epochz"),
        ("schema: 1\nratio: [\n", "not valid YAML"),
    ],
)
def test_bad_specs_name_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_spec(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_command_line_wins_over_the_spec(root: Path, tmp_path: Path) -> None:
    opts, sweep = resolve_options(root, tmp_path, spec="rebu-syn-3to1", ratio="1:1", weights="syn_a=2")
    assert (opts.ratio, opts.weights, opts.name, sweep) == ((1.0, 1.0), {"syn_a": 2.0}, "rebu-syn-3to1", None)


def test_cli_spec_and_sweep(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["mix", "--root", str(root), "--out", str(tmp_path), "--spec", "rebu-syn-3to1"]) == 0
    assert (tmp_path / "rebu-syn-3to1" / "manifest.parquet").is_file()
    assert pq.read_metadata(tmp_path / "rebu-syn-3to1" / "manifest.parquet").num_rows == 40  # 30 + 10
    code = main(["mix", "--root", str(root), "--out", str(tmp_path), "--sweep", "1:0.5,1:1", "--name", "s"])
    out = capsys.readouterr().out
    assert code == 0 and "manifest s-1to0.5" in out and "manifest s-1to1" in out
    assert main(["mix", "--root", str(root), "--out", str(tmp_path), "--weights", "nope=1"]) != 0


def test_epochs_draw_their_own_subset_and_order(root: Path, tmp_path: Path) -> None:
    one = mix(MixOptions(root=root, out=tmp_path, name="one"))
    three = mix(MixOptions(root=root, out=tmp_path, name="three", epochs=3))
    rows = pq.read_table(three.manifest_path).to_pylist()
    assert three.rows == len(rows) == 3 * 40 and [r["epoch"] for r in rows] == [0] * 40 + [1] * 40 + [2] * 40
    first = pq.read_table(one.manifest_path).to_pylist()
    assert [r["key"] for r in rows[:40]] == [r["key"] for r in first]  # epoch 0 is the 1-epoch manifest
    epochs = [[r for r in rows if r["epoch"] == e] for e in range(3)]
    real = [sorted(r["key"] for r in ep if not r["synthetic"]) for ep in epochs]
    assert real[0] == real[1] == real[2] and len(real[0]) == 30  # every real sample once per epoch
    synth = [frozenset(r["key"] for r in ep if r["synthetic"]) for ep in epochs]
    assert all(len(s) == 10 for s in synth) and len(set(synth)) == 3  # 10 of 100 synthetic, new ones each
    orders = [[r["key"] for r in ep] for ep in epochs]
    assert orders[0] != orders[1] != orders[2]
    again = mix(MixOptions(root=root, out=tmp_path / "again", name="three", epochs=3))
    assert again.manifest_path.read_bytes() == three.manifest_path.read_bytes()  # reproducible
    spec = json.loads(three.json_path.read_text())
    assert spec["spec"]["epochs"] == 3 and spec["counts"]["epochs"] == 3 and spec["counts"]["rows"] == 120
    with pytest.raises(ValueError, match="epochs"):
        MixOptions(root=root, epochs=0)
