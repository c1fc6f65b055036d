"""Checks shared by the RCTW-17, MLT 2019 and ReCTS end-to-end tests: read what a build wrote with plain
`lmdb`/`pyarrow`, and judge a crop against the polygon it was cut from."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pyarrow.parquet as pq


def index_rows(root: Path, source: str) -> list[dict]:
    return pq.read_table(root / "index" / f"{source}.parquet").to_pylist()


def lmdb_records(root: Path, rows: list[dict]) -> list[tuple[bytes, str, dict]]:
    """(image bytes, label, meta) of every index row, read straight from the shards."""
    out = []
    for shard in sorted({r["shard"] for r in rows}):
        env = lmdb.open(str(root / shard), readonly=True, lock=False)
        with env.begin() as txn:
            n = int(txn.get(b"num-samples"))
            for i in range(1, n + 1):
                out.append(
                    (
                        txn.get(b"image-%09d" % i),
                        txn.get(b"label-%09d" % i).decode("utf-8"),
                        json.loads(txn.get(b"meta-%09d" % i)),
                    )
                )
        env.close()
    return out


def expected_size(points: list[list[float]], rotated: bool) -> tuple[float, float]:
    """(w, h) of the upright crop of a quadrilateral: longer horizontal and vertical edges."""
    p = np.array(points, dtype=float)
    w = max(np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[2] - p[3]))
    h = max(np.linalg.norm(p[3] - p[0]), np.linalg.norm(p[2] - p[1]))
    return (h, w) if rotated else (w, h)


def check_crop(image: bytes, meta: dict) -> None:
    """The crop decodes, has the quad's size (so its aspect), and is not a flat patch."""
    crop = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    assert crop is not None, meta["key"]
    h, w = crop.shape[:2]
    ew, eh = expected_size(meta["points"], bool(meta.get("rotated")))
    assert abs(w - ew) <= 2 and abs(h - eh) <= 2, (meta["key"], (w, h), (ew, eh))
    assert abs(w / h - ew / eh) < 0.15 * ew / eh, meta["key"]
    assert crop.std() > 8, f"{meta['key']} looks blank"
