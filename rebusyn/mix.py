"""Mixing manifests: which (shard, idx) pairs a training run reads, drawn from the Parquet indexes only.

`mix` never opens an image or an LMDB shard: everything it needs (shard path, 1-based index, labels,
source, group) is in `<root>/index/*.parquet`. It writes `<out>/<name>/manifest.parquet` (one row per draw,
in a seeded shuffled order) and `manifest.json` (the spec, the counts, and the sha256 of every index it
drew from, so a loader can refuse a manifest whose sources were rebuilt since).

Size policy, with ratio a:b (real : synthetic):
- default: every real sample once (of the sources not weighted 0), plus round(real * b / a) synthetic
  samples;
- `total=N`: round(N * a / (a + b)) real and the rest synthetic.
Within each part, sources get draws in proportion to size x weight (weights default to 1; a weight of 2
doubles a source's share, 0 leaves it out; largest-remainder rounding in exact arithmetic). Draws are
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
from fractions import Fraction
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
        ("epoch", pa.int32()),
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
    weights: dict[str, float] = field(default_factory=dict)  # source -> weight (default 1)
    epochs: int = 1  # rows for this many epochs, each its own draw and order (column `epoch`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "ratio", _check_ratio(self.ratio))
        object.__setattr__(self, "weights", _check_weights(self.weights))
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
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
    epochs: int = 1  # real / synthetic are per epoch

    @property
    def rows(self) -> int:
        return (self.real + self.synthetic) * self.epochs


def format_summary(summary: MixSummary) -> str:
    """The CLI's report: totals, one line per source, notes about repeats, and how to load the result."""
    a, b = summary.ratio
    lines = [
        f"manifest {summary.name}: {summary.rows} rows = "
        + (f"{summary.epochs} epochs x (" if summary.epochs > 1 else "")
        + f"{summary.real} real + {summary.synthetic} synthetic"
        + (")" if summary.epochs > 1 else "")
        + f" (ratio {a:g}:{b:g}, seed {summary.seed}, size policy {summary.size_policy})"
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


SPEC_SCHEMA = 1


def specs_dir() -> Path:
    """`manifests/specs/` of the source checkout (next to `recipes/`): the shipped mix specs."""
    from rebusyn.recipes import recipes_dir

    return recipes_dir().parent / "manifests" / "specs"


def load_spec(path_or_name: str | Path) -> dict[str, Any]:
    """A mix spec YAML (a path, or the name of a file in `manifests/specs/`): `schema: 1`, and any of
    `name`, `ratio` ("3:1"), `sweep` (["1:0.5", ...]), `seed`, `total`, `weights` ({source: weight}).
    Returns MixOptions keyword arguments (plus `sweep`); errors name the file and the field."""
    import yaml

    path = Path(path_or_name)
    if not path.is_file() and not path.suffix:
        path = specs_dir() / f"{path_or_name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"mix spec {path}: cannot read it ({err})") from err
    except yaml.YAMLError as err:
        raise ValueError(f"mix spec {path}: not valid YAML: {err}") from err
    if not isinstance(data, dict) or type(data.get("schema")) is not int or data["schema"] != SPEC_SCHEMA:
        raise ValueError(f"mix spec {path}: field 'schema' must be {SPEC_SCHEMA}")
    fields = {"schema", "name", "ratio", "sweep", "seed", "total", "weights", "epochs", "description"}
    unknown = set(data) - fields
    if unknown:
        raise ValueError(f"mix spec {path}: field '{sorted(map(str, unknown))[0]}' is not a spec field")
    out: dict[str, Any] = {}
    try:
        if data.get("name") is not None:
            out["name"] = str(data["name"])
        if data.get("ratio") is not None:
            out["ratio"] = parse_ratio(str(data["ratio"]))
        if data.get("sweep") is not None:
            if not isinstance(data["sweep"], list) or not data["sweep"]:
                raise ValueError("field 'sweep' must be a non-empty list of ratios")
            out["sweep"] = [parse_ratio(str(r)) for r in data["sweep"]]
        for key in ("seed", "total", "epochs"):
            if data.get(key) is not None:
                if isinstance(data[key], bool) or not isinstance(data[key], int):
                    raise ValueError(f"field '{key}' must be an integer, got {data[key]!r}")
                out[key] = data[key]
        if data.get("weights") is not None:
            out["weights"] = _check_weights(data["weights"])
    except ValueError as err:
        raise ValueError(f"mix spec {path}: {err}") from err
    return out


def resolve_options(
    root: Path, out: Path, *, spec: str | Path | None = None, **flags: Any
) -> tuple[MixOptions, list[tuple[float, float]] | None]:
    """MixOptions (and the sweep's ratios, if any) from a spec file and command-line values: a value given
    on the command line (not None) wins over the spec's. `flags`: ratio, sweep ("1:0.5,1:1"), name, seed,
    total, weights ("src=2,...")."""
    values = load_spec(spec) if spec is not None else {}
    if flags.get("ratio") is not None:
        values["ratio"] = parse_ratio(flags["ratio"])
    if flags.get("sweep") is not None:
        values["sweep"] = [parse_ratio(r) for r in str(flags["sweep"]).split(",") if r.strip()]
    if flags.get("weights") is not None:
        values["weights"] = parse_weights(flags["weights"])
    for key in ("name", "seed", "total", "epochs"):
        if flags.get(key) is not None:
            values[key] = flags[key]
    sweep = values.pop("sweep", None)
    return MixOptions(root=root, out=out, **values), sweep


def sweep_name(base: str | None, ratio: tuple[float, float]) -> str:
    """One manifest per ratio of a sweep, named by it: `rebusyn-1to0.5`."""
    return f"{base or 'rebusyn'}-{ratio[0]:g}to{ratio[1]:g}"


def mix_sweep(opts: MixOptions, ratios: list[tuple[float, float]]) -> list[MixSummary]:
    """`mix` once per ratio, same seed and weights: with the default size policy every manifest holds the
    same real rows (all of them, drawn by the same per-source streams) and only the synthetic part grows."""
    from dataclasses import replace

    names = [sweep_name(opts.name, r) for r in ratios]
    if len(set(names)) != len(names):
        raise ValueError(f"the sweep repeats a ratio: {', '.join(f'{a:g}:{b:g}' for a, b in ratios)}")
    return [mix(replace(opts, ratio=r, name=n)) for r, n in zip(ratios, names)]


def parse_weights(text: str) -> dict[str, float]:
    """`"coco_text=2,mjsynth=0.5"` -> {"coco_text": 2.0, "mjsynth": 0.5}."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"weights must look like SOURCE=WEIGHT,... (e.g. coco_text=2), got {item!r}")
        try:
            weights[name.strip()] = float(value)
        except ValueError as err:
            raise ValueError(f"weight of {name.strip()!r} must be a number, got {value!r}") from err
    return _check_weights(weights)


def _check_weights(weights: Any) -> dict[str, float]:
    if not isinstance(weights, dict):
        raise ValueError(f"weights must be a mapping source -> weight, got {weights!r}")
    out = {}
    for name, value in weights.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value < 0:
            raise ValueError(f"weight of {name!r} must be a finite number >= 0, got {value!r}")
        out[str(name)] = float(value)
    return out


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
    positions: np.ndarray  # global draw ids: file number * _FILE_STRIDE + row number inside the file


_FILE_STRIDE = 1 << 40  # row numbers of one index file stay below this; the file number sits above it


@dataclass
class _Indexes:
    paths: list[Path]  # the index files with training rows, in sorted order (file number = position here)
    units: list[_Unit]
    files: dict[str, dict[str, Any]]
    excluded: list[str]
    deduplicated: int = 0  # training rows left out: listed by `rebusyn dedup --policy drop-from-train`


def _row_keys(table: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(table.column("shard"), pc.cast(table.column("idx"), pa.string()), "#")


def _read_indexes(root: Path) -> _Indexes:
    """Which rows of which index file may be drawn, by source and group, reading only the `group` column
    (and `shard`, `idx` when a dedup drop list exists): 25M index rows cost ~100 MB here, not their strings.
    The drawn rows' columns are read afterwards (`_gather`)."""
    index_dir = root / "index"
    paths = sorted(index_dir.glob("*.parquet")) if index_dir.is_dir() else []
    if not paths:
        raise FileNotFoundError(
            f"no Parquet indexes under {index_dir}: build sources (`rebusyn build`) or synthetic data "
            "(`rebusyn synth`) into this root first"
        )
    units: list[_Unit] = []
    used: list[Path] = []
    files: dict[str, dict[str, Any]] = {}
    excluded: list[str] = []
    # Duplicates `rebusyn dedup --policy drop-from-train` listed (train copies of test crops, repeats across
    # sources) are never drawn. A stale list (an index changed since) is an error, not silently applied.
    drop = load_drop_table(root)
    drop_keys = _row_keys(drop) if drop is not None and drop.num_rows else None
    deduplicated = 0
    for path in paths:
        columns = ["group", "shard", "idx"] if drop_keys is not None else ["group"]
        try:
            schema_names = pq.read_schema(path).names
            missing = [c for c in _INDEX_COLUMNS if c not in schema_names]
            if missing:
                raise KeyError(missing)
            table = pq.read_table(path, columns=columns, read_dictionary=["group", "shard"])
        except (pa.ArrowInvalid, KeyError, OSError) as err:
            need = ", ".join(_INDEX_COLUMNS)
            raise ValueError(f"{path}: not a rebusyn index (need columns {need})") from err
        groups = table.column("group").cast(pa.string())
        present = pc.unique(groups).to_pylist()
        unknown = set(present) - set(GROUPS)
        if unknown:
            raise ValueError(
                f"{path}: unknown group(s) {sorted(map(str, unknown))}; expected {', '.join(GROUPS)}"
            )
        eligible = pc.not_equal(groups, TEST_GROUP)  # benchmarks are never trained on
        if drop_keys is not None:
            listed = pc.and_(eligible, pc.is_in(_row_keys(table.set_column(
                table.schema.get_field_index("shard"), "shard", table.column("shard").cast(pa.string())
            )), value_set=drop_keys))  # fmt: skip
            deduplicated += pc.sum(listed).as_py() or 0
            eligible = pc.and_(eligible, pc.invert(listed))
        eligible_np = eligible.to_numpy(zero_copy_only=False)
        if not eligible_np.any():
            excluded.append(path.stem)
            continue
        number = len(used)
        used.append(path)
        trained = sorted(g for g in present if g != TEST_GROUP)
        group_np = groups.to_numpy(zero_copy_only=False)
        for group in trained:
            local = np.flatnonzero(eligible_np & (group_np == group))
            if not len(local):
                continue
            name = path.stem if len(trained) == 1 else f"{path.stem}/{group}"
            units.append(_Unit(name, group, group == SYNTH_GROUP, local + number * _FILE_STRIDE))
        files[path.stem] = {
            "path": path.relative_to(root).as_posix(),
            "sha256": fingerprint(path),
            "rows": int(eligible_np.sum()),
        }
    if not used:
        raise ValueError(f"the indexes under {index_dir} hold only test benchmarks (group T); nothing to mix")
    return _Indexes(used, units, files, excluded, deduplicated)


def _gather(paths: list[Path], draws: np.ndarray, batch_rows: int = 1 << 20) -> pa.Table:
    """The index rows of `draws` (global draw ids, repeats allowed), in that order. Each file is read once,
    batch by batch, keeping only the rows drawn from it: memory follows the manifest, not the indexes."""
    files = draws // _FILE_STRIDE
    rows = draws % _FILE_STRIDE
    parts: list[pa.Table] = []
    where = np.empty(len(draws), dtype=np.int64)  # row of each draw in the concatenation of `parts`
    offset = 0
    for number, path in enumerate(paths):
        mine = np.flatnonzero(files == number)
        if not len(mine):
            continue
        pf = pq.ParquetFile(path)
        # rank of every drawn row among the drawn rows of this file: a mask and a running count, O(rows)
        # and no sort (np.unique + searchsorted cost seconds at 8M draws)
        mask = np.zeros(pf.metadata.num_rows, dtype=bool)
        mask[rows[mine]] = True
        wanted = np.flatnonzero(mask)
        rank = np.cumsum(mask, dtype=np.int64) - 1
        where[mine] = offset + rank[rows[mine]]
        del mask, rank
        start = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=_INDEX_COLUMNS):
            lo, hi = np.searchsorted(wanted, [start, start + batch.num_rows])
            if hi > lo:
                parts.append(pa.Table.from_batches([batch.take(pa.array(wanted[lo:hi] - start))]))
            start += batch.num_rows
        offset += len(wanted)
    return pa.concat_tables(parts).take(pa.array(where))  # mix() never draws nothing


# ---------------------------------------------------------------------------------------------------
# Drawing


def _allocate(target: int, sizes: np.ndarray, weights: list[float] | None = None) -> np.ndarray:
    """Split `target` draws across sources proportionally to size x weight, summing exactly to `target`.

    Largest-remainder rounding in exact rational arithmetic (no float ties, no int64 overflow for 25M-row
    targets); equal remainders go to the earlier source (sources are in sorted index-file order), so the
    split is deterministic."""
    shares = [Fraction(int(n)) * Fraction(w).limit_denominator(10**6)
              for n, w in zip(sizes.tolist(), weights or [1.0] * len(sizes))]  # fmt: skip
    total = sum(shares, Fraction(0))
    if target == 0 or total == 0:
        return np.zeros(len(sizes), dtype=np.int64)
    exact = [share * target / total for share in shares]
    quotas = [math.floor(x) for x in exact]
    short = target - sum(quotas)
    order = sorted(range(len(exact)), key=lambda i: -(exact[i] - quotas[i]))  # stable: ties keep order
    for i in order[:short]:
        quotas[i] += 1
    return np.array(quotas, dtype=np.int64)


def _unit_weights(units: list[_Unit], weights: dict[str, float]) -> list[float]:
    """A unit (an index file, or one group of it: `name/group`) takes its source's weight."""
    return [weights.get(u.name, weights.get(u.name.split("/")[0], 1.0)) for u in units]


def _source_rng(seed: int, tag: int, name: str, epoch: int = 0) -> np.random.Generator:
    # One stream per (seed, part, source, epoch): adding or rebuilding another source leaves these draws
    # alone. Epoch 0 keeps the key it had before epochs existed, so a 1-epoch manifest draws as it did.
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, tag, digest] + ([epoch] if epoch else []))


def _shuffle_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, _TAG_SHUFFLE] + ([epoch] if epoch else []))


def _draw(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """k local row numbers out of n: without replacement while k <= n, else all n plus k - n repeats."""
    if k == n:
        return np.arange(n, dtype=np.int64), 0
    if k < n:
        return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64), 0
    extra = rng.integers(0, n, size=k - n, dtype=np.int64)
    return np.concatenate([np.arange(n, dtype=np.int64), extra]), k - n


def _draw_part(
    units: list[_Unit], target: int, seed: int, tag: int, weights: dict[str, float], epoch: int = 0
) -> tuple[np.ndarray, dict[str, dict[str, Any]], int]:
    if not units or target == 0:
        return np.zeros(0, dtype=np.int64), {}, 0
    sizes = np.array([len(u.positions) for u in units], dtype=np.int64)
    unit_weights = _unit_weights(units, weights)
    if not any(w > 0 and n > 0 for w, n in zip(unit_weights, sizes.tolist())):
        raise ValueError(f"every source of this part has weight 0: {', '.join(u.name for u in units)}")
    quotas = _allocate(target, sizes, unit_weights)
    chosen: list[np.ndarray] = []
    counts: dict[str, dict[str, Any]] = {}
    repeats_total = 0
    for unit, k, weight in zip(units, quotas.tolist(), unit_weights):
        local, repeats = _draw(len(unit.positions), k, _source_rng(seed, tag, unit.name, epoch))
        chosen.append(unit.positions[local])
        repeats_total += repeats
        counts[unit.name] = {"group": unit.group, "available": len(unit.positions), "drawn": k,
                             "repeats": repeats, "weight": weight}
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
    known = {u.name.split("/")[0] for u in indexes.units} | {u.name for u in indexes.units}
    unknown = sorted(set(opts.weights) - known)
    if unknown:
        raise ValueError(
            f"weights name source(s) with no training index under {root}: {', '.join(unknown)} "
            f"(sources: {', '.join(sorted({u.name.split('/')[0] for u in indexes.units}))})"
        )
    # A source weighted 0 is left out, so it does not count towards the size of its part either.
    left_out = {id(u) for u, w in zip(indexes.units, _unit_weights(indexes.units, opts.weights)) if w == 0}
    n_real = sum(len(u.positions) for u in real_units if id(u) not in left_out)
    n_synth = sum(len(u.positions) for u in synth_units if id(u) not in left_out)
    a, b = opts.ratio
    want_real, want_synth, policy = _targets(opts, n_real, n_synth)

    for part, units, n in (("synthetic", synth_units, n_synth), ("real", real_units, n_real)):
        if n == 0 and units and all(id(u) in left_out for u in units):
            raise ValueError(f"every source of this part ({part}) has weight 0: "
                             f"{', '.join(u.name for u in units)}")  # fmt: skip
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

    # Every epoch draws its own subset where a source is subsampled, and its own order; the counts are
    # the same in every epoch (epoch 0's are reported).
    draws, epoch_of = [], []
    for epoch in range(opts.epochs):
        real_pos, counts_r, repeats_r = _draw_part(
            real_units, want_real, opts.seed, _TAG_REAL, opts.weights, epoch
        )
        synth_pos, counts_s, repeats_s = _draw_part(
            synth_units, want_synth, opts.seed, _TAG_SYNTH, opts.weights, epoch
        )
        if epoch == 0:
            real_counts, real_repeats, synth_counts, synth_repeats = counts_r, repeats_r, counts_s, repeats_s
        positions = np.concatenate([real_pos, synth_pos])
        draws.append(positions[_shuffle_rng(opts.seed, epoch).permutation(len(positions))])
        epoch_of.append(np.full(len(positions), epoch, dtype=np.int32))
    drawn = _gather(indexes.paths, np.concatenate(draws))
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
            "epoch": pa.array(np.concatenate(epoch_of)),
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
            "weights": dict(sorted(opts.weights.items())),
            "epochs": opts.epochs,
        },
        "counts": {
            "rows": manifest.num_rows,
            "epochs": opts.epochs,
            "real": want_real,  # per epoch, as the synthetic and repeat counts below
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
        epochs=opts.epochs,
    )
