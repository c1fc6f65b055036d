"""Helpers for the per-source end-to-end tests: serve a sample mirror, read the built LMDB shards back with
plain `lmdb`, and check a crop's geometry against the annotated polygon."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pyarrow.parquet as pq

from tests.httpserver import FileServer


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write `files` (relative path -> bytes) under `root`, making folders as needed."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def crop_summary(items) -> list[tuple]:  # noqa: ANN001
    """A parser's output in short: (image_id, text, subset) per crop, (where, reason) per problem."""
    from rebusyn.sources.base import WordCrop

    return [(i.image_id, i.text, i.attrs.get("subset")) if isinstance(i, WordCrop) else (i.where, i.reason)
            for i in items]  # fmt: skip


def read_synth_shards(root: Path, engine: str, config_key: bytes) -> tuple[list[tuple], list[bytes]]:
    """(image, label, meta) rows of an engine's shards and each shard's config JSON, read with plain py-lmdb
    as PARSeq's and DTRB's readers do."""
    shards = sorted(p.parent for p in (root / "train" / "synth" / engine).rglob("data.mdb"))
    assert shards, f"no shard under train/synth/{engine}"
    rows, configs = [], []
    for shard in shards:
        env = lmdb.open(str(shard), readonly=True, lock=False, readahead=False, meminit=False)
        with env.begin() as txn:
            configs.append(txn.get(config_key))
            for i in range(1, int(txn.get(b"num-samples")) + 1):
                rows.append((txn.get(b"image-%09d" % i), txn.get(b"label-%09d" % i).decode(),
                             json.loads(txn.get(b"meta-%09d" % i))))  # fmt: skip
        env.close()
    return rows, configs


def build_over_http(tmp_path: Path, mirror: Path, source: str, input_name: str | None = None) -> tuple:
    """Build one source from the sample mirror served on 127.0.0.1 into `tmp_path`: (summary, report JSON,
    the built samples as read_built gives them)."""
    from rebusyn.build import BuildOptions, build

    with serve(mirror, tmp_path / "www") as server:
        opts = BuildOptions(
            tmp_path, sources=(source,), mirror=server.base_url, progress=False, input=input_name
        )
        (summary,) = build(opts).sources
    report = json.loads((tmp_path / "reports" / f"{source}.json").read_text())
    return summary, report, read_built(tmp_path, source)


@contextmanager
def serve(mirror: Path, www: Path) -> Iterator[FileServer]:
    """A copy of the mirror directory served over HTTP on 127.0.0.1."""
    www.mkdir()
    for path in mirror.iterdir():
        shutil.copyfile(path, www / path.name)
    with FileServer(www) as srv:
        yield srv


def read_built(root: Path, source: str) -> list[dict]:
    """Every sample of a built source in index order: label, image bytes and meta, read with plain lmdb."""
    index = pq.read_table(root / "index" / f"{source}.parquet").to_pylist()
    out = []
    envs: dict[str, lmdb.Environment] = {}
    try:
        for row in index:
            env = envs.get(row["shard"])
            if env is None:
                env = envs[row["shard"]] = lmdb.open(str(root / row["shard"]), readonly=True, lock=False)
            with env.begin() as txn:
                i = row["idx"]
                assert int(txn.get(b"num-samples")) >= i
                label = txn.get(f"label-{i:09d}".encode()).decode()
                assert label == row["label"]
                out.append(
                    {
                        "label": label,
                        "image": bytes(txn.get(f"image-{i:09d}".encode())),
                        "meta": json.loads(txn.get(f"meta-{i:09d}".encode())),
                        "key": row["key"],
                    }
                )
    finally:
        for env in envs.values():
            env.close()
    return out


def _chain_length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


def word_size(points: list[list[float]]) -> tuple[float, float]:
    """(length along the text, height) of a quad (TL, TR, BR, BL) or a curved polygon (top, bottom)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 4:
        tl, tr, br, bl = pts
        return (
            max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl)),
            max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr)),
        )
    half = len(pts) // 2
    top, bottom = pts[:half], pts[half:][::-1]
    return (_chain_length(top) + _chain_length(bottom)) / 2, float(
        np.linalg.norm(top - bottom, axis=1).mean()
    )


def check_crop(image: bytes, points: list[list[float]], rotated: bool, tolerance: float = 0.25) -> None:
    """The crop's aspect ratio is the word's (after the vertical rotation), and the crop is not blank."""
    pixels = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None and pixels.size
    h, w = pixels.shape[:2]
    length, height = word_size(points)
    want = length / height
    got = (h / w) if rotated else (w / h)
    assert abs(np.log(got / want)) < np.log(1 + tolerance), (got, want, points)
    assert float(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY).std()) > 10, "crop is blank"
