"""`rebusyn verify`: a clean root, manifest and foreign LMDB pass; every kind of damage, done with plain
`lmdb`, pyarrow or file writes on a copy, is reported with its kind and location, and the CLI exits 1 (2
when the path is not something verify knows)."""

from __future__ import annotations

import faulthandler
import hashlib
import io
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

import lmdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rebusyn.cli import main
from rebusyn.mix import MixOptions, mix
from rebusyn.report import SourceReport
from rebusyn.store.index import INDEX_SCHEMA
from rebusyn.verify import VerifyOptions, VerifyResult, verify
from tests.conftest_helpers import make_root, png_bytes

SHARD = "train/real/R/alpha/shard-00000"  # alpha: 25 samples, shards of 10


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_root(tmp_path_factory.mktemp("verify") / "root",
                     {"alpha": ("R", 25), "beta": ("B", 8), "syn": ("S", 6), "bench": ("T", 4)})  # fmt: skip
    for source in ("alpha", "beta", "syn", "bench"):
        report = SourceReport(source, "R")
        report.options = {"charset": "36", "max_len": 25}
        if source == "alpha":  # a download the report names, as build records it
            download = root / "downloads" / "alpha" / "alpha.zip"
            download.parent.mkdir(parents=True)
            with zipfile.ZipFile(download, "w") as zf:
                zf.writestr("gt.txt", "img_1.jpg,alpha\n")
            sha = hashlib.sha256(download.read_bytes()).hexdigest()
            report.inputs = [{"name": "alpha.zip", "sha256": sha, "checksum_ok": True},
                             {"name": "gone.zip", "sha256": "0" * 64, "checksum_ok": True}]  # fmt: skip
        report.finish()
        report.write(root)
    return root


@pytest.fixture()
def root(clean_root: Path, tmp_path: Path) -> Path:
    """A copy of the clean root this test may damage."""
    return Path(shutil.copytree(clean_root, tmp_path / "root"))


def run(path: Path, **kw) -> VerifyResult:  # noqa: ANN003
    return verify(VerifyOptions(path=path, progress=False, **kw))


def listed(result: VerifyResult, kind: str) -> list[dict]:
    return [p for p in result.problems.listed if p["kind"] == kind]


def put(shard: Path, key: bytes, value: bytes | None) -> None:
    """Write (or delete, value None) one key of an LMDB with plain lmdb."""
    env = lmdb.open(str(shard), subdir=True)
    with env.begin(write=True) as txn:
        if value is None:
            assert txn.delete(key)
        else:
            txn.put(key, value)
    env.close()


def rewrite_index(root: Path, source: str, column: str, row: int, value: object) -> None:
    path = root / "index" / f"{source}.parquet"
    table = pq.read_table(path)
    values = table[column].to_pylist()
    values[row] = value
    table = table.set_column(table.schema.get_field_index(column), column,
                             pa.array(values, INDEX_SCHEMA.field(column).type))  # fmt: skip
    pq.write_table(table, path)


# -- clean inputs -------------------------------------------------------------------------------------


def test_clean_root_passes_and_writes_its_report(root: Path) -> None:
    result = run(root)
    assert result.problems.counts == {}, result.problems.listed
    assert result.exit_code == 0
    c = result.checked
    # 3 + 1 + 1 + 1 shards, every sample scanned and decoded, labels checked against the reports' policy 36
    assert (c["shards"], c["samples"], c["images_decoded"]) == (6, 43, 43)
    assert c["labels_policy_checked"] == 43 and c["index_rows"] == 43 and c["archives"] == 1
    assert any("1 download(s)" in note and "alpha/gone.zip" in note for note in result.notes)
    report = json.loads((root / "reports" / "verify.json").read_text())
    assert report["ok"] is True and report["problems_total"] == 0 and report["kind"] == "root"
    assert [s["path"] for s in report["shards"]] == [
        "test/bench", "train/real/B/beta/shard-00000", SHARD, "train/real/R/alpha/shard-00001",
        "train/real/R/alpha/shard-00002", "train/synth/syn/shard-00000",
    ]  # fmt: skip
    # its own report is not mistaken for a source report on the next run
    assert run(root).checked["reports"] == 4


def dtrb(out: Path, labels: list[str], images: list[bytes] | None = None) -> None:
    """An LMDB written as deep-text-recognition-benchmark's create_lmdb_dataset.py does: no meta keys,
    `num-samples` a str."""
    os.makedirs(out, exist_ok=True)
    env = lmdb.open(str(out), map_size=2**30)
    cache = {}
    cnt = 1
    for i, label in enumerate(labels):
        cache[("image-%09d" % cnt).encode()] = images[i] if images else png_bytes(20 + i, 10, i)  # noqa: UP031
        cache[("label-%09d" % cnt).encode()] = label.encode()  # noqa: UP031
        cnt += 1
    cache["num-samples".encode()] = str(cnt - 1).encode()  # noqa: UP012
    with env.begin(write=True) as txn:
        for k, v in cache.items():
            txn.put(k, v)
    env.close()


def noise_png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_foreign_dtrb_lmdb_and_tree(tmp_path: Path) -> None:
    tree = tmp_path / "data_lmdb_release"
    dtrb(tree / "training" / "MJ", ["Hello", "world", "42"])
    dtrb(tree / "training" / "ST", ["a", "b"])
    (tree / "training" / ".ST.staging").mkdir()
    (tree / "training" / ".ST.staging" / "data.mdb").write_bytes(b"half a shard")  # hidden: skipped

    single = run(tree / "training" / "MJ")
    assert single.kind == "lmdb" and single.ok and single.checked["samples"] == 3
    assert any("not checked against a charset policy" in n for n in single.notes)
    whole = run(tree)
    assert whole.kind == "tree" and whole.ok
    assert [s.name for s in whole.shards] == ["training/MJ", "training/ST"]
    # with a policy, the upper-case label is reported where it is
    strict = run(tree, charset="36")
    assert strict.problems.counts == {"label-policy": 1}
    (problem,) = listed(strict, "label-policy")
    assert (problem["path"], problem["key"], problem["idx"]) == ("training/MJ", "label-000000001", 1)
    assert "'hello'" in problem["detail"]
    assert run(tree, charset="94").ok
    # a listing bound over two LMDBs: every garbage image counted, the first two named
    for name in ("one", "two"):
        dtrb(tmp_path / "bad" / name, ["x"] * 5, [b"\x89PNG garbage"] * 5)
    bad = run(tmp_path / "bad", max_listed=2)
    assert bad.problems.counts == {"image-undecodable": 10}
    assert [(p["path"], p["idx"]) for p in listed(bad, "image-undecodable")] == [("one", 1), ("one", 2)]


# -- damaged LMDBs ------------------------------------------------------------------------------------


def test_garbage_image(root: Path) -> None:
    put(root / SHARD, b"image-000000003", b"this is not an image")
    result = run(root)
    assert result.problems.counts == {"image-undecodable": 1, "index-sha1-mismatch": 1}
    for kind in ("image-undecodable", "index-sha1-mismatch"):
        (p,) = listed(result, kind)
        assert (p["path"], p["key"], p["idx"]) == (SHARD, "image-000000003", 3)
    assert result.exit_code == 1


def test_missing_label_key(root: Path) -> None:
    put(root / SHARD, b"label-000000004", None)
    result = run(root)
    assert result.problems.counts == {"sample-key-missing": 1}
    (p,) = listed(result, "sample-key-missing")
    assert (p["path"], p["key"], p["idx"]) == (SHARD, "label-000000004", 4)


def test_label_not_utf8(root: Path) -> None:
    put(root / SHARD, b"label-000000005", b"alp\xff4")
    result = run(root)
    assert result.problems.counts == {"label-not-utf8": 1}
    (p,) = listed(result, "label-not-utf8")
    assert (p["path"], p["key"], p["idx"]) == (SHARD, "label-000000005", 5)


def test_num_samples_too_small(root: Path) -> None:
    put(root / SHARD, b"num-samples", b"9")
    result = run(root)
    extra = listed(result, "sample-key-extra")
    assert {p["key"] for p in extra} == {"image-000000010", "label-000000010", "meta-000000010"}
    assert {p["path"] for p in extra} == {SHARD}
    assert result.problems.counts["index-count-mismatch"] == 1  # 10 index rows for 9 samples
    assert [p["idx"] for p in listed(result, "index-idx-bad")] == [10]
    assert set(result.problems.counts) == {"sample-key-extra", "index-count-mismatch", "index-idx-bad"}


def test_num_samples_too_large(root: Path) -> None:
    put(root / SHARD, b"num-samples", b"11")
    result = run(root)
    assert {p["key"] for p in listed(result, "sample-key-missing")} == {"image-000000011", "label-000000011"}
    assert result.problems.counts == {"sample-key-missing": 2, "index-count-mismatch": 1}


def test_num_samples_missing_or_not_a_number(root: Path) -> None:
    put(root / SHARD, b"num-samples", None)
    put(root / "train/real/R/alpha/shard-00001", b"num-samples", b"ten")
    result = run(root)
    assert [p["path"] for p in listed(result, "num-samples-missing")] == [SHARD]
    assert [p["path"] for p in listed(result, "num-samples-invalid")] == ["train/real/R/alpha/shard-00001"]
    # the samples are still scanned: both shards' images decoded
    assert result.checked["images_decoded"] == 43


def test_extra_image_beyond_num_samples(root: Path) -> None:
    put(root / SHARD, b"image-000000011", png_bytes(20, 10, 1))
    result = run(root)
    assert result.problems.counts == {"sample-key-extra": 1}
    (p,) = listed(result, "sample-key-extra")
    assert (p["path"], p["key"], p["idx"]) == (SHARD, "image-000000011", 11)


def test_random_bytes_instead_of_lmdb(root: Path) -> None:
    data = root / "train/real/R/alpha/shard-00001" / "data.mdb"
    data.write_bytes(os.urandom(64 * 1024))
    result = run(root)
    assert result.problems.counts == {"shard-unreadable": 1}
    (p,) = listed(result, "shard-unreadable")
    assert p["path"] == "train/real/R/alpha/shard-00001" and "lmdb" in p["detail"].lower()
    assert result.checked["shards"] == 6 and result.checked["samples"] == 33  # the other shards still checked


def test_label_outside_the_36_policy(root: Path) -> None:
    put(root / SHARD, b"label-000000002", b"ALP1")
    result = run(root)
    assert result.problems.counts == {"label-policy": 1, "index-label-mismatch": 1}
    (p,) = listed(result, "label-policy")
    assert (p["path"], p["key"], p["idx"]) == (SHARD, "label-000000002", 2)
    assert "'alp1'" in p["detail"]


def test_truncated_lmdb(tmp_path: Path) -> None:
    dtrb(tmp_path / "cut", ["w"] * 100, [noise_png(i) for i in range(100)])
    data = tmp_path / "cut" / "data.mdb"
    with open(data, "r+b") as f:  # an interrupted copy
        f.truncate(data.stat().st_size // 2)
    result = run(tmp_path / "cut")
    (p,) = listed(result, "shard-unreadable")
    assert p["path"] == "cut" and "truncated" in p["detail"]


def test_a_shard_that_kills_its_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the truncation guard, reading past the end of the mapped file is a SIGBUS: with workers the
    # worker dies, the shard is reported and the shards that shared the broken pool are checked again.
    import rebusyn.verify as verify_module

    for name in ("a", "b", "c"):
        dtrb(tmp_path / "tree" / name, ["w"] * 100, [noise_png(i) for i in range(100)])
    data = tmp_path / "tree" / "b" / "data.mdb"
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    monkeypatch.setattr(verify_module, "_truncated", lambda path, env: None)  # forked workers inherit it
    enabled = faulthandler.is_enabled()
    faulthandler.disable()  # or each dying worker prints pytest's faulthandler traceback
    try:
        result = run(tmp_path / "tree", workers=2)
    finally:
        if enabled:
            faulthandler.enable(file=sys.__stderr__)
    assert result.problems.counts == {"shard-unreadable": 1}
    (p,) = listed(result, "shard-unreadable")
    assert p["path"] == "b" and "killed the process" in p["detail"]
    assert [(s.name, s.decoded) for s in result.shards] == [("a", 100), ("b", 0), ("c", 100)]


# -- indexes, orphans, reports -------------------------------------------------------------------------


def test_index_row_past_num_samples(root: Path) -> None:
    rewrite_index(root, "alpha", "idx", 9, 11)  # row 9 is (shard-00000, 10)
    result = run(root)
    (p,) = listed(result, "index-idx-bad")
    assert (p["path"], p["idx"]) == (SHARD, 11) and "outside 1..10" in p["detail"]
    assert set(result.problems.counts) == {"index-idx-bad"}


def test_index_sha1_mismatch(root: Path) -> None:
    rewrite_index(root, "beta", "sha1", 5, "0" * 40)
    result = run(root)
    assert result.problems.counts == {"index-sha1-mismatch": 1}
    (p,) = listed(result, "index-sha1-mismatch")
    assert (p["path"], p["idx"]) == ("train/real/B/beta/shard-00000", 6)


def test_index_names_a_missing_shard(root: Path) -> None:
    shutil.rmtree(root / "test" / "bench")
    result = run(root)
    assert result.problems.counts == {"index-shard-missing": 1}
    assert listed(result, "index-shard-missing")[0]["path"] == "test/bench"


def test_unreadable_index(root: Path) -> None:
    (root / "index" / "beta.parquet").write_bytes(b"PAR1 not parquet")
    result = run(root)
    assert [p["path"] for p in listed(result, "index-unreadable")] == ["index/beta.parquet"]
    # its shard is now named by no readable index
    assert [p["path"] for p in listed(result, "orphan-shard")] == ["train/real/B/beta/shard-00000"]


def test_orphan_shard(root: Path) -> None:
    shutil.copytree(root / SHARD, root / "train/real/R/alpha/shard-00099")
    shutil.copytree(root / SHARD, root / "train/real/R/.alpha.staging-1/shard-00000")  # hidden: not an orphan
    result = run(root)
    assert result.problems.counts == {"orphan-shard": 1}
    assert listed(result, "orphan-shard")[0]["path"] == "train/real/R/alpha/shard-00099"


def test_download_sha256_mismatch_and_skip_archives(root: Path) -> None:
    (root / "downloads" / "alpha" / "alpha.zip").write_bytes(b"another archive")
    result = run(root)
    assert result.problems.counts == {"archive-sha256-mismatch": 1}
    (p,) = listed(result, "archive-sha256-mismatch")
    assert p["path"] == "downloads/alpha/alpha.zip" and "reports/alpha.json" in p["detail"]
    skipped = run(root, skip_archives=True)
    assert skipped.ok and skipped.checked["archives"] == 0
    assert any("--skip-archives" in n for n in skipped.notes)


def test_unreadable_report(root: Path) -> None:
    (root / "reports" / "beta.json").write_text("{not json")
    result = run(root)
    assert [p["path"] for p in listed(result, "report-unreadable")] == ["reports/beta.json"]
    assert any("beta" in n and "not checked against a charset policy" in n for n in result.notes)


def test_results_do_not_depend_on_workers(root: Path, tmp_path: Path) -> None:
    put(root / SHARD, b"image-000000003", b"garbage")
    put(root / "train/real/R/alpha/shard-00002", b"label-000000001", b"UPPER")
    rewrite_index(root, "syn", "sha1", 0, "f" * 40)
    one = run(root, workers=1, report=tmp_path / "one.json").to_dict()
    two = run(root, workers=2, report=tmp_path / "two.json").to_dict()
    one.pop("elapsed_s"), two.pop("elapsed_s")
    assert one == two and one["problems_total"] == 5


# -- manifests ----------------------------------------------------------------------------------------


def test_manifest_clean_then_tampered(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, ratio=(3.0, 1.0), out=tmp_path / "manifests"))
    manifest_dir = summary.manifest_path.parent
    clean = run(manifest_dir)
    assert clean.ok, clean.problems.listed
    assert clean.kind == "manifest" and clean.checked["manifest_rows"] == summary.rows
    assert clean.checked["index_files"] == 3  # bench (group T) is never drawn from
    assert run(manifest_dir / "manifest.json").ok

    table = pq.read_table(summary.manifest_path)
    labels = table["label"].to_pylist()
    labels[0] = "tampered"
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label",
                                    pa.array(labels, pa.string())), summary.manifest_path)  # fmt: skip
    result = run(manifest_dir)
    assert result.problems.counts == {"manifest-sha256-mismatch": 1, "manifest-label-mismatch": 1}
    (p,) = listed(result, "manifest-label-mismatch")
    assert p["path"] == table["shard"][0].as_py() and p["idx"] == table["idx"][0].as_py()
    assert p["detail"].startswith("manifest row 0:")


def test_manifest_of_a_moved_root(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, ratio=(1.0, 0.0), out=tmp_path / "manifests"))
    moved = Path(shutil.move(root, tmp_path / "moved"))
    lost = run(summary.manifest_path.parent)
    assert lost.problems.counts == {"manifest-root-missing": 1}
    found = run(summary.manifest_path.parent, root=moved)
    assert found.ok and found.checked["shards"] == 4  # alpha's 3 + beta's 1: a 1:0 mix draws no synthetic


def test_manifest_after_a_source_changed(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, ratio=(3.0, 1.0), out=tmp_path / "manifests"))
    beta = pq.read_table(summary.manifest_path).filter(pc.equal(pc.field("source"), "beta"))
    shard = "train/real/B/beta/shard-00000"
    assert sorted(beta["idx"].to_pylist()) == list(range(1, 9)) and set(beta["shard"].to_pylist()) == {shard}
    put(root / shard, b"num-samples", b"7")  # the manifest's draw of sample 8 falls off the shard
    rewrite_index(root, "alpha", "label", 0, "alp0x")
    result = run(summary.manifest_path.parent)
    assert [p["path"] for p in listed(result, "manifest-index-changed")] == ["index/alpha.parquet"]
    (missing,) = listed(result, "manifest-row-missing")
    manifest = pq.read_table(summary.manifest_path)
    row = list(zip(manifest["shard"].to_pylist(), manifest["idx"].to_pylist())).index((shard, 8))
    assert (missing["path"], missing["idx"]) == (shard, 8)
    assert missing["detail"] == f"manifest row {row}: idx 8 is outside 1..7 of its shard"
    (changed,) = listed(result, "index-label-mismatch")
    assert (changed["path"], changed["idx"]) == (SHARD, 1)
    assert result.exit_code == 1


# -- the command --------------------------------------------------------------------------------------


def test_cli_exit_codes_and_report(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["verify", str(root), "--skip-archives"]) == 0
    assert "problems: none" in capsys.readouterr().out
    put(root / SHARD, b"label-000000004", None)
    out_json = tmp_path / "v.json"
    assert main(["verify", str(root), "--workers", "2", "--report", str(out_json)]) == 1
    printed = capsys.readouterr().out
    assert "sample-key-missing" in printed and f"{SHARD} label-000000004" in printed
    report = json.loads(out_json.read_text())
    assert report["problem_counts"] == {"sample-key-missing": 1}
    assert report["problems"] == [{"kind": "sample-key-missing", "path": SHARD, "key": "label-000000004",
                                   "idx": 4, "detail": "no label- key for this index"}]  # fmt: skip
    assert main(["verify", str(root / SHARD), "--charset", "36"]) == 1  # the one LMDB, on its own
    (tmp_path / "empty").mkdir()
    assert main(["verify", str(tmp_path / "empty")]) == 2
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert main(["verify", str(root), "--workers", "0"]) == 2
    (tmp_path / "foreign.json").mkdir()
    (tmp_path / "foreign.json" / "manifest.json").write_text(json.dumps({"format": "other"}))
    assert main(["verify", str(tmp_path / "foreign.json")]) == 2
    assert "not a rebusyn manifest" in capsys.readouterr().err


def test_summary_is_readable(root: Path) -> None:
    from rebusyn.verify import format_summary

    put(root / SHARD, b"image-000000003", b"junk")
    text = format_summary(run(root))
    assert "image-undecodable" in text and f"{SHARD} image-000000003" in text
    assert text.endswith("FAILED: 2 problem(s)")
