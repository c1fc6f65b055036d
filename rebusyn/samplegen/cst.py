"""A sample of Curved SynthText (Alchemy's CurvedSynth) in both forms the recipe reads.

`CurvedSynth.zip`, one dataset folder as Alchemy's `synthtextlist.py` reads it (the archive's real name and
top folder are not published [?]):
```
CurvedSynth/Label.json     [{"img": "IMG/<n>.jpg", "word": ..., "chars": 2 x 4 x len(word) ints}, ...]
CurvedSynth/IMG/<n>.jpg    curved word crops
```
Label.json is one array on one line, written by Python's json with its defaults (`ensure_ascii=True`, so
`Café` is stored as `Caf\\u00e9`). `chars` holds each character's quadrilateral (x row, y row; corners
clockwise from top-left) laid out evenly along the crop, as the parser never reads it. Traps: a word with
a space, `Café`, `...` (empty under the 36-character policy), a 45-character word (too long), a listed
image missing from the archive, paths leaving the folder (`../`, absolute), a word that is a number, an
empty word, an image listed twice, and a Windows-style `IMG\\11.jpg`.

`Curved_SynthText.zip`: REBU-Syn's `Curved_SynthText/{syntext1,syntext2}`, one STR LMDB each, written like
DTRB's `create_lmdb_dataset.py` (keys from 1, `num-samples` last, map size 1 TB; `lock.mdb` zeroed).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rebusyn.samplegen._word_crops import packed_lmdbs, render_crops
from rebusyn.samplegen.archive import write_zip

RELEASE = "CurvedSynth.zip"
LMDB_ARCHIVE = "Curved_SynthText.zip"
TOP = "CurvedSynth"
LMDB_TOP = "Curved_SynthText"

# Label.json records in order: (img as written, word as written, file shipped under CurvedSynth/ or None)
RECORDS: list[tuple[str, Any, str | None]] = [
    ("IMG/1.jpg", "Curved", "IMG/1.jpg"),
    ("IMG/2.jpg", "SynthText", "IMG/2.jpg"),
    ("IMG/3.jpg", "Café", "IMG/3.jpg"),
    ("IMG/4.jpg", "two words", "IMG/4.jpg"),
    ("IMG/5.jpg", "...", "IMG/5.jpg"),
    ("IMG/6.jpg", "pneumonoultramicroscopicsilicovolcanoconiosis", "IMG/6.jpg"),
    ("IMG/7.jpg", "Missing", None),  # listed, not in the archive
    ("../outside.jpg", "Escape", None),
    ("/abs/8.jpg", "Absolute", None),
    ("IMG/8.jpg", 2019, "IMG/8.jpg"),  # a number, not a string
    ("IMG/9.jpg", "", "IMG/9.jpg"),
    ("IMG/1.jpg", "Again", None),  # listed twice
    ("IMG/10.jpg", "ROAD", "IMG/10.jpg"),
    ("IMG\\11.jpg", "Exit", "IMG/11.jpg"),
]
DRAWN = {"IMG/8.jpg": "2019", "IMG/9.jpg": "blank"}  # what the crops of refused records show
LMDB_WORDS = {"syntext1": ["Bend", "Arc", "&&"], "syntext2": ["Spiral", "y" * 30]}


def shipped() -> list[tuple[str, str]]:
    """(path under CurvedSynth/, drawn text) of every crop the release ships, in Label.json order."""
    return [(f, DRAWN.get(f, w)) for _, w, f in RECORDS if f is not None]


@lru_cache(maxsize=2)
def crops(seed: int = 1908) -> dict[str, bytes]:
    """Every fixture crop by its path under CurvedSynth/ (release) or `lmdb/<subset>/<i>` (the LMDBs)."""
    rng = np.random.default_rng(seed)
    files = shipped()
    names = [f for f, _ in files]
    texts = [t for _, t in files]
    for subset, words in LMDB_WORDS.items():
        names += [f"lmdb/{subset}/{i}" for i in range(1, len(words) + 1)]
        texts += words
    # every word bent along an arc: CurvedSynth's text is curved
    return dict(zip(names, render_crops(rng, texts, curved_every=1)))


def char_boxes(word: str, image: bytes) -> list[list[list[int]]]:
    """2 x 4 x len(word): x then y of each character's corners (TL, TR, BR, BL), spread along the crop."""
    height, width = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE).shape
    n = max(len(word), 1)
    edges = np.linspace(0, width - 1, n + 1).round().astype(int)
    xs = [[int(edges[i]), int(edges[i + 1]), int(edges[i + 1]), int(edges[i])] for i in range(n)]
    ys = [[0, 0, height - 1, height - 1] for _ in range(n)]
    return [[[box[c] for box in xs] for c in range(4)], [[box[c] for box in ys] for c in range(4)]]


def label_json(seed: int = 1908) -> bytes:
    images = crops(seed)
    records = []
    for img, word, file in RECORDS:
        source = images.get(file or "IMG/1.jpg")  # records without a crop get any real box geometry
        records.append({"img": img, "word": word, "chars": char_boxes(str(word), source)})
    return json.dumps(records).encode("ascii")


def release_members(seed: int = 1908) -> dict[str, bytes]:
    images = crops(seed)
    members = {f"{TOP}/{name}": data for name, data in images.items() if not name.startswith("lmdb/")}
    members[f"{TOP}/Label.json"] = label_json(seed)
    return members


def write(out_dir: Path, *, seed: int = 1908) -> list[Path]:
    """Write CurvedSynth.zip and Curved_SynthText.zip into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    release = write_zip(out_dir / RELEASE, release_members(seed))
    images = crops(seed)
    members = packed_lmdbs({f"{LMDB_TOP}/{subset}": [(t, images[f"lmdb/{subset}/{i}"]) for i, t in
                            enumerate(words, start=1)] for subset, words in LMDB_WORDS.items()},
                           map_size=1 << 40)  # fmt: skip
    return [release, write_zip(out_dir / LMDB_ARCHIVE, members)]
