"""HuggingFace `datasets` view of a manifest or a dataset root, read straight from the LMDB shards.

Features: `image` (`datasets.Image()`, stored as the encoded bytes from LMDB, never re-encoded), `label`,
`label_raw`, `source`, `group` (strings), `synthetic` (bool).

- Map-style (`streaming=False`): `Dataset.from_generator` writes an Arrow copy into a cache directory
  (default `<manifest dir>/hf_cache` or `<root>/hf_cache`). The cache is keyed by an explicit fingerprint
  computed from the manifest and index fingerprints, because `from_generator` otherwise keys the cache on
  the generator's arguments only and silently reuses a stale cache when shards change underneath.
  Rows come out in manifest order.
- Streaming (`streaming=True`): `IterableDataset.from_generator` with one generator shard per LMDB shard,
  so `split_dataset_by_node` and DataLoader workers get whole LMDB shards. Within an LMDB shard rows keep
  manifest order; shards come in order of first appearance in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rebusyn.store.index import fingerprint
from rebusyn.store.shards import ShardReader

if TYPE_CHECKING:  # datasets is imported lazily: `import rebusyn` stays fast
    import datasets

LOADER_VERSION = 1
ROW_COLUMNS = ["shard", "idx", "label", "label_raw", "source", "group", "synthetic"]
_MAX_OPEN_SHARDS = 64  # bounds open file descriptors when a shuffled manifest touches thousands of shards


def features() -> datasets.Features:
    """The `datasets.Features` every rebusyn HF view and Parquet export uses."""
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.Value("string"),
            "label_raw": datasets.Value("string"),
            "source": datasets.Value("string"),
            "group": datasets.Value("string"),
            "synthetic": datasets.Value("bool"),
        }
    )


# ---------------------------------------------------------------------------------------------------
# What to read: a manifest or a root, resolved to one table of rows in output order


@dataclass(frozen=True)
class RowPlan:
    """Rows to read (columns ROW_COLUMNS, `shard` relative to `root`) and how to name their cache."""

    kind: str  # "manifest" or "root"
    root: Path
    rows: pa.Table
    fingerprint: str
    home: Path  # the manifest directory or the root: where the default cache goes


def resolve(
    path: str | Path, *, split: str = "train", root: str | Path | None = None, with_epoch: bool = False
) -> RowPlan:
    """Turn a manifest directory, a manifest.json, or a dataset root into a RowPlan.

    `root` overrides the dataset root recorded in manifest.json (for a root that has moved).
    `with_epoch` adds the manifest's int32 `epoch` column (all 0 for a root or a manifest without one)."""
    path = Path(path)
    if path.is_file() and path.name == "manifest.json":
        plan = _resolve_manifest(path, split, root, with_epoch)
    elif path.is_dir() and (path / "manifest.json").is_file():
        plan = _resolve_manifest(path / "manifest.json", split, root, with_epoch)
    elif path.is_dir() and (path / "index").is_dir():
        plan = _resolve_root(path, split)
    else:
        raise FileNotFoundError(
            f"{path} is neither a manifest (a directory with manifest.json, or the file itself) nor a "
            "dataset root (a directory with index/*.parquet)"
        )
    if with_epoch and "epoch" not in plan.rows.column_names:
        zeros = pa.array(np.zeros(plan.rows.num_rows, dtype=np.int32))
        plan = replace(plan, rows=plan.rows.append_column("epoch", zeros))
    return plan


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def _resolve_manifest(
    json_path: Path, split: str, root_override: str | Path | None, with_epoch: bool = False
) -> RowPlan:
    if split != "train":
        raise ValueError(f"a manifest holds training rows only; split must be 'train', got {split!r}")
    spec = json.loads(json_path.read_text(encoding="utf-8"))
    if spec.get("format") != "rebusyn-manifest":
        raise ValueError(f"{json_path}: not a rebusyn manifest (format={spec.get('format')!r})")
    manifest_dir = json_path.parent
    manifest_file = manifest_dir / spec["manifest"]["file"]
    root = Path(root_override) if root_override is not None else Path(spec["root"])
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} recorded in {json_path} does not exist; "
            "pass root= to point at its new place"
        )
    manifest_sha = fingerprint(manifest_file)
    if manifest_sha != spec["manifest"]["sha256"]:
        raise ValueError(
            f"{manifest_file} does not match the sha256 recorded in {json_path} (a torn or hand-edited "
            "manifest); re-run `rebusyn mix`"
        )
    # Rows address samples by position, so a rebuilt source silently changes what a row means: refuse.
    current: dict[str, str] = {}
    for name, info in sorted(spec["indexes"].items()):
        index_file = root / info["path"]
        if not index_file.is_file():
            raise FileNotFoundError(
                f"index {index_file} used by {json_path} is missing; re-run `rebusyn mix`"
            )
        current[name] = fingerprint(index_file)
        if current[name] != info["sha256"]:
            raise ValueError(
                f"index {index_file} changed since {json_path} was drawn (source {name!r} was rebuilt); "
                "re-run `rebusyn mix` to draw a manifest that matches the current shards"
            )
    columns = list(ROW_COLUMNS)
    if with_epoch and "epoch" in pq.read_schema(manifest_file).names:
        columns.append("epoch")
    rows = pq.read_table(manifest_file, columns=columns).combine_chunks()
    fp = _digest({"loader": LOADER_VERSION, "kind": "manifest", "split": split, "manifest": manifest_sha,
                  "indexes": current})
    return RowPlan("manifest", root, rows, fp, manifest_dir)


def _resolve_root(root: Path, split: str) -> RowPlan:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' (groups R/E/B/U/S) or 'test' (group T), got {split!r}")
    paths = sorted((root / "index").glob("*.parquet"))
    tables: list[pa.Table] = []
    used: dict[str, str] = {}
    for path in paths:
        table = pq.read_table(path, columns=[c for c in ROW_COLUMNS if c != "synthetic"])
        groups = table.column("group")
        keep = pc.equal(groups, "T") if split == "test" else pc.not_equal(groups, "T")
        table = table.filter(keep)
        if table.num_rows:
            tables.append(table)
            used[path.stem] = fingerprint(path)
    if not tables:
        raise FileNotFoundError(f"no {split} rows in the indexes under {root / 'index'}")
    rows = pa.concat_tables(tables).combine_chunks()
    rows = rows.append_column("synthetic", pc.equal(rows.column("group"), "S"))
    fp = _digest({"loader": LOADER_VERSION, "kind": "root", "split": split, "indexes": used})
    return RowPlan("root", root, rows, fp, root)


def check_shards(plan: RowPlan) -> list[str]:
    """Distinct shard paths of the plan, in order of first appearance; fails early if one is missing."""
    shards = pc.unique(plan.rows.column("shard")).to_pylist()
    missing = [s for s in shards if not (plan.root / s / "data.mdb").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} LMDB shard(s) referenced by the rows are missing under {plan.root}, "
            f"e.g. {missing[0]}"
        )
    return shards


# ---------------------------------------------------------------------------------------------------
# Reading images: one ShardReader per shard path per process, shared by every live reader


class _ReaderPool:
    """Process-wide registry of ShardReaders, one per shard path, reference-counted by LmdbImages users.

    One reader per path matters: py-lmdb >= 2 refuses to open a path twice in a process, so two generators
    over the same shard (or a generator and the user's own code) must not each open it. An environment is
    closed as soon as no live LmdbImages uses it, and at most `max_open` are open at once (a shuffled
    manifest can touch thousands of shards; each open env holds a file descriptor)."""

    def __init__(self, max_open: int = _MAX_OPEN_SHARDS) -> None:
        self.max_open = max_open
        self._readers: dict[str, ShardReader] = {}
        self._users: dict[str, int] = {}
        self._open: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, path: str) -> None:
        with self._lock:
            if path not in self._readers:
                self._readers[path] = ShardReader(path)
            self._users[path] = self._users.get(path, 0) + 1

    def release(self, paths: set[str]) -> None:
        with self._lock:
            for path in paths:
                self._users[path] -= 1
                if self._users[path] == 0:
                    del self._users[path]
                    self._open.pop(path, None)
                    self._readers.pop(path).close()

    def read(self, path: str, idx: int) -> bytes:
        with self._lock:
            data = self._readers[path].image(idx)
            self._open[path] = None
            self._open.move_to_end(path)
            while len(self._open) > self.max_open:
                oldest, _ = self._open.popitem(last=False)
                self._readers[oldest].close()  # reopens lazily if read again
        return data


_POOL = _ReaderPool()


class LmdbImages:
    """Encoded image bytes by (shard directory, 1-based idx), exactly as stored in LMDB (never decoded).

    Use as a context manager: leaving it closes the environments it opened (unless another live user
    still needs them), so later `lmdb.open` calls on those shards in this process work."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def read(self, shard_dir: str, idx: int) -> bytes:
        if shard_dir not in self._used:
            _POOL.acquire(shard_dir)
            self._used.add(shard_dir)
        return _POOL.read(shard_dir, idx)

    def close(self) -> None:
        used, self._used = self._used, set()
        _POOL.release(used)

    def __enter__(self) -> LmdbImages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_examples(root: str, table: pa.Table) -> Iterator[dict[str, Any]]:
    """Examples for the rows of `table`, in table order."""
    columns = [table.column(name).to_pylist() for name in ROW_COLUMNS]
    with LmdbImages() as images:
        for shard, idx, label, label_raw, source, group, synthetic in zip(*columns):
            yield {
                "image": {"bytes": images.read(f"{root}/{shard}", idx), "path": None},
                "label": label,
                "label_raw": label_raw,
                "source": source,
                "group": group,
                "synthetic": synthetic,
            }


def _generate(shards: list[tuple[str, pa.Table]]) -> Iterator[dict[str, Any]]:
    # Module-level so that datasets can pickle it for num_proc workers.
    for root, table in shards:
        yield from iter_examples(root, table)


def _compact(rows: pa.Table, positions: np.ndarray) -> pa.Table:
    """A copy holding only `positions`. Not a slice: pickling an Arrow slice (gen_kwargs go to num_proc and
    spawned DataLoader workers by pickle) ships the parent's whole buffers. `rows` is a single chunk, so
    each take costs O(len(positions))."""
    return rows.take(pa.array(positions, type=pa.int64()))


def _shard_parts(plan: RowPlan, n_shards: int) -> list[tuple[str, pa.Table]]:
    """Contiguous slices of the rows for map-style generation, so concatenating them keeps row order.

    When the rows are already grouped by shard (a dataset root) every slice is exactly one LMDB shard;
    for a shuffled manifest the rows are cut into as many equal slices as there are LMDB shards."""
    rows = plan.rows
    codes = pc.dictionary_encode(rows.column("shard")).combine_chunks().indices.to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])
    if len(starts) != n_shards:
        starts = np.array([s[0] for s in np.array_split(np.arange(rows.num_rows), n_shards) if len(s)])
    bounds = [*starts.tolist(), rows.num_rows]
    root = str(plan.root)
    return [(root, _compact(rows, np.arange(a, b))) for a, b in zip(bounds[:-1], bounds[1:])]


def _by_lmdb_shard(plan: RowPlan) -> list[tuple[str, pa.Table]]:
    """One (root, rows) entry per LMDB shard, shards in order of first appearance, rows in plan order."""
    rows = plan.rows
    codes = pc.dictionary_encode(rows.column("shard")).combine_chunks().indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes))]).tolist()
    root = str(plan.root)
    return [(root, _compact(rows, order[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]


# ---------------------------------------------------------------------------------------------------


def load_dataset(
    path: str | Path,
    *,
    streaming: bool = False,
    split: str = "train",
    cache_dir: str | Path | None = None,
    num_proc: int | None = None,
    root: str | Path | None = None,
) -> datasets.Dataset | datasets.IterableDataset:
    """A `datasets.Dataset` (or `IterableDataset` with `streaming=True`) over a manifest or a dataset root.

    `path`: a manifest directory, its manifest.json, or a dataset root (then every row of every training
    index, real and synthetic, in index order; `split="test"` gives the benchmarks instead).
    `cache_dir`: where the map-style Arrow copy goes (default `<manifest dir>/hf_cache` or `<root>/hf_cache`).
    `num_proc`: processes for map-style generation. `root`: override the root recorded in a manifest.
    """
    import datasets

    plan = resolve(path, split=split, root=root)
    shards = check_shards(plan)
    feats = features()
    if streaming:
        return datasets.IterableDataset.from_generator(
            _generate, features=feats, gen_kwargs={"shards": _by_lmdb_shard(plan)}, split=split
        )
    cache = Path(cache_dir) if cache_dir is not None else plan.home / "hf_cache"
    return datasets.Dataset.from_generator(
        _generate,
        features=feats,
        cache_dir=str(cache),
        gen_kwargs={"shards": _shard_parts(plan, len(shards))},
        num_proc=num_proc,
        split=split,
        fingerprint=plan.fingerprint,
    )
