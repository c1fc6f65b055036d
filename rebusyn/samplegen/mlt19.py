"""A sample of MLT 2019 in its native layout: the Task 1 training archives and the Task 2 word-crop archives.

- `ImagesPart1.zip` / `ImagesPart2.zip`: `ImagesPart<k>/tr_img_<NNNNN>.<ext>`, ids up to 05000 in part 1
  [the real split between the parts is not verified], one image per official language block (00001
  Arabic, 01001 English, ..., 09001 Hindi); one image is a PNG and one a GIF, as in the real set;
- `train_gt_t13.zip`: `tr_img_<NNNNN>.txt` at the top [flat layout not verified], lines
  `x1,y1,...,x4,y4,script,transcription`, UTF-8 with BOM and CRLF (two files without BOM, with LF);
- `words_part_1.zip` (crops + `gt.txt`), `words_part_2.zip`, `words_part_3.zip` (more crops): crops
  `word_<k>.png` [names not verified], `gt.txt` lines `word_<k>.png,<script>,<transcription>` with BOM, CRLF.

Traps: every script of the set (Arabic, Latin, Chinese, Japanese, Korean, Bangla, Hindi, Symbols, Mixed),
`###` regions carrying `None` or a real script, commas and apostrophes in transcriptions, diacritics
(`Café`, `Straße`), a Symbols word the 36-character policy empties, a word longer than 25 characters,
vertical words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rebusyn.samplegen._rrc_fixture import SceneWord, Word, coords, crop_png, encode, native_text, render
from rebusyn.samplegen.archive import write_zip

ARCHIVES = {
    "images_part1": "ImagesPart1.zip",
    "images_part2": "ImagesPart2.zip",
    "annotations": "train_gt_t13.zip",
    "crops_part1": "words_part_1.zip",
    "crops_part2": "words_part_2.zip",
    "crops_part3": "words_part_3.zip",
}
SEED = 2019
WIDTH, HEIGHT = 512, 384
KEPT_SCRIPTS = ("Latin", "Symbols")  # PARSeq's filter, the recipe default


def _w(text: str, script: str) -> Word:
    return Word(text, True, {"script": script})


def _dont_care(scribble: str, script: str = "None") -> Word:
    return Word(scribble, False, {"script": script})


# (image id, extension, words). Ids follow the official blocks of 1,000 images per main language.
IMAGES: list[tuple[int, str, list[Word]]] = [
    (
        1,
        "jpg",
        [_w("مرحبا", "Arabic"), _w("SALE", "Latin"), _w("50%", "Symbols"), _dont_care("xxxx", "Arabic")],
    ),
    (
        1001,
        "jpg",
        [
            _w("Coffee", "Latin"),
            _w("Open 24h", "Latin"),
            _w("100,000", "Latin"),
            _dont_care("mmmm"),
            _w("Welcome", "Latin"),
        ],
    ),
    (2001, "png", [_w("Café", "Latin"), _w("Boulangerie", "Latin"), _w("l'été", "Latin")]),
    (3001, "jpg", [_w("北京", "Chinese"), _w("Beijing", "Latin"), _w("Wi-Fi免费", "Mixed")]),
    (4001, "gif", [_w("Straße", "Latin"), _w("Ausgang", "Latin"), _w("Bäckerei", "Latin")]),
    (5001, "jpg", [_w("서울", "Korean"), _w("SEOUL", "Latin"), _w("카페", "Korean")]),
    (
        6001,
        "jpg",
        [_w("東京", "Japanese"), _w("カフェ", "Japanese"), _w("TOKYO", "Latin"), _w("→", "Symbols")],
    ),
    (
        7001,
        "jpg",
        [_w("Supercalifragilistichespiralidoso", "Latin"), _w("Pizzeria", "Latin"), _w("Caffè", "Latin")],
    ),
    (8001, "jpg", [_w("ঢাকা", "Bangla"), _w("Dhaka", "Latin"), _dont_care("wwww", "Bangla")]),
    (9001, "jpg", [_w("दिल्ली", "Hindi"), _w("Delhi", "Latin"), _w("METRO", "Latin")]),
]
VERTICAL = {1001: 3, 9001: 2}  # image id -> every k-th legible word is written top to bottom
NO_BOM_LF = {2001, 6001}
CROPS_PER_PART = (12, 10)  # word_1..12 in part 1 (with gt.txt), the next 10 in part 2, the rest in part 3


@dataclass(frozen=True)
class Scene:
    name: str  # tr_img_<NNNNN>
    ext: str
    pixels: np.ndarray
    words: list[SceneWord]

    @property
    def part(self) -> int:
        return 1 if int(self.name[-5:]) <= 5000 else 2


def scenes(seed: int = SEED) -> list[Scene]:
    """The rendered images and the words that fit, deterministically (the tests' ground truth)."""
    rng = np.random.default_rng(seed)
    out = []
    for image_id, ext, words in IMAGES:
        pixels, placed = render(rng, words, WIDTH, HEIGHT, vertical_every=VERTICAL.get(image_id, 0))
        out.append(Scene(f"tr_img_{image_id:05d}", ext, pixels, placed))
    return out


def gt_line(word: SceneWord) -> str:
    text = word.word.text if word.word.legible else "###"
    return f"{coords(word.points)},{word.word.attrs['script']},{text}"


def word_crops(all_scenes: list[Scene]) -> list[tuple[str, str, str, bytes]]:
    """(crop name, script, transcription, PNG bytes) for every legible word, in scene order."""
    crops = []
    for sc in all_scenes:
        for word in sc.words:
            if word.word.legible:
                name = f"word_{len(crops) + 1}.png"
                crops.append(
                    (name, word.word.attrs["script"], word.word.text, crop_png(sc.pixels, word.points))
                )
    return crops


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write the six archives into `out_dir`; returns their paths."""
    all_scenes = scenes(seed)
    parts: dict[int, dict[str, bytes]] = {1: {}, 2: {}}
    gts: dict[str, bytes] = {}
    for sc in all_scenes:
        # PNG as a palette image: photo-like noise makes a truecolour PNG ten times the size of a JPEG
        data = encode(sc.pixels, "png8" if sc.ext == "png" else sc.ext)
        parts[sc.part][f"ImagesPart{sc.part}/{sc.name}.{sc.ext}"] = data
        plain = int(sc.name[-5:]) in NO_BOM_LF
        gts[f"{sc.name}.txt"] = native_text([gt_line(w) for w in sc.words], bom=not plain, crlf=not plain)
    crops = word_crops(all_scenes)
    first, second = CROPS_PER_PART
    word_parts: list[dict[str, bytes]] = [{}, {}, {}]
    for i, (name, _, _, data) in enumerate(crops):
        word_parts[0 if i < first else 1 if i < first + second else 2][name] = data
    word_parts[0]["gt.txt"] = native_text([f"{n},{s},{t}" for n, s, t, _ in crops], bom=True, crlf=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_zip(out_dir / ARCHIVES["images_part1"], parts[1]),
        write_zip(out_dir / ARCHIVES["images_part2"], parts[2]),
        write_zip(out_dir / ARCHIVES["annotations"], gts),
        *(write_zip(out_dir / ARCHIVES[f"crops_part{k + 1}"], word_parts[k]) for k in range(3)),
    ]
