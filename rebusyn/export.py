"""Export a manifest or a dataset root as a HuggingFace Hub dataset folder, straight from LMDB.

The folder is what `push_to_hub` would leave in a repo, ready for `hf upload <user>/<repo> out_dir
--repo-type dataset` (`huggingface-cli upload` before huggingface_hub 1.0) or `HfApi().upload_folder`:
`data/train-00000-of-0000N.parquet` plus `README.md`, a dataset card whose YAML header carries `configs` (so
`datasets.load_dataset(out_dir)` and the Hub find the files), `dataset_info` (features, row count, sizes)
and the card metadata, and whose body lists every source with its licence and citation.

Parquet columns are image (struct<bytes: binary, path: string>), label, label_raw, source, group,
synthetic, with the schema metadata key `huggingface` that `datasets` itself writes
(`Features.arrow_schema`), so plain `datasets.load_dataset("parquet", data_dir=out_dir / "data")` restores
the `Image` feature too. Written with pyarrow directly, one bounded row group at a time: memory stays
around one row group and there is no intermediate HF cache copy. Image bytes are written as stored (never
re-encoded), uncompressed and PLAIN-encoded like `datasets` does for images; text columns are zstd with
dictionaries. The whole export is built in a temporary directory next to `out_dir` and renamed into place
at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rebusyn import __version__
from rebusyn.loaders.hf import ROW_COLUMNS, LmdbImages, RowPlan, check_shards, features, resolve
from rebusyn.recipes import Recipe, available_sources, load_recipe
from rebusyn.sample import CUSTOM_GROUP, SYNTH_GROUP

DEFAULT_ROW_GROUP_BYTES = 100 * 2**20  # datasets' MAX_ROW_GROUP_SIZE; the Hub viewer accepts up to 300 MB
DEFAULT_FILE_BYTES = 500 * 2**20  # datasets' MAX_SHARD_SIZE, used when rows_per_file is not given
_MAX_ROW_GROUP_BYTES = 2**30  # binary offsets are int32: a row group must stay well below 2 GiB
_TEXT_COLUMNS = ["label", "label_raw", "source", "group", "synthetic"]
_IMAGE_LEAVES = ["image.bytes", "image.path"]
DATA_DIR = "data"  # push_to_hub's layout: data/<split>-NNNNN-of-MMMMM.parquet next to README.md
CARD_FILE = "README.md"


@dataclass
class ExportSummary:
    out_dir: Path
    files: list[Path]  # out_dir/data/train-*.parquet
    rows: int
    row_groups: int
    image_bytes: int
    elapsed_s: float
    card: Path  # out_dir/README.md
    licence: str  # the card's `license` id: one Hub licence id, or "other" (licences differ per source)
    source: dict[str, Any] = field(default_factory=dict)


def format_summary(summary: ExportSummary) -> str:
    mb = summary.image_bytes / 2**20
    data_dir = summary.out_dir / DATA_DIR
    return (
        f"exported {summary.rows:,} rows ({mb:,.1f} MiB of images) into {len(summary.files)} Parquet "
        f"file(s), {summary.row_groups} row group(s), in {data_dir} ({summary.elapsed_s:.2f} s)\n"
        f"dataset card: {summary.card} (license: {summary.licence}; per-source licences and citations "
        "inside; check them before making an upload public)\n"
        f"load it with: datasets.load_dataset({str(summary.out_dir)!r}, split=\"train\")\n"
        f"          or: datasets.load_dataset(\"parquet\", data_dir={str(data_dir)!r}, split=\"train\")\n"
        f"upload it with: hf upload <user>/<repo> {summary.out_dir} --repo-type dataset --private\n"
        "                (`huggingface-cli upload` before huggingface_hub 1.0; keep it private unless every "
        "source's licence allows redistribution)"
    )


def _schema(provenance: dict[str, Any]) -> pa.Schema:
    # features().arrow_schema carries b"huggingface" = {"info": {"features": ...}}, the exact metadata that
    # datasets' own Parquet writer puts there; we add our provenance under a separate key.
    schema = features().arrow_schema
    metadata = dict(schema.metadata or {})
    metadata[b"rebusyn"] = json.dumps(provenance, sort_keys=True).encode("utf-8")
    return schema.with_metadata(metadata)


def _writer_options() -> dict[str, Any]:
    compression: dict[str, str] = {leaf: "none" for leaf in _IMAGE_LEAVES}
    compression.update({name: "zstd" for name in _TEXT_COLUMNS})
    return {
        "compression": compression,
        # images: PLAIN, no dictionary (unique blobs); text: dictionary-encoded (few distinct values)
        "use_dictionary": ["label", "label_raw", "source", "group"],
        "column_encoding": {leaf: "PLAIN" for leaf in _IMAGE_LEAVES},
        "write_statistics": _TEXT_COLUMNS,  # min/max of image blobs is useless and bloats the footer
        "write_page_index": True,
        "version": "2.6",
    }


class _FileSink:
    """Buffers rows into row groups of about `row_group_bytes` and rolls files by rows or bytes."""

    def __init__(self, tmp_dir: Path, schema: pa.Schema, row_group_bytes: int,
                 rows_per_file: int | None, file_bytes: int) -> None:
        self.tmp_dir = tmp_dir
        self.schema = schema
        self.row_group_bytes = row_group_bytes
        self.rows_per_file = rows_per_file
        self.file_bytes = file_bytes
        self.files: list[Path] = []
        self.rows = 0
        self.row_groups = 0
        self.image_bytes = 0
        self.arrow_bytes = 0  # in-memory Arrow size: the card's dataset_size, as push_to_hub reports it
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._file_bytes = 0
        self._buffer: dict[str, list[Any]] = {name: [] for name in ["image", *_TEXT_COLUMNS]}
        self._buffer_bytes = 0

    def add(self, image: bytes, label: str, label_raw: str, source: str, group: str, synthetic: bool) -> None:
        if self._writer is None:
            path = self.tmp_dir / f"part-{len(self.files):05d}.parquet"
            self._writer = pq.ParquetWriter(path, self.schema, **_writer_options())
            self.files.append(path)
        buf = self._buffer
        buf["image"].append(image)
        buf["label"].append(label)
        buf["label_raw"].append(label_raw)
        buf["source"].append(source)
        buf["group"].append(group)
        buf["synthetic"].append(synthetic)
        size = len(image) + len(label) + len(label_raw) + len(source) + len(group) + 1
        self._buffer_bytes += size
        self._file_rows += 1
        self._file_bytes += size
        if self._buffer_bytes >= self.row_group_bytes:
            self._flush()
        file_full = (
            self._file_rows >= self.rows_per_file
            if self.rows_per_file is not None
            else self._file_bytes >= self.file_bytes
        )
        if file_full:
            self._close_file()

    def _flush(self) -> None:
        n = len(self._buffer["image"])
        if n == 0:
            return
        image = pa.StructArray.from_arrays(
            [pa.array(self._buffer["image"], type=pa.binary()), pa.nulls(n, type=pa.string())],
            fields=list(self.schema.field("image").type),
        )
        columns = [image] + [pa.array(self._buffer[name], type=self.schema.field(name).type)
                             for name in _TEXT_COLUMNS]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=n)  # exactly one row group per flush
        self.rows += n
        self.row_groups += 1
        self.arrow_bytes += table.nbytes
        self.image_bytes += sum(len(b) for b in self._buffer["image"])
        self._buffer = {name: [] for name in self._buffer}
        self._buffer_bytes = 0

    def _close_file(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._file_rows = 0
        self._file_bytes = 0

    def close(self) -> list[Path]:
        self._close_file()
        return self.files

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def export_parquet(
    path: str | Path,
    out_dir: Path,
    *,
    rows_per_file: int | None = None,
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    file_bytes: int = DEFAULT_FILE_BYTES,
    overwrite: bool = False,
    root: str | Path | None = None,
) -> ExportSummary:
    """Write the rows of a manifest (or of a dataset root) as a Hub dataset folder: `out_dir/README.md`
    (dataset card) and `out_dir/data/train-NNNNN-of-MMMMM.parquet`.

    Rows keep manifest order. Files roll over every `rows_per_file` rows, or at about `file_bytes` of payload
    when `rows_per_file` is None. Row groups hold about `row_group_bytes` of payload (at least one row).
    An existing non-empty `out_dir` is an error unless `overwrite=True`.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if rows_per_file is not None and rows_per_file < 1:
        raise ValueError(f"rows_per_file must be >= 1 or None, got {rows_per_file}")
    if not 1 <= row_group_bytes <= _MAX_ROW_GROUP_BYTES:
        raise ValueError(f"row_group_bytes must be in 1..{_MAX_ROW_GROUP_BYTES}, got {row_group_bytes}")
    if file_bytes < 1:
        raise ValueError(f"file_bytes must be >= 1, got {file_bytes}")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; pass overwrite=True to replace it")

    plan = resolve(path, root=root)
    check_shards(plan)
    sources = source_rows(plan)  # before writing: a broken recipe fails fast, not after the whole export
    provenance = {"kind": plan.kind, "fingerprint": plan.fingerprint, "rebusyn_version": __version__}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    (tmp_dir / DATA_DIR).mkdir(parents=True)
    sink = _FileSink(tmp_dir / DATA_DIR, _schema(provenance), row_group_bytes, rows_per_file, file_bytes)
    try:
        root_str = str(plan.root)
        with LmdbImages() as images:
            # Column batches keep the per-row Python work to the unavoidable LMDB read.
            for batch in plan.rows.select(ROW_COLUMNS).to_batches(max_chunksize=8192):
                cols = [batch.column(name).to_pylist() for name in ROW_COLUMNS]
                for shard, idx, label, label_raw, source, group, synthetic in zip(*cols):
                    image = images.read(f"{root_str}/{shard}", idx)
                    sink.add(image, label, label_raw, source, group, synthetic)
        parts = sink.close()
        n = len(parts)
        names: list[str] = []
        for i, part in enumerate(parts):
            target = part.with_name(f"train-{i:05d}-of-{n:05d}.parquet")
            os.replace(part, target)
            names.append(target.name)
        card = dataset_card(
            plan,
            sources,
            num_examples=sink.rows,
            dataset_size=sink.arrow_bytes,
            download_size=sum((tmp_dir / DATA_DIR / name).stat().st_size for name in names),
            files=names,
        )
        (tmp_dir / CARD_FILE).write_text(card.content, encoding="utf-8")
        _publish(tmp_dir, out_dir)
    except BaseException:
        sink.abort()
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return ExportSummary(
        out_dir=out_dir,
        files=[out_dir / DATA_DIR / name for name in names],
        rows=sink.rows,
        row_groups=sink.row_groups,
        image_bytes=sink.image_bytes,
        elapsed_s=round(time.perf_counter() - started, 3),
        card=out_dir / CARD_FILE,
        licence=card.data.license,
        source={"path": str(path), **provenance},
    )


def _publish(tmp_dir: Path, out_dir: Path) -> None:
    """Rename the finished export into place; an old export is moved aside first and deleted after."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
        try:
            os.replace(tmp_dir, out_dir)
        except BaseException:
            os.replace(old, out_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_dir, out_dir)


# --- dataset card --------------------------------------------------------------------------------------

# Licence strings that are exactly one Hub licence id (https://huggingface.co/docs/hub/repositories-licenses),
# after lower-casing and joining words with "-". A recipe licence with any qualifier ("CC BY 4.0
# (annotations); images ...") does not match: the card then says `other` rather than overclaim.
_HUB_LICENCES = {
    "cc-by-2.0", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0",
    "cc-by-nc-4.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-4.0", "cc0-1.0",
    "mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause", "odc-by", "odbl", "cdla-permissive-2.0",
}
_LICENCE_ALIASES = {"apache-license-2.0": "apache-2.0", "mit-license": "mit", "cc0": "cc0-1.0"}
SYNTH_LICENCE = "generated by rebusyn synth (see rebusyn's docs/synth.md; font licences apply)"
CUSTOM_LICENCE = "user data built with `rebusyn build --custom` (licence not recorded)"
UNKNOWN_LICENCE = "unknown (no rebusyn recipe for this source)"
_SIZE_BUCKETS = [  # the Hub's size_categories, upper bound exclusive
    (10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"), (10**10, "1B<n<10B"),
]  # fmt: skip
SCALING_LAW_BIBTEX = """@article{rang2024empirical,
  title={An Empirical Study of Scaling Law for OCR},
  author={Rang, Miao and Bi, Zhenni and Liu, Chuanjian and Wang, Yunhe and Han, Kai},
  journal={arXiv preprint arXiv:2401.00028},
  year={2024}
}"""
_COLUMNS = [
    ("image", "image", "the word crop: JPEG/PNG bytes as stored in the LMDB shard, never re-encoded"),
    ("label", "string", "normalized label (the charset chosen at `rebusyn build` time)"),
    ("label_raw", "string", "the transcription as the source gave it"),
    ("source", "string", "source name, e.g. `icdar2015` (see the table above)"),
    ("group", "string", "REBU-Syn group: R, E, B, U real; C your own data; S synthetic"),
    ("synthetic", "bool", "group == S"),
]


@dataclass(frozen=True)
class SourceRow:
    """One line of the card's source table: rows in this export plus what the source's recipe says."""

    source: str
    group: str
    rows: int
    licence: str
    login_required: bool | None  # None: not applicable / unknown
    citation: str


def hub_licence(text: str) -> str | None:
    """The Hub licence id a recipe's licence text names exactly ("CC BY 4.0" -> "cc-by-4.0"), else None."""
    key = "-".join(text.strip().lower().replace("_", " ").replace("-", " ").split())
    key = _LICENCE_ALIASES.get(key, key)
    return key if key in _HUB_LICENCES else None


def size_category(n: int) -> str:
    for bound, name in _SIZE_BUCKETS:
        if n < bound:
            return name
    return "other"


def source_rows(plan: RowPlan, recipes: dict[str, Recipe] | None = None) -> list[SourceRow]:
    """Per-source row counts of `plan` with licence, login and citation from the recipes; real sources
    first, then synthetic, each by name. `recipes` defaults to the recipes of the sources present."""
    counts = plan.rows.group_by(["source", "group"]).aggregate([("idx", "count")]).to_pylist()
    if recipes is None:
        known = set(available_sources())
        recipes = {c["source"]: load_recipe(c["source"]) for c in counts if c["source"] in known}
    out = []
    for c in sorted(counts, key=lambda c: (c["group"] == SYNTH_GROUP, c["source"], c["group"])):
        name, group = c["source"], c["group"]
        recipe = recipes.get(name)
        if recipe is not None:
            licence, login, citation = recipe.licence, recipe.login_required, recipe.citation
        elif group == SYNTH_GROUP:  # written by `rebusyn synth --engine ...`: no recipe, no download
            licence, login, citation = SYNTH_LICENCE, False, ""
        elif group == CUSTOM_GROUP:
            licence, login, citation = CUSTOM_LICENCE, None, ""
        else:
            licence, login, citation = UNKNOWN_LICENCE, None, ""
        out.append(SourceRow(name, group, c["idx_count"], licence, login, citation))
    return out


def _cell(value: object) -> str:
    """A Markdown table cell: one line, `|` escaped (it would end the cell)."""
    text = " ".join(str(value).split())
    return text.replace("|", "\\|") if text else "—"


def _card_data(sources: list[SourceRow], *, pretty_name: str, num_examples: int, dataset_size: int,
               download_size: int) -> Any:
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    ids = {hub_licence(s.licence) for s in sources}
    single = next(iter(ids)) if len(ids) == 1 else None
    # `language` is left out on purpose: which scripts the labels hold depends on the build's --charset
    # (36/94 keep ASCII only, `unicode` keeps RCTW/LSVT/ReCTS Chinese and MLT's ten languages), and even
    # ASCII words come from several Latin-script languages; a wrong `language: [en]` would mislead search.
    data = DatasetCardData(
        license=single or "other",
        # the Hub asks for a name with `other`; the terms themselves are in the card's source table
        license_name=None if single else "per-source",
        pretty_name=pretty_name,
        task_categories=["image-to-text"],
        tags=["ocr", "scene-text-recognition", "rebusyn"],
        size_categories=[size_category(num_examples)],
    )
    # The same calls push_to_hub makes, so the YAML is exactly what `datasets` writes and reads back.
    splits = SplitDict()
    splits.add(SplitInfo(name="train", num_bytes=dataset_size, num_examples=num_examples))
    info = DatasetInfo(features=features(), splits=splits, download_size=download_size,
                       dataset_size=dataset_size)
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    MetadataConfigs(
        {"default": {"data_files": [{"split": "train", "path": f"{DATA_DIR}/train-*"}]}}
    ).to_dataset_card_data(data)
    return data


def _intro(plan: RowPlan, meta: dict[str, Any], num_examples: int, real: int, synthetic: int) -> list[str]:
    what = (
        f"Word crops for scene-text recognition (STR) training, **{num_examples:,} rows: {real:,} real and "
        f"{synthetic:,} synthetic**, exported as Parquet with rebusyn {__version__}, a tool that rebuilds "
        'the REBU-Syn training data of "An Empirical Study of Scaling Law for OCR" (arXiv 2401.00028) '
        "from each source's official archives and writes LMDB shards, Parquet indexes and mixing manifests."
    )
    if plan.kind != "manifest":
        return [what + " This export holds every training row of a rebusyn dataset root (groups R, E, B, U, "
                "C and S; benchmarks excluded), source by source in index order."]
    spec = meta.get("spec", {})
    a, b = (spec.get("ratio") or [0, 0])[:2]
    epochs = spec.get("epochs", 1)
    policy = spec.get("size_policy", "?")
    if spec.get("total") is not None:
        policy += f", total {spec['total']:,}"
    lines = [
        what + f" It is the manifest `{meta.get('name', plan.home.name)}`: real : synthetic ratio "
        f"**{a:g}:{b:g}**, seed {spec.get('seed', '?')}, size policy {policy}"
        + (f", {epochs} epochs (each its own draw and order, concatenated)" if epochs != 1 else "")
        + ". Rows are in the manifest's shuffled training order."
    ]
    weights = spec.get("weights") or {}
    if weights:
        lines.append("Source weights: " + ", ".join(f"`{k}` {v:g}" for k, v in sorted(weights.items())) + ".")
    if meta.get("deduplicated_rows"):
        lines.append(f"{meta['deduplicated_rows']:,} near-duplicate rows were left out (`rebusyn dedup`).")
    lines += [f"Note: {note}" for note in meta.get("notes") or []]
    return lines


def _file_list(files: list[str]) -> str:
    paths = [f"`{DATA_DIR}/{name}`" for name in files]
    if len(paths) <= 2:
        return " and ".join(paths) or "no files"
    return f"{len(paths)} Parquet files, {paths[0]} to {paths[-1]}"


def dataset_card(plan: RowPlan, sources: list[SourceRow], *, num_examples: int, dataset_size: int,
                 download_size: int, files: list[str]) -> Any:
    """The README.md of an export as a `huggingface_hub.DatasetCard` (YAML metadata + Markdown body)."""
    from huggingface_hub import DatasetCard

    meta: dict[str, Any] = {}
    if plan.kind == "manifest":
        meta = json.loads((plan.home / "manifest.json").read_text(encoding="utf-8"))
    pretty_name = meta.get("name") or f"rebusyn {plan.home.name}"
    data = _card_data(sources, pretty_name=pretty_name, num_examples=num_examples,
                      dataset_size=dataset_size, download_size=download_size)
    synthetic = sum(s.rows for s in sources if s.group == SYNTH_GROUP)
    real = num_examples - synthetic
    login = {True: "yes", False: "no", None: "—"}
    body = [f"# {pretty_name}", ""]
    for paragraph in _intro(plan, meta, num_examples, real, synthetic):
        body += [paragraph, ""]
    body += [
        "## Sources and licences", "",
        *([f"License: **{data.license}**: every source in this export has this licence.", ""]
          if data.license != "other" else [
            "License: **other** (`per-source`): the sources' terms differ and every row stays under its own "
            "source's terms, listed below. Several sources are for non-commercial research only and some "
            "forbid redistribution: check each licence before using this data commercially or making a "
            "repository with it public.", ""]),
        "| source | group | rows | licence | login required | citation |",
        "|---|---|---:|---|---|---|",
        *(f"| {_cell(s.source)} | {_cell(s.group)} | {s.rows:,} | {_cell(s.licence)} "
          f"| {login[s.login_required]} | {_cell(s.citation)} |" for s in sources),
        f"| **total** | | **{num_examples:,}** | | | |", "",
        "Groups as in REBU-Syn: R real, E extra real, B benchmark training sets, U Union14M-L, S synthetic; "
        "C is data of your own. Licence, login and citation come from rebusyn's source recipes.",
        "",
        "## Files", "",
        f"Split `train` only: {_file_list(files)} ({download_size / 2**20:,.1f} MiB). Each file's schema "
        "metadata carries the `datasets` features, so plain Parquet loading restores the `Image` feature "
        "too.", "",
        "| column | type | value |", "|---|---|---|",
        *(f"| {name} | {dtype} | {_cell(text)} |" for name, dtype, text in _COLUMNS), "",
        "## Loading", "",
        "```python", "import datasets", "",
        "# after: hf upload <user>/<repo> <this folder> --repo-type dataset",
        'ds = datasets.load_dataset("<user>/<repo>", split="train")',
        "# or from a local copy of this folder",
        'ds = datasets.load_dataset("path/to/this/folder", split="train")',
        f'ds = datasets.load_dataset("parquet", data_dir="path/to/this/folder/{DATA_DIR}", split="train")',
        'ds[0]["image"]  # PIL image; ds.cast_column("image", datasets.Image(decode=False)) for the bytes',
        "```", "",
        "## Citation", "",
        "This data mix follows:", "", "```bibtex", SCALING_LAW_BIBTEX, "```", "",
        "Each source in the table above has its own citation: cite every source whose rows you use.", "",
        f"Provenance: rebusyn {__version__}, {plan.kind} fingerprint `{plan.fingerprint}`.",
    ]  # fmt: skip
    return DatasetCard(f"---\n{_yaml(data)}\n---\n\n" + "\n".join(body) + "\n")


def _yaml(data: Any) -> str:
    """`data.to_yaml()` with the descriptive keys first (DatasetCardData puts extra keys such as
    license_name after its own fields)."""
    from huggingface_hub.utils import yaml_dump

    first = ["pretty_name", "license", "license_name", "task_categories", "tags", "size_categories"]
    fields = data.to_dict()
    ordered = {k: fields[k] for k in first if k in fields}
    ordered.update((k, v) for k, v in fields.items() if k not in first)
    return yaml_dump(ordered, sort_keys=False).strip()
