"""`rebusyn synth`: render synthetic word images into `<root>/train/synth/<engine>/` shards.

`synthesize(opts)` renders sample indices until `opts.n` samples are kept. Each index is rendered by the
engine (`rebusyn.synth.<engine>_engine`, see `rebusyn.synth.engine`) from (config, index) alone. The work
is cut into deterministic units (rebusyn.synth.units): each renders an index range, writes its own shard and
publishes it; the driver plans top-up units for dropped samples, then writes the index and report once every
unit is in. So the output is byte-identical for any executor (local pool, Ray) and any number of workers,
and a rerun of an interrupted run skips the units that finished. Drops (labels empty/too long after
normalization, no font for the text, low contrast after retries) are counted in the report; more than
`MAX_ATTEMPTS_FACTOR * n` indices is an error.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rebusyn import __version__
from rebusyn.executors import DEFAULT_RETRIES, UnitFailure, make_executor
from rebusyn.report import SourceReport
from rebusyn.sample import CHARSETS
from rebusyn.storage import Storage
from rebusyn.store.index import INDEX_SCHEMA
from rebusyn.synth import trdg_compat
from rebusyn.synth.config import SynthConfig, default_config_path, load_config
from rebusyn.synth.corpus import corpus_info, load_corpus
from rebusyn.synth.engine import ENGINES, EngineConfig, engine_module
from rebusyn.synth.fonts import PRINTABLE_ASCII, font_infos
from rebusyn.synth.units import (
    CONFIG_KEY,
    GROUP,
    SynthUnit,
    UnitContext,
    UnitResult,
    load_result,
    plan_units,
    run_unit,
    top_up_units,
    unit_size_for,
)

__all__ = ["CONFIG_KEY", "GROUP", "SynthOptions", "SynthSummary", "synthesize", "format_summary"]

MAX_ATTEMPTS_FACTOR = 10
MIN_ATTEMPTS = 100  # so a tiny n still tolerates a few early drops
FAIL_FAST_ERRORS = 20  # this many render errors before the first kept sample: something is broken


@dataclass(frozen=True)
class SynthOptions:
    n: int
    root: Path | str  # a local folder or an fsspec URL (s3://bucket/data): rebusyn.storage
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
    executor: str = "local"  # local (process pool of `workers`) | ray (docs/distributed.md)
    ray_address: str | None = None  # with executor ray: auto, ray://host:10001; None starts Ray here
    retries: int = DEFAULT_RETRIES  # attempts per work unit beyond the first
    unit_size: int | None = None  # samples per work unit (default from n alone: rebusyn.synth.units)


@dataclass
class SynthSummary:
    n_requested: int
    kept: int
    dropped: dict[str, int]
    elapsed_s: float
    samples_per_s: float
    output_dir: Path | str  # str: a URL, for a remote root
    index: Path | str
    report: Path | str
    shards: int
    attempts: int = 0  # indices drawn: kept + dropped
    fonts_used: list[str] = field(default_factory=list, repr=False)
    fonts_excluded: dict[str, str] = field(default_factory=dict, repr=False)
    engine: str = "fast"
    config: str | None = None  # the effect config's stamp (file@version:sha)
    units: int = 0  # work units that produced the output


def format_summary(summary: SynthSummary) -> str:
    """The CLI's report of one `synthesize` run."""
    dropped = ", ".join(f"{k} {v}" for k, v in summary.dropped.items()) or "none"
    return "\n".join([
        f"{summary.engine} (group S): kept {summary.kept} of {summary.n_requested} requested, dropped "
        f"{sum(summary.dropped.values())} ({dropped}); {summary.samples_per_s:.0f} samples/s in "
        f"{summary.elapsed_s:.1f} s; {summary.units} work unit(s), {summary.shards} shard(s) in "
        f"{summary.output_dir}",
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
    unit_size = opts.unit_size or unit_size_for(opts.n)
    storage = Storage(opts.root)
    final_rel = f"train/synth/{source}"
    state_rel = f"train/synth/.{source}.state"
    ctx = UnitContext(
        engine=opts.engine, config=config, effects=effects, seed=opts.seed, source=source,
        storage=storage, publish_rel=final_rel if storage.local is None else f"train/synth/.{source}.staging",
        final_rel=final_rel, state_rel=state_rel, work_dir="", max_shard_bytes=opts.max_shard_bytes,
    )
    report.options.update({"unit_size": unit_size})
    identity = _run_identity(report.options)
    resuming = _same_run(storage, state_rel, identity)
    if storage.local is not None:
        # Scratch and staging inside the root: publishing a shard is a rename on one filesystem, and the
        # old build stays readable until the new one is complete.
        work = storage.local / "train" / "synth" / f".{source}.work"
        storage.remove(f"train/synth/.{source}.work")  # scratch of an interrupted run: never whole
    else:
        work = None  # each worker writes in its own machine's temporary folder (rebusyn.synth.units)
    if not resuming:
        # A different run (or none) left these: start clean. On an object store, which has no rename, the
        # old build goes first, index included, so a failed rebuild never leaves an index naming shards
        # that are gone (docs/distributed.md).
        storage.remove(ctx.publish_rel)
        storage.remove(state_rel)
        if storage.local is None:
            storage.remove(f"index/{source}.parquet")
        storage.write_bytes(f"{state_rel}/run.json", json.dumps({"identity": identity}).encode("utf-8"))
    ctx = replace(ctx, work_dir=str(work) if work is not None else "")

    executor = make_executor(opts.executor, workers=opts.workers, retries=opts.retries,
                             ray_address=opts.ray_address)  # fmt: skip
    saved_random = random.getstate()
    if opts.workers > 1 and opts.engine == "trdg":
        trdg_compat.apply()  # import + patch trdg once here, so forked workers inherit it
    results: dict[int, UnitResult] = {}
    failed: list[tuple[SynthUnit, UnitFailure]] = []
    units = plan_units(opts.n, unit_size)
    report.options.update({"executor": opts.executor, "retries": opts.retries})
    resumed = 0
    try:
        with _progress(opts) as bar:
            while units:
                todo = []
                for unit in units:  # units an interrupted run finished are not redone
                    saved = load_result(storage, state_rel, unit.number) if resuming else None
                    if saved is None:
                        todo.append(unit)
                    else:
                        results[unit.number] = saved
                        resumed += 1
                        bar.update(saved.kept)
                for position, outcome in executor.run(functools.partial(run_unit, ctx), todo):
                    if isinstance(outcome, UnitFailure):
                        failed.append((todo[position], outcome))
                        continue
                    results[outcome.number] = outcome
                    bar.update(outcome.kept)
                    _fail_fast(source, results)
                units = [] if failed else _next_units(results, units, opts.n, unit_size, max_attempts, source)
        if failed:
            lines = "; ".join(f"unit {u.number} (indices {u.start}-{u.stop - 1}): {f.error} after "
                              f"{f.attempts} attempt(s)" for u, f in failed)  # fmt: skip
            raise UnitsFailed(f"{source}: {len(failed)} work unit(s) failed: {lines}. Nothing was published "
                              "as the output; rerun the same command to finish: the units that did "
                              "finish are kept and not redone.")  # fmt: skip
        ordered = [results[k] for k in sorted(results)]
        index_rel = f"index/{source}.parquet"
        storage.write_bytes(index_rel, _index_bytes(ordered))
        if storage.local is not None:
            _swap_in(storage.local, ctx.publish_rel, final_rel)
        storage.remove(state_rel)
    except BaseException:
        report.kept = sum(r.kept for r in results.values())
        for r in results.values():
            report.dropped.update(r.dropped)
        if failed:
            report.output = {"failed_units": [
                {"unit": u.number, "start": u.start, "stop": u.stop, "attempts": f.attempts, "error": f.error}
                for u, f in failed
            ]}  # fmt: skip
        report.finish("failed")
        storage.write_bytes(f"reports/{source}.json", _report_bytes(report))
        raise
    finally:
        executor.close()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        if opts.workers <= 1 and opts.executor == "local":
            random.setstate(saved_random)  # trdg seeds the global `random`; give the caller theirs back

    kept = sum(r.kept for r in ordered)
    attempts = max((r.last_index + 1 for r in ordered), default=0)
    dropped: Counter = Counter()
    for r in ordered:
        dropped.update(r.dropped)
        for reason, where, detail in r.problems:
            report.record(reason, where, detail)
    report.dropped.update(dropped)
    report.kept = kept
    shards = [shard for r in ordered for shard in r.shards]
    report.output = {
        "dir": storage.url(final_rel), "index": storage.url(index_rel), "samples": kept,
        "image_bytes": sum(r.image_bytes for r in ordered), "attempts": attempts,
        "units": len(ordered), "resumed_units": resumed, "shards": shards,
    }
    report.finish("complete")
    report_rel = f"reports/{source}.json"
    storage.write_bytes(report_rel, _report_bytes(report))
    elapsed = time.time() - started
    local = storage.local
    return SynthSummary(
        n_requested=opts.n, kept=kept, dropped=dict(sorted(dropped.items())), elapsed_s=round(elapsed, 3),
        samples_per_s=round(kept / elapsed, 1) if elapsed > 0 else 0.0,
        output_dir=local / final_rel if local else storage.url(final_rel),
        index=local / index_rel if local else storage.url(index_rel),
        report=local / report_rel if local else storage.url(report_rel), shards=len(shards),
        attempts=attempts, fonts_used=[f.name for f in usable],
        fonts_excluded={f.name: f.problem for f in infos if not f.usable},
        engine=opts.engine, config=effects.stamp() if effects else None, units=len(ordered),
    )


_NOT_IDENTITY = ("workers", "executor", "retries")  # how a run is executed, not what it produces


def _run_identity(options: dict[str, Any]) -> str:
    """sha256 of everything that decides a run's output (engine, n, seed, config, corpus and font hashes,
    unit size, ...): a rerun resumes an interrupted run only when this matches."""
    kept = {k: v for k, v in options.items() if k not in _NOT_IDENTITY}
    payload = json.dumps({"options": kept, "rebusyn": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _same_run(storage: Storage, state_rel: str, identity: str) -> bool:
    try:
        return json.loads(storage.read_bytes(f"{state_rel}/run.json")) == {"identity": identity}
    except (OSError, ValueError):
        return False


class UnitsFailed(RuntimeError):
    """Some work units failed on every attempt; the message lists them."""


def _fail_fast(source: str, results: dict[int, UnitResult]) -> None:
    if any(r.kept for r in results.values()):
        return
    errors = [p for r in results.values() for p in r.problems if p[0] == "render_error"]
    if len(errors) >= FAIL_FAST_ERRORS:
        raise RuntimeError(f"{source} failed on the first {len(errors)} renders; last error: {errors[-1][2]}")


def _next_units(results: dict[int, UnitResult], done: list[SynthUnit], n: int, unit_size: int,
                max_attempts: int, source: str) -> list[SynthUnit]:  # fmt: skip
    """Top-up units for the samples still missing after drops, or [] when `n` are kept."""
    kept = sum(r.kept for r in results.values())
    if kept >= n:
        return []
    rendered = sum(r.rendered for r in results.values())
    next_number = max(results) + 1
    next_index = max(u.stop for u in done)
    units = top_up_units(next_number, next_index, n - kept, unit_size, kept / max(rendered, 1), max_attempts)
    if not units:
        dropped: Counter = Counter()
        for r in results.values():
            dropped.update(r.dropped)
        raise RuntimeError(
            f"{source}: only {kept} of {n} samples kept after {next_index} indices "
            f"(limit {max_attempts}); drops: {dict(dropped)}. The corpus, --charset or "
            f"--max-len reject too many texts.")
    return units


def _index_bytes(results: list[UnitResult]) -> bytes:
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, INDEX_SCHEMA, compression="zstd") as writer:
        for r in results:
            for table in r.tables:
                writer.write_table(table)  # one row group per shard, like IndexWriter
    return buffer.getvalue()


def _report_bytes(report: SourceReport) -> bytes:
    return (json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _swap_in(root: Path, staged_rel: str, final_rel: str) -> None:
    """Replace `final_rel` by the staged folder; the previous build is removed only once it is replaced."""
    staged, final = root / staged_rel, root / final_rel
    staged.mkdir(parents=True, exist_ok=True)  # n = 0 still gives an (empty) source folder
    previous = final.with_name(f".{final.name}.previous-{os.getpid()}")
    if final.exists():
        os.replace(final, previous)
    os.replace(staged, final)
    shutil.rmtree(previous, ignore_errors=True)


def _effect_config(opts: SynthOptions, module: Any) -> SynthConfig | None:
    """The engine's effect config (engines without CONFIG_SCHEMA take none)."""
    schema = getattr(module, "CONFIG_SCHEMA", None)
    if schema is None:
        if opts.config is not None:
            raise ValueError(f"engine {opts.engine} takes no --config")
        return None
    return load_config(opts.config or default_config_path(opts.engine), opts.engine, schema)


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
