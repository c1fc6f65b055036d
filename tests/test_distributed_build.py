"""`rebusyn build` as work units (one per source): on a real Ray instance and into an S3 root on a moto
server, from sample archives served over HTTP on 127.0.0.1. The shards and indexes must be byte-identical
to a plain local build."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from rebusyn.build import BuildOptions, SourcesFailed, build
from rebusyn.samplegen import write_samples
from tests.httpserver import FileServer

ray = pytest.importorskip("ray")

SOURCES = ("icdar2015", "totaltext", "svt")


def digest(root: Path) -> dict[str, str]:
    """sha256 of every data.mdb and index file (lock.mdb is LMDB runtime state, not data)."""
    files = sorted(root.glob("train/**/data.mdb")) + sorted(root.glob("index/*.parquet"))
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    www = tmp_path_factory.mktemp("mirror")
    write_samples(www, list(SOURCES))
    with FileServer(www) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def reference(mirror: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("local")
    build(BuildOptions(root, sources=SOURCES, mirror=mirror, progress=False))
    assert len(digest(root)) >= 2 * len(SOURCES)
    return root


def test_ray_build_is_byte_identical(
    reference: Path, mirror: str, tmp_path: Path, ray_instance: None
) -> None:
    result = build(BuildOptions(tmp_path, sources=SOURCES, mirror=mirror, progress=False, executor="ray"))
    assert [s.source for s in result.sources] == list(SOURCES)  # recipe order, whatever finished first
    assert digest(tmp_path) == digest(reference)
    for source in SOURCES:
        report = json.loads((tmp_path / "reports" / f"{source}.json").read_text())
        assert report["status"] == "complete"


def test_failed_source_is_listed_and_the_others_are_built(
    mirror: str, tmp_path: Path, ray_instance: None
) -> None:
    # coco_text has no archive on this mirror: its task fails, icdar2015's does not
    opts = BuildOptions(tmp_path, sources=("icdar2015", "coco_text"), mirror=mirror, progress=False,
                        executor="ray", retries=0)  # fmt: skip
    with pytest.raises(SourcesFailed) as failure:
        build(opts)
    message = str(failure.value)
    assert re.search(r"coco_text: _NotFound: HTTP 404 .*cocotext\.v2\.zip.*Built: icdar2015", message)
    assert "Traceback" not in message and "ray::" not in message
    assert (tmp_path / "index" / "icdar2015.parquet").is_file()
    assert not (tmp_path / "index" / "coco_text.parquet").exists()


def test_s3_root(reference: Path, mirror: str, tmp_path: Path, s3) -> None:  # noqa: ANN001
    fs, bucket = s3
    result = build(BuildOptions(f"s3://{bucket}/data", sources=SOURCES, mirror=mirror, progress=False,
                                work_dir=tmp_path / "work"))  # fmt: skip
    assert result.sources[0].output == f"s3://{bucket}/data/train/real/B/icdar2015"
    fs.invalidate_cache()
    local = tmp_path / "download"
    fs.get(f"{bucket}/data/", str(local), recursive=True)
    assert digest(local) == digest(reference)
    report = json.loads((local / "reports" / "svt.json").read_text())
    assert report["status"] == "complete"
    # downloads stay in the work folder for the next run; the built shards do not
    assert any((tmp_path / "work" / "downloads").rglob("*.zip"))
    assert not list((tmp_path / "work").glob("train/**/data.mdb"))


def test_local_build_goes_on_past_a_failed_source(mirror: str, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from rebusyn.cli import main

    sources = "coco_text,icdar2015"  # coco_text has no archive on this mirror
    code = main(["build", "--root", str(tmp_path), "--sources", sources, "--mirror", mirror, "-q"])
    assert code == 1
    assert (tmp_path / "index" / "icdar2015.parquet").is_file()  # built after coco_text failed
    out, err = capsys.readouterr()
    assert "icdar2015" in out  # the summary of what was built
    assert "coco_text: " in err and "cocotext.v2.zip" in err and "Built: icdar2015" in err
