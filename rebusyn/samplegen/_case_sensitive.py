"""Shared by the SVTP and CUTE80 sample generators: a sample of the GitHub archive of
Case-Sensitive-Scene-Text-Recognition-Datasets (Long & Yao's relabel, with PARSeq's corrections in baudm's
fork), the source PARSeq converted its SVTP/CUTE80/IIIT5k/SVT test LMDBs from.

Layout (as the repository holds it, wrapped by GitHub in `<repo>-master/`): `README.md`, a stray `.DS_Store`
at the top and in `cute80_test/`, and per set `<set>/IMG/<i>.jpg` + `<set>/label/<i>.txt`, i = 1..N. Label
files hold one label: Long & Yao's have no trailing newline, PARSeq's corrected ones end with `\\n`; some of
Long & Yao's hold two words (`THE Casbah`, `IMPERIAL COLLEGE`) where the crop shows one.
Both generators write the same bytes, so `rebusyn samples` may run them in any order.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._word_crops import render_crops
from rebusyn.samplegen.archive import write_zip

ARCHIVE = "Case-Sensitive-Scene-Text-Recognition-Datasets-master.zip"
TOP = "Case-Sensitive-Scene-Text-Recognition-Datasets-master"

# set -> (label file bytes, the word drawn in the crop), in file order 1..N
SETS: dict[str, list[tuple[bytes, str]]] = {
    "svtp_test": [
        (b"WYNDHAM", "WYNDHAM"),
        (b"HOTEL", "HOTEL"),
        (b"UNITED", "UNITED"),
        (b"STATES", "STATES"),
        (b"Casbah\n", "Casbah"),  # corrected by PARSeq (Long & Yao: "THE Casbah")
        (b"Carnegie Hall", "Carnegie Hall"),  # two words in one label
        (b"McDonald's", "McDonald's"),
        (b"&", "&"),  # nothing left under the 36-character policy
        (b"Hollywood", "Hollywood"),
        (b"PIZZA", "PIZZA"),
    ],
    "cute80_test": [
        (b"RONALDO", "RONALDO"),
        (b"7", "7"),
        (b"SEACREST", "SEACREST"),
        (b"BEACH", "BEACH"),
        (b"SOUTHAMPTON\n", "SOUTHAMPTON"),  # corrected (Long & Yao: "SOUTHAMPTON PUBLICK HOUSE")
        (b"IMPERIAL\n", "IMPERIAL"),  # corrected (Long & Yao: "IMPERIAL COLLEGE")
        (b"Manchester", "Manchester"),
        (b"FOOTBALL CLUB", "FOOTBALL CLUB"),
    ],
    "iiit5k_test": [
        (b"Salutes", "Salutes"),
        (b"PRIVATE", "PRIVATE"),
    ],  # another set: never read by SVTP/CUTE80
}
CURVED = {"cute80_test"}  # CUTE80's words are curved


@lru_cache(maxsize=2)
def crops(seed: int = 2020) -> dict[str, tuple[bytes, ...]]:
    """Set -> the JPEG crop of each of its words, in file order."""
    rng = np.random.default_rng(seed)
    return {
        name: tuple(render_crops(rng, [w for _, w in words], curved_every=1 if name in CURVED else 0))
        for name, words in SETS.items()
    }


def members(seed: int = 2020) -> dict[str, bytes]:
    out = {
        f"{TOP}/README.md": b"# Case-Sensitive-Scene-Text-Recognition-Datasets\n(sample)\n",
        f"{TOP}/.DS_Store": bytes(64),
        f"{TOP}/cute80_test/.DS_Store": bytes(64),
    }
    images = crops(seed)
    for name, words in SETS.items():
        for i, ((label, _), image) in enumerate(zip(words, images[name]), start=1):
            out[f"{TOP}/{name}/IMG/{i}.jpg"] = image
            out[f"{TOP}/{name}/label/{i}.txt"] = label
    return out


def write_archive(out_dir: Path, seed: int = 2020) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_zip(out_dir / ARCHIVE, members(seed))
