"""The ready-made synthetic LMDB packs that both the MJSynth and the SynthText recipes read (one copy, so the
two generators write byte-identical archives of the same name into a mirror).

`data_lmdb_release.zip`: deep-text-recognition-benchmark's release (synth_generators.md §5.5), laid out as
`data_lmdb_release/{training/{MJ/{MJ_train,MJ_valid,MJ_test},ST},validation,evaluation/<benchmark>}` [?: the
top folder's name; the reader accepts the layout with or without it].
`parseq_synth.tar`: PARSeq's `train/synth/{MJ/{train,val,test},ST}` (parseq_paper.md §2), packed from the
`synth/` folder as the recipes ask.
Every LMDB is written the way DTRB's create_lmdb_dataset.py writes them (keys from 1, `num-samples` last).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._word_crops import packed_lmdbs, render_crops
from rebusyn.samplegen.archive import write_tar, write_zip

DTRB_ARCHIVE = "data_lmdb_release.zip"
PARSEQ_ARCHIVE = "parseq_synth.tar"

# folder -> labels. MJ labels as DTRB stores them (original case); ST's include punctuation and a 30-char
# token (dropped by --max-len 25), and one that the 36-character policy empties.
DTRB_WORDS: dict[str, list[str]] = {
    "training/MJ/MJ_train": ["Slinking", "PRITCHARD", "exit"],
    "training/MJ/MJ_valid": ["Ballet"],
    "training/MJ/MJ_test": ["cafe"],
    "training/ST": ["Lines:", "I", "lost", "internationalization-oriented", "--"],
    "validation": ["VALIDATION"],
    "evaluation/IIIT5k_3000": ["EVALUATION"],
}
PARSEQ_WORDS: dict[str, list[str]] = {
    "synth/MJ/train": ["Slinking", "Hotel"],
    "synth/MJ/val": ["Ballet"],
    "synth/MJ/test": ["2008"],
    "synth/ST": ["Kevin", "will", "Tax-free"],
}


@lru_cache(maxsize=1)
def _images(seed: int = 90) -> dict[tuple[str, int], bytes]:
    rng = np.random.default_rng(seed)
    keys = [(f"dtrb/{d}", i) for d, words in DTRB_WORDS.items() for i in range(len(words))]
    keys += [(f"parseq/{d}", i) for d, words in PARSEQ_WORDS.items() for i in range(len(words))]
    texts = [w for words in DTRB_WORDS.values() for w in words] + [
        w for words in PARSEQ_WORDS.values() for w in words
    ]
    return dict(zip(keys, render_crops(rng, texts)))


def _members(prefix: str, words: dict[str, list[str]], top: str) -> dict[str, bytes]:
    images = _images()
    return packed_lmdbs({f"{top}{folder}": [(label, images[(f"{prefix}/{folder}", i)])
                                             for i, label in enumerate(labels)]
                         for folder, labels in words.items()}, map_size=1 << 30)  # fmt: skip


def write_dtrb(out_dir: Path) -> Path:
    return write_zip(out_dir / DTRB_ARCHIVE, _members("dtrb", DTRB_WORDS, "data_lmdb_release/"))


def write_parseq(out_dir: Path) -> Path:
    return write_tar(out_dir / PARSEQ_ARCHIVE, _members("parseq", PARSEQ_WORDS, ""))
