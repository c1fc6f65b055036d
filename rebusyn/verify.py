"""`rebusyn verify PATH`: check that what is on disk is what the indexes, reports and manifests say.

PATH is one of (tried in this order):
- a manifest (a folder with manifest.json, or the file): manifest.parquet against the sha256 in
  manifest.json, every index it names against its recorded sha256, every (shard, idx) row against the
  indexes and the shards, then every shard it uses;
- a dataset root (a folder with index/*.parquet): every index and the shards it names, shards no index
  names (orphans), the reports' options (label policy) and the downloads the reports name (sha256);
- a folder holding data.mdb: that one LMDB;
- any other folder: every data.mdb under it, hidden folders skipped (PARSeq's glob), e.g. DTRB's
  data_lmdb_release or PARSeq's train/test trees.

Each LMDB is opened read-only without a lock and read with one cursor scan (one lookup of num-samples,
no per-sample random reads). Problems are data: each is a kind (PROBLEM_KINDS), a path, the LMDB key or
index row, and what is wrong; listed up to a bound per kind, counted in full.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import lmdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from rebusyn import __version__
from rebusyn.executors import LocalExecutor
from rebusyn.sample import CHARSETS, DEFAULT_MAX_LEN, LabelPolicy
from rebusyn.store.index import fingerprint
from rebusyn.store.shards import find_shards, shared_env

REPORT_FORMAT = "rebusyn-verify"
REPORT_NAME = "verify.json"
DEFAULT_MAX_LISTED = 100  # problems listed per kind in the JSON report (all are counted)
_HASH_CHUNK = 2**20
_SAMPLE_PREFIXES = (b"image-", b"label-", b"meta-")

# Every kind of problem verify reports, and what it means (docs/verify.md lists the same table).
PROBLEM_KINDS: dict[str, str] = {
    "shard-unreadable": "the LMDB cannot be opened or read (not an LMDB, truncated, corrupt)",
    "num-samples-missing": "the LMDB has no num-samples key",
    "num-samples-invalid": "num-samples is not a non-negative ASCII integer",
    "sample-key-missing": "image-/label- key of an index in 1..num-samples is absent",
    "sample-key-extra": "image-/label-/meta- key outside 1..num-samples (num-samples too small?)",
    "image-undecodable": "cv2.imdecode cannot decode the image bytes",
    "label-not-utf8": "the label bytes are not valid UTF-8",
    "label-policy": "the label is not what the charset policy makes of it (or the policy drops it)",
    "index-unreadable": "an index file cannot be read as a rebusyn index",
    "index-shard-missing": "an index names a shard that does not exist",
    "index-count-mismatch": "the index rows of a shard differ in number from its num-samples",
    "index-idx-bad": "an index row's idx is outside 1..num-samples, or repeated",
    "index-label-mismatch": "an index row's label differs from the LMDB label",
    "index-sha1-mismatch": "an index row's sha1 differs from the sha1 of the LMDB image bytes",
    "orphan-shard": "a shard under train/ or test/ that no index names",
    "report-unreadable": "a report is not valid JSON, or its options name no valid label policy",
    "archive-sha256-mismatch": "a download no longer has the sha256 its report recorded",
    "manifest-unreadable": "manifest.json or manifest.parquet cannot be read",
    "manifest-sha256-mismatch": "manifest.parquet differs from the sha256 recorded in manifest.json",
    "manifest-root-missing": "the dataset root the manifest names does not exist",
    "manifest-index-missing": "an index the manifest was drawn from is gone",
    "manifest-index-changed": "an index differs from the sha256 the manifest recorded (source rebuilt)",
    "manifest-row-missing": "a manifest row's (shard, idx) is in no index, or not in its shard",
    "manifest-label-mismatch": "a manifest row's label differs from the index label",
}


class NotVerifiable(ValueError):
    """PATH is none of the things verify knows (a usage error: exit code 2)."""


class OptionError(ValueError):
    """A VerifyOptions value out of range (a usage error: exit code 2)."""


@dataclass(frozen=True)
class VerifyOptions:
    """What `rebusyn verify` takes.

    `charset`/`max_len`: check every label against this policy; None = a root's shards use the policy
    each source's report records, other LMDBs get no label-policy check. `report`: where the JSON report
    goes (None = `<root>/reports/verify.json` for a root, nowhere otherwise). `root`: the dataset root
    of a manifest whose root has moved since `mix`."""

    path: Path
    charset: str | None = None
    max_len: int | None = None
    skip_archives: bool = False
    workers: int = 1
    report: Path | None = None
    root: Path | None = None
    progress: bool = True
    max_listed: int = DEFAULT_MAX_LISTED

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.charset is not None and self.charset not in CHARSETS:
            raise OptionError(f"charset must be one of {', '.join(CHARSETS)}, got {self.charset!r}")
        if self.max_len is not None and self.max_len < 1:
            raise OptionError(f"max_len must be >= 1, got {self.max_len}")
        if self.workers < 1:
            raise OptionError(f"workers must be >= 1, got {self.workers}")
        if self.max_listed < 1:
            raise OptionError(f"max_listed must be >= 1, got {self.max_listed}")


# ---------------------------------------------------------------------------------------------------
# Problems: counted in full, listed up to a bound per kind


class Problems:
    """Problems in the order they were found; at most `max_listed` listed per kind, all counted."""

    def __init__(self, max_listed: int = DEFAULT_MAX_LISTED) -> None:
        self.max_listed = max_listed
        self.counts: Counter[str] = Counter()
        self.listed: list[dict[str, Any]] = []
        self._listed_per_kind: Counter[str] = Counter()

    def add(
        self, kind: str, path: str, detail: str, *, key: str | None = None, idx: int | None = None
    ) -> None:
        assert kind in PROBLEM_KINDS, kind
        self.counts[kind] += 1
        if self._listed_per_kind[kind] < self.max_listed:
            self._append({"kind": kind, "path": path, "key": key, "idx": idx, "detail": detail})

    def add_unlisted(self, kind: str, n: int) -> None:
        """Count `n` more problems of `kind` without naming them (a long run of missing keys)."""
        if n > 0:
            self.counts[kind] += n

    def room(self, kind: str) -> int:
        return max(0, self.max_listed - self._listed_per_kind[kind])

    def merge(self, other: Problems) -> None:
        self.counts.update(other.counts)
        for problem in other.listed:
            if self._listed_per_kind[problem["kind"]] < self.max_listed:
                self._append(problem)

    def _append(self, problem: dict[str, Any]) -> None:
        self.listed.append({k: v for k, v in problem.items() if v is not None})
        self._listed_per_kind[problem["kind"]] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ---------------------------------------------------------------------------------------------------
# One LMDB: a single cursor scan


@dataclass(frozen=True)
class ShardTask:
    """One LMDB to check. `name` is how problems name it; `policy` is (charset, max_len) or None;
    `rows` are its index rows as parallel lists (idx, label, sha1), or None when no index names it."""

    path: str
    name: str
    policy: tuple[str, int] | None = None
    rows: tuple[list[int], list[str], list[str]] | None = None
    max_listed: int = DEFAULT_MAX_LISTED


@dataclass
class ShardResult:
    name: str
    opened: bool
    num_samples: int | None
    images: int  # image keys inside 1..num-samples
    decoded: int
    labels: int  # label keys inside 1..num-samples
    policy: tuple[str, int] | None
    problems: Problems


class _KeyRun:
    """Missing keys of one prefix, found from the gaps between the 1-based indexes a sorted scan sees."""

    def __init__(self, prefix: str, name: str, problems: Problems) -> None:
        self.prefix, self.name, self.problems = prefix, name, problems
        self.next = 1

    def saw(self, idx: int) -> None:
        if idx > self.next:
            self._missing(self.next, idx - 1)
        self.next = idx + 1

    def finish(self, n: int) -> None:
        if n >= self.next:
            self._missing(self.next, n)

    def _missing(self, first: int, last: int) -> None:
        listed = min(last - first + 1, self.problems.room("sample-key-missing"))
        for idx in range(first, first + listed):
            self.problems.add("sample-key-missing", self.name, f"no {self.prefix} key for this index",
                              key=f"{self.prefix}{idx:09d}", idx=idx)  # fmt: skip
        self.problems.add_unlisted("sample-key-missing", last - first + 1 - listed)


def _parse_sample_key(key: bytes) -> tuple[str, int | None] | None:
    """(prefix, idx) of an image-/label-/meta- key; idx None when the rest is not 9 digits (a key no STR
    reader asks for); None for other keys (num-samples, a shard's own keys)."""
    for prefix in _SAMPLE_PREFIXES:
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            ok = len(rest) == 9 and rest.isdigit()
            return prefix.decode(), (int(rest) if ok else None)
    return None


def check_shard(task: ShardTask) -> ShardResult:
    """Check one LMDB with one read-only cursor scan (module-level: it runs in pool workers)."""
    problems = Problems(task.max_listed)
    result = ShardResult(task.name, False, None, 0, 0, 0, task.policy, problems)
    opened = ExitStack()
    try:  # shared with any reader of it in this process (py-lmdb refuses a second open of a path)
        env = opened.enter_context(shared_env(task.path))
    except (lmdb.Error, FileNotFoundError) as err:
        problems.add("shard-unreadable", task.name, f"cannot open: {type(err).__name__}: {err}")
        return result
    try:
        # A truncated data.mdb (an interrupted copy) opens fine, then reading a page past its end kills the
        # process with SIGBUS: compare the file with the pages its meta page says it holds, first.
        truncated = _truncated(Path(task.path), env)
        if truncated:
            problems.add("shard-unreadable", task.name, truncated)
            return result
        result.opened = True
        with env.begin(buffers=False) as txn:
            _scan(txn, task, result)
    except lmdb.Error as err:
        problems.add("shard-unreadable", task.name, f"read failed: {type(err).__name__}: {err}")
    finally:
        opened.close()
    return result


def _truncated(path: Path, env: lmdb.Environment) -> str | None:
    size = os.path.getsize(path / "data.mdb")
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    return f"data.mdb is truncated: {size:,} bytes, its pages need {needed:,}" if size < needed else None


def _scan(txn: lmdb.Transaction, task: ShardTask, result: ShardResult) -> None:
    """One pass over every key in key order: image-* (1..N), then label-*, meta-*, num-samples."""
    problems, name = result.problems, task.name
    n = result.num_samples = _num_samples(txn.get(b"num-samples"), name, problems)
    expected = _expected_rows(task, n, problems)
    policy = LabelPolicy(*task.policy) if task.policy else None
    runs = {"image-": _KeyRun("image-", name, problems), "label-": _KeyRun("label-", name, problems)}
    for key, value in txn.cursor():
        parsed = _parse_sample_key(key)
        if parsed is None:
            continue
        prefix, idx = parsed
        shown = key.decode("ascii", "replace")
        if idx is None or idx < 1 or (n is not None and idx > n):
            where = (
                "not a 9-digit index" if idx is None else f"outside 1..{n}" if n is not None else "index 0"
            )
            problems.add("sample-key-extra", name, f"sample key {where}", key=shown, idx=idx)
        elif prefix == "image-":
            runs[prefix].saw(idx)
            result.images += 1
            result.decoded += _check_image(value, expected.get(idx), problems, name, shown, idx)
        elif prefix == "label-":
            runs[prefix].saw(idx)
            result.labels += 1
            _check_label(value, expected.get(idx), policy, problems, name, shown, idx)
    if n is not None:
        for run in runs.values():
            run.finish(n)


def _check_image(value: bytes, row: tuple[str, str] | None, problems: Problems, name: str, key: str,
                 idx: int) -> bool:  # fmt: skip
    """Decode the image and compare its sha1 with the index row's; True when it decodes."""
    decoded = _decodes(value)
    if not decoded:
        problems.add(
            "image-undecodable", name, f"cv2.imdecode failed on {len(value)} bytes", key=key, idx=idx
        )
    if row is not None:
        sha1 = hashlib.sha1(value).hexdigest()
        if row[1] != sha1:
            problems.add("index-sha1-mismatch", name, f"index sha1 {row[1]} != {sha1} of the image bytes",
                         key=key, idx=idx)  # fmt: skip
    return decoded


def _check_label(value: bytes, row: tuple[str, str] | None, policy: LabelPolicy | None, problems: Problems,
                 name: str, key: str, idx: int) -> None:  # fmt: skip
    try:
        label = value.decode("utf-8")
    except UnicodeDecodeError as err:
        problems.add("label-not-utf8", name, f"{value[:40]!r}: {err.reason}", key=key, idx=idx)
        return
    if policy is not None:
        normalized, reason = policy.normalize(label)
        if reason is not None:
            detail = f"{label!r} is dropped by charset {policy.charset} ({reason})"
            problems.add("label-policy", name, detail, key=key, idx=idx)
        elif normalized != label:
            detail = f"{label!r} is {normalized!r} under charset {policy.charset}"
            problems.add("label-policy", name, detail, key=key, idx=idx)
    if row is not None and row[0] != label:
        detail = f"index label {row[0]!r} != LMDB label {label!r}"
        problems.add("index-label-mismatch", name, detail, key=key, idx=idx)


def _num_samples(raw: bytes | None, name: str, problems: Problems) -> int | None:
    if raw is None:
        problems.add("num-samples-missing", name, "no num-samples key: STR readers see no samples",
                     key="num-samples")  # fmt: skip
        return None
    try:
        n = int(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        n = -1
    if n < 0:
        problems.add("num-samples-invalid", name, f"num-samples is {raw[:40]!r}", key="num-samples")
        return None
    return n


def _expected_rows(task: ShardTask, n: int | None, problems: Problems) -> dict[int, tuple[str, str]]:
    """idx -> (label, sha1) of the shard's index rows; rows outside 1..n or repeated are reported."""
    if task.rows is None:
        return {}
    idxs, labels, sha1s = task.rows
    if n is not None and len(idxs) != n:
        problems.add("index-count-mismatch", task.name,
                     f"the index has {len(idxs)} row(s) for this shard, num-samples is {n}")  # fmt: skip
    expected: dict[int, tuple[str, str]] = {}
    for idx, label, sha1 in zip(idxs, labels, sha1s):
        if idx is None or idx < 1 or (n is not None and idx > n):
            span = f"1..{n}" if n is not None else "1.."
            problems.add("index-idx-bad", task.name, f"index row idx {idx} is outside {span}", idx=idx)
        elif idx in expected:
            problems.add("index-idx-bad", task.name, f"index rows repeat idx {idx}", idx=idx)
        else:
            expected[idx] = (label, sha1)
    return expected


def _decodes(data: bytes) -> bool:
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # empty buffer
        return False
    return image is not None and image.size > 0


# ---------------------------------------------------------------------------------------------------
# The whole run


@dataclass
class VerifyResult:
    path: Path
    kind: str  # manifest | root | lmdb | tree
    base: Path  # problem paths are relative to this folder
    problems: Problems
    shards: list[ShardResult] = field(default_factory=list)
    checked: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    report_path: Path | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.problems.total == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "path": str(self.path),
            "kind": self.kind,
            "base": str(self.base),
            "ok": self.ok,
            "checked": dict(sorted(self.checked.items())),
            "notes": self.notes,
            "problems_total": self.problems.total,
            "problem_counts": dict(sorted(self.problems.counts.items())),
            "problems_listed_per_kind": self.problems.max_listed,
            "problems": self.problems.listed,
            "shards": [
                {
                    "path": s.name,
                    "readable": s.opened,
                    "num_samples": s.num_samples,
                    "images_decoded": s.decoded,
                    "charset": s.policy[0] if s.policy else None,
                    "problems": s.problems.total,
                }
                for s in self.shards
            ],  # fmt: skip
            "tool": {"name": "rebusyn", "version": __version__, "python": platform.python_version()},
            "elapsed_s": self.elapsed_s,
        }


def classify(path: Path) -> tuple[str, Path]:
    """(kind, folder or manifest.json) of PATH, or NotVerifiable."""
    path = Path(path)
    if path.is_file() and path.name == "manifest.json":
        return "manifest", path
    if path.is_file() and path.name == "data.mdb":
        return "lmdb", path.parent
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is a file, not a manifest.json or data.mdb"
        raise NotVerifiable(f"{path} {what}; verify takes a dataset root, a manifest or an LMDB folder")
    if (path / "manifest.json").is_file():
        return "manifest", path / "manifest.json"
    if any((path / "index").glob("*.parquet")):
        return "root", path
    if (path / "data.mdb").is_file():
        return "lmdb", path
    if not find_shards(path):
        raise NotVerifiable(
            f"{path} is not a dataset root (no index/*.parquet), not a manifest (no manifest.json) and holds "
            "no LMDB (no data.mdb under it, hidden folders skipped)"
        )
    return "tree", path


def verify(opts: VerifyOptions) -> VerifyResult:
    """Check PATH (see the module docstring); the result holds every problem and the counts."""
    started = time.perf_counter()
    kind, where = classify(opts.path)
    problems = Problems(opts.max_listed)
    explicit = (opts.charset, opts.max_len or DEFAULT_MAX_LEN) if opts.charset else None
    if kind == "manifest":
        result = _verify_manifest(where, opts, problems, explicit)
    elif kind == "root":
        result = _verify_root(where, opts, problems, explicit)
    else:
        shards = [where] if kind == "lmdb" else find_shards(where)
        base = where.parent if kind == "lmdb" else where
        result = VerifyResult(opts.path, kind, base, problems)
        tasks = [ShardTask(str(s), s.relative_to(base).as_posix(), explicit, None, opts.max_listed)
                 for s in shards]  # fmt: skip
        _run_shards(tasks, opts, result)
        if explicit is None:
            result.notes.append("labels not checked against a charset policy (pass --charset 36|94|unicode)")
    result.elapsed_s = round(time.perf_counter() - started, 3)
    report = opts.report if opts.report is not None else (
        where / "reports" / REPORT_NAME if kind == "root" else None)  # fmt: skip
    if report is not None:
        result.report_path = _write_report(report, result)
    return result


def _run_shards(tasks: list[ShardTask], opts: VerifyOptions, result: VerifyResult) -> None:
    """Check `tasks` on `opts.workers` processes; results are merged in task order, so the report does
    not depend on the number of workers."""
    bar = tqdm(total=len(tasks), desc="verify shards", unit="shard", disable=not opts.progress)
    samples = 0
    for shard in _checked_in_order(tasks, opts.workers):
        result.shards.append(shard)
        result.problems.merge(shard.problems)
        samples += shard.images
        result.checked["shards"] += 1
        result.checked["samples"] += shard.images
        result.checked["images_decoded"] += shard.decoded
        if shard.policy is not None:
            result.checked["labels_policy_checked"] += shard.labels
        bar.update(1)
        bar.set_postfix(samples=samples, problems=result.problems.total, refresh=False)
    bar.close()


def _checked_in_order(tasks: list[ShardTask], workers: int) -> Iterator[ShardResult]:
    """check_shard over `tasks`, results in task order. With workers > 1, on LocalExecutor rather than a
    multiprocessing.Pool: a worker killed by a corrupt LMDB page (SIGSEGV/SIGBUS) breaks the pool instead
    of hanging it, and every shard that was on the broken pool is checked again alone."""
    if workers <= 1:
        yield from map(check_shard, tasks)
        return
    done: dict[int, ShardResult] = {}
    following = 0
    for position, outcome in LocalExecutor(workers, retries=0).run(check_shard, tasks):
        done[position] = outcome if isinstance(outcome, ShardResult) else _check_alone(tasks[position])
        while following in done:
            yield done.pop(following)
            following += 1


def _check_alone(task: ShardTask) -> ShardResult:
    """check_shard in a process of its own: if that dies too, the shard itself kills its reader."""
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(1, mp_context=mp.get_context(method)) as pool:
        try:
            return pool.submit(check_shard, task).result()
        except BrokenProcessPool:
            problems = Problems(task.max_listed)
            problems.add("shard-unreadable", task.name, "reading it killed the process (corrupt LMDB pages)")
            return ShardResult(task.name, False, None, 0, 0, 0, task.policy, problems)


# -- a dataset root ----------------------------------------------------------------------------------

_INDEX_COLUMNS = ["shard", "idx", "label", "sha1"]


def _read_indexes(root: Path, files: Iterable[Path], problems: Problems) -> pa.Table | None:
    """The rows of every readable index (columns _INDEX_COLUMNS + `source`: the index file's stem)."""
    tables = []
    for path in files:
        rel = _rel(path, root)
        try:
            table = pq.read_table(path, columns=_INDEX_COLUMNS)
            types = {"shard": pa.string(), "idx": pa.int64(), "label": pa.string(), "sha1": pa.string()}
            columns = {name: table[name].cast(t) for name, t in types.items()}
            table = pa.table({**columns, "source": pa.array([path.stem] * table.num_rows, pa.string())})
        except (pa.ArrowException, KeyError, OSError) as err:
            problems.add("index-unreadable", rel, f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
            continue
        tables.append(table)
    return pa.concat_tables(tables) if tables else None


def _shard_tasks(root: Path, rows: pa.Table | None, policies: dict[str, tuple[str, int] | None],
                 explicit: tuple[str, int] | None, opts: VerifyOptions, problems: Problems,
                 only: set[str] | None = None) -> list[ShardTask]:  # fmt: skip
    """One task per shard the index rows name (sorted by path), with its rows; shards that are not on
    disk are reported instead."""
    if rows is None or rows.num_rows == 0:
        return []
    rows = rows.sort_by([("shard", "ascending"), ("idx", "ascending")])
    codes = pc.dictionary_encode(rows["shard"]).combine_chunks()
    indices = codes.indices.to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(indices)) + 1, [len(indices)]])
    tasks = []
    for start, stop in zip(starts[:-1].tolist(), starts[1:].tolist()):
        part = rows.slice(start, stop - start)
        shard = part["shard"][0].as_py()
        if only is not None and shard not in only:
            continue
        source = part["source"][0].as_py()
        if not (root / shard / "data.mdb").is_file():
            problems.add(
                "index-shard-missing",
                shard,
                f"index/{source}.parquet names this shard ({part.num_rows} rows); no data.mdb there",
            )
            continue
        policy = explicit if explicit is not None else policies.get(source)
        lists = (part["idx"].to_pylist(), part["label"].to_pylist(), part["sha1"].to_pylist())
        tasks.append(ShardTask(str(root / shard), shard, policy, lists, opts.max_listed))
    return tasks


def _read_reports(root: Path, problems: Problems) -> dict[str, dict[str, Any]]:
    """source -> report dict of every readable reports/<source>.json (verify's own report left out)."""
    reports = {}
    for path in sorted((root / "reports").glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.add("report-unreadable", _rel(path, root), f"{type(err).__name__}: {err}")
            continue
        if isinstance(data, dict) and data.get("format") != REPORT_FORMAT:
            reports[path.stem] = data
    return reports


def _policies(root: Path, reports: dict[str, dict[str, Any]], sources: Iterable[str],
              problems: Problems) -> dict[str, tuple[str, int] | None]:  # fmt: skip
    """The label policy each source was built with, from its report's options (None: not recorded)."""
    out: dict[str, tuple[str, int] | None] = {}
    for source in sources:
        options = (reports.get(source) or {}).get("options") or {}
        if "charset" not in options:
            out[source] = None
            continue
        policy = (options["charset"], options.get("max_len", DEFAULT_MAX_LEN))
        try:
            LabelPolicy(*policy)
        except (TypeError, ValueError) as err:
            problems.add("report-unreadable", f"reports/{source}.json", f"no valid label policy: {err}")
            policy = None
        out[source] = policy
    return out


def _verify_root(root: Path, opts: VerifyOptions, problems: Problems,
                 explicit: tuple[str, int] | None) -> VerifyResult:  # fmt: skip
    result = VerifyResult(opts.path, "root", root, problems)
    index_files = sorted((root / "index").glob("*.parquet"))
    rows = _read_indexes(root, index_files, problems)
    result.checked["index_files"] = len(index_files)
    result.checked["index_rows"] = rows.num_rows if rows is not None else 0
    reports = _read_reports(root, problems)
    result.checked["reports"] = len(reports)
    policies = _policies(root, reports, [p.stem for p in index_files], problems)
    tasks = _shard_tasks(root, rows, policies, explicit, opts, problems)
    _run_shards(tasks, opts, result)

    named = set(rows["shard"].unique().to_pylist()) if rows is not None else set()
    for folder in ("train", "test"):
        for shard in find_shards(root / folder) if (root / folder).is_dir() else []:
            rel = shard.relative_to(root).as_posix()
            if rel not in named:
                problems.add("orphan-shard", rel, "no index names this shard (left over from an old build?)")

    if explicit is None:
        unchecked = sorted(s for s, p in policies.items() if p is None)
        if unchecked:
            result.notes.append(f"labels not checked against a charset policy for {', '.join(unchecked)}: "
                                "no charset in their report (pass --charset to check them)")  # fmt: skip
    if opts.skip_archives:
        result.notes.append("downloads not re-hashed (--skip-archives)")
    else:
        _check_archives(root, reports, opts, result)
    return result


def _check_archives(root: Path, reports: dict[str, dict[str, Any]], opts: VerifyOptions,
                    result: VerifyResult) -> None:  # fmt: skip
    """Re-hash every download a report records a sha256 for and that is still in downloads/<source>/."""
    todo: list[tuple[str, Path, str]] = []
    gone: list[str] = []
    for source, report in sorted(reports.items()):
        for item in report.get("inputs") or []:
            if not isinstance(item, dict) or not item.get("sha256") or not item.get("name"):
                continue
            path = root / "downloads" / source / str(item["name"])
            if path.is_file():
                todo.append((source, path, str(item["sha256"])))
            else:
                gone.append(f"{source}/{item['name']}")
    if gone:
        result.notes.append(f"{len(gone)} download(s) named in reports are no longer in downloads/, not "
                            f"re-hashed (e.g. {gone[0]})")  # fmt: skip
    total = sum(p.stat().st_size for _, p, _ in todo)
    bar = tqdm(total=total, desc="verify downloads", unit="B", unit_scale=True, unit_divisor=1024,
               disable=not opts.progress)  # fmt: skip
    for source, path, recorded in todo:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
                digest.update(chunk)
                bar.update(len(chunk))
        result.checked["archives"] += 1
        result.checked["archive_bytes"] += path.stat().st_size
        if digest.hexdigest() != recorded:
            detail = f"sha256 {digest.hexdigest()} != {recorded} recorded in reports/{source}.json"
            result.problems.add("archive-sha256-mismatch", _rel(path, root), detail)
    bar.close()


# -- a manifest --------------------------------------------------------------------------------------


def _verify_manifest(json_path: Path, opts: VerifyOptions, problems: Problems,
                     explicit: tuple[str, int] | None) -> VerifyResult:  # fmt: skip
    manifest_dir = json_path.parent
    result = VerifyResult(opts.path, "manifest", manifest_dir, problems)
    try:
        spec = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        problems.add("manifest-unreadable", str(json_path), f"{type(err).__name__}: {err}")
        return result
    if not isinstance(spec, dict) or spec.get("format") != "rebusyn-manifest":
        raise NotVerifiable(f"{json_path} is not a rebusyn manifest (format "
                            f"{spec.get('format') if isinstance(spec, dict) else None!r})")  # fmt: skip
    try:
        manifest_file = manifest_dir / spec["manifest"]["file"]
        recorded_sha = spec["manifest"]["sha256"]
        recorded_indexes = {name: (info["path"], info["sha256"]) for name, info in spec["indexes"].items()}
        root = Path(opts.root) if opts.root is not None else Path(spec["root"])
    except (KeyError, TypeError, AttributeError) as err:
        problems.add("manifest-unreadable", str(json_path), f"a field is missing or malformed: {err!r}")
        return result
    if not manifest_file.is_file():
        problems.add("manifest-unreadable", str(manifest_file), "the manifest file is missing")
        return result
    result.checked["manifests"] = 1
    actual_sha = fingerprint(manifest_file)
    if actual_sha != recorded_sha:
        problems.add(
            "manifest-sha256-mismatch",
            str(manifest_file),
            f"sha256 {actual_sha} != {recorded_sha} recorded in manifest.json",
        )
    try:
        manifest = pq.read_table(manifest_file, columns=["shard", "idx", "label"])
    except (pa.ArrowException, KeyError, OSError) as err:
        problems.add("manifest-unreadable", str(manifest_file), f"{type(err).__name__}: {err}")
        return result
    result.checked["manifest_rows"] = manifest.num_rows
    if not root.is_dir():
        problems.add("manifest-root-missing", str(root), f"the dataset root named in {json_path} is not a "
                     "folder (pass --root if it moved)")  # fmt: skip
        return result
    result.base = root

    index_files = []
    for name, (rel, sha) in sorted(recorded_indexes.items()):
        path = root / rel
        if not path.is_file():
            problems.add("manifest-index-missing", rel, f"index of {name!r} used by the manifest is gone")
            continue
        index_files.append(path)
        if fingerprint(path) != sha:
            problems.add("manifest-index-changed", rel, f"sha256 differs from {sha} recorded in the manifest "
                         f"({name!r} was rebuilt; re-run `rebusyn mix`)")  # fmt: skip
    result.checked["index_files"] = len(index_files)
    rows = _read_indexes(root, index_files, problems)
    _check_manifest_rows(manifest, rows, problems)

    used = set(pc.unique(manifest["shard"]).to_pylist())
    policies = _policies(root, _read_reports(root, problems), [p.stem for p in index_files], problems)
    tasks = _shard_tasks(root, rows, policies, explicit, opts, problems, only=used)
    _run_shards(tasks, opts, result)
    _check_manifest_positions(manifest, {s.name: s.num_samples for s in result.shards}, problems)
    if explicit is None and any(p is None for p in policies.values()):
        result.notes.append("labels of some sources not checked against a charset policy (no charset in "
                            "their report; pass --charset)")  # fmt: skip
    return result


def _check_manifest_rows(manifest: pa.Table, rows: pa.Table | None, problems: Problems) -> None:
    """Every manifest row has an index row (shard, idx) with the same label (one join, in row order)."""
    left = pa.table({"row": pa.array(np.arange(manifest.num_rows)),
                     "shard": manifest["shard"].cast(pa.string()), "idx": manifest["idx"].cast(pa.int64()),
                     "label": manifest["label"].cast(pa.string())})  # fmt: skip
    if rows is None:
        rows = pa.table({"shard": pa.array([], pa.string()), "idx": pa.array([], pa.int64()),
                         "label": pa.array([], pa.string())})  # fmt: skip
    # a repeated (shard, idx) in the index would multiply manifest rows; index-idx-bad reports it
    agg = rows.group_by(["shard", "idx"], use_threads=False).aggregate([("label", "first")])
    right = pa.table({"shard": agg["shard"], "idx": agg["idx"], "index_label": agg["label_first"]})
    joined = left.join(right, keys=["shard", "idx"], join_type="left outer").sort_by("row")
    missing = pc.is_null(joined["index_label"])
    differs = pc.fill_null(pc.not_equal(joined["label"], joined["index_label"]), False)
    for mask, kind in ((missing, "manifest-row-missing"), (differs, "manifest-label-mismatch")):
        bad = joined.filter(mask)
        problems.add_unlisted(kind, max(0, bad.num_rows - problems.room(kind)))
        for r in bad.slice(0, problems.room(kind)).to_pylist():
            detail = ("no index row names this (shard, idx)" if kind == "manifest-row-missing"
                      else f"manifest label {r['label']!r} != index label {r['index_label']!r}")  # fmt: skip
            problems.add(kind, r["shard"], f"manifest row {r['row']}: {detail}", idx=r["idx"])


def _check_manifest_positions(manifest: pa.Table, sizes: dict[str, int | None], problems: Problems) -> None:
    """Every manifest row's idx lies in 1..num-samples of a shard that opened."""
    codes = pc.dictionary_encode(manifest["shard"].cast(pa.string())).combine_chunks()
    names = codes.dictionary.to_pylist()
    limit = np.array([sizes.get(s) if sizes.get(s) is not None else -1 for s in names], dtype=np.int64)
    idx = manifest["idx"].to_numpy()
    bad = np.flatnonzero((idx < 1) | (idx > limit[codes.indices.to_numpy(zero_copy_only=False)]))
    kind = "manifest-row-missing"
    problems.add_unlisted(kind, max(0, len(bad) - problems.room(kind)))
    for row in bad[: problems.room(kind)].tolist():
        shard = names[codes.indices[row].as_py()]
        n = sizes.get(shard)
        why = f"outside 1..{n} of its shard" if n is not None else "in a shard that is missing or unreadable"
        problems.add(kind, shard, f"manifest row {row}: idx {int(idx[row])} is {why}", idx=int(idx[row]))


# ---------------------------------------------------------------------------------------------------
# Output


def _rel(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _write_report(path: Path, result: VerifyResult) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def format_summary(result: VerifyResult, examples: int = 3) -> str:
    """What the CLI prints: what was checked, problems by kind with a few examples, where the report is."""
    c = result.checked
    parts = [f"{c['shards']:,} shard(s)", f"{c['samples']:,} samples ({c['images_decoded']:,} decoded)"]
    if c["labels_policy_checked"]:
        parts.append(f"{c['labels_policy_checked']:,} labels against their charset policy")
    if c["index_files"]:
        parts.append(f"{c['index_files']} index file(s)")
    if c["manifest_rows"]:
        parts.append(f"{c['manifest_rows']:,} manifest rows")
    if c["reports"]:
        parts.append(f"{c['reports']} report(s)")
    if c["archives"]:
        parts.append(f"{c['archives']} download(s) re-hashed ({c['archive_bytes'] / 2**20:,.1f} MiB)")
    lines = [f"verify {result.kind} {result.path} ({result.elapsed_s:.1f} s)"]
    lines.append(f"  checked: {', '.join(parts)}")
    lines += [f"  note: {note}" for note in result.notes]
    if result.ok:
        lines.append("  problems: none")
    else:
        lines.append(f"  problems: {result.problems.total:,}")
        for kind, count in sorted(result.problems.counts.items()):
            lines.append(f"    {kind:<26} {count:>8,}  ({PROBLEM_KINDS[kind]})")
            for p in [p for p in result.problems.listed if p["kind"] == kind][:examples]:
                at = f" {p['key']}" if "key" in p else f" idx {p['idx']}" if "idx" in p else ""
                where = p["path"] + at
                lines.append(f"      {where}: {p['detail']}")
    if result.report_path is not None:
        lines.append(f"  report: {result.report_path}")
    else:
        lines.append("  report: not written (pass --report FILE for the full list as JSON)")
    lines.append("OK" if result.ok else f"FAILED: {result.problems.total:,} problem(s)")
    return "\n".join(lines)
