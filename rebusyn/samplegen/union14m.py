"""A sample of Union14M-L in both forms the recipe reads.

`Union14M-L.tar.gz`, the release laid out as the Union14M README (§3.4) shows it:
```
Union14M-L/full_images/{COCOTextV2,TextOCR,art_curve,art_scene}/<n>.jpg
Union14M-L/train_annos/mmocr-0.x/train_{challenging,easy,hard,medium,normal}.jsonl, val_annos.jsonl
Union14M-L/train_annos/mmocr1.0/train_{...}.json, val_annos.json   (MMOCR 1.x recognition JSON)
Union14M-L/Union14M-Benchmarks/{artistic,general}/annotation.json(l) (+ artistic/imgs/)
```
JSON lines are `{"filename": ..., "text": ...}` and the 1.x JSON `{"metainfo", "data_list"}`, both written
by Python's json with its default `ensure_ascii=True` (Union14M's copy of MMOCR predates
`ensure_ascii=False`), so `Café` is stored as `Caf\\u00e9`. Image names are relative to `Union14M-L/`.
Traps: two crops named `1.jpg` in different source folders, labels with spaces, `$`, `!!!` (empty under the
36-character policy), a 34-character word (too long), a validation entry (not read by default), and the
benchmark, whose `general` subset points into `full_images/` (never read).

`Union14M_L_lmdb_format.zip`: REBU-Syn's `Union14M_L_lmdb_format/{difficult,hard,hell,medium,simple}`,
one STR LMDB each, written like Union14M's `tools/img2lmdb.py` (map size 109951162776, `image-`/`label-`
keys from 1, puts every 1000, `num-samples` last); `lock.mdb` zeroed.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._word_crops import packed_lmdbs, render_crops
from rebusyn.samplegen.archive import write_tar_gz, write_zip

RELEASE = "Union14M-L.tar.gz"
LMDB_ARCHIVE = "Union14M_L_lmdb_format.zip"
TOP = "Union14M-L"
LMDB_TOP = "Union14M_L_lmdb_format"

# level -> (file under full_images/, text); `val` is val_annos
RELEASE_WORDS: dict[str, list[tuple[str, str]]] = {
    "challenging": [("art_curve/9.jpg", "supercalifragilisticexpialidocious"), ("COCOTextV2/3.jpg", "EXIT")],
    "easy": [("COCOTextV2/1.jpg", "STOP"), ("TextOCR/1.jpg", "Coca-Cola"), ("art_scene/12.jpg", "Café")],
    "hard": [("art_curve/7.jpg", "SEAFOOD"), ("COCOTextV2/2.jpg", "$4.99")],
    "medium": [("TextOCR/2.jpg", "open 24 hours"), ("art_curve/3.jpg", "ROYAL")],
    "normal": [("TextOCR/5.jpg", "No. 10"), ("art_scene/4.jpg", "!!!")],
    "val": [("TextOCR/8.jpg", "VALONLY")],
}
# benchmark subset -> (image path relative to Union14M-L/, text)
BENCHMARK_WORDS: dict[str, list[tuple[str, str]]] = {
    "artistic": [("Union14M-Benchmarks/artistic/imgs/1.jpg", "ARTISTIC")],
    "general": [("full_images/TextOCR/9.jpg", "GENERAL")],  # General's images live in full_images/
}
LMDB_WORDS: dict[str, list[str]] = {
    "difficult": ["Kebab", "Taxi"],
    "hard": ["PHARMACY", "30%"],
    "hell": ["ZZ-top", "&"],
    "medium": ["Bus Stop", "Grand Hotel Continental Europe"],
    "simple": ["SALE", "Zürich"],
}
_METAINFO = {"dataset_type": "TextRecogDataset", "task_name": "textrecog"}


@lru_cache(maxsize=2)
def crops(seed: int = 2023) -> dict[str, bytes]:
    """Every fixture crop by its path under Union14M-L/ (release) or `lmdb/<subset>/<i>` (LMDBs)."""
    rng = np.random.default_rng(seed)
    names = [f"full_images/{f}" for words in RELEASE_WORDS.values() for f, _ in words]
    names += [f for words in BENCHMARK_WORDS.values() for f, _ in words]
    texts = [t for words in RELEASE_WORDS.values() for _, t in words]
    texts += [t for words in BENCHMARK_WORDS.values() for _, t in words]
    names += [f"lmdb/{s}/{i}" for s, words in LMDB_WORDS.items() for i in range(1, len(words) + 1)]
    texts += [t for words in LMDB_WORDS.values() for t in words]
    return dict(zip(names, render_crops(rng, texts)))


def _jsonl(records: list[tuple[str, str]]) -> bytes:
    return "".join(json.dumps({"filename": f, "text": t}) + "\n" for f, t in records).encode()


def _json(records: list[tuple[str, str]]) -> bytes:
    data_list = [{"img_path": f, "instances": [{"text": t}]} for f, t in records]
    return json.dumps({"metainfo": _METAINFO, "data_list": data_list}).encode()


def release_members(seed: int = 2023) -> dict[str, bytes]:
    images = crops(seed)
    members = {f"{TOP}/{name}": data for name, data in images.items() if not name.startswith("lmdb/")}
    for level, words in RELEASE_WORDS.items():
        records = [(f"full_images/{f}", t) for f, t in words]
        stem = "val_annos" if level == "val" else f"train_{level}"
        members[f"{TOP}/train_annos/mmocr-0.x/{stem}.jsonl"] = _jsonl(records)
        members[f"{TOP}/train_annos/mmocr1.0/{stem}.json"] = _json(records)
    for subset, records in BENCHMARK_WORDS.items():
        members[f"{TOP}/Union14M-Benchmarks/{subset}/annotation.jsonl"] = _jsonl(records)
        members[f"{TOP}/Union14M-Benchmarks/{subset}/annotation.json"] = _json(records)
    return members


def write(out_dir: Path, *, seed: int = 2023) -> list[Path]:
    """Write Union14M-L.tar.gz and Union14M_L_lmdb_format.zip into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    release = write_tar_gz(out_dir / RELEASE, release_members(seed))
    images = crops(seed)
    members = packed_lmdbs({f"{LMDB_TOP}/{subset}": [(t, images[f"lmdb/{subset}/{i}"]) for i, t in
                            enumerate(words, start=1)] for subset, words in LMDB_WORDS.items()},
                           map_size=109951162776)  # Union14M's img2lmdb.py  # fmt: skip
    return [release, write_zip(out_dir / LMDB_ARCHIVE, members)]
