"""A sample of CUTE80 in the three forms the recipe reads.

`Case-Sensitive-Scene-Text-Recognition-Datasets-master.zip` (input `case_sensitive`): see
`_case_sensitive.py`; its `cute80_test/` has 8 crops of curved words (two PARSeq-corrected labels with a
trailing newline, a two-word label, a stray `.DS_Store`).

MMOCR's mirror (inputs `mmocr` and `mmocr_json`): `timage.tar.gz` with `timage/001.jpg` ... (the same
crops), `test_label.txt` with `timage/001.jpg RONALDO 1 RONALDO` lines (image, text, two fields MMOCR
ignores; the original labels, with a typo: `SEACRST`) and `textrecog_test.json`, MMOCR's typo-fixed 1.x
JSON whose `img_path` is rooted in MMOCR's data folder (`textrecog_imgs/test/001.jpg` [?]).
"""

from __future__ import annotations

import json
from pathlib import Path

from rebusyn.samplegen import _case_sensitive
from rebusyn.samplegen.archive import write_tar_gz

IMAGES = "timage.tar.gz"
LABELS = "test_label.txt"
JSON = "textrecog_test.json"
# (original test_label.txt text, typo-fixed JSON text) per crop, in file order 001, 002, ...
MMOCR_LABELS = [
    ("RONALDO", "RONALDO"),
    ("7", "7"),
    ("SEACRST", "SEACREST"),  # a typo of the original annotation, fixed in the JSON
    ("BEACH", "BEACH"),
    ("SOUTHAMPTON", "SOUTHAMPTON"),
    ("IMPERIAL", "IMPERIAL"),
    ("MANCHESTER", "MANCHESTER"),
    ("FOOTBALL", "FOOTBALL"),
]


def write(out_dir: Path, *, seed: int = 2020) -> list[Path]:
    """Write the case-sensitive archive, timage.tar.gz, test_label.txt and textrecog_test.json."""
    archive = _case_sensitive.write_archive(out_dir, seed)
    images = _case_sensitive.crops(seed)["cute80_test"]
    names = [f"{i:03d}.jpg" for i in range(1, len(MMOCR_LABELS) + 1)]
    tar = write_tar_gz(out_dir / IMAGES, {f"timage/{n}": image for n, image in zip(names, images)})
    lines = "".join(f"timage/{n} {txt} 1 {txt}\n" for n, (txt, _) in zip(names, MMOCR_LABELS))
    (out_dir / LABELS).write_bytes(lines.encode())
    data_list = [
        {"img_path": f"textrecog_imgs/test/{n}", "instances": [{"text": fixed}]}
        for n, (_, fixed) in zip(names, MMOCR_LABELS)
    ]
    meta = {"dataset_type": "TextRecogDataset", "task_name": "textrecog"}
    (out_dir / JSON).write_bytes(json.dumps({"metainfo": meta, "data_list": data_list}).encode())
    return [archive, tar, out_dir / LABELS, out_dir / JSON]
