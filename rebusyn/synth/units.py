"""Synth work units: which sample indices each unit renders, and the unit itself, run in a worker.

A unit is (number, first index, index limit, how many samples to keep). It renders indices in order from
its first one until it has kept that many or reaches its limit, writes what it kept as its own shard
(`shard-<number>`) on local disk, and publishes the shard (rebusyn.storage). Everything a unit produces
depends on the unit and the run's config alone, so any executor, any worker count and any retry give the
same bytes.

Planning is deterministic too: the first round covers indices [0, n) in units of `unit_size`; drops leave
some units short, and each further round asks for exactly the missing samples from fresh indices, with
index ranges sized from the keep rate seen so far (the results, and so the rates, are deterministic).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rebusyn.executors import maybe_inject_fault
from rebusyn.sample import Sample
from rebusyn.storage import Storage
from rebusyn.store.index import INDEX_SCHEMA, ROW_SCHEMA
from rebusyn.store.shards import SHARD_PREFIX, ShardWriter
from rebusyn.synth import trdg_compat
from rebusyn.synth.config import SynthConfig
from rebusyn.synth.engine import Dropped, EngineConfig, Rendered, engine_module

GROUP = "S"
CONFIG_KEY = b"rebusyn-synth-config"  # in every shard of an engine with an effect config: the config, JSON
MIN_UNIT = 250
MAX_UNIT = 10_000  # ~70 MB of fast-engine JPEGs: one shard, minutes of work, cheap to retry
UNITS_TARGET = 64  # a run of n samples is cut into about this many units, between the two bounds
RENDER_CHUNK = 32  # indices rendered per engine call inside a unit
RECORDED_REASONS = ("render_error", "no_font_for_text")  # drops worth naming in the report


@dataclass(frozen=True)
class SynthUnit:
    number: int
    start: int  # first sample index
    stop: int  # index limit (exclusive)
    keep: int  # stop once this many samples are kept


@dataclass(frozen=True)
class UnitContext:
    """What every unit of a run shares (pickled to local workers and Ray tasks)."""

    engine: str
    config: EngineConfig
    effects: SynthConfig | None
    seed: int
    source: str
    storage: Storage
    publish_rel: str  # where units publish their shards (a staging folder for a local root)
    final_rel: str  # where the shards end up: what the index names
    state_rel: str  # where finished units leave their results, so a rerun after a kill skips them
    work_dir: str  # local scratch for writing shards before publishing; "" = this machine's temp folder
    max_shard_bytes: int


@dataclass
class UnitResult:
    number: int
    kept: int
    rendered: int  # indices rendered and used (kept + dropped)
    last_index: int  # the last index used (start - 1 if none)
    dropped: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)  # (reason, where, detail)
    tables: list[pa.Table] = field(default_factory=list)  # index rows (INDEX_SCHEMA), one table per shard
    shards: list[str] = field(default_factory=list)  # shard paths relative to the root
    image_bytes: int = 0


def unit_size_for(n: int) -> int:
    """Samples per unit for a run of `n`: depends on n only, never on the workers (same bytes anywhere)."""
    return max(MIN_UNIT, min(MAX_UNIT, math.ceil(n / UNITS_TARGET)))


def plan_units(n: int, unit_size: int) -> list[SynthUnit]:
    """The first round: indices [0, n) in consecutive units of `unit_size`."""
    if unit_size < 1:
        raise ValueError(f"unit size must be >= 1, got {unit_size}")
    return [SynthUnit(k, start, min(start + unit_size, n), min(start + unit_size, n) - start)
            for k, start in enumerate(range(0, n, unit_size))]  # fmt: skip


def top_up_units(
    first_number: int, next_index: int, missing: int, unit_size: int, keep_rate: float, max_index: int
) -> list[SynthUnit]:
    """Units that ask for the `missing` samples from indices `next_index` on, each over an index range
    sized for the keep rate seen so far (with a margin), none past `max_index`. [] when no index is left."""
    units: list[SynthUnit] = []
    start, number = next_index, first_number
    while missing > 0 and start < max_index:
        keep = min(unit_size, missing)
        span = math.ceil(keep / max(keep_rate, 0.05) * 1.25) + 16
        stop = min(start + span, max_index)
        units.append(SynthUnit(number, start, stop, keep))
        missing -= keep
        start, number = stop, number + 1
    return units


def shard_name(unit: int, k: int) -> str:
    """A unit's k-th shard (a second one only when a unit outgrows --max-shard-bytes)."""
    return f"{SHARD_PREFIX}{unit:05d}" if k == 0 else f"{SHARD_PREFIX}{unit:05d}-{k:02d}"


_READY: tuple[str, EngineConfig] | None = None


def _ensure_worker(ctx: UnitContext) -> Any:
    """The engine module, initialized once per process and config (forked pools, Ray workers alike)."""
    global _READY
    module = engine_module(ctx.engine)
    if (ctx.engine, ctx.config) != _READY:
        if ctx.engine == "trdg":
            trdg_compat.apply()
        module.init_worker(ctx.config)
        _READY = (ctx.engine, ctx.config)
    return module


def sample_of(r: Rendered, source: str, seed: int, effects: SynthConfig | None) -> Sample:
    extra = {**r.extra, "config": effects.stamp()} if effects else r.extra
    return Sample(image=r.image, label=r.label, label_raw=r.text, source=source, group=GROUP,
                  key=f"{source}/{seed}/{r.index}", width=r.width, height=r.height, extra=extra)  # fmt: skip


def run_unit(ctx: UnitContext, unit: SynthUnit) -> UnitResult:
    """Render, write and publish one unit (in a worker). A kill at any point leaves nothing published."""
    module = _ensure_worker(ctx)
    result = UnitResult(unit.number, 0, 0, unit.start - 1)
    base = Path(ctx.work_dir) if ctx.work_dir else Path(tempfile.gettempdir())
    scratch = base / f".rebusyn-unit-{ctx.source}-{unit.number:05d}.{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    keys = {CONFIG_KEY: ctx.effects.to_json()} if ctx.effects else None
    row_tables: list[tuple[str, pa.Table]] = []
    writer = ShardWriter(
        scratch, index_prefix=ctx.final_rel, max_shard_bytes=ctx.max_shard_bytes, shard_keys=keys,
        shard_name=lambda k: shard_name(unit.number, k),
        on_shard=lambda rel, rows: row_tables.append((rel, rows)),
    )  # fmt: skip
    try:
        with writer:
            index = unit.start
            while result.kept < unit.keep and index < unit.stop:
                for rendered in module.render_chunk((index, min(index + RENDER_CHUNK, unit.stop))):
                    if result.kept >= unit.keep:
                        break
                    result.rendered += 1
                    result.last_index = rendered.index
                    if isinstance(rendered, Dropped):
                        result.dropped[rendered.reason] += 1
                        if rendered.reason in RECORDED_REASONS:
                            where = f"{ctx.source}/{ctx.seed}/{rendered.index}"
                            result.problems.append((rendered.reason, where, rendered.detail))
                        continue
                    writer.add(sample_of(rendered, ctx.source, ctx.seed, ctx.effects))
                    result.kept += 1
                    if result.kept == max(1, unit.keep // 2):
                        maybe_inject_fault(unit.number)  # testing hook: a kill mid-unit
                index += RENDER_CHUNK
        result.image_bytes = writer.bytes_written
        for shard in writer.shards:
            ctx.storage.publish_dir(shard, f"{ctx.publish_rel}/{shard.name}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for rel, rows in row_tables:
        column = pa.array([rel] * rows.num_rows, type=pa.string())
        result.tables.append(pa.Table.from_arrays([column, *rows.select(ROW_SCHEMA.names).columns],
                                                  schema=INDEX_SCHEMA))  # fmt: skip
        result.shards.append(rel)
    save_result(ctx.storage, ctx.state_rel, result)  # after the shards: a result names only published ones
    return result


def _result_files(state_rel: str, number: int) -> tuple[str, str]:
    return f"{state_rel}/unit-{number:05d}.rows.parquet", f"{state_rel}/unit-{number:05d}.json"


def save_result(storage: Storage, state_rel: str, result: UnitResult) -> None:
    """A finished unit's result: its index rows (one row group per shard), then its counts; the JSON,
    written last, is what marks the unit as done."""
    rows_rel, json_rel = _result_files(state_rel, result.number)
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, INDEX_SCHEMA, compression="zstd") as writer:
        for table in result.tables:
            writer.write_table(table)
    storage.write_bytes(rows_rel, buffer.getvalue())
    summary = {"number": result.number, "kept": result.kept, "rendered": result.rendered,
               "last_index": result.last_index, "dropped": dict(result.dropped),
               "problems": [list(p) for p in result.problems], "shards": result.shards,
               "image_bytes": result.image_bytes}  # fmt: skip
    storage.write_bytes(json_rel, json.dumps(summary, sort_keys=True).encode("utf-8"))


def load_result(storage: Storage, state_rel: str, number: int) -> UnitResult | None:
    """The saved result of unit `number`, or None if it did not finish (or its files are unreadable)."""
    rows_rel, json_rel = _result_files(state_rel, number)
    if not storage.exists(json_rel):
        return None
    try:
        summary = json.loads(storage.read_bytes(json_rel))
        rows = pq.ParquetFile(io.BytesIO(storage.read_bytes(rows_rel)))
        tables = [rows.read_row_group(i) for i in range(rows.num_row_groups)]
    except (OSError, ValueError, pa.ArrowException):
        return None  # torn by a crash of the storage itself: the unit simply runs again
    return UnitResult(
        number=summary["number"], kept=summary["kept"], rendered=summary["rendered"],
        last_index=summary["last_index"], dropped=Counter(summary["dropped"]),
        problems=[tuple(p) for p in summary["problems"]], tables=tables, shards=summary["shards"],
        image_bytes=summary["image_bytes"],
    )  # fmt: skip
