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
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

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
