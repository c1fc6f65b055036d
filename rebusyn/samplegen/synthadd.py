"""A sample of SynthAdd in the three forms the recipe reads.

`SynthText_Add.zip`, the release as MMOCR unzips it (`SynthAdd/SynthText_Add/...`, docs/en/datasets/recog.md)
and SAR's `create_dataset.py` reads it:
```
SynthText_Add/crop_img_{1,2,10}/<file>.jpg
SynthText_Add/annotationlist/gt_{1,2,10}.txt    `<file>,"<label>"` lines, LF, final newline [?]
```
(the real release has crop_img_1..20; three parts keep the sample small and put 10 after 2, a natural-order
trap). Traps: the same file name `1_0.jpg` in crop_img_1 and crop_img_2 (keys must differ), a label with a
comma, one with quotes inside (written as is: SAR's reader keeps them [?]), `Café`, `!!!` (empty under the
36-character policy), a 34-character word (too long), a listed file missing from the archive, a line
without quotes, an empty label `""`, a line without a label, a repeated entry; and gt_2.txt saved with a
UTF-8 BOM and CRLF line ends (a robustness trap: the release's own files are LF [?]).

`label.txt`: MMOCR's converted list (`<path> <label>`, download.openmmlab.com/mmocr/data/mixture/SynthAdd),
read with the images of SynthText_Add.zip. Paths start with `SynthText_Add/` [?]; one line is written
without it, one names a missing file, one has no label, one leaves the folder (`..`).

`SynthAdd.zip`: REBU-Syn's `SynthAdd/{data.mdb,lock.mdb}`, one STR LMDB written like DTRB's
`create_lmdb_dataset.py` (keys from 1, `num-samples` last, map size 1 TB; `lock.mdb` zeroed).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from rebusyn.samplegen._word_crops import packed_lmdbs, render_crops
from rebusyn.samplegen.archive import write_zip

RELEASE = "SynthText_Add.zip"
LABELS = "label.txt"
LMDB_ARCHIVE = "SynthAdd.zip"
TOP = "SynthText_Add"

# part n -> (file in crop_img_<n>/ or None when no crop is shipped, gt line as written, label or None).
# A label of None marks a line the parser must refuse; the crop then shows `DRAWN[file]`.
GT: dict[int, list[tuple[str | None, str, str | None]]] = {
    1: [
        ("1_0.jpg", '1_0.jpg,"Hello"', "Hello"),
        ("1_1.jpg", '1_1.jpg,"Rome,Italy"', "Rome,Italy"),
        ("1_2.jpg", '1_2.jpg,"say"hi""', 'say"hi"'),
        ("1_3.jpg", '1_3.jpg,"!!!"', "!!!"),
        (None, '1_4.jpg,"Missing"', None),  # listed, not in the archive
        ("1_5.jpg", '1_5.jpg,"supercalifragilisticexpialidocious"', "supercalifragilisticexpialidocious"),
    ],
    2: [
        ("1_0.jpg", '1_0.jpg,"World"', "World"),  # same file name as in crop_img_1
        ("2_1.jpg", "2_1.jpg,NOQUOTES", None),
        ("2_2.jpg", '2_2.jpg,""', None),
        ("2_3.jpg", '2_3.jpg,"Café"', "Café"),
    ],
    10: [
        ("10_0.jpg", '10_0.jpg,"Zone-B"', "Zone-B"),
        ("10_1.jpg", '10_1.jpg,"42"', "42"),
        ("10_2.jpg", "10_2.jpg", None),
        (None, '10_0.jpg,"again"', None),  # the same file listed twice
    ],
}
DRAWN = {"2_1.jpg": "NOQUOTES", "2_2.jpg": "blank", "10_2.jpg": "nolabel"}  # what refused lines' crops show
CRLF_BOM_PARTS = (2,)
# MMOCR label.txt lines (path relative to the folder holding SynthText_Add/ [?]) -> expected label or None
MMOCR_LINES: list[tuple[str, str | None]] = [
    ("SynthText_Add/crop_img_1/1_0.jpg Hello", "Hello"),
    ("SynthText_Add/crop_img_1/1_1.jpg Rome,Italy", "Rome,Italy"),
    ('SynthText_Add/crop_img_1/1_2.jpg say"hi"', 'say"hi"'),
    ("SynthText_Add/crop_img_1/1_3.jpg !!!", "!!!"),
    ("SynthText_Add/crop_img_2/1_0.jpg World", "World"),
    ("crop_img_2/2_3.jpg Café", "Café"),  # without the SynthText_Add/ prefix
    ("SynthText_Add/crop_img_10/10_0.jpg Zone-B", "Zone-B"),
    ("SynthText_Add/crop_img_10/10_1.jpg 42", "42"),
    ("SynthText_Add/crop_img_1/1_4.jpg Missing", None),
    ("SynthText_Add/crop_img_10/10_2.jpg", None),
    ("SynthText_Add/../outside.jpg Escape", None),
]
LMDB_WORDS = ["Hello", "Rome,Italy", "!!!", "Zürich", "x" * 30]
LMDB_TOP = "SynthAdd"


def release_files() -> list[tuple[str, str]]:
    """(path under SynthText_Add/, drawn text) of every crop the release ships, in gt order."""
    return [
        (f"crop_img_{n}/{file}", label or DRAWN[file])
        for n, rows in GT.items()
        for file, _, label in rows
        if file is not None
    ]


@lru_cache(maxsize=2)
def crops(seed: int = 2019) -> dict[str, bytes]:
    """Every fixture crop by its path under SynthText_Add/ (release) or `lmdb/<i>` (the LMDB)."""
    rng = np.random.default_rng(seed)
    files = release_files()
    names = [f for f, _ in files] + [f"lmdb/{i}" for i in range(1, len(LMDB_WORDS) + 1)]
    return dict(zip(names, render_crops(rng, [t for _, t in files] + LMDB_WORDS)))


def gt_bytes(n: int) -> bytes:
    text = "".join(line + "\n" for _, line, _ in GT[n])
    if n in CRLF_BOM_PARTS:
        return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")
    return text.encode("utf-8")


def release_members(seed: int = 2019) -> dict[str, bytes]:
    images = crops(seed)
    members = {f"{TOP}/{name}": data for name, data in images.items() if not name.startswith("lmdb/")}
    for n in GT:
        members[f"{TOP}/annotationlist/gt_{n}.txt"] = gt_bytes(n)
    return members


def write(out_dir: Path, *, seed: int = 2019) -> list[Path]:
    """Write SynthText_Add.zip, label.txt and SynthAdd.zip into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    release = write_zip(out_dir / RELEASE, release_members(seed))
    labels = out_dir / LABELS
    labels.write_bytes("".join(line + "\n" for line, _ in MMOCR_LINES).encode("utf-8"))
    images = crops(seed)
    samples = [(t, images[f"lmdb/{i}"]) for i, t in enumerate(LMDB_WORDS, start=1)]
    packed = write_zip(out_dir / LMDB_ARCHIVE, packed_lmdbs({LMDB_TOP: samples}, map_size=1 << 40))
    return [release, labels, packed]
