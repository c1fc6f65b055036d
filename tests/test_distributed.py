"""Work units on the local pool and on a real Ray instance (ray.init(num_cpus=2)), an S3 root on a moto
server on 127.0.0.1, and workers killed mid-unit (SIGKILL through the REBUSYN_FAULT_* testing hook).

The bar: the same command gives byte-identical index and shards whatever runs it, and a killed worker
leaves nothing half-published and costs only a retry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lmdb
import pyarrow.parquet as pq
import pytest

from rebusyn.executors import FAULT_DIR_ENV, FAULT_KILL_ENV, FAULT_TIMES_ENV, LocalExecutor, UnitFailure
from rebusyn.storage import Storage
from rebusyn.synth.run import SynthOptions, UnitsFailed, synthesize

ray = pytest.importorskip("ray")  # the ray extra; CI installs it (Makefile)

N = 600  # three first-round units of 250, 250 and 100, plus a top-up unit for the drops


def digest_tree(root: Path, rel: str = "train/synth/fast") -> dict[str, str]:
    """sha256 of every data.mdb under root/rel plus the index: what must match byte for byte. (lock.mdb is
    LMDB's table of reader pids, runtime state that no reader of a finished shard uses.)"""
    files = sorted((root / rel).rglob("data.mdb")) + [root / "index" / "fast.parquet"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def no_leftovers(root: Path) -> None:
    hidden = [p for p in (root / "train" / "synth").iterdir() if p.name.startswith(".")]
    assert hidden == [], f"staging or scratch left behind: {hidden}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, cache_env: None) -> Path:
    root = tmp_path_factory.mktemp("reference")
    summary = synthesize(SynthOptions(n=N, root=root, progress=False))
    assert summary.kept == N and summary.units == 4
    return root


def run(root: Path | str, **kw) -> object:
    return synthesize(SynthOptions(n=N, root=root, progress=False, **kw))


def test_local_pool_and_ray_give_the_same_bytes(reference: Path, tmp_path: Path, ray_instance: None) -> None:
    run(tmp_path / "pool", workers=2)
    run(tmp_path / "ray", executor="ray")
    expected = digest_tree(reference)
    assert len(expected) == 4 + 1  # a shard per unit, and the index
    assert digest_tree(tmp_path / "pool") == expected
    assert digest_tree(tmp_path / "ray") == expected
    report = json.loads((tmp_path / "ray" / "reports" / "fast.json").read_text())
    assert report["status"] == "complete" and report["options"]["executor"] == "ray"
    no_leftovers(tmp_path / "ray")


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_killed_worker_is_retried(reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  executor: str, request: pytest.FixtureRequest) -> None:  # fmt: skip
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    monkeypatch.setenv(FAULT_KILL_ENV, "1")
    monkeypatch.setenv(FAULT_DIR_ENV, str(tmp_path))
    summary = run(tmp_path / "out", workers=2, executor=executor)
    assert (tmp_path / "killed-unit-1").exists()  # the worker really died mid-unit
    assert summary.kept == N
    assert digest_tree(tmp_path / "out") == digest_tree(reference)
    no_leftovers(tmp_path / "out")


def test_exhausted_retries_list_the_unit_and_a_rerun_finishes(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv(FAULT_KILL_ENV, "2")
    monkeypatch.setenv(FAULT_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(FAULT_TIMES_ENV, "5")  # unit 2 dies on every run, also when run alone
    with pytest.raises(UnitsFailed, match=r"unit 2 \(indices 500-599\): worker process died"):
        run(out, workers=2, retries=0)
    report = json.loads((out / "reports" / "fast.json").read_text())
    assert report["status"] == "failed"
    assert [u["unit"] for u in report["output"]["failed_units"]] == [2]  # not unit 1, its neighbour
    assert not (out / "train" / "synth" / "fast").exists()  # nothing was published as the output
    assert not (out / "index" / "fast.parquet").exists()
    monkeypatch.delenv(FAULT_KILL_ENV)
    run(out, workers=2, retries=0)
    assert digest_tree(out) == digest_tree(reference)
    report = json.loads((out / "reports" / "fast.json").read_text())
    assert report["output"]["resumed_units"] == 2  # units 0 and 1 had finished: not rendered again
    no_leftovers(out)


def test_unit_errors_are_retried_then_reported() -> None:
    calls: list[int] = []

    def flaky(x: int) -> int:
        calls.append(x)
        if x == 3 and calls.count(3) < 2:
            raise OSError("transient")
        if x == 4:
            raise ValueError("always")
        return x * 10

    results = dict(LocalExecutor(1, retries=1).run(flaky, [1, 3, 4]))
    assert results[0] == 10 and results[1] == 30
    assert isinstance(results[2], UnitFailure) and results[2].attempts == 2
    assert "ValueError: always" in results[2].error


def test_s3_root_gets_the_same_bytes(reference: Path, tmp_path: Path, s3) -> None:  # noqa: ANN001
    fs, bucket = s3
    summary = run(f"s3://{bucket}/data", workers=2)
    assert summary.output_dir == f"s3://{bucket}/data/train/synth/fast"
    fs.invalidate_cache()
    listed = sorted(fs.find(f"{bucket}/data"))
    assert f"{bucket}/data/index/fast.parquet" in listed and f"{bucket}/data/reports/fast.json" in listed
    local = tmp_path / "download"
    fs.get(f"{bucket}/data/", str(local), recursive=True)
    assert digest_tree(local) == digest_tree(reference)
    shard = local / "train" / "synth" / "fast" / "shard-00000"
    env = lmdb.open(str(shard), readonly=True, lock=False)
    with env.begin() as txn:
        assert int(txn.get(b"num-samples")) > 200
    env.close()
    report = json.loads((local / "reports" / "fast.json").read_text())
    assert report["status"] == "complete" and report["output"]["dir"] == summary.output_dir
    assert list((tmp_path).iterdir()) == [local]  # no scratch was left in the working folder either


def test_s3_rebuild_replaces_the_old_shards(s3) -> None:  # noqa: ANN001
    fs, bucket = s3
    root = f"s3://{bucket}/d2"
    synthesize(SynthOptions(n=300, root=root, progress=False, unit_size=100))
    fs.invalidate_cache()
    first = Storage(root).list_shards("train/synth/fast")
    assert first[:3] == ["shard-00000", "shard-00001", "shard-00002"]
    synthesize(SynthOptions(n=100, root=root, progress=False, unit_size=100))  # unit 0 + a top-up
    fs.invalidate_cache()
    second = Storage(root).list_shards("train/synth/fast")
    with fs.open(f"{bucket}/d2/index/fast.parquet", "rb") as handle:
        indexed = sorted({s.rsplit("/", 1)[1] for s in pq.read_table(handle).column("shard").to_pylist()})
    assert second == indexed == ["shard-00000", "shard-00001"]  # nothing of the first build is left
    assert len(first) == 4


class _RecordingFs:
    def __init__(self) -> None:
        self.puts: list[str] = []

    def put_file(self, local: str, remote: str) -> None:
        self.puts.append(remote.rsplit("/", 1)[1])


def test_remote_publish_puts_data_mdb_last(tmp_path: Path) -> None:
    shard = tmp_path / "shard-00007"
    shard.mkdir()
    for name in ("data.mdb", "lock.mdb", "zz.extra"):
        (shard / name).write_bytes(b"x")
    storage = Storage("s3://bucket/x")
    storage._fs = _RecordingFs()  # noqa: SLF001 - a recording stand-in for s3fs
    storage.publish_dir(shard, "train/synth/fast/shard-00007")
    assert storage._fs.puts == ["lock.mdb", "zz.extra", "data.mdb"]  # noqa: SLF001
    assert not shard.exists()


def test_failed_s3_rebuild_leaves_no_stale_index(
    s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> None:
    fs, bucket = s3
    root = f"s3://{bucket}/d3"
    synthesize(SynthOptions(n=300, root=root, progress=False, unit_size=100))
    monkeypatch.setenv(FAULT_KILL_ENV, "1")
    monkeypatch.setenv(FAULT_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(FAULT_TIMES_ENV, "5")
    with pytest.raises(UnitsFailed):
        synthesize(SynthOptions(n=200, root=root, progress=False, unit_size=100, workers=2, retries=0))
    fs.invalidate_cache()
    # the old shards went first (no rename on an object store): their index must not outlive them
    assert not fs.exists(f"{bucket}/d3/index/fast.parquet")
    report = json.loads(fs.cat(f"{bucket}/d3/reports/fast.json"))
    assert report["status"] == "failed" and report["output"]["failed_units"][0]["unit"] == 1
