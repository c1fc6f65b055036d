"""`rebusyn dedup --executor ray`: the hashing runs as Ray tasks (a real ray.init(num_cpus=2)) and every
output whose content cannot depend on the executor is byte-identical to a local run; a shard that cannot be
read fails the run with its name, before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rebusyn.cli import main
from rebusyn.dedup import DedupOptions, HashingFailed, dedup
from tests.test_dedup import Planted, copy_root, found_pairs, plant

ray = pytest.importorskip("ray")  # the ray extra

# Files dedup writes whose bytes depend only on the data (the report is compared apart: it holds timings).
OUTPUTS = ("dedup/hashes.parquet", "dedup/pairs.parquet", "dedup/drop.parquet", "sheet.png")
TIMINGS = ("elapsed_s", "hash_s", "pair_s", "crops_per_s")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    return plant(tmp_path_factory.mktemp("dedup_ray") / "root")


@pytest.fixture(scope="module")
def local_run(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: drop-from-train on two local processes, on a copy of the planted root."""
    p = copy_root(planted, tmp_path_factory.mktemp("local"))
    dedup(DedupOptions(root=p.root, policy="drop-from-train", workers=2, sheet=p.root / "sheet.png",
                       progress=False))  # fmt: skip
    return p.root


def digests(root: Path) -> dict[str, str]:
    return {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest() for rel in OUTPUTS
            if (root / rel).exists()}  # fmt: skip


def report_without_timings(root: Path) -> dict:
    report = json.loads((root / "reports" / "dedup.json").read_text())
    for key in TIMINGS:
        report.pop(key)
    report["outputs"]["sheet"] = Path(report["outputs"]["sheet"]).name  # each run's own absolute path
    return report


def shards_of(root: Path, source: str) -> list[str]:
    return sorted(set(pq.read_table(root / "index" / f"{source}.parquet", columns=["shard"])
                      .column("shard").to_pylist()))  # fmt: skip


def test_ray_outputs_are_byte_identical_to_local(
    planted: Planted, local_run: Path, ray_instance: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = copy_root(planted, tmp_path)
    shutil.rmtree(p.root / "dedup", ignore_errors=True)
    # a relative root: the driver resolves it, Ray workers (started in another directory) could not
    monkeypatch.chdir(tmp_path)
    s = dedup(DedupOptions(root=Path("root"), policy="drop-from-train", executor="ray",
                           sheet=Path("root/sheet.png"), progress=False))  # fmt: skip
    assert ray.is_initialized(), "a Ray instance the caller started must be left running"
    assert s.hashed > 0 and s.hashed + s.same_bytes_reused == s.crops and s.cached == 0
    assert found_pairs(p.root / "dedup" / "pairs.parquet") == planted.pairs  # right, not just the same
    assert set(digests(local_run)) == set(OUTPUTS)
    assert digests(p.root) == digests(local_run)
    ray_report, local_report = report_without_timings(p.root), report_without_timings(local_run)
    assert ray_report["counts"] == local_report["counts"] and ray_report["counts"]["dropped"] > 0
    assert ray_report == local_report


def test_cached_rerun_builds_no_executor(
    planted: Planted, local_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every hash cached: nothing to distribute, so no Ray start (or cluster connection), same outputs."""
    p = copy_root(planted, tmp_path)
    shutil.copytree(local_run / "dedup", p.root / "dedup")

    def no_executor(*args: object, **kwargs: object) -> None:
        raise AssertionError("an executor was built for a fully cached run")

    monkeypatch.setattr("rebusyn.dedup.make_executor", no_executor)  # called in this (the driver) process
    s = dedup(DedupOptions(root=p.root, policy="drop-from-train", executor="ray", progress=False))
    assert s.hashed == 0 and s.cached == s.crops
    assert {rel: d for rel, d in digests(p.root).items() if rel.startswith("dedup/")} == {
        rel: d for rel, d in digests(local_run).items() if rel.startswith("dedup/")
    }


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_unreadable_shards_fail_with_their_names(
    planted: Planted, tmp_path: Path, executor: str, request: pytest.FixtureRequest
) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    p = copy_root(planted, tmp_path)
    shutil.rmtree(p.root / "dedup", ignore_errors=True)
    shutil.rmtree(p.root / "reports", ignore_errors=True)
    corrupt, missing = shards_of(p.root, "real_u")[0], shards_of(p.root, "real_e")[-1]
    (p.root / corrupt / "data.mdb").write_bytes(os.urandom(16384))  # not an LMDB file
    shutil.rmtree(p.root / missing)
    with pytest.raises(HashingFailed) as info:
        dedup(DedupOptions(root=p.root, executor=executor, workers=2, retries=1, progress=False))
    message = str(info.value)
    assert "hashing failed for 2 shard(s)" in message
    # each shard with its source, attempts (one retry) and its own error, not a remote traceback
    assert f"{corrupt} (source real_u, " in message and f"{missing} (source real_e, " in message
    assert message.count(" crop(s), 2 attempt(s)): ") == 2
    assert "not an LMDB shard (no data.mdb)" in message and "MDB_INVALID" in message
    assert "Traceback" not in message and 'File "' not in message
    assert not (p.root / "dedup").exists() and not (p.root / "reports").exists()  # no partial outputs


def test_cli_passes_the_executor_options(
    planted: Planted, ray_instance: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = copy_root(planted, tmp_path)
    shutil.rmtree(p.root / "dedup", ignore_errors=True)
    bad = shards_of(p.root, "real_a")[0]
    shutil.rmtree(p.root / bad)
    code = main(["dedup", "--root", str(p.root), "--executor", "ray", "--retries", "0", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "HashingFailed" in err and f"{bad} (source real_a, " in err
    assert "crop(s), 1 attempt(s)): " in err  # --retries 0 reached the executor
    with pytest.raises(SystemExit):
        main(["dedup", "--root", str(p.root), "--executor", "spark"])


def test_executor_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="executor"):
        DedupOptions(root=tmp_path, executor="spark")
    with pytest.raises(ValueError, match="retries"):
        DedupOptions(root=tmp_path, retries=-1)
