"""SVT-Perspective (SVTP; Phan et al., ICCV 2013): 645 perspective-distorted word crops, a test benchmark.

SVTP's original annotation format was never found [?]; the 645-crop set circulates in two forms:

`case_sensitive` (default, what PARSeq evaluates on): `svtp_test/IMG/<i>.jpg` + `svtp_test/label/<i>.txt`
in Long & Yao's Case-Sensitive-Scene-Text-Recognition-Datasets, with PARSeq's corrections (baudm's fork).
Labels are case-sensitive, one per file, first line used and stripped as PARSeq's
`case_sensitive_str_datasets_converter.py` reads them (Long & Yao's files have no trailing newline,
PARSeq's corrected ones do; some of Long & Yao's labels hold two words, e.g. `THE Casbah`).

`mmocr`: MMOCR's mirror `svtp.zip`: `svtp/par1/<name>_par.jpg` crops and `svtp/gt.txt` with
`13_15_0_par.jpg WYNDHAM` lines (upper-case, case-insensitive labels), names relative to `par1/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rebusyn.sources._str_lmdb import find_dir
from rebusyn.sources._word_labels import iter_case_sensitive_set, iter_img_text
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Role `crops`: the extracted archive of the chosen input (`case_sensitive` or `mmocr`)."""
    if ctx.input == "mmocr":
        return iter_mmocr(ctx.files["crops"])
    return iter_case_sensitive_set(ctx.files["crops"], str(ctx.options.get("folder", "svtp_test")))


def iter_mmocr(extracted: Path) -> Iterator[WordCrop | Problem]:
    folder = extracted if (extracted / "gt.txt").is_file() else find_dir(extracted, "svtp")
    if folder is None or not (folder / "gt.txt").is_file():
        raise FileNotFoundError(f"{extracted}: no svtp/gt.txt in the archive; is this MMOCR's svtp.zip?")
    for entry in iter_img_text(folder / "gt.txt", f"{folder.name}/gt.txt"):
        if isinstance(entry, Problem):
            yield entry
            continue
        image = next((p for p in (folder / "par1" / entry.image, folder / entry.image) if is_file(p)), None)
        if image is None:
            yield Problem(entry.where, "missing_image", f"{entry.image} is not in {folder.name}/par1/")
            continue
        rel = f"{folder.name}/{image.relative_to(folder).as_posix()}"
        yield WordCrop(image=image, image_id=rel, text=entry.text, attrs={"image": rel})
