"""ICDAR 2015 word-recognition test set (RRC Challenge 4, Task 3): the `icdar2015_test_2077` and
`icdar2015_test_1811` benchmarks. The training-side parser is `icdar2015.py`; this module reuses its
`gt.txt` reader and adds what the test set needs.

Archives: `ch4_test_word_images_gt.zip` holds the 2,077 crops `word_1.png` ... `word_2077.png`; their
ground truth is the separate `Challenge4_Test_Task3_GT.txt` (role `annotations`), same syntax as the
training `gt.txt`: `word_1.png, "JOINT"`, UTF-8 with a BOM, CR/LF; the text after the first comma, one pair
of quotes removed, inner quotes and commas kept, no escapes. A `gt.txt` inside the crop archive is used when
no separate file is given. The crops are stored byte for byte.

Subset 1811: the common 1,811-word subset cannot be derived from the native files alone: besides words
with non-alphanumeric characters, "some extremely rotated, perspective-shifted and curved images" were
removed by inspection (Baek et al., "What is wrong with scene text recognition model comparisons?", ICCV
2019, section 3). Two inputs therefore exist (see recipes/icdar2015_test_1811.yaml):

- `mmocr_list` (default): MMOCR's `textrecog_test_1811.json` (role `subset_list`) names the kept crops;
- `rule`: the documented approximation, `drop_non_alphanumeric` only (more than 1,811 words remain).
"""

from __future__ import annotations

from collections.abc import Iterator

from rebusyn.sources._benchmark_subset import SubsetRule, iter_gt_crops, select_listed
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop
from rebusyn.sources.icdar2015 import parse_word_gt


def parse(ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    listed = ctx.files.get("subset_list")
    rule = SubsetRule() if listed else SubsetRule.from_options(ctx.options)
    crops = iter_gt_crops(ctx.files["crops"], ctx.files.get("annotations"), parse_word_gt, rule)
    return select_listed(listed, crops) if listed else crops
