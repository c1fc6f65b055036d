"""Mixing manifests: which (shard, idx) pairs a training run reads, drawn from the Parquet indexes only.

`mix` never opens an image or an LMDB shard: everything it needs (shard path, 1-based index, labels,
source, group) is in `<root>/index/*.parquet`. It writes `<out>/<name>/manifest.parquet` (one row per draw,
in a seeded shuffled order) and `manifest.json` (the spec, the counts, and the sha256 of every index it
drew from, so a loader can refuse a manifest whose sources were rebuilt since).

Size policy, with ratio a:b (real : synthetic):
- default: every real sample once, plus round(real * b / a) synthetic samples;
- `total=N`: round(N * a / (a + b)) real and the rest synthetic.
Within each part, sources get draws in proportion to their sizes (largest-remainder rounding). Draws are
without replacement while a source has enough samples; beyond that every sample is taken once and the rest
are drawn with replacement, which the summary and manifest.json state with the number of repeats.

Same indexes + same options = byte-identical manifest.parquet and manifest.json (no timestamps).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rebusyn import __version__
from rebusyn.dedup import load_drop_table
from rebusyn.sample import GROUPS, REAL_GROUPS, SYNTH_GROUP, TEST_GROUP
from rebusyn.store.index import fingerprint

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
MANIFEST_FILE = "manifest.parquet"
MANIFEST_JSON = "manifest.json"

MANIFEST_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("idx", pa.int32()),
        ("label", pa.string()),
        ("label_raw", pa.string()),
        ("source", pa.string()),
        ("group", pa.string()),
        ("synthetic", pa.bool_()),
        ("key", pa.string()),
    ],
    metadata={b"rebusyn.manifest_version": str(MANIFEST_VERSION).encode()},
)
_INDEX_COLUMNS = ["shard", "idx", "label", "label_raw", "source", "group", "key"]

# Fixed writer settings: part of what makes two runs byte-identical.
_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "row_group_size": 1_000_000,
    "data_page_size": 2**20,
}
# Distinct stream tags so the shuffle never reuses a per-source stream.
_TAG_REAL, _TAG_SYNTH, _TAG_SHUFFLE = 1, 2, 3


@dataclass(frozen=True)
class MixOptions:
    """What `rebusyn mix` takes. `ratio` is real : synthetic; `total=None` means "all real samples"."""

    root: Path
    ratio: tuple[float, float] = (3.0, 1.0)
    name: str | None = None
    out: Path = Path("manifests")
    seed: int = 0
    total: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "ratio", _check_ratio(self.ratio))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.total is not None and (
            isinstance(self.total, bool) or not isinstance(self.total, int) or self.total < 1
        ):
            raise ValueError(f"total must be a positive integer or None, got {self.total!r}")
        if self.name is not None and (
            not self.name or self.name in (".", "..") or "/" in self.name or os.sep in self.name
        ):
            raise ValueError(f"name must be a plain directory name, got {self.name!r}")

    @property
    def manifest_name(self) -> str:
        a, b = self.ratio
        return self.name or f"rebusyn-{a:g}to{b:g}"


@dataclass
class MixSummary:
    name: str
    manifest_path: Path
    json_path: Path
    real: int
    synthetic: int
    per_source: dict[str, dict[str, Any]]
    repeated_synthetic: int  # draws beyond the synthetic samples available (0 = no sample used twice)
    repeated_real: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)
    ratio: tuple[float, float] = (3.0, 1.0)
    seed: int = 0
    size_policy: str = "all-real"

    @property
    def rows(self) -> int:
        return self.real + self.synthetic


def format_summary(summary: MixSummary) -> str:
    """The CLI's report: totals, one line per source, notes about repeats, and how to load the result."""
    a, b = summary.ratio
    lines = [
        f"manifest {summary.name}: {summary.rows} rows = {summary.real} real + {summary.synthetic} synthetic "
        f"(ratio {a:g}:{b:g}, seed {summary.seed}, size policy {summary.size_policy})"
    ]
    for name, c in summary.per_source.items():
        repeats = f", {c['repeats']} repeated" if c["repeats"] else ""
        drew = f"drew {c['drawn']:>10,} of {c['available']:>10,}"
        lines.append(f"  {name:<24} group {c['group']}  {drew}{repeats}")
    lines += [f"  note: {note}" for note in summary.notes]
    lines.append(f"wrote {summary.manifest_path} and {summary.json_path.name} in {summary.elapsed_s:.2f} s")
    lines.append(f"load it with: rebusyn.load_dataset({str(summary.manifest_path.parent)!r})")
    return "\n".join(lines)


def parse_ratio(text: str) -> tuple[float, float]:
    """`"3:1"` -> (3.0, 1.0). Both parts finite and >= 0, not both 0."""
    parts = str(text).strip().split(":")
    if len(parts) != 2:
        raise ValueError(f"ratio must look like REAL:SYNTHETIC (e.g. 3:1 or 1:0.5), got {text!r}")
    try:
        values = (float(parts[0]), float(parts[1]))
    except ValueError as err:
        raise ValueError(f"ratio must be two numbers separated by ':' (e.g. 3:1), got {text!r}") from err
    return _check_ratio(values)


def _check_ratio(ratio: Any) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in ratio)
    except (TypeError, ValueError) as err:
        raise ValueError(f"ratio must be a pair of numbers (real, synthetic), got {ratio!r}") from err
    if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0:
        raise ValueError(f"ratio parts must be finite and >= 0, got {a:g}:{b:g}")
    if a == 0 and b == 0:
        raise ValueError("ratio 0:0 draws nothing; at least one part must be > 0")
    return a, b


# ---------------------------------------------------------------------------------------------------
# Reading the indexes


@dataclass
class _Unit:
    """The training rows of one source (one index file and one group): what allocation works on."""

    name: str
    group: str
    synthetic: bool
    positions: np.ndarray  # row numbers in the concatenated training table


@dataclass
class _Indexes:
    table: pa.Table
    units: list[_Unit]
    files: dict[str, dict[str, Any]]
    excluded: list[str]
    deduplicated: int = 0  # training rows left out: listed by `rebusyn dedup --policy drop-from-train`


def _row_keys(table: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(table.column("shard"), pc.cast(table.column("idx"), pa.string()), "#")


def _read_indexes(root: Path) -> _Indexes:
    index_dir = root / "index"
    paths = sorted(index_dir.glob("*.parquet")) if index_dir.is_dir() else []
    if not paths:
        raise FileNotFoundError(
            f"no Parquet indexes under {index_dir}: build sources (`rebusyn build`) or synthetic data "
            "(`rebusyn synth`) into this root first"
        )
    tables: list[pa.Table] = []
    units: list[_Unit] = []
    files: dict[str, dict[str, Any]] = {}
    excluded: list[str] = []
    offset = 0
    # Duplicates `rebusyn dedup --policy drop-from-train` listed (train copies of test crops, repeats across
    # sources) are never drawn. A stale list (an index changed since) is an error, not silently applied.
    drop = load_drop_table(root)
    drop_keys = _row_keys(drop) if drop is not None and drop.num_rows else None
    deduplicated = 0
    for path in paths:
        try:
            table = pq.read_table(path, columns=_INDEX_COLUMNS)
        except (pa.ArrowInvalid, KeyError) as err:
            need = ", ".join(_INDEX_COLUMNS)
            raise ValueError(f"{path}: not a rebusyn index (need columns {need})") from err
        groups = table.column("group")
        present = pc.unique(groups).to_pylist()
        unknown = set(present) - set(GROUPS)
        if unknown:
            raise ValueError(
                f"{path}: unknown group(s) {sorted(map(str, unknown))}; expected {', '.join(GROUPS)}"
            )
        if TEST_GROUP in present:  # benchmarks are never trained on (filter copies, so only when needed)
            table = table.filter(pc.not_equal(groups, TEST_GROUP))
            present.remove(TEST_GROUP)
        if drop_keys is not None:
            listed = pc.is_in(_row_keys(table), value_set=drop_keys)
            n_listed = pc.sum(listed).as_py() or 0
            if n_listed:
                table = table.filter(pc.invert(listed))
                deduplicated += n_listed
        if table.num_rows == 0:
            excluded.append(path.stem)
            continue
        group_col = table.column("group")
        present.sort()
        for group in present:
            local = np.flatnonzero(pc.equal(group_col, group).to_numpy(zero_copy_only=False))
            name = path.stem if len(present) == 1 else f"{path.stem}/{group}"
            units.append(_Unit(name, group, group == SYNTH_GROUP, local + offset))
        files[path.stem] = {
            "path": path.relative_to(root).as_posix(),
            "sha256": fingerprint(path),
            "rows": table.num_rows,
        }
        tables.append(table)
        offset += table.num_rows
    if not tables:
        raise ValueError(f"the indexes under {index_dir} hold only test benchmarks (group T); nothing to mix")
    return _Indexes(pa.concat_tables(tables).combine_chunks(), units, files, excluded, deduplicated)


# ---------------------------------------------------------------------------------------------------
# Drawing


def _allocate(target: int, sizes: np.ndarray) -> np.ndarray:
    """Split `target` draws across sources proportionally to `sizes`, summing exactly to `target`.

    Largest-remainder rounding in integer arithmetic (no float ties); equal remainders go to the
    earlier source (sources are in sorted index-file order), so the split is deterministic."""
    sizes = sizes.astype(np.int64)
    total = int(sizes.sum())
    if target == 0 or total == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    scaled = sizes * np.int64(target)
    quotas = scaled // total
    remainders = scaled % total
    short = target - int(quotas.sum())
    order = np.argsort(-remainders, kind="stable")
    quotas[order[:short]] += 1
    return quotas


def _source_rng(seed: int, tag: int, name: str) -> np.random.Generator:
    # One stream per (seed, part, source): adding or rebuilding another source leaves these draws alone.
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, tag, digest])


def _draw(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """k local row numbers out of n: without replacement while k <= n, else all n plus k - n repeats."""
    if k == n:
        return np.arange(n, dtype=np.int64), 0
    if k < n:
        return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64), 0
    extra = rng.integers(0, n, size=k - n, dtype=np.int64)
    return np.concatenate([np.arange(n, dtype=np.int64), extra]), k - n


def _draw_part(
    units: list[_Unit], target: int, seed: int, tag: int
) -> tuple[np.ndarray, dict[str, dict[str, Any]], int]:
    if not units or target == 0:
        return np.zeros(0, dtype=np.int64), {}, 0
    sizes = np.array([len(u.positions) for u in units], dtype=np.int64)
    quotas = _allocate(target, sizes)
    chosen: list[np.ndarray] = []
    counts: dict[str, dict[str, Any]] = {}
    repeats_total = 0
    for unit, k in zip(units, quotas.tolist()):
        local, repeats = _draw(len(unit.positions), k, _source_rng(seed, tag, unit.name))
        chosen.append(unit.positions[local])
        repeats_total += repeats
        counts[unit.name] = {"group": unit.group, "available": len(unit.positions), "drawn": k,
                             "repeats": repeats}
    return np.concatenate(chosen), counts, repeats_total


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _targets(opts: MixOptions, n_real: int, n_synth: int) -> tuple[int, int, str]:
    a, b = opts.ratio
    if opts.total is not None:
        real = _round_half_up(opts.total * a / (a + b))
        return real, opts.total - real, "total"
    if a == 0:
        # "0:b" has no real anchor: the natural size is every synthetic sample once.
        return 0, n_synth, "all-synthetic"
    return n_real, _round_half_up(n_real * b / a), "all-real"


# ---------------------------------------------------------------------------------------------------
# Writing


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def mix(opts: MixOptions) -> MixSummary:
    """Draw a manifest from the indexes under `opts.root`; see the module docstring for the policy."""
    started = time.perf_counter()
    root = opts.root
    indexes = _read_indexes(root)
    real_units = [u for u in indexes.units if not u.synthetic]
    synth_units = [u for u in indexes.units if u.synthetic]
    n_real = sum(len(u.positions) for u in real_units)
    n_synth = sum(len(u.positions) for u in synth_units)
    a, b = opts.ratio
    want_real, want_synth, policy = _targets(opts, n_real, n_synth)

    if want_synth > 0 and n_synth == 0:
        raise ValueError(
            f"ratio {a:g}:{b:g} needs {want_synth} synthetic samples but {root} has no synthetic index "
            f"(group S); run `rebusyn synth` first, or mix real data only with ratio 1:0"
        )
    if want_real > 0 and n_real == 0:
        raise ValueError(
            f"ratio {a:g}:{b:g} needs {want_real} real samples but {root} has no real index "
            f"(groups {'/'.join(REAL_GROUPS)}); run `rebusyn build` first, or use ratio 0:1"
        )
    if want_real + want_synth == 0:
        raise ValueError(f"ratio {a:g}:{b:g} with {n_real} real samples draws nothing")

    real_pos, real_counts, real_repeats = _draw_part(real_units, want_real, opts.seed, _TAG_REAL)
    synth_pos, synth_counts, synth_repeats = _draw_part(synth_units, want_synth, opts.seed, _TAG_SYNTH)

    positions = np.concatenate([real_pos, synth_pos])
    order = np.random.default_rng([opts.seed, _TAG_SHUFFLE]).permutation(len(positions))
    drawn = indexes.table.take(pa.array(positions[order]))
    synthetic = pc.equal(drawn.column("group"), SYNTH_GROUP)
    manifest = pa.table(
        {
            "shard": drawn.column("shard"),
            "idx": drawn.column("idx").cast(pa.int32()),
            "label": drawn.column("label"),
            "label_raw": drawn.column("label_raw"),
            "source": drawn.column("source"),
            "group": drawn.column("group"),
            "synthetic": synthetic,
            "key": drawn.column("key"),
        },
        schema=MANIFEST_SCHEMA,
    )

    notes: list[str] = []
    if synth_repeats:
        notes.append(
            f"synthetic: {want_synth} draws but only {n_synth} samples available; every synthetic sample "
            f"is used once and {synth_repeats} draws repeat a sample (drawn with replacement)"
        )
    if real_repeats:
        notes.append(
            f"real: {want_real} draws but only {n_real} samples available; every real sample is used once "
            f"and {real_repeats} draws repeat a sample (drawn with replacement)"
        )
    if indexes.deduplicated:
        notes.append(
            f"{indexes.deduplicated} training rows skipped: listed as duplicates by `rebusyn dedup --policy "
            "drop-from-train` (dedup/drop.parquet)"
        )
    for note in notes:
        log.info("%s", note)  # also in the summary and manifest.json; the CLI prints the summary

    per_source = {**real_counts, **synth_counts}
    name = opts.manifest_name
    out_dir = opts.out / name
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_FILE
    json_path = out_dir / MANIFEST_JSON
    # Parquet first, JSON last: the JSON names the Parquet's sha256, so a torn pair is detectable.
    _write_atomic(manifest_path, lambda tmp: pq.write_table(manifest, tmp, **_PARQUET_OPTIONS))
    spec = {
        "format": "rebusyn-manifest",
        "format_version": MANIFEST_VERSION,
        "name": name,
        "root": str(root.resolve()),
        "spec": {
            "ratio": [a, b],
            "seed": opts.seed,
            "size_policy": policy,
            "total": opts.total,
        },
        "counts": {
            "rows": manifest.num_rows,
            "real": want_real,
            "synthetic": want_synth,
            "available_real": n_real,
            "available_synthetic": n_synth,
            "repeated_real": real_repeats,
            "repeated_synthetic": synth_repeats,
        },
        "sources": per_source,
        "indexes": indexes.files,
        "excluded_test_indexes": indexes.excluded,
        "deduplicated_rows": indexes.deduplicated,
        "manifest": {"file": MANIFEST_FILE, "sha256": fingerprint(manifest_path), "rows": manifest.num_rows},
        "notes": notes,
        "rebusyn_version": __version__,
    }
    text = json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _write_atomic(json_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    return MixSummary(
        name=name,
        manifest_path=manifest_path,
        json_path=json_path,
        real=want_real,
        synthetic=want_synth,
        per_source=per_source,
        repeated_synthetic=synth_repeats,
        repeated_real=real_repeats,
        elapsed_s=round(time.perf_counter() - started, 3),
        notes=notes,
        ratio=(a, b),
        seed=opts.seed,
        size_policy=policy,
    )
