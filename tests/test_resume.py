"""Kill `rebusyn synth` with SIGKILL (the whole process group, workers included) at different moments, then
rerun it: the result must be byte-identical to an uninterrupted run, with finished units not redone and
never a half shard where readers look."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REBUSYN = [sys.executable, "-c", "import sys; from rebusyn.cli import main; sys.exit(main())"]
ARGS = ["synth", "--n", "3000", "--unit-size", "250", "--workers", "2", "-q"]


def synth(root: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([*REBUSYN, *ARGS, "--root", str(root)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def digest(root: Path) -> dict[str, str]:
    files = sorted((root / "train" / "synth" / "fast").rglob("data.mdb")) + [root / "index" / "fast.parquet"]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def visible_shards_are_whole(root: Path) -> None:
    """What a reader globs (train/**/data.mdb outside hidden folders) is complete, or absent."""
    final = root / "train" / "synth" / "fast"
    if final.exists():
        assert (root / "index" / "fast.parquet").exists()


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "REBUSYN_CACHE_DIR": str(tmp_path / "cache")}


def test_synth_killed_repeatedly_then_resumed(tmp_path: Path, env: dict[str, str]) -> None:
    reference = tmp_path / "reference"
    done = synth(reference, env)
    assert done.wait(timeout=240) == 0, done.stderr.read().decode()
    root = tmp_path / "killed"
    state = root / "train" / "synth" / ".fast.state"
    finished_before_last_kill = 0

    def finished() -> int:
        return len(list(state.glob("unit-*.json"))) if state.exists() else 0

    # kill during startup, then once 2 and once 6 units are in (polling, so a slow machine still gets there)
    for wait_for in (None, 2, 6):
        proc = synth(root, env)
        deadline = time.monotonic() + 120
        if wait_for is None:
            time.sleep(0.5)
        while wait_for is not None and finished() < wait_for and proc.poll() is None:
            assert time.monotonic() < deadline, "no unit finished in time"
            time.sleep(0.02)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        visible_shards_are_whole(root)
        finished_before_last_kill = finished()
    rerun = synth(root, env)
    assert rerun.wait(timeout=240) == 0, rerun.stderr.read().decode()
    assert digest(root) == digest(reference)
    report = json.loads((root / "reports" / "fast.json").read_text())
    assert report["status"] == "complete"
    assert report["output"]["resumed_units"] == finished_before_last_kill
    assert finished_before_last_kill > 0, "the kills came too late or too early to test resuming"
    assert sorted(p.name for p in (root / "train" / "synth").iterdir()) == ["fast"]  # no staging left


def test_a_different_run_does_not_resume(tmp_path: Path, env: dict[str, str]) -> None:
    root = tmp_path / "root"
    proc = synth(root, env)
    state = root / "train" / "synth" / ".fast.state"
    deadline = time.monotonic() + 120
    while not list(state.glob("unit-*.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    other = subprocess.run([*REBUSYN, "synth", "--n", "300", "--seed", "7", "-q", "--root", str(root)],
                           env=env, capture_output=True, timeout=240)  # fmt: skip
    assert other.returncode == 0, other.stderr.decode()
    report = json.loads((root / "reports" / "fast.json").read_text())
    assert report["output"]["resumed_units"] == 0 and report["kept"] == 300


# --- build -------------------------------------------------------------------------------------------

BUILD = ["build", "--sources", "icdar2015,totaltext,svt", "--max-shard-bytes", "20000", "-q"]


@pytest.fixture(scope="module")
def build_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rebusyn.samplegen import write_samples

    mirror = tmp_path_factory.mktemp("mirror")
    write_samples(mirror, ["icdar2015", "totaltext", "svt"])
    return mirror


def build_cmd(root: Path, mirror: Path, *extra: str) -> list[str]:
    return [*REBUSYN, *BUILD, "--root", str(root), "--mirror", str(mirror), *extra]


def build_digest(root: Path) -> dict[str, str]:
    files = sorted(root.glob("train/**/data.mdb")) + sorted(root.glob("index/*.parquet"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def build_reference(build_mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("build-reference")
    done = subprocess.run(build_cmd(root, build_mirror), capture_output=True, timeout=240)
    assert done.returncode == 0, done.stderr.decode()
    assert len(list(root.glob("train/real/B/icdar2015/shard-*"))) > 5  # small shards: many checkpoints
    return root


def test_build_killed_mid_source_resumes_at_its_checkpoint(
    build_mirror: Path, build_reference: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    root = tmp_path / "root"
    killed_env = {**env, "REBUSYN_FAULT_KILL_AT": "build:totaltext:shards:3",
                  "REBUSYN_FAULT_DIR": str(tmp_path)}  # fmt: skip
    killed = subprocess.run(build_cmd(root, build_mirror), env=killed_env, capture_output=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL
    # icdar2015 finished before the kill; totaltext has 3 shards in its hidden staging folder, none visible
    assert (root / "index" / "icdar2015.parquet").exists() and not (root / "train/real/E/totaltext").exists()
    checkpoint = json.loads((root / "train/real/E/.totaltext.staging/.checkpoint.json").read_text())
    # the third shard ended inside a scene image: the rerun must skip that image's first words only
    assert checkpoint["shards"] == 3 and checkpoint["state"]["sample"] > 0
    first_report = (root / "reports" / "icdar2015.json").read_bytes()
    rerun = subprocess.run(build_cmd(root, build_mirror), env=env, capture_output=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert build_digest(root) == build_digest(build_reference)
    assert (root / "reports" / "icdar2015.json").read_bytes() == first_report  # up to date: not redone
    summary = rerun.stdout.decode()
    assert re.search(r"^icdar2015 .* up to date$", summary, re.M) and "; 1 up to date (" in summary
    assert not re.search(r"^totaltext .* up to date$", summary, re.M)  # resumed: built in this run
    totaltext = json.loads((root / "reports" / "totaltext.json").read_text())
    assert totaltext["resumed"] == {"shards": 3, "from_item": checkpoint["state"]["item"]}
    reference = json.loads((build_reference / "reports" / "totaltext.json").read_text())
    for key in ("kept", "images", "instances", "dropped"):  # counters carried across the kill
        assert totaltext[key] == reference[key], key
    assert not list(root.glob("train/**/.*staging*"))
    forced = subprocess.run(build_cmd(root, build_mirror, "--force"), env=env, capture_output=True,
                            timeout=240)  # fmt: skip
    assert forced.returncode == 0 and (root / "reports" / "icdar2015.json").read_bytes() != first_report


def test_build_killed_at_random_moments(
    build_mirror: Path, build_reference: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    root = tmp_path / "root"
    for delay in (0.3, 1.0, 1.6, 2.2):
        proc = subprocess.Popen(build_cmd(root, build_mirror), env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        for index in root.glob("index/*.parquet"):  # whatever is visible is whole
            source = index.stem
            assert json.loads((root / "reports" / f"{source}.json").read_text())["status"] == "complete"
    final = subprocess.run(build_cmd(root, build_mirror), env=env, capture_output=True, timeout=240)
    assert final.returncode == 0, final.stderr.decode()
    assert build_digest(root) == build_digest(build_reference)
