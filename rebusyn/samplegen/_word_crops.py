"""Shared by the word-crop sample generators (Union14M-L, SVTP, CUTE80, the custom-data tests): rendered
word crops, and STR-layout LMDBs written the way deep-text-recognition-benchmark / Union14M write them."""

from __future__ import annotations

import tempfile
from pathlib import Path

import lmdb
import numpy as np

from rebusyn.crop import crop_bbox
from rebusyn.samplegen._rrc_scene import jpeg
from rebusyn.samplegen.scene import render_scene

LOCK_BYTES = 8192  # a zipped LMDB folder carries a lock.mdb; zeroed so archives stay reproducible


def render_crops(
    rng: np.random.Generator,
    words: list[str],
    *,
    curved_every: int = 0,
    width: int = 720,
    height: int = 360,
    quality: int = 90,
) -> list[bytes]:
    """JPEG crops of `words` (same order), drawn a few per scene and cut out along their axis-aligned box,
    the way Union14M-L, CUTE80 and PARSeq's converters crop. With `curved_every = k` every k-th word of a
    scene is bent along an arc (CUTE80's curved text), so its crop shows the curve."""
    done: dict[int, bytes] = {}
    for _ in range(30):
        if len(done) == len(words):
            break
        batch = [i for i in range(len(words)) if i not in done][:4]
        pixels, placed = render_scene(
            rng, [(words[i], True) for i in batch], width, height, curved_every=curved_every
        )
        j = 0  # `placed` keeps drawing order and skips the words that did not fit
        for i in batch:
            if j < len(placed) and placed[j].text == words[i]:
                points = np.asarray(placed[j].quad, dtype=np.float64)
                done[i] = jpeg(crop_bbox(pixels, points), quality)
                j += 1
    missing = [w for i, w in enumerate(words) if i not in done]
    if missing:
        raise RuntimeError(f"could not place {missing}")
    return [done[i] for i in range(len(words))]


def write_str_lmdb(
    path: Path,
    samples: list[tuple[str, bytes]],
    *,
    map_size: int = 1 << 30,
    extra_keys: dict[str, bytes] | None = None,
) -> Path:
    """DTRB's createDataset minus the disk reads: `image-%09d`, `label-%09d` from 1, puts committed every
    1000 samples, `num-samples` last; `extra_keys` are stored as well (writers add their own keys)."""
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=map_size)
    cache: dict[bytes, bytes] = {}
    for cnt, (label, image) in enumerate(samples, start=1):
        cache[f"image-{cnt:09d}".encode()] = image
        cache[f"label-{cnt:09d}".encode()] = label.encode()
        if cnt % 1000 == 0:
            _put(env, cache)
            cache = {}
    cache.update({k.encode(): v for k, v in (extra_keys or {}).items()})
    cache[b"num-samples"] = str(len(samples)).encode()
    _put(env, cache)
    env.close()
    return path


def _put(env: lmdb.Environment, cache: dict[bytes, bytes]) -> None:
    with env.begin(write=True) as txn:
        for key, value in cache.items():
            txn.put(key, value)


def lmdb_members(folder: Path, prefix: str) -> dict[str, bytes]:
    """The zip members of one LMDB folder: its data.mdb and a zeroed lock.mdb."""
    return {f"{prefix}/data.mdb": (folder / "data.mdb").read_bytes(), f"{prefix}/lock.mdb": bytes(LOCK_BYTES)}


def packed_lmdbs(lmdbs: dict[str, list[tuple[str, bytes]]], *, map_size: int) -> dict[str, bytes]:
    """Zip members of several STR LMDBs: `{folder in the archive: [(label, image), ...]}`, each written with
    `write_str_lmdb` (the map size is stored in data.mdb, so each pack keeps its writer's)."""
    members: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for number, (folder, samples) in enumerate(lmdbs.items()):
            env = write_str_lmdb(Path(tmp) / str(number), samples, map_size=map_size)
            members.update(lmdb_members(env, folder))
    return members
