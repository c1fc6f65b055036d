"""A sample of ICDAR 2013 Focused Scene Text (RRC Challenge 2) in its native layout: every archive the
`icdar2013` training recipe and the `icdar2013_test_857` / `icdar2013_test_1015` benchmarks read.

- Challenge2_Training_Task12_Images.zip: `100.jpg`, `101.jpg`, ... (the training ids start at 100)
- Challenge2_Training_Task1_GT.zip: `gt_100.txt`, ...: `158 128 411 181 "Footpath"`, space-separated
- Challenge2_Training_Task3_Images_GT.zip: `word_1.png`, ... + `gt.txt` (`word_1.png, "PROPER"`)
- Challenge2_Test_Task12_Images.zip: `img_1.jpg`, ...
- Challenge2_Test_Task1_GT.zip: `gt_img_1.txt`, ...: `38, 43, 920, 215, "Tiredness"`, ", "-separated
- Challenge2_Test_Task3_Images.zip: `word_1.png`, ... (no ground truth inside)
- Challenge2_Test_Task3_GT.txt: `word_1.png, "Tiredness"` (a plain file, not zipped)
- textrecog_test_1015.json, textrecog_test_857.json: MMOCR's pre-made subset lists

All text files are ASCII with CR/LF; one training ground truth carries a UTF-8 BOM (readers use utf-8-sig
defensively). Transcriptions are double-quoted with backslash escapes for `"` and `\\`. The Task 3 crops
are the words' boxes cut from the scene images, so both inputs see the same words.

Traps for the subset rules (each test word is marked with the subsets it belongs to, independently of the
parser): words with punctuation (`it's`, `Tel:`, `50%`, `"HOT"` with escaped quotes, `a\\b` with an escaped
backslash), a non-ASCII letter (`Café`), one- and two-character words (`A`, `3`, `TO`, `ok`: in 1015, not
in 857), and an alphanumeric word of 28 characters that is in both subsets but longer than the label
policy's 25.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.crop import crop_box
from rebusyn.samplegen._benchmark_scene import bounding_box, mmocr_list, place_all
from rebusyn.samplegen._rrc_fixture import encode, native_text
from rebusyn.samplegen._rrc_scene import jpeg
from rebusyn.samplegen.archive import write_zip

SEED = 2013
ARCHIVES = {
    "train_images": "Challenge2_Training_Task12_Images.zip",
    "train_gt": "Challenge2_Training_Task1_GT.zip",
    "train_words": "Challenge2_Training_Task3_Images_GT.zip",
    "test_images": "Challenge2_Test_Task12_Images.zip",
    "test_gt": "Challenge2_Test_Task1_GT.zip",
    "test_words": "Challenge2_Test_Task3_Images.zip",
    "test_words_gt": "Challenge2_Test_Task3_GT.txt",
    "list_1015": "textrecog_test_1015.json",
    "list_857": "textrecog_test_857.json",
}


@dataclass(frozen=True)
class Word:
    text: str
    subsets: frozenset[str] = frozenset()  # of "1015", "857" (test words)


def _w(text: str, *subsets: str) -> Word:
    return Word(text, frozenset(subsets))


BOTH = ("1015", "857")
LONG_WORD = "Antidisestablishmentarianism"  # 28 alphanumeric characters
TRAIN: dict[str, tuple[Word, ...]] = {
    "100": (_w("PROPER"), _w("FOOD"), _w('"HOT"')),
    "101": (_w("Footpath"), _w("it's"), _w("A")),
    "102": (_w("50%"), _w("TO"), _w("Hotel")),
    "103": (_w("24h"), _w("ROAD")),
}
TEST: dict[str, tuple[Word, ...]] = {
    "img_1": (_w("Tiredness", *BOTH), _w("kills", *BOTH), _w("A", "1015"), _w('"HOT"')),
    "img_2": (_w("it's"), _w("EXIT", *BOTH), _w("TO", "1015"), _w("3", "1015")),
    "img_3": (_w("Tel:"), _w("50%"), _w(LONG_WORD, *BOTH)),
    "img_4": (_w("Café"), _w("24h", *BOTH), _w("ok", "1015"), _w("ROAD", *BOTH), _w("a\\b")),
}
SIZE = (640, 480)


@dataclass(frozen=True)
class SceneWord:
    word: Word
    box: tuple[int, int, int, int]  # left, top, right, bottom (exclusive)


@dataclass(frozen=True)
class Scene:
    image_id: str
    pixels: np.ndarray
    words: tuple[SceneWord, ...]


@lru_cache(maxsize=2)
def scenes(seed: int = SEED) -> dict[str, tuple[Scene, ...]]:
    """split -> its scenes, every word placed (deterministic for the seed)."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[Scene, ...]] = {}
    for split, spec in (("train", TRAIN), ("test", TEST)):
        done = []
        for image_id, words in spec.items():
            pixels, placed = place_all(rng, [w.text for w in words], *SIZE)
            boxes = [bounding_box(p.quad) for p in placed]
            done.append(Scene(image_id, pixels, tuple(SceneWord(w, b) for w, b in zip(words, boxes))))
        out[split] = tuple(done)
    return out


def quoted(text: str) -> str:
    """RRC quoting: a backslash escapes double quotes and backslashes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def word_crops(split: str, seed: int = SEED) -> list[tuple[str, str, bytes]]:
    """(word_<k>.png, text, PNG bytes) of every word of the split, in scene order: the Task 3 crops."""
    out = []
    for sc in scenes(seed)[split]:
        for sw in sc.words:
            x0, y0, x1, y1 = sw.box
            crop = crop_box(sc.pixels, np.array([[x0, y0], [x1, y1]], dtype=np.float64))
            out.append((f"word_{len(out) + 1}.png", sw.word.text, encode(crop, "png")))
    return out


def subset_entries(subset: str, seed: int = SEED) -> list[tuple[str, str]]:
    """(crop name, text) of the test crops in a subset, as the generator marked them."""
    words = [sw.word for sc in scenes(seed)["test"] for sw in sc.words]
    return [
        (name, text) for (name, text, _), w in zip(word_crops("test", seed), words) if subset in w.subsets
    ]


def _gt_line(split: str, sw: SceneWord) -> str:
    x0, y0, x1, y1 = sw.box
    if split == "train":
        return f"{x0} {y0} {x1} {y1} {quoted(sw.word.text)}"
    return f"{x0}, {y0}, {x1}, {y1}, {quoted(sw.word.text)}"


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write the nine files into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in ("train", "test"):
        images: dict[str, bytes] = {}
        gts: dict[str, bytes] = {}
        for n, sc in enumerate(scenes(seed)[split]):
            images[f"{sc.image_id}.jpg"] = jpeg(sc.pixels, 75)
            # ASCII CR/LF; one file (the second training one) with a BOM, which readers tolerate
            bom = split == "train" and n == 1
            gts[f"gt_{sc.image_id}.txt"] = native_text(
                [_gt_line(split, sw) for sw in sc.words], bom=bom, crlf=True
            )
        crops = word_crops(split, seed)
        lines = [f"{name}, {quoted(text)}" for name, text, _ in crops]
        words = {name: data for name, _, data in crops}
        paths += [
            write_zip(out_dir / ARCHIVES[f"{split}_images"], images),
            write_zip(out_dir / ARCHIVES[f"{split}_gt"], gts),
        ]
        if split == "train":
            words["gt.txt"] = native_text(lines, bom=False, crlf=True)
            paths.append(write_zip(out_dir / ARCHIVES["train_words"], words))
        else:
            paths.append(write_zip(out_dir / ARCHIVES["test_words"], words))
            (out_dir / ARCHIVES["test_words_gt"]).write_bytes(native_text(lines, bom=False, crlf=True))
            paths.append(out_dir / ARCHIVES["test_words_gt"])
    for subset in ("1015", "857"):
        path = out_dir / ARCHIVES[f"list_{subset}"]
        path.write_bytes(mmocr_list(subset_entries(subset, seed)))
        paths.append(path)
    return paths
