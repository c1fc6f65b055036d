"""`rebusyn build`: recipe -> fetch -> extract -> parse -> crop + normalize -> shards + index + report."""

from __future__ import annotations

import functools
import hashlib
import importlib
import itertools
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from rebusyn import __version__
from rebusyn.crop import (
    CROP_MODES,
    DEFAULT_MAX_IMAGE_PIXELS,
    CropError,
    crop_word,
    decode_image,
    encode_jpeg,
)
from rebusyn.executors import (
    DEFAULT_RETRIES,
    EXECUTORS,
    UnitFailure,
    make_executor,
    maybe_kill_at,
    ordered_map,
)
from rebusyn.fetch import FetchOptions, FetchResult, ManualDownloadRequired, fetch_archives, safe_extract
from rebusyn.recipes import Recipe, RecipeError, available_sources, load_recipe, output_digest
from rebusyn.report import SourceReport, report_path
from rebusyn.sample import CUSTOM_GROUP, GROUPS, REAL_GROUPS, TEST_GROUP, LabelPolicy, Sample
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop, short_repr, utf8_safe
from rebusyn.storage import Storage, disk_full, is_remote
from rebusyn.store.dataset import SourceWriter
from rebusyn.store.index import index_path
from rebusyn.store.shards import DEFAULT_MAX_SHARD_BYTES, find_shards

log = logging.getLogger("rebusyn.build")


@dataclass(frozen=True)
class BuildOptions:
    root: Path | str  # a local folder, or an fsspec URL (s3://bucket/data) built through work units
    groups: tuple[str, ...] = REAL_GROUPS
    sources: tuple[str, ...] = ()
    from_dir: Path | None = None
    mirror: str | None = None
    skip_checksum: bool = False
    charset: str = "36"
    max_len: int = 25
    workers: int = 1
    input: str | None = None  # recipe input to build from (e.g. icdar2015: detection | word_crops)
    crop: str = "warp"  # warp (quads warped, curved polygons unrolled) | bbox (PARSeq's axis-aligned crop)
    test: bool = False  # build the test benchmarks (group T) instead of --groups
    custom: str | None = None  # build a user's own data (from_dir) as train/real/custom/<name>
    dedup: str | None = (
        None  # after building: `rebusyn dedup --policy <this>` over the root (report | drop-from-train)
    )
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES
    progress: bool = True
    force: bool = False  # rebuild sources whose complete build is up to date, and ignore checkpoints
    executor: str = "local"  # local: sources one after another here; ray: one Ray task per source
    ray_address: str | None = None
    retries: int = DEFAULT_RETRIES  # attempts per source task after the first (executor ray, remote roots)
    work_dir: Path | None = None  # with a remote --root: local folder for downloads and staging


@dataclass
class SourceSummary:
    source: str
    group: str
    kept: int
    dropped: dict[str, int]
    elapsed_s: float
    output: Path | str  # str: a URL, for a remote root
    report: Path | str
    shards: int
    inputs: list[dict[str, Any]] = field(default_factory=list)
    images: int = 0
    instances: int = 0
    image_bytes: int = 0
    up_to_date: bool = False  # an earlier complete build of the same identity was kept, nothing was redone

    @property
    def samples_per_s(self) -> float:
        return self.kept / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class BuildResult:
    sources: list[SourceSummary]
    groups_without_sources: list[str]
    dedup: Any = None  # rebusyn.dedup.DedupSummary when BuildOptions.dedup was set


def select_recipes(groups: Iterable[str], sources: Iterable[str]) -> tuple[list[Recipe], list[str]]:
    """Recipes named by --sources, else every recipe of --groups; also the groups that have none."""
    groups = [g.strip().upper() for g in groups if g.strip()]
    for g in groups:
        if g not in GROUPS:
            raise RecipeError(
                f"unknown group {g!r}; groups are {', '.join(REAL_GROUPS)} (real), S (synthetic) and "
                f"T (test benchmarks, also --test)"
            )
    names = [s.strip() for s in sources if s.strip()]
    if names:
        return [load_recipe(n) for n in names], []
    recipes = [load_recipe(n) for n in available_sources()]
    chosen = [r for r in recipes if r.group in groups]
    empty = [g for g in groups if not any(r.group == g for r in recipes)]
    return chosen, empty


def build(opts: BuildOptions) -> BuildResult:
    policy = LabelPolicy(opts.charset, opts.max_len)  # validates charset/max_len before any work
    if opts.crop not in CROP_MODES:
        raise ValueError(f"unknown crop mode {opts.crop!r}; choose one of {', '.join(CROP_MODES)}")
    if is_remote(opts.root) and (opts.custom is not None or opts.dedup):
        raise ValueError(f"--root {opts.root}: --custom and --dedup need a local root (build, then copy)")
    if opts.executor not in EXECUTORS:
        raise ValueError(f"unknown executor {opts.executor!r}; choose one of {', '.join(EXECUTORS)}")
    if opts.custom is not None:
        result = BuildResult([build_custom(opts.custom, opts, policy)], [])
    else:
        recipes, empty = select_recipes((TEST_GROUP,) if opts.test else opts.groups, opts.sources)
        for group in empty:
            log.warning("group %s: no source recipes yet, nothing to build", group)
        if opts.executor == "local" and not is_remote(opts.root):
            result = BuildResult(_build_each(recipes, opts, policy), empty)
        else:
            result = BuildResult(_build_units([r.name for r in recipes], opts, policy), empty)
    if opts.dedup:
        from rebusyn.dedup import DedupOptions, dedup

        result.dedup = dedup(
            DedupOptions(
                root=Path(opts.root), policy=opts.dedup, workers=opts.workers, progress=opts.progress
            )
        )
    return result


class SourcesFailed(RuntimeError):
    """Some sources failed (the message lists them); `built` holds the summaries of the others, which were
    built all the same, and `errors` each failed source's exception."""

    def __init__(self, message: str, built: list[SourceSummary] | None = None,
                 errors: dict[str, BaseException] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.built = list(built or [])
        self.errors = dict(errors or {})


def _build_each(recipes: list[Recipe], opts: BuildOptions, policy: LabelPolicy) -> list[SourceSummary]:
    """Sources one after another in this process. A source that fails does not stop the others: they are
    built and the failures raised together at the end (one source alone: its own error, as it is). A full
    disk stops at once: every later source would fail the same way."""
    if len(recipes) == 1:
        return [build_source(recipes[0], opts, policy)]
    built: list[SourceSummary] = []
    errors: dict[str, BaseException] = {}
    for recipe in recipes:
        try:
            built.append(build_source(recipe, opts, policy))
        except Exception as exc:  # noqa: BLE001 - reported below, with the sources that did build
            if disk_full(exc):
                raise
            log.error("%s: %s", recipe.name, " ".join(str(exc).split()) or type(exc).__name__)
            errors[recipe.name] = exc
    if errors:
        lines = "; ".join(f"{name}: {type(e).__name__}" for name, e in errors.items())
        names = ", ".join(s.source for s in built) or "none"
        raise SourcesFailed(f"{len(errors)} source(s) failed ({lines}). Built: {names}. Fix what the errors "
                            "above say and rerun the same command: built sources are up to date and "
                            "skipped.", built, errors)  # fmt: skip
    return built


@dataclass(frozen=True)
class _Published:
    """What a source task hands back for a remote root: its summary, and the index and report the driver
    writes once the shards are published."""

    summary: SourceSummary
    index: bytes
    report: bytes


def _build_units(names: list[str], opts: BuildOptions, policy: LabelPolicy) -> list[SourceSummary]:
    """One work unit per source (`--executor ray`, or a remote root): each builds its source exactly as a
    local build does, so the shards and index are byte-identical; results come back in recipe order."""
    storage = Storage(opts.root)
    executor = make_executor(opts.executor, workers=1, retries=opts.retries, ray_address=opts.ray_address,
                             cpus_per_unit=opts.workers)  # fmt: skip
    unit = functools.partial(_build_unit, opts, policy)
    done: dict[int, SourceSummary] = {}
    failed: list[str] = []
    try:
        for position, outcome in executor.run(unit, names):
            if isinstance(outcome, UnitFailure):
                failed.append(f"{names[position]}: {outcome.error} after {outcome.attempts} attempt(s)")
                continue
            if isinstance(outcome, _Published):  # remote root: the shards are up, now index and report
                source = outcome.summary.source
                storage.write_bytes(f"index/{source}.parquet", outcome.index)
                storage.write_bytes(f"reports/{source}.json", outcome.report)
                outcome = outcome.summary
            done[position] = outcome
    finally:
        executor.close()
    if failed:
        built = ", ".join(names[p] for p in sorted(done)) or "none"
        raise SourcesFailed(f"{len(failed)} source(s) failed: {'; '.join(failed)}. Built: {built}. "
                            "Rerun the same command to build the failed ones.",
                            [done[p] for p in sorted(done)])  # fmt: skip
    return [done[p] for p in sorted(done)]


def _build_unit(opts: BuildOptions, policy: LabelPolicy, name: str) -> SourceSummary | _Published:
    """Build one source in a worker: straight into a local (or shared) root, or into a local work folder
    whose shards are then published to the remote root."""
    recipe = load_recipe(name)
    if not is_remote(opts.root):
        return build_source(recipe, replace(opts, executor="local"), policy)
    storage = Storage(opts.root)
    work = Path(opts.work_dir) if opts.work_dir else Path(tempfile.gettempdir()) / "rebusyn-work"
    # downloads and extractions stay in the work folder, so a rerun on this machine does not fetch again
    summary = build_source(recipe, replace(opts, root=work, executor="local"), policy)
    rel = summary.output.relative_to(work).as_posix()
    storage.remove(rel)  # an object store has no rename: the old build of this source goes first
    shards = find_shards(summary.output) if summary.group != TEST_GROUP else [summary.output]
    for shard in shards:
        target = rel if shard == summary.output else f"{rel}/{shard.relative_to(summary.output).as_posix()}"
        storage.publish_dir(shard, target)
    index = index_path(work, summary.source).read_bytes()
    report = summary.report.read_bytes()
    shutil.rmtree(summary.output, ignore_errors=True)
    report_url = storage.url(f"reports/{summary.source}.json")
    published = replace(summary, output=storage.url(rel), report=report_url)
    return _Published(published, index, report)


CUSTOM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def build_custom(name: str, opts: BuildOptions, policy: LabelPolicy) -> SourceSummary:
    """A user's own data (`--custom NAME --from DIR|FILE`): a label list, a folder of crops with label
    files, or an STR LMDB, read by `rebusyn.sources.custom` and written to `train/real/custom/<name>/`."""
    if not CUSTOM_NAME.match(name):
        raise ValueError(f"--custom name must be lower-case letters, digits, '-' or '_', got {name!r}")
    if opts.from_dir is None or not Path(opts.from_dir).exists():
        raise FileNotFoundError(
            f"--custom {name} needs --from DIR|FILE pointing at existing data, got {opts.from_dir}"
        )
    source = Path(opts.from_dir).resolve()
    report = SourceReport(name, CUSTOM_GROUP)
    report.options = {
        **policy.describe(),
        "input": "custom",
        "path": str(source),
        "workers": opts.workers,
        "crop": opts.crop,
    }
    report.inputs = [
        {"name": source.name, "role": "custom", "origin": "from", "path": str(source), "checksum_ok": None}
    ]
    module = importlib.import_module("rebusyn.sources.custom")
    items = module.parse(ParseContext("custom", "train", {"input": source}, {}))
    return _write_source(name, CUSTOM_GROUP, items, report, opts, policy, {"crop": opts.crop})


def build_source(recipe: Recipe, opts: BuildOptions, policy: LabelPolicy) -> SourceSummary:
    root = Path(opts.root)
    report = SourceReport(recipe.name, recipe.group)
    chosen = recipe.input(opts.input)
    report.options = {
        **policy.describe(),
        "input": chosen.name,
        "split": chosen.split,
        "recipe": str(recipe.path),
        "recipe_options": recipe.options,
        "workers": opts.workers,
        "crop": opts.crop,
    }

    fetch_opts = FetchOptions(
        mirror=opts.mirror,
        from_dir=opts.from_dir,
        skip_checksum=opts.skip_checksum,
        login_required=recipe.login_required,
        progress=opts.progress,
    )
    try:
        results = fetch_archives(
            [a.ref() for a in chosen.archives], root / "downloads" / recipe.name, fetch_opts
        )
    except ManualDownloadRequired:
        log.warning(
            "%s must be downloaded by hand from %s (licence: %s)",
            recipe.name,
            recipe.download_page,
            recipe.licence,
        )
        raise
    report.inputs = [_input_record(a.name, a.role, r) for a, r in zip(chosen.archives, results)]
    done = _up_to_date(root, report, opts)
    if done is not None:
        return done
    files: dict[str, Path] = {}
    for archive, fetched in zip(chosen.archives, results):
        if is_archive(archive.name) and archive.extract is not False:
            target = root / "cache" / "extract" / recipe.name / _stem(archive.name)
            members = archive.extract if isinstance(archive.extract, tuple) else None
            safe_extract(fetched.path, target, members=members)
            files[archive.role] = target
        else:  # a plain file (JSON, TXT) or an archive its parser streams is read where it was downloaded
            files[archive.role] = fetched.path

    items = parse_source(recipe, ParseContext(chosen.name, chosen.split, files, recipe.options))
    return _write_source(
        recipe.name, recipe.group, items, report, opts, policy, {**recipe.options, "crop": opts.crop}
    )


def _write_source(
    name: str,
    group: str,
    items: Iterator[AnnotatedImage | WordCrop | Problem],
    report: SourceReport,
    opts: BuildOptions,
    policy: LabelPolicy,
    options: dict[str, Any],
) -> SourceSummary:
    """Work items -> samples (on `opts.workers` processes) -> shards, index and report of one source.

    Resumable: after every finished shard the writer records how many work items were consumed (and how
    many samples of the current one are already in a shard) with the report's counters. A rerun of the
    same build (same identity: options, inputs, recipe, rebusyn version) skips those items and continues
    in the next shard, so the shards and index come out byte-identical to an uninterrupted build."""
    root = Path(opts.root)
    # A user's own folder has no checksums to tell a changed input: it is always built from scratch.
    identity = _identity(report, opts) if group != CUSTOM_GROUP else None
    report.identity = identity
    test_dir = options.get("test_dir")
    resume = None
    if identity is not None and not opts.force:
        resume = SourceWriter.checkpoint(root, name, group, identity, test_dir)
    position = {"item": 0, "sample": 0}

    def state() -> dict[str, Any]:
        return {**position, "report": report.counters()}

    worker = functools.partial(_process_any, source=name, group=group, policy=policy, options=options)
    writer = SourceWriter(
        root, name, group, max_shard_bytes=opts.max_shard_bytes, directory_name=test_dir,
        identity=identity, state=state, resume=resume,
    )  # fmt: skip
    first = 0
    if writer.resumed is not None:
        position.update(item=writer.resumed.state["item"], sample=writer.resumed.state["sample"])
        report.restore(writer.resumed.state["report"])
        first = position["item"]
        report.resumed = {"from_item": first, "shards": writer.resumed.shards}
        log.info("%s: resuming an interrupted build at work item %d (%d shard(s) kept)", name, first,
                 writer.resumed.shards)  # fmt: skip
    skip_samples = position["sample"]
    with writer:
        bar = tqdm(desc=f"build {name}", unit="img", disable=not opts.progress, initial=first)
        results = ordered_map(worker, itertools.islice(items, first, None), opts.workers)
        for item, (images, instances, samples, drops) in enumerate(results, start=first):
            bar.update(1)
            position["item"] = item
            start = skip_samples if item == first else 0  # those are in a shard the killed run finished
            for k in range(start, len(samples)):
                position["sample"] = k  # a shard finished inside add() holds the samples before this one
                writer.add(samples[k])
                maybe_kill_at(f"build:{name}:shards:{writer.shards_done}")  # testing hook
            report.images += images
            report.instances += instances
            report.kept += len(samples)
            for problem in drops:
                report.drop(problem.reason, problem.where, problem.detail)
        bar.close()
        output = writer.close()
    report.output = {
        "directory": str(output.directory.relative_to(root)),
        "index": str(output.index.relative_to(root)),
        "shards": len(output.shards),
        "image_bytes": output.image_bytes,
    }
    report.finish("complete")
    path = report.write(root)
    return _summary(report, output.directory, path, len(output.shards), output.image_bytes)


def _summary(
    report: SourceReport, directory: Path, path: Path, shards: int, image_bytes: int
) -> SourceSummary:
    return SourceSummary(
        report.source, report.group, report.kept, dict(report.dropped), report.elapsed, directory, path,
        shards, report.inputs, report.images, report.instances, image_bytes,
    )  # fmt: skip


def _identity(report: SourceReport, opts: BuildOptions) -> str:
    """sha256 of what decides a source's output: options (minus how it runs), inputs' checksums, the recipe
    (its parsed fields that matter: rebusyn.recipes.output_digest), the shard size and rebusyn's version."""
    options = {k: v for k, v in report.options.items() if k != "workers"}
    recipe = options.get("recipe")
    recipe_sha = output_digest(recipe) if recipe else None
    inputs = [{k: i.get(k) for k in ("name", "role", "sha256", "bytes", "path")} for i in report.inputs]
    payload = {"options": options, "inputs": inputs, "recipe_sha256": recipe_sha,
               "max_shard_bytes": opts.max_shard_bytes, "rebusyn": __version__}  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def _up_to_date(root: Path, report: SourceReport, opts: BuildOptions) -> SourceSummary | None:
    """The summary of a complete earlier build of exactly this identity whose shards are all there, or None
    (then the source is built). `--force` always builds."""
    if opts.force:
        return None
    try:
        earlier = json.loads(report_path(root, report.source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    identity = _identity(report, opts)
    output = earlier.get("output") or {}
    if earlier.get("status") != "complete" or earlier.get("identity") != identity or "index" not in output:
        return None
    index = root / output["index"]
    try:
        shards = set(pq.read_table(index, columns=["shard"]).column("shard").to_pylist())
    except (OSError, ValueError, pa.ArrowException):
        return None
    if not all((root / s / "data.mdb").is_file() for s in shards):
        return None
    done = SourceReport(report.source, report.group)
    done.restore(earlier)
    done.inputs = report.inputs  # this run's fetch: the archives were just checked again
    done.elapsed = 0.0  # nothing was built in this run
    log.info("%s: up to date (same options, inputs and recipe as the complete build in %s); --force "
             "rebuilds it", report.source, root / output["directory"])  # fmt: skip
    summary = _summary(done, root / output["directory"], report_path(root, report.source), output["shards"],
                       output.get("image_bytes", 0))  # fmt: skip
    return replace(summary, up_to_date=True)


def _stem(name: str) -> str:
    for ext in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip", ".tar"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _input_record(name: str, role: str, result: FetchResult) -> dict[str, Any]:
    return {
        "name": name,
        "role": role,
        "origin": result.origin,
        "bytes": result.size,
        "sha256": result.sha256,
        "md5": result.md5,
        "checksum_ok": result.checksum_ok,
    }


def is_archive(name: str) -> bool:
    return _stem(name) != name


def parse_source(recipe: Recipe, ctx: ParseContext) -> Iterator[AnnotatedImage | WordCrop | Problem]:
    """Run the recipe's parser: the module `rebusyn.sources.<parser>`, function `parse(ctx)`."""
    try:
        module = importlib.import_module(f"rebusyn.sources.{recipe.parser}")
    except ModuleNotFoundError as exc:
        raise RecipeError(
            f"{recipe.path}: field 'parser' names {recipe.parser!r}, which has no module "
            f"rebusyn/sources/{recipe.parser}.py"
        ) from exc
    return module.parse(ctx)


# --- the work unit: runs in worker processes --------------------------------------------------------


def _process_any(
    item: AnnotatedImage | WordCrop | Problem, **kw: Any
) -> tuple[int, int, list[Sample], list[Problem]]:
    """(source images, annotated words, samples, drops) of one parser item. Problems found while parsing go
    through here too, so every count is taken in stream order, which is what a resumed build relies on."""
    if isinstance(item, Problem):
        return 0, 0, [], [item]
    instances = len(item.instances) if isinstance(item, AnnotatedImage) else 1
    samples, drops = process_item(item, **kw)
    return 1, instances, samples, drops


def process_item(
    item: AnnotatedImage | WordCrop, *, source: str, group: str, policy: LabelPolicy, options: dict[str, Any]
) -> tuple[list[Sample], list[Problem]]:
    """One source image -> its word samples and the reasons for every word that was dropped."""
    if isinstance(item, WordCrop):
        return process_word_crop(item, source=source, group=group, policy=policy, options=options)
    return process_scene_image(item, source=source, group=group, policy=policy, options=options)


def process_scene_image(
    item: AnnotatedImage, *, source: str, group: str, policy: LabelPolicy, options: dict[str, Any]
) -> tuple[list[Sample], list[Problem]]:
    """Every word of one scene: a sample, or exactly one Problem naming why not (never an exception for
    bad pixels, geometry or labels: those are counted in the report)."""
    drops = list(item.problems)
    samples: list[Sample] = []
    keep_ignored = bool(options.get("keep_ignored", False))
    name = utf8_safe(item.name)  # a file name that was not UTF-8 is escaped, not a crash at write time
    wanted = []
    for number, inst in enumerate(item.instances, start=1):
        where = f"{name}#{number}"
        if inst.ignore and not keep_ignored:
            drops.append(Problem(where, "dont_care"))
            continue
        label, reason = policy.normalize(inst.text)
        if label is None:
            drops.append(Problem(where, reason or "bad_label", short_repr(inst.text)))
            continue
        wanted.append((number, inst, label))
    if not wanted:
        return samples, drops
    image_where = name if item.data is not None else utf8_safe(str(item.image))
    try:
        data = item.read()
    except OSError as exc:
        return samples, drops + [Problem(image_where, "missing_image", str(exc)) for _ in wanted]
    try:
        # decoded once for all of its words; refused unread beyond the pixel limit
        image = decode_image(data, int(options.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS)))
    except CropError as exc:  # corrupt_image, image_too_large: one per word, so no word goes uncounted
        return samples, drops + [Problem(image_where, exc.reason, str(exc)) for _ in wanted]
    for number, inst, label in wanted:
        where = f"{name}#{number}"
        try:
            crop = crop_word(
                image,
                inst.points,
                inst.text.strip(),
                mode=str(options.get("crop", "warp")),
                vertical_ratio=float(options.get("vertical_ratio", 1.5)),
                min_side=int(options.get("min_side", 2)),
            )
            data = encode_jpeg(crop.pixels)
        except CropError as exc:
            drops.append(Problem(where, exc.reason, str(exc)))
            continue
        except cv2.error as exc:  # OpenCV refusing a pathological region: counted, not fatal
            drops.append(Problem(where, "crop_failed", str(exc).strip().splitlines()[-1][:200]))
            continue
        h, w = crop.pixels.shape[:2]
        extra: dict[str, Any] = {
            "points": [list(p) for p in inst.points],
            "image": name,
            "crop": crop.method,
        }
        if crop.rotated:
            extra["rotated"] = True
        samples.append(
            Sample(data, label, inst.text, source, group, f"{source}/{name}#{number}", w, h, extra)
        )
    return samples, drops


def process_word_crop(
    item: WordCrop, *, source: str, group: str, policy: LabelPolicy, options: dict[str, Any] | None = None
) -> tuple[list[Sample], list[Problem]]:
    """One ready-made crop: a sample storing its bytes as they are, or one Problem naming why not."""
    options = options or {}
    # the annotation line or record when the parser gives it (reports point at what to fix), else the crop
    where = utf8_safe(
        item.attrs.get("annotation") or (str(item.image) if item.image is not None else item.image_id)
    )
    label, reason = policy.normalize(item.text)
    if label is None:
        return [], [Problem(where, reason or "bad_label", short_repr(item.text))]
    try:
        data = item.read()
    except OSError as exc:
        return [], [Problem(where, "missing_image", str(exc))]
    try:
        # decoded as a scene would be, to check it: empty, HTML, truncated JPEG and over-the-limit files
        # are refused from their header, pixels we could not turn into BGR ourselves after decoding
        h, w = decode_image(data, int(options.get("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS))).shape[:2]
    except CropError as exc:
        return [], [Problem(where, exc.reason, str(exc))]
    # Stored byte for byte: crops a source ships are already the training images. A parser whose file names
    # repeat across folders (Union14M-L has several `1.jpg`) gives the path in attrs["image"], the key.
    extra = {"image": item.image.name if item.image is not None else item.image_id, **item.attrs}
    extra = {k: utf8_safe(v) if isinstance(v, str) else v for k, v in extra.items()}
    return [Sample(data, label, item.text, source, group, f"{source}/{extra['image']}", w, h, extra)], []


def format_summary(result: BuildResult, root: Path) -> str:
    """A table per source (archives verified, images, instances, kept, dropped, shards, size, speed),
    then the drop reasons and where each source's output and report went."""
    header = (
        "source",
        "group",
        "archives",
        "images",
        "instances",
        "kept",
        "dropped",
        "shards",
        "MiB",
        "samples/s",
    )
    rows = []
    for s in result.sources:
        verified = sum(1 for i in s.inputs if i.get("checksum_ok"))
        rows.append(
            (
                s.source,
                s.group,
                f"{verified}/{len(s.inputs)} ok",
                f"{s.images:,}",
                f"{s.instances:,}",
                f"{s.kept:,}",
                f"{sum(s.dropped.values()):,}",
                str(s.shards),
                f"{s.image_bytes / 2**20:.1f}",
                "up to date" if s.up_to_date else f"{s.samples_per_s:,.0f}",
            )
        )
    lines = []
    if rows:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines.append(
            "  ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
        )
        for r in rows:
            lines.append(
                "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            )
    for s in result.sources:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(s.dropped.items())) or "none"
        lines.append(f"{s.source}: dropped {dropped}; {s.shards} shard(s) in {s.output}; report {s.report}")
    if result.groups_without_sources:
        lines.append(f"groups with no source recipes yet: {', '.join(result.groups_without_sources)}")
    if result.dedup is not None:
        from rebusyn.dedup import format_summary as dedup_summary

        lines.append(dedup_summary(result.dedup))
    built = [s for s in result.sources if not s.up_to_date]
    kept = [s for s in result.sources if s.up_to_date]
    line = f"built {len(built)} source(s), {sum(s.kept for s in built):,} samples in " \
           f"{sum(s.elapsed_s for s in built):.1f} s under {root}"  # fmt: skip
    if kept:
        line += (f"; {len(kept)} up to date ({sum(s.kept for s in kept):,} samples: same options, inputs and "
                 "recipe as their complete build; --force rebuilds)")  # fmt: skip
    lines.append(line)
    return "\n".join(lines)
