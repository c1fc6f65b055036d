"""Preview sheets of the synthesis engines for docs/synth.md: the first 48 samples (seed 0) of each engine
with their labels and drawn texts.

    python scripts/synth_previews.py [--out docs] [--engines trdg,fast,scene]

Writes `<out>/synth_<engine>.png`. The samples are what `rebusyn synth --engine <engine> --seed 0` stores
(same indices, same bytes), rendered here without writing shards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rebusyn.preview import preview_sheet
from rebusyn.synth.config import default_config_path, load_config
from rebusyn.synth.corpus import load_corpus
from rebusyn.synth.engine import ENGINES, EngineConfig, Rendered, engine_module
from rebusyn.synth.fonts import PRINTABLE_ASCII, font_infos

COUNT = 48


def engine_samples(engine: str, count: int = COUNT) -> list[tuple[bytes, str, str]]:
    corpus = load_corpus(None)
    usable = [f for f in font_infos(None, set("".join(corpus)) | set(PRINTABLE_ASCII)) if f.usable]
    module = engine_module(engine)
    schema = getattr(module, "CONFIG_SCHEMA", None)
    config = EngineConfig(
        seed=0, corpus=None, fonts=tuple((str(f.path), f.chars) for f in usable), charset="36", max_len=25,
        height=32, effects=load_config(default_config_path(engine), engine, schema) if schema else None,
    )  # fmt: skip
    module.init_worker(config)
    out: list[tuple[bytes, str, str]] = []
    start = 0
    while len(out) < count:
        for r in module.render_chunk((start, start + count)):
            if isinstance(r, Rendered) and len(out) < count:
                out.append((r.image, r.label, r.text))
        start += count
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    for engine in args.engines.split(","):
        path = preview_sheet(
            engine_samples(engine), args.out / f"synth_{engine}.png", columns=6,
            title=f"rebusyn synth --engine {engine} --seed 0: the first {COUNT} samples (label / drawn text)",
        )  # fmt: skip
        print(path)


if __name__ == "__main__":
    main()
