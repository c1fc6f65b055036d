"""What every synthesis engine shares: its configuration, its results, and how `rebusyn synth` finds it.

An engine is the module `rebusyn.synth.<name>_engine` (see ENGINES) with
  - `engine_version() -> str`                       recorded in the report and every sample's meta
  - `init_worker(config: EngineConfig) -> None`      builds the process's renderer once (pool initializer)
  - `render_chunk(bounds: tuple[int, int]) -> list[Rendered | Dropped]`
                                                    renders indices [start, stop) in order
  - `CONFIG_SCHEMA` (engines with an effect config)  what `rebusyn.synth.config` validates
  - `prepare(config)` (optional)                     run once in the main process before workers fork
Every sample is a function of (config, index) alone, so any number of workers gives the same bytes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from rebusyn.sample import LabelPolicy

ENGINES = ("trdg", "fast", "scene")


@dataclass(frozen=True)
class EngineConfig:
    """Everything a worker needs; small and picklable (the corpus and backgrounds travel as paths)."""

    seed: int
    corpus: Path | None
    fonts: tuple[tuple[str, frozenset[str]], ...]  # (font file, characters it can draw), sorted
    charset: str
    max_len: int
    height: int
    effects: Any = None  # rebusyn.synth.config.SynthConfig for engines that have one
    backgrounds: Path | None = None  # a folder of background photos (scene engine); None = trdg's


@dataclass(frozen=True)
class Rendered:
    index: int
    image: bytes
    label: str
    text: str
    width: int
    height: int
    extra: dict[str, Any]


@dataclass(frozen=True)
class Dropped:
    index: int
    reason: str
    detail: str = ""


def engine_module(name: str) -> ModuleType:
    if name not in ENGINES:
        raise ValueError(f"unknown synth engine {name!r}; available: {', '.join(ENGINES)}")
    return importlib.import_module(f"rebusyn.synth.{name}_engine")


class FontPicker:
    """The usable fonts of a config and, for a text, one that can draw every character of it."""

    def __init__(self, fonts: tuple[tuple[str, frozenset[str]], ...]) -> None:
        self.paths = [f for f, _ in fonts]
        self.chars = [chars for _, chars in fonts]
        # characters every font draws: most texts need no per-font check at all
        self.common = frozenset.intersection(*self.chars) if self.chars else frozenset()

    def pick(self, rng: np.random.Generator, text: str) -> int | None:
        needed = set(text) - {" "}
        if needed <= self.common:
            candidates: range | list[int] = range(len(self.paths))
        else:
            candidates = [k for k, chars in enumerate(self.chars) if needed <= chars]
            if not candidates:
                return None
        return candidates[int(rng.integers(len(candidates)))]


def begin_sample(
    seed: int,
    index: int,
    draw_text: Callable[[np.random.Generator], str],
    policy: LabelPolicy,
    fonts: FontPicker,
) -> tuple[np.random.Generator, str, str, int] | Dropped:
    """What every engine does first, in this order (so drops cost no rendering): the generator of
    (seed, index), the text, its label under the policy, a font that can draw it. Returns (rng, text, label,
    font index), or why the index is dropped."""
    rng = np.random.default_rng([seed, index])
    text = draw_text(rng)
    label, reason = policy.normalize(text)
    if label is None:
        return Dropped(index, reason or "bad_label")
    font = fonts.pick(rng, text)
    if font is None:
        return Dropped(index, "no_font_for_text", text)
    return rng, text, label, font


def attempts(rng: np.random.Generator, seed: int, index: int, count: int
             ) -> Iterator[tuple[int, np.random.Generator]]:
    """(attempt, generator) for the rendering attempts of one sample: the first continues the sample's own
    generator, retry k draws from `default_rng([seed, index, k])`, so a retry never shifts another sample."""
    yield 0, rng
    for attempt in range(1, count):
        yield attempt, np.random.default_rng([seed, index, attempt])
