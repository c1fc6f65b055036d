"""A sample of ReCTS 2019 in its native layout: one `ReCTS.zip` with `img/`, `gt/` and `gt_unicode/`.

- `img/train_ReCTS_<NNNNNN>.jpg` [file names not verified];
- `gt_unicode/<name>.json`: `{"chars": [...], "lines": [...]}`, each entry `{"points": [8 ints],
  "transcription": str, "ignore": 0|1}`, UTF-8 text; `gt/<name>.json`: the same content with `\\uXXXX`
  escapes (what distinguishes the two real folders is unknown; this is one plausible difference that every
  JSON reader handles);
- `chars` hold one box per character of each line (the line's quadrilateral cut into equal slices along
  its reading direction).

Traps: Chinese signboards (dropped by the Latin-only default), Chinese mixed with digits and full-width
Latin (`7天酒店`, `ＡＢＣ超市`), full-width Latin alone (`ＫＦＣ`), `ignore: 1` lines with `###` and with a
real transcription, a double quote and a comma inside transcriptions, a diacritic, a vertical line, and an
image whose every line is Chinese.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rebusyn.samplegen._rrc_fixture import SceneWord, Word, encode, render
from rebusyn.samplegen.archive import write_zip

ARCHIVE = "ReCTS.zip"
SEED = 2019_12
WIDTH, HEIGHT = 512, 384


def _w(text: str, latin: bool = True) -> Word:
    return Word(text, True, {"latin": latin})


def _cn(text: str) -> Word:
    return _w(text, latin=False)


def _ignored(scribble: str, transcription: str = "###") -> Word:
    return Word(scribble, False, {"latin": False, "transcription": transcription})


IMAGES: list[list[Word]] = [
    [_cn("小肥羊"), _w("HOKI"), _w("TEA"), _ignored("xxxx")],
    [_cn("火锅"), _w("ＫＦＣ"), _cn("肯德基")],
    [_cn("7天酒店"), _w("7 DAYS INN"), _w("24H")],
    [_cn("老北京炸酱面"), _ignored("mmmm", "模糊不清"), _w("Tel:010-6666,8888")],
    [_w("OPEN"), _cn("欢迎光临"), _cn("沙县小吃")],
    [_cn("理发店"), _cn("美容美发")],
    [_w("CAFÉ"), _cn("咖啡"), _w("Wi-Fi")],
    [_w('Lucky "Star"'), _cn("ＡＢＣ超市"), _ignored("wwww")],
]
VERTICAL = {4: 3}  # image index -> every k-th legible word is written top to bottom


@dataclass(frozen=True)
class Scene:
    name: str  # train_ReCTS_<NNNNNN>
    pixels: np.ndarray
    words: list[SceneWord]


def scenes(seed: int = SEED) -> list[Scene]:
    """The rendered images and the words that fit, deterministically (the tests' ground truth)."""
    rng = np.random.default_rng(seed)
    out = []
    for n, words in enumerate(IMAGES, start=1):
        pixels, placed = render(rng, words, WIDTH, HEIGHT, vertical_every=VERTICAL.get(n - 1, 0))
        out.append(Scene(f"train_ReCTS_{n:06d}", pixels, placed))
    return out


def transcription(word: SceneWord) -> str:
    return word.word.text if word.word.legible else word.word.attrs["transcription"]


def char_boxes(word: SceneWord) -> list[tuple[str, list[int]]]:
    """One quadrilateral per character: the line's quad cut into equal slices along its reading direction
    (top to bottom for vertical lines, whose annotated box is upright)."""
    text = transcription(word)
    if text == "###":
        return [("###", [int(v) for xy in word.points for v in xy])]
    p = np.array(word.points, dtype=np.float64)
    if word.vertical:  # upright box, text runs down: slice along the left and right edges
        a0, a1, b0, b1 = p[0], p[3], p[1], p[2]
    else:
        a0, a1, b0, b1 = p[0], p[1], p[3], p[2]
    out = []
    n = len(text)
    for i, ch in enumerate(text):
        s, e = i / n, (i + 1) / n
        tl, tr = a0 + (a1 - a0) * s, a0 + (a1 - a0) * e
        bl, br = b0 + (b1 - b0) * s, b0 + (b1 - b0) * e
        quad = [tl, bl, br, tr] if word.vertical else [tl, tr, br, bl]
        out.append((ch, [int(round(v)) for xy in quad for v in xy]))
    return out


def ground_truth(sc: Scene) -> dict:
    """The JSON object of one image: `chars` first, then `lines`, as the RRC tasks page shows them."""
    chars, lines = [], []
    for word in sc.words:
        ignore = 0 if word.word.legible else 1
        for ch, points in char_boxes(word):
            if ch.strip():
                chars.append({"points": points, "transcription": ch, "ignore": ignore})
        points = [int(v) for xy in word.points for v in xy]
        lines.append({"points": points, "transcription": transcription(word), "ignore": ignore})
    return {"chars": chars, "lines": lines}


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write `ReCTS.zip` into `out_dir`; returns its path."""
    members: dict[str, bytes] = {}
    for sc in scenes(seed):
        members[f"img/{sc.name}.jpg"] = encode(sc.pixels, "jpg")
        gt = ground_truth(sc)
        members[f"gt_unicode/{sc.name}.json"] = json.dumps(gt, ensure_ascii=False).encode("utf-8")
        members[f"gt/{sc.name}.json"] = json.dumps(gt, ensure_ascii=True).encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_zip(out_dir / ARCHIVE, members)]
