"""CUTE80 (Risnumawan et al., 2014): 288 word crops of curved text cut from 80 images, a test benchmark.

The official release (http://cs-chan.com/downloads_CUTE80_dataset.html) has the 80 full images and one XML
of text-line polygons whose layout was never found [?]; the 288-crop benchmark circulates as:

`case_sensitive` (default, what PARSeq evaluates on): `cute80_test/IMG/<i>.jpg` + `cute80_test/label/<i>.txt`
in Long & Yao's Case-Sensitive-Scene-Text-Recognition-Datasets with PARSeq's corrections (baudm's fork;
e.g. Long & Yao's `IMPERIAL COLLEGE` is `IMPERIAL` there, the crop shows one word).

`mmocr`: MMOCR's mirror `timage.tar.gz` (`timage/001.jpg` ...) + `test_label.txt`, four space-separated
fields per line, `timage/001.jpg RONALDO 1 RONALDO` (image, text, and two fields MMOCR ignores).

`mmocr_json`: the same images + MMOCR's `textrecog_test.json` (1.x recognition JSON), the version with
the original annotation's typos fixed, following deep-text-recognition-benchmark (MMOCR's default). Its
`img_path` is rooted in MMOCR's data folder [?: e.g. `textrecog_imgs/test/001.jpg`], so images are found
by file name in `timage/`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from rebusyn.sources._word_labels import Entry, iter_case_sensitive_set, iter_img_text, iter_mmocr_json
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, is_file


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Roles: `crops` (case_sensitive), or `images` + `labels` (mmocr: test_label.txt; mmocr_json: JSON)."""
    if ctx.input == "mmocr":
        labels = ctx.files["labels"]
        return _crops(ctx.files["images"], iter_img_text(labels, labels.name, extra_fields=2))
    if ctx.input == "mmocr_json":
        labels = ctx.files["labels"]
        return _crops(ctx.files["images"], iter_mmocr_json(labels, labels.name))
    return iter_case_sensitive_set(ctx.files["crops"], str(ctx.options.get("folder", "cute80_test")))


def _image_folder(extracted: Path) -> Path:
    for folder in (extracted / "timage", extracted):
        if folder.is_dir() and any(p.suffix.lower() == ".jpg" for p in folder.iterdir()):
            return folder
    raise FileNotFoundError(f"{extracted}: no timage/ folder of crops; is this MMOCR's timage.tar.gz?")


def _crops(extracted: Path, entries: Iterator[Entry | Problem]) -> Iterator[WordCrop | Problem]:
    images = _image_folder(extracted)
    for entry in entries:
        if isinstance(entry, Problem):
            yield entry
            continue
        # `timage/001.jpg` (txt) or a path under MMOCR's data root (JSON): the file name is what matters
        image = images / PurePosixPath(entry.image.replace("\\", "/")).name
        if not is_file(image):
            yield Problem(entry.where, "missing_image", f"{entry.image} is not in {images.name}/")
            continue
        rel = f"{images.name}/{image.name}"
        yield WordCrop(image=image, image_id=rel, text=entry.text, attrs={"image": rel})
