"""A sample of the Uber-Text word crops as STR-Fewer-Labels (Baek et al.) redistribute them.

Uber-Text's own annotation format is not public, so the recipe reads the derived package PARSeq used:
`data_CVPR2021.zip` (the name given in ku21fan/STR-Fewer-Labels data.md) with its folder tree
`data_CVPR2021/{training/label/real,validation,evaluation/addition}/7.Uber/`. Each folder is one LMDB
written the way STR-Fewer-Labels' `create_lmdb_dataset.py` writes it (deep-text-recognition-benchmark's
layout plus an `imagepath-%09d` key): `lmdb.open(path, map_size=30 * 2**30)`, keys `image-%09d` (the
JPEG bytes), `imagepath-%09d`, `label-%09d` (UTF-8) from 1, puts committed every 1000 samples, then
`num-samples`. A `lock.mdb` (zeroed here) sits next to each `data.mdb`, as in any zipped LMDB folder.

The crops are street-level words (house numbers, street and business names). Traps: labels with spaces,
an apostrophe, a diacritic, a label the 36-character policy empties (`&`), one too long for max-len 25,
the test split (`evaluation/addition/7.Uber`, not read by default) and another dataset's LMDB (`1.SVT`)
in the same archive.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import lmdb
import numpy as np

from rebusyn.crop import crop_bbox
from rebusyn.samplegen._rrc_scene import jpeg
from rebusyn.samplegen.archive import write_zip
from rebusyn.samplegen.scene import render_scene

ARCHIVE = "data_CVPR2021.zip"
TOP = "data_CVPR2021"
TRAIN = "training/label/real/7.Uber"
VAL = "validation/7.Uber"
TEST = "evaluation/addition/7.Uber"
DECOY = "training/label/real/1.SVT"

WORDS: dict[str, list[str]] = {
    TRAIN: [
        "1600",
        "Market St",
        "STARBUCKS",
        "221B",
        "Main Street",
        "PIZZA",
        "Café Roma",
        "No Parking",
        "&",
        "Pennsylvania Avenue Northwest",
        "OPEN 24 HOURS",
        "2nd Ave",
        "St. Mary's",
        "1-800-FLOWERS",
    ],
    VAL: ["Broadway", "450", "DELI", "Oak St", "CVS"],
    TEST: ["Stop", "77", "Mission St"],
    DECOY: ["HOTEL", "PUB"],
}
_LOCK_BYTES = 8192


@lru_cache(maxsize=4)
def lmdb_contents(seed: int = 2017) -> dict[str, tuple[tuple[str, bytes], ...]]:
    """Folder (relative to data_CVPR2021/) -> the (label, JPEG bytes) samples of its LMDB, in order."""
    rng = np.random.default_rng(seed)
    return {folder: tuple(_crops(rng, words)) for folder, words in WORDS.items()}


def _crops(rng: np.random.Generator, words: list[str]) -> list[tuple[str, bytes]]:
    """Render the words a few per street scene and cut each out along its axis-aligned box."""
    done: dict[int, bytes] = {}
    for _ in range(20):
        if len(done) == len(words):
            break
        batch = [i for i in range(len(words)) if i not in done][:4]
        pixels, placed = render_scene(rng, [(words[i], True) for i in batch], 720, 360)
        j = 0
        for i in batch:
            if j < len(placed) and placed[j].text == words[i]:
                done[i] = jpeg(crop_bbox(pixels, np.asarray(placed[j].quad, dtype=np.float64)), 90)
                j += 1
    missing = [w for i, w in enumerate(words) if i not in done]
    if missing:
        raise RuntimeError(f"could not place {missing}")
    return [(words[i], done[i]) for i in range(len(words))]


def write_lmdb(path: Path, samples: list[tuple[str, bytes]], split: str) -> None:
    """STR-Fewer-Labels' createDataset, minus reading the images from disk."""
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=30 * 2**30)
    cache: dict[bytes, bytes] = {}
    cnt = 1
    for label, image in samples:
        cache[f"image-{cnt:09d}".encode()] = image
        cache[f"label-{cnt:09d}".encode()] = label.encode()
        cache[f"imagepath-{cnt:09d}".encode()] = f"Uber/{split}/{cnt}.jpg".encode()
        if cnt % 1000 == 0:
            _write_cache(env, cache)
            cache = {}
        cnt += 1
    cache[b"num-samples"] = str(cnt - 1).encode()
    _write_cache(env, cache)
    env.close()


def _write_cache(env: lmdb.Environment, cache: dict[bytes, bytes]) -> None:
    with env.begin(write=True) as txn:
        for k, v in cache.items():
            txn.put(k, v)


def write(out_dir: Path, *, seed: int = 2017) -> list[Path]:
    """Write data_CVPR2021.zip into `out_dir`; returns its path."""
    members: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for folder, samples in lmdb_contents(seed).items():
            target = Path(tmp) / folder
            write_lmdb(target, list(samples), folder.split("/")[0])
            members[f"{TOP}/{folder}/data.mdb"] = (target / "data.mdb").read_bytes()
            # lock.mdb holds reader slots and pids: zeroed so the archive is reproducible
            members[f"{TOP}/{folder}/lock.mdb"] = bytes(_LOCK_BYTES)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_zip(out_dir / ARCHIVE, members)]
