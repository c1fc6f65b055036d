"""A sample of SynthText in the layout of the official `SynthText.zip`, plus the LMDB packs the other inputs
read (see `_synth_lmdb`).

```
SynthText/<folder>/<background>_<k>_<j>.jpg
SynthText/gt.mat   MATLAB v7 (compressed v5) written by scipy.io.savemat: 1×N cell arrays imnames, wordBB,
                   charBB, txt, shaped as synth_generators.md §5.2 describes
```
`txt{i}` is a char matrix whose rows are padded with spaces and may hold several words and newlines
(SynthText writes a text block per row); `wordBB{i}` is 2×4×n, or 2×4 for a one-word scene (MATLAB drops the
trailing singleton dimension). Traps: the same file name in two folders, a one-word scene, a scene whose
word count differs from its box count, a degenerate box, a box outside the image, a scene listed in gt.mat
but absent from the zip, non-ASCII and punctuation-only words.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.io

from rebusyn.samplegen._rrc_scene import jpeg
from rebusyn.samplegen._synth_lmdb import write_dtrb, write_parseq
from rebusyn.samplegen.archive import write_zip
from rebusyn.samplegen.scene import render_scene

ARCHIVE = "SynthText.zip"
TOP = "SynthText"

# (imname, txt rows as SynthText writes them, extra boxes: "degenerate" | "outside" | "drop_last")
SCENES: list[tuple[str, list[str], str]] = [
    ("1/ballet_1_0.jpg", ["Lines:\nI lost", "Kevin", "will"], ""),
    ("1/ant+hill_2_0.jpg", ["Tax-free"], ""),  # one word: wordBB is 2x4
    ("2/ballet_1_0.jpg", ["café", "--"], ""),  # same file name as scene 1, another folder
    ("2/mismatch_3_0.jpg", ["three words here"], "drop_last"),  # 3 words, 2 boxes
    ("2/bad_4_0.jpg", ["good", "flat", "away"], "degenerate+outside"),  # boxes 2 and 3 broken
    ("3/absent_5_0.jpg", ["ghost"], ""),  # in gt.mat, not in the zip
]
WIDTH, HEIGHT = 480, 360


@lru_cache(maxsize=1)
def scenes(seed: int = 800) -> list[tuple[str, bytes, np.ndarray, list[str]]]:
    """(imname, JPEG, wordBB, txt rows) per scene, wordBB shaped as gt.mat stores it."""
    rng = np.random.default_rng(seed)
    out = []
    for imname, rows, trap in SCENES:
        words = [w for row in rows for w in row.split()]
        for _ in range(50):
            pixels, placed = render_scene(rng, [(w, True) for w in words], WIDTH, HEIGHT)
            if [p.text for p in placed] == words:
                break
        else:
            raise RuntimeError(f"could not place {words}")
        quads = np.array([p.quad for p in placed], dtype=np.float64)  # n x 4 x 2
        if "degenerate" in trap:
            quads[1] = quads[1][0]  # all four corners on one point
        if "outside" in trap:
            quads[2] += [WIDTH + 50, 0]  # shifted off the right edge
        if trap == "drop_last":
            quads = quads[:-1]
        bb = np.transpose(quads, (2, 1, 0))  # 2 x 4 x n, as gt.mat stores it
        if bb.shape[2] == 1:
            bb = np.ascontiguousarray(bb[:, :, 0])
        out.append((imname, jpeg(pixels), bb, rows))
    return out


def gt_mat(seed: int = 800) -> bytes:
    data = scenes(seed)
    cells = {name: np.empty((1, len(data)), dtype=object) for name in ("imnames", "wordBB", "charBB", "txt")}
    for i, (imname, _, bb, rows) in enumerate(data):
        cells["imnames"][0, i] = np.array([imname])
        cells["wordBB"][0, i] = bb
        cells["charBB"][0, i] = np.zeros((2, 4, sum(len(r.replace(" ", "").replace("\n", "")) for r in rows)))
        cells["txt"][0, i] = np.array(rows)  # rows of unequal length: savemat pads them with spaces
    buf = io.BytesIO()
    scipy.io.savemat(buf, cells, do_compression=True, format="5")
    # savemat stamps the 116-byte header text with the time: a fixed, MATLAB-like one keeps SHA256SUMS stable
    header = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Sat Jan  1 00:00:00 2016"
    return header.ljust(116, b" ") + buf.getvalue()[116:]


def members(seed: int = 800) -> dict[str, bytes]:
    out = {f"{TOP}/{imname}": data for imname, data, _, _ in scenes(seed) if "absent" not in imname}
    out[f"{TOP}/gt.mat"] = gt_mat(seed)
    return out


def write(out_dir: Path) -> list[Path]:
    """Write SynthText.zip, data_lmdb_release.zip and parseq_synth.tar into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_zip(out_dir / ARCHIVE, members()), write_dtrb(out_dir), write_parseq(out_dir)]
