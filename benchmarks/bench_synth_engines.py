"""Synthesis engines side by side: fast and scene against trdg (its own generator API and rebusyn's trdg
engine), per core, in one run; then 1 vs 2 workers; optionally `rebusyn synth --n 1e6`.

    python benchmarks/bench_synth_engines.py [--n 1000] [--scale 100000,1000000]

Per core (one process, the same 32-px texts drawn from the embedded corpus, every image JPEG-encoded):
  trdg API          trdg 1.8.0's GeneratorFromStrings (made to run on Pillow >= 10 by rebusyn's compat fix
                    only), half on gaussian-noise backgrounds and half on its photos, random skew <= 2
                    degrees and random blur <= 1, as its README's examples; images JPEG-encoded here
  trdg engine       rebusyn's trdg engine (trdg with cached fonts and backgrounds, drawn parameters)
  fast, scene       rebusyn's engines with their default configs (recipes/synth/*.yaml)
Then the whole `rebusyn synth --engine fast` path (render, LMDB shards, index, report) with --workers 1 and 2.
With --scale, `rebusyn synth --engine fast --workers 2 --n N` for each N in a subprocess: wall time,
samples/s, peak RSS of the main process and of the workers, shard bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rebusyn.synth import trdg_compat
from rebusyn.synth.config import default_config_path, load_config
from rebusyn.synth.corpus import load_corpus
from rebusyn.synth.engine import EngineConfig, Rendered, engine_module
from rebusyn.synth.fonts import PRINTABLE_ASCII, font_infos
from rebusyn.synth.run import SynthOptions, synthesize
from rebusyn.synth.text import draw_text

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from rebusyn.synth.run import SynthOptions, synthesize

def peak_mib():
    # VmHWM: ru_maxrss of an exec'd child also carries its parent's RSS at fork on Linux
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
opts = SynthOptions(n=int(sys.argv[2]), root=Path(sys.argv[1]), engine="fast", workers=2, progress=False)
s = synthesize(opts)
print(json.dumps({"kept": s.kept, "wall": time.perf_counter() - start, "shards": s.shards,
                  "rss_main_mib": peak_mib(),
                  "rss_workers_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def engine_config(engine: str, fonts: tuple) -> EngineConfig:
    module = engine_module(engine)
    schema = getattr(module, "CONFIG_SCHEMA", None)
    effects = load_config(default_config_path(engine), engine, schema) if schema else None
    return EngineConfig(
        seed=0, corpus=None, fonts=fonts, charset="36", max_len=25, height=32, effects=effects
    )


def engine_rate(engine: str, fonts: tuple, n: int) -> tuple[int, float, float]:
    """(kept, seconds, warm samples/s): indices [0, n) from a fresh engine (init included: fonts loaded,
    glyphs rasterized on first use), then indices [n, 2n) once its caches are warm."""
    module = engine_module(engine)
    start = time.perf_counter()
    module.init_worker(engine_config(engine, fonts))
    kept = sum(isinstance(r, Rendered) for r in module.render_chunk((0, n)))
    cold = time.perf_counter() - start
    start = time.perf_counter()
    warm = sum(isinstance(r, Rendered) for r in module.render_chunk((n, 2 * n)))
    return kept, cold, warm / (time.perf_counter() - start)


def trdg_api_rate(texts: list[str], fonts: list[str], image_dir: Path) -> tuple[int, float]:
    trdg_compat.apply()
    from trdg.generators import GeneratorFromStrings

    half = len(texts) // 2
    start = time.perf_counter()
    kept = 0
    for part, background in ((texts[:half], 0), (texts[half:], 3)):
        generator = GeneratorFromStrings(
            part, count=len(part), fonts=fonts, size=32, skewing_angle=2, random_skew=True, blur=1,
            random_blur=True, background_type=background, image_dir=str(image_dir),
        )  # fmt: skip
        with contextlib.redirect_stdout(io.StringIO()):  # trdg prints every contrast rejection
            images = list(generator)
        for image, _label in images:
            if image is None:
                continue
            image.convert("RGB").save(io.BytesIO(), format="JPEG", quality=95)
            kept += 1
    return kept, time.perf_counter() - start


def synth_rate(n: int, workers: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        start = time.perf_counter()
        s = synthesize(SynthOptions(n=n, root=root, engine="fast", workers=workers, progress=False))
        return s.kept / (time.perf_counter() - start)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def scale_run(n: int, base: Path) -> dict:
    root = base / f"synth-{n}"
    shutil.rmtree(root, ignore_errors=True)
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(n)], check=True, capture_output=True,
                         text=True)  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["shard_bytes"] = sum(p.stat().st_size for p in root.rglob("data.mdb"))
    index = root / "index" / "fast.parquet"
    result["index_bytes"] = index.stat().st_size if index.is_file() else 0
    shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--scale", default="", help="comma-separated N for `rebusyn synth --n N` runs")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench-synth"))
    args = parser.parse_args()

    corpus = load_corpus(None)
    usable = [f for f in font_infos(None, set("".join(corpus)) | set(PRINTABLE_ASCII)) if f.usable]
    fonts = tuple((str(f.path), f.chars) for f in usable)
    texts = [draw_text(np.random.default_rng([0, i]), corpus, {}) for i in range(args.n)]
    from rebusyn.synth.trdg_engine import trdg_images_dir

    api = trdg_api_rate(texts, [f for f, _ in fonts], trdg_images_dir())
    rows = [("trdg API (GeneratorFromStrings)", *api, api[0] / api[1])]
    for engine in ("trdg", "fast", "scene"):
        rows.append((f"{engine} engine", *engine_rate(engine, fonts, args.n)))
    base_api, base_engine, base_engine_warm = rows[0][1] / rows[0][2], rows[1][1] / rows[1][2], rows[1][3]
    print(f"{args.n} indices from a fresh engine (init included), then {args.n} more with warm caches")
    print(f"{'run':32} {'kept':>5} {'seconds':>7} {'per core/s':>10} {'vs trdg API':>11} "
          f"{'vs trdg engine':>14} {'warm/s':>7} {'warm vs trdg engine':>19}")  # fmt: skip
    for name, kept, seconds, warm in rows:
        rate = kept / seconds
        print(f"{name:32} {kept:5d} {seconds:7.2f} {rate:10.0f} {rate / base_api:10.2f}x "
              f"{rate / base_engine:13.2f}x {warm:7.0f} {warm / base_engine_warm:18.2f}x")  # fmt: skip

    n = max(args.n * 10, 20000)
    one, two = synth_rate(n, 1), synth_rate(n, 2)
    print(f"rebusyn synth --engine fast --n {n}: --workers 1 {one:.0f}/s, --workers 2 {two:.0f}/s "
          f"({two / one:.2f}x)")  # fmt: skip

    for size in [int(float(s)) for s in args.scale.split(",") if s]:
        r = scale_run(size, args.dir)
        print(f"rebusyn synth --engine fast --workers 2 --n {size:,}: {r['wall']:.0f} s, "
              f"{r['kept'] / r['wall']:,.0f} samples/s, peak RSS main {r['rss_main_mib']:,.0f} MiB, "
              f"workers {r['rss_workers_mib']:,.0f} MiB, shards {r['shard_bytes'] / 2**20:,.1f} MiB "
              f"({r['shard_bytes'] / r['kept']:,.0f} B/sample), index {r['index_bytes'] / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
