"""ICDAR 2019 ArT (Arbitrary-Shaped Text, RRC Challenge 14): Task 1 scene images or Task 2 word crops.

`detection` (Task 1/3): `train_images.tar.gz` (`train_images/gt_<N>.jpg`) + `train_labels.json`, a dict
`gt_<N>` -> list of `{"points": [[x, y], ...] (4, 8, 10, 12 ... vertices), "transcription", "language"
("Latin" | "Chinese" ...), "illegibility": bool}`. Curved words are polygons and pass through unchanged.

`word_crops` (Task 2): `train_task2_images.tar.gz` (`train_task2_images/<key>.jpg`) +
`train_task2_labels.json`, the same fields but each value a list of exactly one entry whose points are
relative to the crop. The crops are stored byte for byte.

Default filters follow PARSeq's `tools/art_converter.py`: Latin only, no illegible words, no label
containing `#` except `LocaL#3` (blank labels are dropped by the label policy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rebusyn.sources._rrc_json import TextFilter, iter_scene_images, iter_word_crops
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

# Used when an option is missing from the recipe (e.g. in tests); the recipe documents each one.
DEFAULTS: dict[str, Any] = {
    "languages": ["Latin"],
    "drop_hash_labels": True,
    "hash_whitelist": ["LocaL#3"],
    "blacklist": [],
    "strip": True,  # PARSeq compares `transcription.strip()` with the whitelist
}


def text_filter(options: dict[str, Any]) -> TextFilter:
    return TextFilter.from_options(options, DEFAULTS)


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """`detection`: roles images + annotations; `word_crops`: roles crops + crop_annotations."""
    flt = text_filter(ctx.options)
    if ctx.input == "word_crops":
        return iter_word_crops(
            ctx.files["crop_annotations"],
            ctx.files["crops"],
            flt,
            keep_ignored=bool(ctx.options.get("keep_ignored", False)),
        )
    return iter_scene_images(ctx.files["annotations"], [ctx.files["images"]], flt, has_language=True)
