"""`rebusyn export` as a Hub dataset folder: data/train-*.parquet plus a README.md dataset card.

The roots here use real recipe names (icdar2015, coco_text) so the card's licences come from recipes/.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import datasets
import lmdb
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Image
from datasets.exceptions import NonMatchingSplitsSizesError
from huggingface_hub import DatasetCard

from rebusyn.export import (
    CUSTOM_LICENCE,
    SCALING_LAW_BIBTEX,
    SYNTH_LICENCE,
    ExportSummary,
    export_parquet,
    format_summary,
    hub_licence,
    size_category,
)
from rebusyn.mix import MixOptions, mix
from rebusyn.recipes import load_recipe, recipes_dir
from tests.conftest_helpers import make_root
from tests.test_hf import FEATURES, TEXT  # the expected schema, written once

CARD_KEYS = {"license", "license_name", "pretty_name", "task_categories", "tags", "size_categories",
             "configs", "dataset_info"}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Everything here is local; make any accidental Hub request fail instead of reaching the network.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_root(
        tmp_path_factory.mktemp("card") / "root",
        {"icdar2015": ("B", 12), "coco_text": ("R", 7), "mydata": ("C", 4), "fast": ("S", 30),
         "bench": ("T", 3)},
        max_shard_samples=5,
    )


@pytest.fixture(scope="module")
def manifest(root: Path) -> Path:
    opts = MixOptions(root=root, out=root.parent / "manifests", ratio=(2, 1), seed=7, name="mix-2to1")
    return mix(opts).manifest_path.parent


@pytest.fixture(scope="module")
def exported(manifest: Path) -> ExportSummary:
    return export_parquet(manifest, manifest.parent.parent / "export", rows_per_file=9)


def front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def source_table(body: str) -> list[list[str]]:
    """Cells of the card's source table, split on unescaped `|` only."""
    lines = body.split("| source | group | rows | licence | login required | citation |\n", 1)[1].splitlines()
    rows = []
    for line in lines[1:]:  # skip the |---| line
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def manifest_rows(manifest: Path) -> list[dict]:
    return pq.read_table(manifest / "manifest.parquet").to_pylist()


def lmdb_image(shard_dir: Path, idx: int) -> bytes:
    env = lmdb.open(str(shard_dir), readonly=True, lock=False, subdir=True)
    try:
        with env.begin() as txn:
            return bytes(txn.get(b"image-%09d" % idx))
    finally:
        env.close()


def test_layout_and_yaml_match_the_files(exported: ExportSummary, manifest: Path) -> None:
    out = exported.out_dir
    expected_rows = len(manifest_rows(manifest))
    assert expected_rows == 35  # all 23 real (C counts as real) + 23 / 2 = 11.5 -> 12 synthetic
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "data"]
    files = sorted((out / "data").iterdir())
    assert files == exported.files == [out / "data" / f"train-{i:05d}-of-00004.parquet" for i in range(4)]
    assert sum(pq.ParquetFile(f).metadata.num_rows for f in files) == exported.rows == expected_rows

    meta, _ = front_matter(exported.card.read_text(encoding="utf-8"))
    assert set(meta) >= CARD_KEYS
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train",
                                                                          "path": "data/train-*"}]}]
    assert meta["pretty_name"] == "mix-2to1"
    assert meta["license"] == "other" and meta["license_name"] == "per-source"
    assert meta["task_categories"] == ["image-to-text"]
    assert meta["tags"] == ["ocr", "scene-text-recognition", "rebusyn"]
    assert meta["size_categories"] == ["n<1K"]
    assert "language" not in meta  # build-dependent scripts: deliberately not claimed
    info = meta["dataset_info"]
    assert info["features"] == FEATURES._to_yaml_list()
    assert [f["dtype"] for f in info["features"]] == ["image", "string", "string", "string", "string", "bool"]
    assert info["splits"] == [{"name": "train", "num_bytes": info["dataset_size"], "num_examples": 35}]
    assert info["download_size"] == sum(f.stat().st_size for f in files)
    # dataset_size is the in-memory Arrow size, as push_to_hub reports it: a bit more than the images
    arrow = sum(pq.read_table(f).nbytes for f in files)
    assert exported.image_bytes < info["dataset_size"] and abs(info["dataset_size"] - arrow) <= 64


def test_source_table_counts_and_recipe_licences(exported: ExportSummary, manifest: Path) -> None:
    _, body = front_matter(exported.card.read_text(encoding="utf-8"))
    table = source_table(body)
    assert all(len(row) == 6 for row in table)
    *sources, total = table
    per_source = Counter(r["source"] for r in manifest_rows(manifest))
    assert {row[0]: int(row[2].replace(",", "")) for row in sources} == dict(per_source)
    assert sum(int(row[2]) for row in sources) == exported.rows
    assert total[0] == "**total**" and total[2] == f"**{exported.rows}**"
    by_name = {row[0]: row for row in sources}
    assert [row[0] for row in sources] == ["coco_text", "icdar2015", "mydata", "fast"]  # real first, S last
    icdar = load_recipe("icdar2015")
    assert by_name["icdar2015"][1:] == ["B", "12", "CC BY 4.0", "yes", icdar.citation]
    assert by_name["coco_text"][3] == load_recipe("coco_text").licence
    assert by_name["coco_text"][4] == "no"
    assert by_name["fast"][1] == "S" and by_name["fast"][3:] == [SYNTH_LICENCE, "no", "—"]
    assert by_name["mydata"][1] == "C" and by_name["mydata"][3] == CUSTOM_LICENCE
    assert "ratio **2:1**, seed 7, size policy all-real" in body
    assert "**35 rows: 23 real and 12 synthetic**" in body
    assert SCALING_LAW_BIBTEX in body and "Rang, Miao and Bi, Zhenni" in body
    assert str(manifest.parent) not in body  # no local paths in a card meant for the Hub


def test_huggingface_hub_and_datasets_read_the_card(exported: ExportSummary) -> None:
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs

    card = DatasetCard.load(exported.card)
    assert set(card.data.to_dict()) >= CARD_KEYS
    assert card.data.license == exported.licence == "other"
    infos = DatasetInfosDict.from_dataset_card_data(card.data)
    assert list(infos) == ["default"]
    assert infos["default"].features == FEATURES
    assert infos["default"].splits["train"].num_examples == exported.rows
    configs = MetadataConfigs.from_dataset_card_data(card.data)
    assert configs == {"default": {"data_files": [{"split": "train", "path": "data/train-*"}]}}
    assert "# mix-2to1" in card.text and "## Citation" in card.text


def test_load_the_folder_like_a_hub_repo(exported: ExportSummary, manifest: Path, root: Path,
                                         tmp_path: Path) -> None:
    ds = datasets.load_dataset(str(exported.out_dir), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.features == FEATURES and ds.features["image"] == Image()
    expected = manifest_rows(manifest)
    assert ds.select_columns(TEXT).to_list() == [{c: r[c] for c in TEXT} for r in expected]
    raw = ds.cast_column("image", Image(decode=False))["image"]
    assert [i["bytes"] for i in raw] == [lmdb_image(root / r["shard"], r["idx"]) for r in expected]
    # download_size exists only in the card: proof that datasets read the README's dataset_info
    assert ds.info.download_size == sum(f.stat().st_size for f in exported.files)


def test_card_row_count_is_verified_on_load(exported: ExportSummary, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exported.out_dir, copy)
    card = copy / "README.md"
    text = card.read_text(encoding="utf-8")
    assert f"num_examples: {exported.rows}\n" in text
    card.write_text(text.replace(f"num_examples: {exported.rows}\n", "num_examples: 999\n"), encoding="utf-8")
    with pytest.raises(NonMatchingSplitsSizesError):
        datasets.load_dataset(str(copy), split="train", cache_dir=str(tmp_path / "hf"))


def test_plain_parquet_data_dir(exported: ExportSummary, manifest: Path, tmp_path: Path) -> None:
    ds = datasets.load_dataset("parquet", data_dir=str(exported.out_dir / "data"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.features["image"] == Image() and ds.features == FEATURES
    assert ds["label"] == [r["label"] for r in manifest_rows(manifest)]


def test_single_licence_root_gets_the_hub_id(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root", {"icdar2015": ("B", 6)})
    summary = export_parquet(root, tmp_path / "out")
    meta, body = front_matter(summary.card.read_text(encoding="utf-8"))
    assert meta["license"] == summary.licence == "cc-by-4.0" and "license_name" not in meta
    assert meta["pretty_name"] == "rebusyn root"
    assert "every training row of a rebusyn dataset root" in body
    assert [row[:4] for row in source_table(body)[:-1]] == [["icdar2015", "B", "6", "CC BY 4.0"]]


def test_pipes_in_recipe_text_are_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    text = (recipes_dir() / "icdar2015.yaml").read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^licence:.*$", 'licence: "CC BY 4.0 | or ask the RRC"', text)
    assert n == 1
    (recipes / "icdar2015.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("REBUSYN_RECIPES", str(recipes))
    root = make_root(tmp_path / "root", {"icdar2015": ("B", 3)})
    summary = export_parquet(root, tmp_path / "out")
    meta, body = front_matter(summary.card.read_text(encoding="utf-8"))
    assert "| CC BY 4.0 \\| or ask the RRC |" in body
    assert [len(row) for row in source_table(body)] == [6, 6]
    assert meta["license"] == "other"  # a qualified licence is not claimed as cc-by-4.0


@pytest.mark.parametrize(
    ("text", "hub_id"),
    [
        ("CC BY 4.0", "cc-by-4.0"),
        ("CC BY-NC 4.0", "cc-by-nc-4.0"),
        ("CC BY-NC-SA 4.0", "cc-by-nc-sa-4.0"),
        ("cc-by-sa-4.0", "cc-by-sa-4.0"),
        ("MIT", "mit"),
        ("Apache 2.0", "apache-2.0"),
        ("Apache License 2.0", "apache-2.0"),
        ("CC BY 4.0 (annotations); images from Open Images (CC BY 2.0 per Google)", None),
        ("non-commercial use only", None),
        (SYNTH_LICENCE, None),
    ],
)
def test_hub_licence(text: str, hub_id: str | None) -> None:
    assert hub_licence(text) == hub_id


def test_size_category_buckets() -> None:
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 5_000_000, 10**8)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "100M<n<1B"
    ]


def test_format_summary_points_at_data_and_card(exported: ExportSummary) -> None:
    text = format_summary(exported)
    out = str(exported.out_dir)
    assert f"data_dir={str(exported.out_dir / 'data')!r}" in text
    assert f"datasets.load_dataset({out!r}, split=\"train\")" in text
    assert f"dataset card: {exported.card}" in text and "license: other" in text
    assert f"hf upload <user>/<repo> {out} --repo-type dataset --private" in text
