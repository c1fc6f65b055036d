"""Jyouhou/Case-Sensitive-Scene-Text-Recognition-Datasets (Long & Yao's case-sensitive relabels) as GitHub
serves one pinned commit: `Case-Sensitive-Scene-Text-Recognition-Datasets-c7c13945....zip`, the archive the
IIIT5K and SVT recipes' `case_sensitive` inputs read.

Top folder `<repo>-<sha>/`, then `cute80_test`, `iiit5k_train`, `iiit5k_test`, `svt_train`, `svt_test`,
`svtp_test`, each holding `IMG/<i>.jpg` and `label/<i>.txt` (i = 1..N, the transcription with no trailing
newline), plus a README and macOS `.DS_Store` files.

The IIIT5K and SVT folders carry the same crops as this project's IIIT5K and SVT samples (re-encoded as
JPEG, as in the real repository) with their case-sensitive labels, in the same order; SVTP and CUTE80 get a
few crops of their own so the layout is complete. Traps: a label with a trailing blank and newline (PARSeq
strips them), punctuation and mixed case (`Don't`, `SALE!`, `Martinotti's`), `label/10.txt` sorting after
`label/9.txt`, `.DS_Store` files, and typos in the `iiit5k_train` and `svt_test` labels.

`members("parseq", top)` gives the same tree with those typos corrected, as in PARSeq's fork
(baudm/..., the `case_sensitive_parseq` inputs). The sample mirror's copy of that fork,
`Case-Sensitive-Scene-Text-Recognition-Datasets-master.zip`, is written by `_case_sensitive.py` (shared
with SVTP/CUTE80); the tests serve this module's variant under that name.

Both the IIIT5K and the SVT generator write the Jyouhou zip; the bytes do not depend on who writes them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from rebusyn.samplegen._word_crops import render_crops
from rebusyn.samplegen.archive import write_zip

REPO = "Case-Sensitive-Scene-Text-Recognition-Datasets"
JYOUHOU_SHA = "c7c13945e9f39c46b566515159946aeeca87064d"
ARCHIVE = f"{REPO}-{JYOUHOU_SHA}.zip"
PARSEQ_ARCHIVE = f"{REPO}-master.zip"  # baudm's fork, branch head (holds all of PARSeq's corrections)
# (subset, 1-based index) -> (Jyouhou's label, the fork's corrected label); invented typos, for the tests
CORRECTIONS = {("iiit5k_train", 5): ("HoteI", "Hotel"), ("svt_test", 2): ("B00KS", "BOOKS")}
PADDED = ("iiit5k_test", 3)  # this label file ends with " \n" (the converter's strip() removes it)
OTHER_WORDS = {"svtp_test": ["WYNDHAM", "Hotel", "UNITED"], "cute80_test": ["RONALDO", "Chelsea"]}
_DS_STORE = b"\x00\x00\x00\x01Bud1" + bytes(24)  # the head of a macOS Finder file; never an image


@lru_cache(maxsize=1)
def subsets() -> dict[str, tuple[tuple[str, bytes], ...]]:
    """subset -> ((Jyouhou's label, JPEG bytes), ...) in index order (1..N)."""
    from rebusyn.samplegen import iiit5k, svt

    out: dict[str, tuple[tuple[str, bytes], ...]] = {}
    pixels = iiit5k.crops()
    for split in ("train", "test"):
        words = iiit5k.SPLITS[split]
        out[f"iiit5k_{split}"] = tuple((w.case_sensitive, jpeg(px)) for w, px in zip(words, pixels[split]))
        out[f"svt_{split}"] = tuple((label, jpeg(px)) for label, px in svt.case_sensitive_crops(split))
    rng = np.random.default_rng(80)
    for subset, words in OTHER_WORDS.items():
        out[subset] = tuple(zip(words, render_crops(rng, words, width=480, height=240)))
    for (subset, i), (typo, _) in CORRECTIONS.items():
        entries = list(out[subset])
        entries[i - 1] = (typo, entries[i - 1][1])
        out[subset] = tuple(entries)
    return dict(sorted(out.items()))


def jpeg(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return data.tobytes()


def labels(fork: str) -> dict[str, list[str]]:
    """subset -> labels (index order) as the given repository (`jyouhou` or `parseq`) has them."""
    out = {s: [label for label, _ in entries] for s, entries in subsets().items()}
    if fork == "parseq":
        for (subset, i), (_, fixed) in CORRECTIONS.items():
            out[subset][i - 1] = fixed
    return out


def members(fork: str = "jyouhou", top: str | None = None) -> dict[str, bytes]:
    """The zip members; `top` defaults to GitHub's folder name for the pinned Jyouhou commit."""
    top = top or f"{REPO}-{JYOUHOU_SHA}"
    files = {f"{top}/README.md": b"# Case-Sensitive-Scene-Text-Recognition-Datasets\n"}
    texts = labels(fork)
    for subset, entries in subsets().items():
        files[f"{top}/{subset}/.DS_Store"] = _DS_STORE
        files[f"{top}/{subset}/IMG/.DS_Store"] = _DS_STORE
        for i, ((_, image), text) in enumerate(zip(entries, texts[subset]), start=1):
            files[f"{top}/{subset}/IMG/{i}.jpg"] = image
            tail = " \n" if (subset, i) == PADDED else ""
            files[f"{top}/{subset}/label/{i}.txt"] = (text + tail).encode("utf-8")
    return files


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_zip(out_dir / ARCHIVE, members())]


def write_parseq_fork(out_dir: Path) -> Path:
    """This sample's variant of baudm's fork under the recipes' archive name (for tests)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_zip(out_dir / PARSEQ_ARCHIVE, members("parseq", f"{REPO}-master"))
