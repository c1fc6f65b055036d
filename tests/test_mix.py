from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import lmdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from rebusyn.mix import MANIFEST_SCHEMA, MixOptions, _allocate, format_summary, mix, parse_ratio
from tests.conftest_helpers import make_root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 30 real (20 + 10), 100 synthetic (60 + 40), plus a benchmark that must never be mixed.
    return make_root(
        tmp_path_factory.mktemp("mix") / "root",
        {"alpha": ("R", 20), "beta": ("E", 10), "syn_a": ("S", 60), "syn_b": ("S", 40), "bench": ("T", 4)},
    )


@pytest.fixture(scope="module")
def short_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(tmp_path_factory.mktemp("short") / "root", {"alpha": ("R", 30), "syn": ("S", 5)})


def read(summary) -> tuple[list[dict], dict]:  # noqa: ANN001
    rows = pq.read_table(summary.manifest_path).to_pylist()
    return rows, json.loads(summary.json_path.read_text())


def test_default_policy_3_to_1(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, out=tmp_path))
    rows, spec = read(summary)
    assert summary.name == "rebusyn-3to1"
    assert summary.manifest_path == tmp_path / "rebusyn-3to1" / "manifest.parquet"
    assert (summary.real, summary.synthetic, summary.repeated_synthetic) == (30, 10, 0)
    assert len(rows) == 40 and sum(r["synthetic"] for r in rows) == 10
    assert pq.read_schema(summary.manifest_path).names == MANIFEST_SCHEMA.names
    # every real sample exactly once; synthetic without replacement
    real = [(r["shard"], r["idx"]) for r in rows if not r["synthetic"]]
    index_real = [(r["shard"], r["idx"]) for s in ("alpha", "beta")
                  for r in pq.read_table(root / "index" / f"{s}.parquet").to_pylist()]
    assert sorted(real) == sorted(index_real)
    synth = [(r["shard"], r["idx"]) for r in rows if r["synthetic"]]
    assert len(set(synth)) == 10
    assert all(r["group"] != "T" and r["source"] != "bench" for r in rows)
    assert all(r["synthetic"] == (r["group"] == "S") for r in rows)
    assert all(not r["shard"].startswith("/") and (root / r["shard"] / "data.mdb").is_file() for r in rows)
    assert spec["spec"] == {
        "ratio": [3.0, 1.0], "seed": 0, "size_policy": "all-real", "total": None, "weights": {}, "epochs": 1
    }  # fmt: skip
    assert spec["root"] == str(root.resolve())
    assert spec["counts"]["repeated_synthetic"] == 0 and spec["notes"] == []
    assert spec["excluded_test_indexes"] == ["bench"]


def test_proportional_per_source(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, out=tmp_path))
    rows, spec = read(summary)
    # 10 synthetic draws over 60 + 40 available -> 6 + 4
    assert summary.per_source["syn_a"]["drawn"] == 6 and summary.per_source["syn_b"]["drawn"] == 4
    assert sum(r["source"] == "syn_a" for r in rows) == 6
    assert spec["sources"]["syn_b"] == {
        "group": "S", "available": 40, "drawn": 4, "repeats": 0, "weight": 1.0
    }  # fmt: skip
    assert spec["sources"]["alpha"]["drawn"] == 20 and spec["sources"]["beta"]["drawn"] == 10


def test_allocate_is_exact_and_proportional() -> None:
    quotas = _allocate(10, np.array([60, 40]))
    assert quotas.tolist() == [6, 4]
    quotas = _allocate(7, np.array([1, 1, 1]))
    assert quotas.sum() == 7 and quotas.tolist() == [3, 2, 2]
    quotas = _allocate(1000, np.array([333, 667]))
    assert quotas.tolist() == [333, 667]


def test_short_synthetic_repeats_are_flagged(short_root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=short_root, out=tmp_path))
    rows, spec = read(summary)
    assert (summary.real, summary.synthetic) == (30, 10)
    assert summary.repeated_synthetic == 5
    synth = [(r["shard"], r["idx"]) for r in rows if r["synthetic"]]
    assert len(synth) == 10 and len(set(synth)) == 5  # all 5 taken, 5 repeats
    assert spec["counts"]["repeated_synthetic"] == 5
    assert spec["sources"]["syn"] == {"group": "S", "available": 5, "drawn": 10, "repeats": 5, "weight": 1.0}
    assert any("replacement" in note and "5" in note for note in spec["notes"])
    assert summary.notes == spec["notes"]
    text = format_summary(summary)
    assert "10 synthetic" in text and "5 repeated" in text and "replacement" in text


def test_total(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, out=tmp_path, total=20, name="t20"))
    rows, spec = read(summary)
    assert (summary.real, summary.synthetic, len(rows)) == (15, 5, 20)
    assert spec["spec"]["size_policy"] == "total" and spec["spec"]["total"] == 20
    assert summary.per_source["alpha"]["drawn"] == 10 and summary.per_source["beta"]["drawn"] == 5
    assert len({(r["shard"], r["idx"]) for r in rows}) == 20  # no repeats needed
    # 1:1 with total 100 needs 50 real out of 30: all once + 20 repeats, stated
    big = mix(MixOptions(root=root, out=tmp_path, total=100, ratio=(1, 1)))
    _, big_spec = read(big)
    assert big.name == "rebusyn-1to1"
    assert (big.real, big.synthetic, big.repeated_real, big.repeated_synthetic) == (50, 50, 20, 0)
    assert big_spec["counts"]["repeated_real"] == 20 and big_spec["notes"]


def test_deterministic_bytes_and_seed(root: Path, tmp_path: Path) -> None:
    a = mix(MixOptions(root=root, out=tmp_path / "a", seed=7))
    b = mix(MixOptions(root=root, out=tmp_path / "b", seed=7))
    assert sha256(a.manifest_path) == sha256(b.manifest_path)
    assert sha256(a.json_path) == sha256(b.json_path)
    # rerunning into the same place replaces the files with identical bytes
    again = mix(MixOptions(root=root, out=tmp_path / "a", seed=7))
    assert sha256(again.manifest_path) == sha256(b.manifest_path)
    assert not list((tmp_path / "a" / a.name).glob("*.tmp-*"))
    c = mix(MixOptions(root=root, out=tmp_path / "c", seed=8))
    rows_b, _ = read(b)
    rows_c, _ = read(c)
    assert [(r["shard"], r["idx"]) for r in rows_b] != [(r["shard"], r["idx"]) for r in rows_c]


def test_json_fingerprints_match_index_files(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, out=tmp_path))
    _, spec = read(summary)
    assert set(spec["indexes"]) == {"alpha", "beta", "syn_a", "syn_b"}
    for name, info in spec["indexes"].items():
        assert info["path"] == f"index/{name}.parquet"
        assert info["sha256"] == sha256(root / "index" / f"{name}.parquet")
    assert spec["manifest"]["sha256"] == sha256(summary.manifest_path)
    assert spec["rebusyn_version"]
    assert spec["manifest"]["rows"] == 40


def test_mix_never_opens_lmdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_root(tmp_path / "root", {"alpha": ("R", 9), "syn": ("S", 9)})
    shutil.move(root / "train", tmp_path / "moved-away")

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("mix opened an LMDB environment")

    monkeypatch.setattr(lmdb, "open", refuse)
    summary = mix(MixOptions(root=root, out=tmp_path / "m", ratio=(1, 1)))
    assert (summary.real, summary.synthetic) == (9, 9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3:1", (3.0, 1.0)), ("1:0.5", (1.0, 0.5)), (" 2 : 1 ", (2.0, 1.0)), ("1:0", (1.0, 0.0)),
     ("0:1", (0.0, 1.0))],
)
def test_parse_ratio_accepts(text: str, expected: tuple[float, float]) -> None:
    assert parse_ratio(text) == expected


@pytest.mark.parametrize("text", ["3", "3:1:1", "a:b", "-1:1", "1:-2", "0:0", "inf:1", "nan:1", "", "3/1"])
def test_parse_ratio_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="ratio"):
        parse_ratio(text)


def test_options_validation(root: Path) -> None:
    assert MixOptions(root=root, ratio=(1, 0.5)).manifest_name == "rebusyn-1to0.5"
    with pytest.raises(ValueError, match="seed"):
        MixOptions(root=root, seed=-1)
    with pytest.raises(ValueError, match="total"):
        MixOptions(root=root, total=0)
    with pytest.raises(ValueError, match="name"):
        MixOptions(root=root, name="a/b")
    with pytest.raises(ValueError, match="ratio"):
        MixOptions(root=root, ratio=(0, 0))


def test_errors(tmp_path: Path, short_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Parquet indexes"):
        mix(MixOptions(root=tmp_path / "empty", out=tmp_path / "m"))
    real_only = make_root(tmp_path / "real", {"alpha": ("R", 4), "bench": ("T", 2)})
    with pytest.raises(ValueError, match="rebusyn synth"):
        mix(MixOptions(root=real_only, out=tmp_path / "m"))
    ok = mix(MixOptions(root=real_only, out=tmp_path / "m", ratio=(1, 0)))
    assert (ok.real, ok.synthetic) == (4, 0)
    synth_only = make_root(tmp_path / "synth", {"syn": ("S", 4)})
    with pytest.raises(ValueError, match="real"):
        mix(MixOptions(root=synth_only, out=tmp_path / "m"))
    only_synth = mix(MixOptions(root=synth_only, out=tmp_path / "m", ratio=(0, 1)))
    assert (only_synth.real, only_synth.synthetic) == (0, 4)
