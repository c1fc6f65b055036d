"""A build that runs out of disk space, on a real size-limited filesystem (a tmpfs mounted for the test):
it stops with a clear error, leaves nothing half-written where readers look, and once space is freed the
same command finishes with exactly the bytes of an uninterrupted build."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lmdb
import pytest

REBUSYN = [sys.executable, "-c", "import sys; from rebusyn.cli import main; sys.exit(main())"]
SOURCES = "icdar2015,totaltext,svt"


def digest(root: Path) -> dict[str, str]:
    files = sorted(root.glob("train/**/data.mdb")) + sorted(root.glob("index/*.parquet"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def build(root: Path, mirror: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*REBUSYN, "build", "--sources", SOURCES, "--max-shard-bytes", "20000", "-q",
                           "--root", str(root), "--mirror", str(mirror)],
                          env=env, capture_output=True, text=True, timeout=240)  # fmt: skip


@pytest.fixture()
def small_fs(tmp_path: Path):  # noqa: ANN201
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        done = subprocess.run(["umount", str(mount)], capture_output=True, text=True)
        if done.returncode != 0:  # still busy for a moment after the last subprocess: detach it lazily
            subprocess.run(["umount", "-l", str(mount)], check=True)


def visible_output_is_whole(root: Path) -> None:
    """Every index names shards that open and hold what the index says; staging folders are hidden."""
    import pyarrow.parquet as pq

    for index in root.glob("index/*.parquet"):
        assert json.loads((root / "reports" / f"{index.stem}.json").read_text())["status"] == "complete"
        rows = pq.read_table(index, columns=["shard"]).column("shard").to_pylist()
        for shard in set(rows):
            env = lmdb.open(str(root / shard), readonly=True, lock=False)
            with env.begin() as txn:
                assert int(txn.get(b"num-samples")) == rows.count(shard)
            env.close()


@pytest.mark.parametrize("left", [1_000_000, 150_000])  # bytes left free: runs out at different writes
def test_disk_full_then_freed(small_fs: Path, tmp_path: Path, left: int) -> None:
    from rebusyn.samplegen import write_samples

    mirror = tmp_path / "mirror"
    write_samples(mirror, SOURCES.split(","))
    env = {**os.environ, "REBUSYN_CACHE_DIR": str(tmp_path / "cache")}
    reference = tmp_path / "reference"
    assert build(reference, mirror, env).returncode == 0

    root = small_fs / "root"
    assert build(root, mirror, env).returncode == 0  # fetch and extract once; then keep only those
    for built in ("train", "index", "reports"):
        shutil.rmtree(root / built)
    free = shutil.disk_usage(small_fs).free
    ballast = small_fs / "ballast"
    ballast.write_bytes(b"\0" * (free - left))  # less than the shards need

    full = build(root, mirror, env)
    assert full.returncode == 1
    assert "No space left on device" in full.stderr, full.stderr
    assert f"writing {root}" in full.stderr or f"writing LMDB shard {root}" in full.stderr  # says where
    assert "free some space and run the same command again" in full.stderr
    visible_output_is_whole(root)
    assert list(root.glob("train/**/.*.staging"))  # the interrupted source's finished shards wait there

    ballast.unlink()
    again = build(root, mirror, env)
    assert again.returncode == 0, again.stderr
    assert digest(root) == digest(reference)
    visible_output_is_whole(root)
    assert not list(root.glob("train/**/.*.staging"))
