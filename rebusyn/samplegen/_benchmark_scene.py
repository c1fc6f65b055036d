"""Shared by the ICDAR 2013 and ICDAR 2015 test-set generators: scenes where every requested word must land
(the tests count exact subset sizes) and MMOCR's pre-made subset-list JSON. RRC text files are written
with `_rrc_fixture.native_text`."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from rebusyn.samplegen.scene import PlacedWord, render_scene


def place_all(
    rng: np.random.Generator,
    words: Sequence[str],
    width: int,
    height: int,
    *,
    vertical: Sequence[bool] | None = None,
    tries: int = 100,
) -> tuple[np.ndarray, list[PlacedWord]]:
    """Render `words` until all of them fit, in order; `vertical[i]` asks for word i to be written
    top-to-bottom (render_scene's `vertical_every` counts placed words, so the pattern is checked)."""
    want = list(vertical) if vertical is not None else [False] * len(words)
    every = (want.index(True) + 1) if any(want) else 0
    for _ in range(tries):
        pixels, placed = render_scene(rng, [(w, True) for w in words], width, height, vertical_every=every)
        if [p.text for p in placed] == list(words) and [p.vertical for p in placed] == want:
            return pixels, placed
    raise RuntimeError(f"could not place {list(words)} on {width}x{height}")


def bounding_box(quad: Sequence[tuple[int, int]]) -> tuple[int, int, int, int]:
    """left, top, right, bottom (exclusive) of a placed word: the axis-aligned box annotators draw."""
    q = np.asarray(quad)
    return int(q[:, 0].min()), int(q[:, 1].min()), int(q[:, 0].max()) + 1, int(q[:, 1].max()) + 1


def mmocr_list(entries: Sequence[tuple[str, str]], split: str = "test") -> bytes:
    """MMOCR 1.x recognition annotation (`textrecog_test_<n>.json`), paths under textrecog_imgs/."""
    data = {
        "metainfo": {"dataset_type": "TextRecogDataset", "task_name": "textrecog"},
        "data_list": [
            {"instances": [{"text": text}], "img_path": f"textrecog_imgs/{split}/{name}"}
            for name, text in entries
        ],
    }
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
