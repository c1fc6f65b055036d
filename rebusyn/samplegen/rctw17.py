"""A sample of RCTW-17 in its native layout: `train_images.zip.001` + `.002` (one zip split in two) and
`train_gts.zip`.

- images `image_<N>.jpg`, N from 0 (RCTW numbers from 0; `image_10` must sort after `image_9`), at the top
  of the (joined) zip; ground truth `image_<N>.txt` at the top of `train_gts.zip` [layout inside the
  archives not verified: flat is what MMOCR's converter, which lists the folder non-recursively, needs];
- `x1,y1,...,x4,y4,difficult,"transcription"`, UTF-8, mostly with a BOM and CRLF (one file without BOM,
  with LF), quadrilaterals clockwise from the top-left;
- traps: Chinese signboard text (dropped by the Latin-only default), Chinese mixed with digits
  (`创于1989`), commas and double quotes inside the quoted transcription, full-width Latin (`ＯＰＥＮ`),
  `difficult=1` regions with `###` and with a real transcription, vertical words, a label the 36-character
  policy empties (`--`) and one longer than 25 characters.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rebusyn.samplegen._rrc_fixture import SceneWord, Word, coords, encode, native_text, render, split_bytes
from rebusyn.samplegen.archive import write_zip

ARCHIVES = {
    "images_part1": "train_images.zip.001",
    "images_part2": "train_images.zip.002",
    "annotations": "train_gts.zip",
}
SEED = 2017
WIDTH, HEIGHT = 512, 384


def _w(text: str, latin: bool = True) -> Word:
    return Word(text, True, {"difficult": 0, "latin": latin})


def _cn(text: str) -> Word:
    return _w(text, latin=False)


def _difficult(scribble: str, transcription: str = "###") -> Word:
    """A blurred region annotated `difficult=1` (don't care), with `###` or a real transcription."""
    return Word(scribble, False, {"difficult": 1, "latin": False, "transcription": transcription})


# One list per image (image_0 ... image_10). `latin` is the expected fate under the default latin_only.
IMAGES: list[list[Word]] = [
    [_cn("金氏眼镜"), _cn("创于1989"), _cn("城建店"), _w("KFC"), _difficult("xxxx")],
    [_cn("中国银行"), _w("BANK OF CHINA"), _w("ATM"), _cn("24小时"), _difficult("mmmm", "模糊")],
    [_w("9:00,21:00"), _w("Tel:0755-8888"), _cn("营业时间"), _w("ＯＰＥＮ")],
    [_w('Say "Hi"'), _cn("星巴克"), _w("STARBUCKS"), _cn("咖啡")],
    [_w("McDonald's"), _cn("麦当劳"), _w("I'm lovin' it"), _w("1989")],
    [_w("WIFI"), _cn("停车场"), _w("Parking"), _cn("入口"), _w("P2")],
    [_w("Supercalifragilisticexpialidocious"), _w("7-ELEVEN"), _cn("便利店"), _w("--")],
    [_cn("北京大学"), _w("PEKING"), _cn("欢迎您"), _difficult("zzzz")],
    [_cn("华为 HUAWEI"), _w("HUAWEI"), _w("5G"), _cn("手机")],
    [_cn("新华书店"), _w("Xinhua"), _w("Bookstore"), _difficult("wwww")],
    [_cn("地铁"), _w("METRO"), _w("Line 2"), _cn("出口EXIT")],
]
VERTICAL = {5: 3, 8: 2}  # image index -> every k-th legible word is written top to bottom
NO_BOM_LF = {3}  # this ground truth has no BOM and LF line ends


@dataclass(frozen=True)
class Scene:
    name: str  # image_<N>
    pixels: np.ndarray
    words: list[SceneWord]


def scenes(seed: int = SEED) -> list[Scene]:
    """The rendered images and the words that fit, deterministically for `seed` (the tests' ground truth)."""
    rng = np.random.default_rng(seed)
    out = []
    for n, words in enumerate(IMAGES):
        pixels, placed = render(rng, words, WIDTH, HEIGHT, vertical_every=VERTICAL.get(n, 0))
        out.append(Scene(f"image_{n}", pixels, placed))
    return out


def gt_line(word: SceneWord) -> str:
    spec = word.word
    text = spec.attrs.get("transcription", spec.text) if not spec.legible else spec.text
    return f'{coords(word.points)},{spec.attrs["difficult"]},"{text}"'


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """Write the three files into `out_dir`; returns their paths."""
    images: dict[str, bytes] = {}
    gts: dict[str, bytes] = {}
    for n, sc in enumerate(scenes(seed)):
        images[f"{sc.name}.jpg"] = encode(sc.pixels, "jpg")
        plain = n in NO_BOM_LF
        gts[f"{sc.name}.txt"] = native_text([gt_line(w) for w in sc.words], bom=not plain, crlf=not plain)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:  # the whole zip never appears in the mirror, only its parts
        data = write_zip(Path(tmp) / "train_images.zip", images).read_bytes()
    paths = []
    for role, piece in zip(("images_part1", "images_part2"), split_bytes(data, 2)):
        path = out_dir / ARCHIVES[role]
        path.write_bytes(piece)
        paths.append(path)
    paths.append(write_zip(out_dir / ARCHIVES["annotations"], gts))
    return paths
