"""Synthesis throughput: rebusyn's trdg engine against stock trdg rendering, side by side.

    python benchmarks/bench_synth.py [--n 600]

All runs render the same sample indices (same texts, fonts and trdg parameters, seed 0):
  baseline        trdg 1.8.0 as released, made to run on current Pillow by the compat fix only:
                  Raqm layout, fonts opened and background photos decoded for every image
  engine (fast)   the same renders with rebusyn's BASIC-layout font cache and decoded-once backgrounds
  synth -w 1/2    the whole `rebusyn synth` path (render, JPEG encode, LMDB shards, index, report)
Ratios are against the baseline's samples/s measured in this run.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rebusyn.synth import trdg_compat, trdg_engine
from rebusyn.synth.corpus import load_corpus
from rebusyn.synth.fonts import font_infos
from rebusyn.synth.run import PRINTABLE_ASCII, SynthOptions, synthesize


def render_rate(engine: trdg_engine.TrdgEngine, n: int, fast: bool) -> tuple[int, float]:
    trdg_compat.use_fast_fonts(fast)
    trdg_compat.use_cached_backgrounds(fast)
    start = time.perf_counter()
    kept = sum(isinstance(engine.render(i), trdg_engine.Rendered) for i in range(n))
    return kept, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    args = parser.parse_args()
    corpus_chars = set("".join(load_corpus(None)))
    usable = [f for f in font_infos(None, corpus_chars | set(PRINTABLE_ASCII)) if f.usable]
    config = trdg_engine.EngineConfig(
        seed=0,
        corpus=None,
        fonts=tuple((str(f.path), f.chars) for f in usable),
        charset="36",
        max_len=25,
        height=32,
    )
    engine = trdg_engine.TrdgEngine(config)
    engine.render(0)  # warm caches and imports outside the timings
    rows = []
    for label, fast in (
        ("baseline: stock trdg rendering", False),
        ("engine (fast fonts, cached backgrounds)", True),
        ("baseline again (drift check)", False),
    ):
        rows.append((label, *render_rate(engine, args.n, fast)))
    trdg_compat.use_fast_fonts(True)
    trdg_compat.use_cached_backgrounds(True)
    work = Path(tempfile.mkdtemp(prefix="rebusyn-bench-synth-"))
    try:
        for workers in (1, 2):
            start = time.perf_counter()
            summary = synthesize(
                SynthOptions(
                    n=args.n, root=work / f"w{workers}", engine="trdg", workers=workers, progress=False
                )
            )
            rows.append(
                (
                    f"rebusyn synth --workers {workers} (incl. shards)",
                    summary.kept,
                    time.perf_counter() - start,
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0][1] / rows[0][2]
    print(f"{args.n} sample indices, height 32, seed 0")
    print(f"{'run':48s} {'kept':>6s} {'seconds':>8s} {'samples/s':>10s} {'vs baseline':>12s}")
    for label, n, t in rows:
        print(f"{label:48s} {n:6d} {t:8.2f} {n / t:10.0f} {n / t / base:11.2f}x")


if __name__ == "__main__":
    main()
