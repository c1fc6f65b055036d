"""ICDAR 2019 LSVT (Large-scale Street View Text, RRC Challenge 16): the fully annotated training set.

`train_full_labels.json`: a dict `gt_<N>` -> list of `{"points": [[x, y], ...], "transcription",
"illegibility": bool}` (no `language` field). Annotations are text lines, mostly Chinese. The images
`gt_<N>.jpg` are split over `train_full_images_0.tar.gz` (`train_full_images_0/...`) and
`train_full_images_1.tar.gz` (`train_full_images_1/...`); every archive whose role starts with `images`
is searched. The weakly annotated part (no polygons) is not used.

Default filters follow PARSeq's `tools/lsvt_converter.py`: no illegible lines, no line containing a CJK
ideograph (`[\\u4e00-\\u9fff]`), blacklist `LOFTINESS*`, no line containing `#` unless it is one of
`#Find YOUR Fun#`, `Story #`, `*0#` (compared unstripped, as PARSeq does).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rebusyn.sources._rrc_json import TextFilter, iter_scene_images
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop

DEFAULTS: dict[str, Any] = {
    "drop_cjk": True,
    "drop_hash_labels": True,
    "hash_whitelist": ["#Find YOUR Fun#", "Story #", "*0#"],
    "blacklist": ["LOFTINESS*"],
    "strip": False,
}


def text_filter(options: dict[str, Any]) -> TextFilter:
    return TextFilter.from_options(options, DEFAULTS)


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Roles `images_0`, `images_1` (any role starting with `images`) and `annotations`."""
    image_dirs = [path for role, path in sorted(ctx.files.items()) if role.startswith("images")]
    return iter_scene_images(
        ctx.files["annotations"], image_dirs, text_filter(ctx.options), has_language=False
    )
