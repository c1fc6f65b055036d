"""A sample of SVTP in both forms the recipe reads.

`Case-Sensitive-Scene-Text-Recognition-Datasets-master.zip` (input `case_sensitive`): see
`_case_sensitive.py`; its `svtp_test/` has 10 crops (PARSeq-corrected label with a trailing newline, a
two-word label, an apostrophe, `&`).

`svtp.zip` (input `mmocr`, MMOCR's mirror): `svtp/par1/<name>_par.jpg` and `svtp/gt.txt` with
`13_15_0_par.jpg WYNDHAM` lines (upper-case labels, names relative to `par1/`, LF, final newline [?]).
The crops are the first ones of the case-sensitive set (the same 645 images in the real data).
"""

from __future__ import annotations

from pathlib import Path

from rebusyn.samplegen import _case_sensitive
from rebusyn.samplegen.archive import write_zip

MMOCR_ARCHIVE = "svtp.zip"
# (name in par1/, gt.txt label) for the first crops of the case-sensitive set, in gt.txt order
MMOCR_GT = [
    ("13_15_0_par.jpg", "WYNDHAM"),
    ("13_15_1_par.jpg", "HOTEL"),
    ("12_16_0_par.jpg", "UNITED"),
    ("12_16_1_par.jpg", "STATES"),
    ("107_20_0_par.jpg", "CASBAH"),
]


def mmocr_members(seed: int = 2020) -> dict[str, bytes]:
    images = _case_sensitive.crops(seed)["svtp_test"]
    members = {f"svtp/par1/{name}": image for (name, _), image in zip(MMOCR_GT, images)}
    members["svtp/gt.txt"] = "".join(f"{name} {text}\n" for name, text in MMOCR_GT).encode()
    return members


def write(out_dir: Path, *, seed: int = 2020) -> list[Path]:
    """Write the case-sensitive archive and svtp.zip into `out_dir`."""
    archive = _case_sensitive.write_archive(out_dir, seed)
    return [archive, write_zip(out_dir / MMOCR_ARCHIVE, mmocr_members(seed))]
