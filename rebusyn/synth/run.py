"""`rebusyn synth`: render synthetic word images into `<root>/train/synth/<engine>/` shards.

`synthesize(opts)` keeps drawing sample indices 0, 1, 2, ... until `opts.n` samples are kept. Each index
is rendered by the engine (`rebusyn.synth.<engine>_engine`, see `rebusyn.synth.engine`) from (config,
index) alone; workers render ordered chunks of
indices and the main process writes results in index order, so the output is byte-identical for any
`workers`. Drops (labels empty/too long after normalization, no font for the text, low contrast after
retries) are counted in the report; more than `MAX_ATTEMPTS_FACTOR * n` indices is an error.
"""

from __future__ import annotations

import multiprocessing
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebusyn.executors import pool_map
from rebusyn.report import SourceReport
from rebusyn.sample import CHARSETS, Sample
from rebusyn.store.dataset import SourceWriter
from rebusyn.synth import trdg_compat
from rebusyn.synth.config import SynthConfig, default_config_path, load_config
from rebusyn.synth.corpus import corpus_info, load_corpus
from rebusyn.synth.engine import ENGINES, Dropped, EngineConfig, Rendered, engine_module
from rebusyn.synth.fonts import PRINTABLE_ASCII, font_infos

GROUP = "S"
CONFIG_KEY = b"rebusyn-synth-config"  # in every shard of an engine with an effect config: the config, JSON
MAX_ATTEMPTS_FACTOR = 10
IN_FLIGHT_PER_WORKER = 8  # chunks submitted ahead per worker
MIN_ATTEMPTS = 100  # so a tiny n still tolerates a few early drops
FAIL_FAST_ERRORS = 20  # this many render errors before the first kept sample: something is broken


@dataclass(frozen=True)
class SynthOptions:
    n: int
    root: Path
    engine: str = "fast"  # rebusyn's renderer: 3.6-5x trdg per core, more effects (docs/synth.md)
    corpus: Path | None = None
    fonts: Path | None = None
    seed: int = 0
    workers: int = 1
    charset: str = "36"  # LabelPolicy charset for `label`; label_raw = exactly the rendered text
    max_len: int = 25
    height: int = 32
    max_shard_bytes: int = 512 * 2**20
    progress: bool = True
    config: Path | None = None  # effect config (engines fast, scene); default recipes/synth/<engine>.yaml
    backgrounds: Path | None = None  # folder of background photos (engine scene); default trdg's


@dataclass
class SynthSummary:
    n_requested: int
    kept: int
    dropped: dict[str, int]
    elapsed_s: float
    samples_per_s: float
    output_dir: Path
    index: Path
    report: Path
    shards: int
    attempts: int = 0  # indices drawn: kept + dropped
    fonts_used: list[str] = field(default_factory=list, repr=False)
    fonts_excluded: dict[str, str] = field(default_factory=dict, repr=False)
    engine: str = "fast"
    config: str | None = None  # the effect config's stamp (file@version:sha)


def format_summary(summary: SynthSummary) -> str:
    """The CLI's report of one `synthesize` run."""
    dropped = ", ".join(f"{k} {v}" for k, v in summary.dropped.items()) or "none"
    return "\n".join([
        f"{summary.engine} (group S): kept {summary.kept} of {summary.n_requested} requested, dropped "
        f"{sum(summary.dropped.values())} ({dropped}); {summary.samples_per_s:.0f} samples/s in "
        f"{summary.elapsed_s:.1f} s; {summary.shards} shard(s) in {summary.output_dir}",
        f"  fonts: {len(summary.fonts_used)} used, {len(summary.fonts_excluded)} excluded"
        + (f" ({', '.join(sorted(summary.fonts_excluded))})" if summary.fonts_excluded else ""),
        f"  index {summary.index}; report {summary.report}"
        + (f"; config {summary.config}" if summary.config else ""),
    ])


def _validate(opts: SynthOptions) -> None:
    if opts.engine not in ENGINES:
        raise ValueError(f"unknown synth engine {opts.engine!r}; available: {', '.join(ENGINES)}")
    if opts.backgrounds is not None and not Path(opts.backgrounds).is_dir():
        raise ValueError(f"--backgrounds {opts.backgrounds}: not a folder")
    if opts.n < 1:
        raise ValueError(f"n must be >= 1, got {opts.n}")
    if opts.workers < 1:
        raise ValueError(f"workers must be >= 1, got {opts.workers}")
    if opts.charset not in CHARSETS:
        raise ValueError(f"unknown charset {opts.charset!r}; choose one of {', '.join(CHARSETS)}")
    if opts.max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {opts.max_len}")
    if not 16 <= opts.height <= 256:
        raise ValueError(f"height must be in 16..256 px, got {opts.height}")
    if opts.seed < 0:
        raise ValueError(f"seed must be >= 0 (numpy SeedSequence), got {opts.seed}")


def _chunk_size(n: int, workers: int) -> int:
    # Small enough to balance workers and to stop soon after n is reached, large enough to amortize IPC.
    return max(8, min(64, n // (workers * 8) or 8))


def synthesize(opts: SynthOptions) -> SynthSummary:
    """Render `opts.n` kept samples into `<root>/train/synth/<engine>/` (+ index and report); see module
    doc."""
    _validate(opts)
    started = time.time()
    source = opts.engine
    module = engine_module(opts.engine)
    report = SourceReport(source, GROUP)
    effects = _effect_config(opts, module)

    corpus = load_corpus(opts.corpus)
    corpus_chars = set("".join(corpus))
    infos = font_infos(opts.fonts, corpus_chars | set(PRINTABLE_ASCII))
    usable = [f for f in infos if f.usable]
    if not usable:
        where = opts.fonts or "trdg's fonts/latin"
        raise ValueError(f"no usable font in {where}: " + "; ".join(f"{f.name}: {f.problem}" for f in infos))
    config = EngineConfig(
        seed=opts.seed, corpus=opts.corpus, fonts=tuple((str(f.path), f.chars) for f in usable),
        charset=opts.charset, max_len=opts.max_len, height=opts.height, effects=effects,
        backgrounds=Path(opts.backgrounds) if opts.backgrounds else None,
    )
    c_info = corpus_info(opts.corpus)
    report.options = {
        "n": opts.n, "engine": opts.engine, "seed": opts.seed, "workers": opts.workers,
        "charset": opts.charset, "max_len": opts.max_len, "height": opts.height,
        "max_shard_bytes": opts.max_shard_bytes, "engine_version": module.engine_version(),
        "config": effects.describe() if effects else None,
        "backgrounds": str(opts.backgrounds) if opts.backgrounds else None,
        "corpus": c_info,
        "fonts": {
            "dir": str(opts.fonts) if opts.fonts else "trdg:fonts/latin",
            "used": [f.name for f in usable],
            "excluded": {f.name: f.problem for f in infos if not f.usable},
            "sha1": {f.name: f.sha1 for f in usable},
        },
        "image": {"format": "JPEG", "quality": getattr(module, "JPEG_QUALITY", None)},
    }
    report.inputs = [{"kind": "corpus", **{k: v for k, v in c_info.items() if k != "origins"}},
                     {"kind": "fonts", "dir": report.options["fonts"]["dir"], "count": len(usable)}]

    prepare = getattr(module, "prepare", None)
    if prepare is not None:
        # Input errors (a bad config, no usable background photo) surface here, in the main process, and
        # forked workers share what it loaded (the scene engine's decoded photos) instead of copying it.
        prepare(config)

    max_attempts = max(MAX_ATTEMPTS_FACTOR * opts.n, MIN_ATTEMPTS)
    chunk = _chunk_size(opts.n, opts.workers)
    pool = None
    saved_random = random.getstate()
    if opts.workers > 1:
        # The pool starts before the writer opens LMDB/Parquet files or tqdm starts its thread. fork shares
        # the already-loaded corpus; elsewhere (macOS, Windows) spawn reloads it once per worker.
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        if opts.engine == "trdg":
            trdg_compat.apply()  # import + patch trdg once here, so forked workers inherit it
        pool = multiprocessing.get_context(method).Pool(
            opts.workers, initializer=module.init_worker, initargs=(config,))
    else:
        module.init_worker(config)

    kept = 0
    attempts = 0
    render_errors = 0
    dropped: Counter = Counter()
    try:
        writer = SourceWriter(
            opts.root, source, GROUP, max_shard_bytes=opts.max_shard_bytes,
            shard_keys={CONFIG_KEY: effects.to_json()} if effects else None,
        )
        with writer, _progress(opts) as bar:
            for result in _results(pool, module.render_chunk, chunk, max_attempts):
                attempts = result.index + 1
                if isinstance(result, Dropped):
                    dropped[result.reason] += 1
                    key = f"{source}/{opts.seed}/{result.index}"
                    if result.reason == "render_error":
                        render_errors += 1
                        report.drop(result.reason, where=key, detail=result.detail)
                        if kept == 0 and render_errors >= FAIL_FAST_ERRORS:
                            raise RuntimeError(f"{source} failed on the first {render_errors} renders; "
                                               f"last error: {result.detail}")
                    elif result.reason == "no_font_for_text":
                        report.drop(result.reason, where=key, detail=result.detail)
                    else:
                        report.drop(result.reason)
                    continue
                writer.add(_sample(result, source, opts.seed, effects))
                kept += 1
                bar.update(1)
                if kept == opts.n:
                    break
            if kept < opts.n:
                raise RuntimeError(
                    f"{source}: only {kept} of {opts.n} samples kept after {attempts} indices "
                    f"(limit {max_attempts}); drops: {dict(dropped)}. The corpus, --charset or "
                    f"--max-len reject too many texts.")
            output = writer.close()
    except BaseException:
        report.kept = kept
        report.finish("failed")
        report.write(opts.root)
        raise
    finally:
        if pool is not None:
            if sys.exc_info()[0] is None:
                pool.close()  # the chunks still in flight finish (a few), then the workers exit
            else:
                pool.terminate()
            pool.join()
        else:
            random.setstate(saved_random)  # trdg seeds the global `random`; give the caller theirs back

    report.kept = kept
    report.output = {
        "dir": str(output.directory), "index": str(output.index), "samples": output.samples,
        "image_bytes": output.image_bytes, "attempts": attempts,
        "shards": [str(p.relative_to(Path(opts.root))) for p in output.shards],
    }
    report.finish("complete")
    report_file = report.write(opts.root)
    elapsed = time.time() - started
    return SynthSummary(
        n_requested=opts.n, kept=kept, dropped=dict(sorted(dropped.items())), elapsed_s=round(elapsed, 3),
        samples_per_s=round(kept / elapsed, 1) if elapsed > 0 else 0.0, output_dir=output.directory,
        index=output.index, report=report_file, shards=len(output.shards), attempts=attempts,
        fonts_used=[f.name for f in usable],
        fonts_excluded={f.name: f.problem for f in infos if not f.usable},
        engine=opts.engine, config=effects.stamp() if effects else None,
    )


def _effect_config(opts: SynthOptions, module: Any) -> SynthConfig | None:
    """The engine's effect config (engines without CONFIG_SCHEMA take none)."""
    schema = getattr(module, "CONFIG_SCHEMA", None)
    if schema is None:
        if opts.config is not None:
            raise ValueError(f"engine {opts.engine} takes no --config")
        return None
    return load_config(opts.config or default_config_path(opts.engine), opts.engine, schema)


def _results(pool: Any, render_chunk: Any, chunk: int, max_attempts: int) -> Iterator[Rendered | Dropped]:
    """Results for indices 0, 1, 2, ... in order. With a pool, at most IN_FLIGHT_PER_WORKER chunks per
    worker are submitted and not yet consumed: the main process never queues unbounded work, and when the
    n-th sample is kept only those few chunks are left to finish (the pool is then closed and joined, not
    terminated mid-write)."""
    bounds = ((s, min(s + chunk, max_attempts)) for s in range(0, max_attempts, chunk))
    if pool is None:
        for b in bounds:
            yield from render_chunk(b)
        return
    limit = IN_FLIGHT_PER_WORKER * pool._processes  # noqa: SLF001 - the pool's size, as created above
    for results in pool_map(pool, render_chunk, bounds, limit):
        yield from results


def _sample(r: Rendered, source: str, seed: int, effects: SynthConfig | None) -> Sample:
    extra = {**r.extra, "config": effects.stamp()} if effects else r.extra
    return Sample(image=r.image, label=r.label, label_raw=r.text, source=source, group=GROUP,
                  key=f"{source}/{seed}/{r.index}", width=r.width, height=r.height, extra=extra)


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, k: int) -> None:
        pass


def _progress(opts: SynthOptions) -> Any:
    if not opts.progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=opts.n, unit="img", desc=f"synth {opts.engine}", smoothing=0.1)
