"""A sample of the ICDAR 2015 word-recognition test set (RRC Challenge 4, Task 3), for the
`icdar2015_test_2077` and `icdar2015_test_1811` benchmarks (the training archives are `icdar2015.py`'s).

- ch4_test_word_images_gt.zip: `word_1.png`, `word_2.png`, ... at the top level, no ground truth inside
- Challenge4_Test_Task3_GT.txt: `word_1.png, "JOINT"`, UTF-8 with a BOM, CR/LF (a plain file)
- textrecog_test_1811.json: MMOCR's pre-made list of the 1,811-word subset
  (`data_list[*].img_path` = `textrecog_imgs/test/word_<k>.png`)

The crops are the words warped upright from rendered scenes. Every word is marked with whether it is in
the 1811 subset (independently of the parser): out are words with non-alphanumeric characters (a comma
inside the text `62-,03`, inner quotes `"Quoted"`, `[06]`, `100,000`, `Café`, `!!` which the 36-character
policy empties) and, like the "extremely rotated" words the real subset dropped by eye, the vertical words
(`OPEN`, `SALE`): alphanumeric, so the `rule` approximation keeps them while the list does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._benchmark_scene import mmocr_list, place_all
from rebusyn.samplegen._rrc_fixture import crop_png, native_text
from rebusyn.samplegen.archive import write_zip

SEED = 2077
ARCHIVES = {
    "crops": "ch4_test_word_images_gt.zip",
    "gt": "Challenge4_Test_Task3_GT.txt",
    "list_1811": "textrecog_test_1811.json",
}
SIZE = (640, 480)


@dataclass(frozen=True)
class Word:
    text: str
    in_1811: bool
    vertical: bool = False


# vertical words come last in their scene (render_scene makes every k-th placed word vertical)
SCENES: tuple[tuple[Word, ...], ...] = (
    (Word("JOINT", True), Word("62-,03", False), Word("yourself", True)),
    (Word('"Quoted"', False), Word("EXIT", True), Word("OPEN", False, vertical=True)),
    (Word("Café", False), Word("A", True), Word("[06]", False)),
    (Word("Carpark", True), Word("100,000", False), Word("SALE", False, vertical=True)),
    (Word("Bus", True), Word("!!", False), Word("Metro", True)),
)


@lru_cache(maxsize=2)
def crops(seed: int = SEED) -> tuple[tuple[str, Word, bytes], ...]:
    """(word_<k>.png, word, PNG bytes) in GT order."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, Word, bytes]] = []
    for words in SCENES:
        pixels, placed = place_all(rng, [w.text for w in words], *SIZE, vertical=[w.vertical for w in words])
        for w, p in zip(words, placed):
            out.append((f"word_{len(out) + 1}.png", w, crop_png(pixels, p.quad)))
    return tuple(out)


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write the crop zip, the ground-truth file and MMOCR's 1811 list into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = crops(seed)
    gt = out_dir / ARCHIVES["gt"]
    gt.write_bytes(native_text([f'{name}, "{w.text}"' for name, w, _ in entries], bom=True, crlf=True))
    listed = out_dir / ARCHIVES["list_1811"]
    listed.write_bytes(mmocr_list([(name, w.text) for name, w, _ in entries if w.in_1811]))
    return [write_zip(out_dir / ARCHIVES["crops"], {name: data for name, _, data in entries}), gt, listed]
