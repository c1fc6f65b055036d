"""A sample of IIIT5K-Words in its native layout: `IIIT5K-Word_V3.0.tar.gz` (train and test), plus the
case-sensitive relabel zip the `case_sensitive` inputs read (see `_case_sensitive_pinned.py`).

The archive extracts to `IIIT5K/` with `train/<id>_<k>.png`, `test/<id>_<k>.png`, `traindata.mat`,
`testdata.mat` (MATLAB v5 struct arrays `traindata` / `testdata`, 1 x N, fields ImgName, GroundTruth,
smallLexi, mediumLexi; the lexicons are 1 x n cell arrays of strings), `trainCharBound.mat`,
`testCharBound.mat` (struct arrays with ImgName, chars, charBB: one `[x y width height]` row per character)
and `lexicon.txt`.

Traps: GroundTruth is upper-case while CharBound `chars` keeps the case (`Restaurant`); a numeric word
(`2012`, which MATLAB stores as a string) and a one-letter word; punctuation exists only in the
case-sensitive relabels (`Don't`, `SALE!`); the crop names are not in list order; the crops are PNGs of
different sizes; the `.mat` order is not the names' sort order (`test/3_1.png` comes first).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from rebusyn.samplegen._word_crops import render_crops
from rebusyn.samplegen.archive import write_tar_gz

ARCHIVE = "IIIT5K-Word_V3.0.tar.gz"
TOP = "IIIT5K"
SEED = 5000
_MAT_HEADER = "MATLAB 5.0 MAT-file, Platform: PCWIN, Created on: Mon Jun 11 10:22:31 2012"


@dataclass(frozen=True)
class Word:
    """One crop: its ImgName, GroundTruth (upper-case), CharBound `chars`, and Long & Yao's relabel."""

    img_name: str
    ground_truth: str
    chars: str
    case_sensitive: str


SPLITS: dict[str, tuple[Word, ...]] = {
    "train": (
        Word("train/1009_2.png", "RESTAURANT", "Restaurant", "Restaurant"),
        Word("train/1017_1.png", "2012", "2012", "2012"),
        Word("train/1022_3.png", "DONT", "Dont", "Don't"),
        Word("train/1101_1.png", "SALE", "SALE", "SALE!"),
        Word("train/1115_2.png", "HOTEL", "Hotel", "Hotel"),
        Word("train/1203_1.png", "A", "a", "a"),
        Word("train/1207_4.png", "COFFEE", "COFFEE", "COFFEE"),
        Word("train/1310_1.png", "PIZZA", "Pizza", "Pizza"),
    ),
    "test": (
        Word("test/3_1.png", "MAKE", "MAKE", "MAKE"),
        Word("test/1002_1.png", "PRIVATE", "Private", "Private"),
        Word("test/1002_2.png", "SALUTES", "Salutes", "Salutes"),
        Word("test/1009_1.png", "WELCOME", "Welcome", "Welcome"),
        Word("test/1010_3.png", "24", "24", "24"),
        Word("test/1015_1.png", "OPEN", "OPEN", "OPEN"),
        Word("test/1100_2.png", "MARKET", "Market", "Market"),
        Word("test/1202_1.png", "ST", "St", "St."),
        Word("test/1206_5.png", "INDIA", "India", "INDIA"),
        Word("test/1301_2.png", "BANK", "Bank", "Bank"),
        Word("test/1310_4.png", "TAXI", "Taxi", "TAXI"),
    ),
}
_DISTRACTORS = ("HOUSE", "BANK", "ROAD", "CINEMA", "TAXI", "PARK", "METRO", "LANE", "HALL", "FOOD", "BAR")


@lru_cache(maxsize=2)
def crops(seed: int = SEED) -> dict[str, tuple[np.ndarray, ...]]:
    """split -> BGR pixels of each word's crop (rendered upper-case or as `chars`, i.e. the visible case)."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[np.ndarray, ...]] = {}
    for split, words in SPLITS.items():
        jpegs = render_crops(rng, [w.chars for w in words], width=480, height=240)
        out[split] = tuple(cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs)
    return out


def png(pixels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return data.tobytes()


def _cell(words: list[str]) -> np.ndarray:
    """A 1 x n MATLAB cell array of strings."""
    cell = np.empty((1, len(words)), dtype=object)
    for i, w in enumerate(words):
        cell[0, i] = w
    return cell


def _lexicon(word: Word, size: int, offset: int) -> list[str]:
    others = [d for d in _DISTRACTORS if d != word.ground_truth]
    picked = [others[(offset + i) % len(others)] for i in range(size - 1)]
    return sorted([word.ground_truth, *picked])


def mat_bytes(variable: str, records: np.ndarray, tmp: Path) -> bytes:
    """A MATLAB v5 file holding `records`, with a fixed 116-byte header text (scipy writes the current
    time there, which would change the archive's checksum on every run)."""
    path = tmp / f"{variable}.mat"
    scipy.io.savemat(str(path), {variable: records}, format="5")
    data = path.read_bytes()
    return _MAT_HEADER.ljust(116).encode("ascii") + data[116:]


def data_struct(words: tuple[Word, ...]) -> np.ndarray:
    dtype = [("ImgName", "O"), ("GroundTruth", "O"), ("smallLexi", "O"), ("mediumLexi", "O")]
    records = np.zeros((1, len(words)), dtype=dtype)
    for i, w in enumerate(words):
        records[0, i] = (w.img_name, w.ground_truth, _cell(_lexicon(w, 5, i)), _cell(_lexicon(w, 9, 2 * i)))
    return records


def char_bound_struct(words: tuple[Word, ...], pixels: tuple[np.ndarray, ...]) -> np.ndarray:
    records = np.zeros((1, len(words)), dtype=[("ImgName", "O"), ("chars", "O"), ("charBB", "O")])
    for i, (w, px) in enumerate(zip(words, pixels)):
        h, width = px.shape[:2]
        step = width / max(len(w.chars), 1)
        boxes = np.array([[round(k * step), 2, round(step), h - 4] for k in range(len(w.chars))], dtype=float)
        records[0, i] = (w.img_name, w.chars, boxes)
    return records


def members(seed: int = SEED) -> dict[str, bytes]:
    """Every file of the tar.gz, by member name."""
    files: dict[str, bytes] = {}
    pixels = crops(seed)
    with tempfile.TemporaryDirectory() as tmp:
        for split, words in SPLITS.items():
            for w, px in zip(words, pixels[split]):
                files[f"{TOP}/{w.img_name}"] = png(px)
            files[f"{TOP}/{split}data.mat"] = mat_bytes(f"{split}data", data_struct(words), Path(tmp))
            files[f"{TOP}/{split}CharBound.mat"] = mat_bytes(
                f"{split}CharBound", char_bound_struct(words, pixels[split]), Path(tmp)
            )
    vocabulary = sorted({w.ground_truth for ws in SPLITS.values() for w in ws} | set(_DISTRACTORS))
    files[f"{TOP}/lexicon.txt"] = "".join(f"{v}\n" for v in vocabulary).encode("ascii")
    return files


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """IIIT5K-Word_V3.0.tar.gz and the Jyouhou case-sensitive relabel zip."""
    from rebusyn.samplegen import _case_sensitive_pinned

    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_tar_gz(out_dir / ARCHIVE, members(seed)), *_case_sensitive_pinned.write(out_dir)]
