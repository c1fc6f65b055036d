"""A sample of MJSynth in the official tarball's layout, plus the LMDB packs the other inputs read.

`mjsynth.tar.gz` (synth_generators.md §5.1; MMOCR dataset_zoo/mjsynth/sample_anno.md):
```
mnt/ramdisk/max/90kDICT32px/<d1>/<d2>/<n>_<Word>_<lexicon index>.jpg     32-px-high word images
mnt/ramdisk/max/90kDICT32px/annotation_{train,val,test}.txt, annotation.txt   ./<d1>/<d2>/<file> <index>
mnt/ramdisk/max/90kDICT32px/imlist.txt, lexicon.txt                          one word per line (0-based)
```
Members are in natural order, so every image comes before the lists: the reader's worst case (its first
pass must go through the whole archive to find them).
Traps: file-name case differs from the lexicon (`Slinking` vs `slinking`), a 0-byte image, a corrupt one, a
file-name word that is not its lexicon entry, an image listed but absent, an image in no list, a malformed
annotation line, a digits-only word.

Also `data_lmdb_release.zip` and `parseq_synth.tar` (see `_synth_lmdb`).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from rebusyn.samplegen._rrc_scene import jpeg
from rebusyn.samplegen._synth_lmdb import write_dtrb, write_parseq
from rebusyn.samplegen._word_crops import render_crops
from rebusyn.samplegen._word_images import render as word_image
from rebusyn.samplegen.archive import _MTIME, write_tar_gz
from rebusyn.samplegen.scene import sample_font_path
from rebusyn.synth.corpus import load_corpus

ARCHIVE = "mjsynth.tar.gz"
TOP = "mnt/ramdisk/max/90kDICT32px"
LEXICON = [
    "zero", "slinking", "pritchard", "exit", "salt", "mobile", "hotels", "motel", "missing", "2008",
    "ballet", "cafe", "ghost",
]  # fmt: skip

# (path under 90kDICT32px, split or None for "in no list", kind): kind "ok" | "empty" | "corrupt" | "absent"
ENTRIES: list[tuple[str, str | None, str]] = [
    ("1/1/1_Slinking_1.jpg", "train", "ok"),
    ("1/1/2_PRITCHARD_2.jpg", "train", "ok"),
    ("1/2/3_exit_3.jpg", "train", "ok"),
    ("2/1/4_salt_4.jpg", "train", "empty"),
    ("2/1/5_mobile_5.jpg", "train", "corrupt"),
    ("2/2/6_Hotel_7.jpg", "train", "ok"),  # lexicon line 7 is "motel": lexicon_mismatch
    ("2/3/7_missing_8.jpg", "train", "absent"),
    ("3/1/8_2008_9.jpg", "train", "ok"),
    ("3/2/9_Ballet_10.jpg", "val", "ok"),
    ("3/3/10_cafe_11.jpg", "test", "ok"),
    ("4/1/11_ghost_12.jpg", None, "ok"),
]
BAD_LINE = "./3/4/this line has no index\n"  # in annotation_train.txt


def word(rel: str) -> str:
    return Path(rel).stem.split("_")[1]


def to_32px(jpeg: bytes) -> bytes:
    """MJSynth's images are 32 px high."""
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    h, w = pixels.shape[:2]
    resized = cv2.resize(pixels, (max(1, round(w * 32 / h)), 32), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@lru_cache(maxsize=1)
def images(seed: int = 7) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    names = [rel for rel, _, kind in ENTRIES if kind == "ok"]
    crops = render_crops(rng, [word(rel) for rel in names])
    out = {rel: to_32px(c) for rel, c in zip(names, crops)}
    out["2/1/4_salt_4.jpg"] = b""
    out["2/1/5_mobile_5.jpg"] = b"\xff\xd8\xff\xe0 truncated JPEG header"
    return out


def annotation(split: str) -> bytes:
    lines = [f"./{rel} {rel.rsplit('_', 1)[1][:-4]}\n" for rel, s, _ in ENTRIES if s == split]
    if split == "train":
        lines.insert(2, BAD_LINE)
    return "".join(lines).encode()


def members() -> dict[str, bytes]:
    out = {f"{TOP}/{rel}": data for rel, data in images().items()}
    for split in ("train", "val", "test"):
        out[f"{TOP}/annotation_{split}.txt"] = annotation(split)
    listed = [line for s in ("train", "val", "test") for line in annotation(s).decode().splitlines(True)]
    out[f"{TOP}/annotation.txt"] = "".join(line for line in listed if line != BAD_LINE).encode()
    out[f"{TOP}/imlist.txt"] = "".join(f"./{rel}\n" for rel, _, k in ENTRIES if k != "absent").encode()
    out[f"{TOP}/lexicon.txt"] = "".join(w + "\n" for w in LEXICON).encode()
    return out


def write(out_dir: Path) -> list[Path]:
    """Write mjsynth.tar.gz, data_lmdb_release.zip and parseq_synth.tar into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_tar_gz(out_dir / ARCHIVE, members()), write_dtrb(out_dir), write_parseq(out_dir)]


# --- at scale, for benchmarks/bench_mjsynth.py --------------------------------------------------------------


def large_entries(n: int, lexicon_size: int) -> Iterator[tuple[str, str, int]]:
    """(path, split, lexicon index) of `n` images spread like the real set: 81% train, 9% val, 10% test
    (7,224,612 / 802,734 / 891,927), 4000 folders of 7 sub-folders."""
    for k in range(n):
        split = "train" if k % 100 < 81 else "val" if k % 100 < 90 else "test"
        index = (k * 7919) % lexicon_size
        yield f"{1 + k % 4000}/{1 + (k // 4000) % 7}/{k}_{{w}}_{index}.jpg", split, index


def write_large(path: Path, n: int, *, pool: int = 256, seed: int = 11, compresslevel: int = 6) -> Path:
    """An MJSynth-layout `.tar.gz` of `n` images, streamed to disk (memory does not grow with `n`): word
    images are drawn from a pool of `pool` rendered crops; the lists and the lexicon come last, as in the
    small sample (the reader's worst case)."""
    rng = np.random.default_rng(seed)
    corpus = [w for w in load_corpus() if w.isalnum()]
    words = [corpus[int(i)] for i in rng.choice(len(corpus), size=pool, replace=False)]
    font = sample_font_path()
    if font is None:
        raise RuntimeError("write_large draws with trdg's bundled fonts: install trdg (make install)")
    crops = [to_32px(jpeg(word_image(rng, w, font, 28)[:, :, ::-1], 90)) for w in words]
    lexicon = [w.lower() for w in words]
    lists: dict[str, io.StringIO] = {s: io.StringIO() for s in ("train", "val", "test")}
    tmp = path.with_name(path.name + ".tmp")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=_MTIME, compresslevel=compresslevel) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.GNU_FORMAT) as tar,
    ):
        for pattern, split, index in large_entries(n, len(lexicon)):
            rel = pattern.format(w=words[index])
            _add(tar, f"{TOP}/{rel}", crops[index])
            tar.members = []  # TarFile keeps every TarInfo it writes too: 2M of them held 3.5 GB
            lists[split].write(f"./{rel} {index}\n")
        for split, text in lists.items():
            _add(tar, f"{TOP}/annotation_{split}.txt", text.getvalue().encode())
        _add(tar, f"{TOP}/lexicon.txt", "".join(w + "\n" for w in lexicon).encode())
    tmp.replace(path)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, _MTIME
    tar.addfile(info, io.BytesIO(data))
