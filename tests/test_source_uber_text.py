"""Uber-Text via the STR-Fewer-Labels LMDBs: the LMDB reader's quirks on small inline LMDBs, and an end-to-end
build from a sample `data_CVPR2021.zip` served over HTTP."""

import zipfile
from collections import Counter

import lmdb
import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import uber_text as uber_samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import uber_text
from rebusyn.sources.base import ParseContext, Problem, WordCrop
from tests._source_helpers import read_built, serve


def _lmdb(path, entries, num_samples=None):
    """Raw puts, so tests can leave keys out or store bad values."""
    path.mkdir(parents=True)
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key.encode(), value)
        if num_samples is not None:
            txn.put(b"num-samples", num_samples)
    env.close()
    (path / "lock.mdb").unlink()
    return path


def _summary(items):
    return [(i.image_id, i.text, i.data) if isinstance(i, WordCrop) else (i.where, i.reason) for i in items]


def test_reads_str_layout_one_based_and_ignores_extra_keys(tmp_path):
    folder = tmp_path / "7.Uber"
    uber_samples.write_lmdb(folder, [("Market St", b"\xff\xd8one"), ("1600", b"\xff\xd8two")], "training")
    (folder / "lock.mdb").unlink()
    items = list(uber_text.iter_lmdb(folder, "data_CVPR2021/training/label/real/7.Uber"))
    assert _summary(items) == [
        ("data_CVPR2021/training/label/real/7.Uber#1", "Market St", b"\xff\xd8one"),
        ("data_CVPR2021/training/label/real/7.Uber#2", "1600", b"\xff\xd8two"),
    ]
    assert items[0].image is None and items[0].attrs == {"lmdb_index": 1}
    assert not (folder / "lock.mdb").exists()  # opened lock-free and read-only: nothing written


def test_missing_and_corrupt_keys_are_problems(tmp_path):
    folder = _lmdb(
        tmp_path / "x",
        {
            "image-000000001": b"a",
            "label-000000001": "Café".encode(),
            "label-000000002": b"no image",
            "image-000000003": b"no label",
            "image-000000004": b"c",
            "label-000000004": b"\xff\xfe",
            "image-000000005": b"d",
            "label-000000005": b"",  # an empty label is the label policy's business
        },
        num_samples=b"6",  # one more than stored: STR-Fewer-Labels' split writer can do this
    )
    assert _summary(uber_text.iter_lmdb(folder, "x")) == [
        ("x#1", "Café", b"a"),
        ("x#2", "missing_image"),
        ("x#3", "missing_label"),
        ("x#4", "invalid_utf8"),
        ("x#5", "", b"d"),
        ("x#6", "missing_label"),
    ]


@pytest.mark.parametrize("num", [None, b"", b"abc", b"-1"])
def test_bad_num_samples(tmp_path, num):
    folder = _lmdb(tmp_path / "x", {"image-000000001": b"a", "label-000000001": b"b"}, num_samples=num)
    (problem,) = uber_text.iter_lmdb(folder, "x")
    assert problem.reason == "corrupt_lmdb" and problem.where == "x#num-samples"


def test_not_an_lmdb(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "data.mdb").write_bytes(b"\0garbage" * 1000)
    (problem,) = uber_text.iter_lmdb(folder, "x")
    assert problem.reason == "corrupt_lmdb"


def _archive_tree(root, wrapper="data_CVPR2021"):
    base = root / wrapper if wrapper else root
    for rel, label in [
        ("training/label/real/7.Uber", "train"),
        ("validation/7.Uber", "val"),
        ("evaluation/addition/7.Uber", "test"),
    ]:
        _lmdb(base / rel, {"image-000000001": b"img", "label-000000001": label.encode()}, b"1")
    return root


@pytest.mark.parametrize("wrapper", ["data_CVPR2021", ""])
def test_parse_reads_train_and_val_only_by_default(tmp_path, wrapper):
    root = _archive_tree(tmp_path / "extract", wrapper)
    ctx = ParseContext("lmdb", "train", {"lmdb": root}, {})
    assert [i.text for i in uber_text.parse(ctx)] == ["train", "val"]
    ctx = ParseContext("lmdb", "train", {"lmdb": root}, {"lmdb_dirs": ["validation/7.Uber", "nope/7.Uber"]})
    items = list(uber_text.parse(ctx))
    assert items[0].text == "val" and isinstance(items[1], Problem) and items[1].reason == "missing_lmdb"
    assert items[0].image_id == f"{wrapper + '/' if wrapper else ''}validation/7.Uber#1"


def test_recipe_facts():
    r = load_recipe("uber_text")
    assert (r.group, r.login_required, r.licence, r.parser) == ("R", False, "CC BY-SA 4.0", "uber_text")
    (archive,) = r.input().archives
    assert (archive.name, archive.role, archive.md5, archive.sha256) == (
        "data_CVPR2021.zip",
        "lmdb",
        None,
        None,
    )
    assert archive.url.startswith("https://www.dropbox.com/sh/1s6r4slurc5ei2n/AACg6TqoDfGdKe8t40Em1fgxa/")
    assert r.options["lmdb_dirs"] == list(uber_text.DEFAULT_LMDB_DIRS)
    assert r.counts["rebu_syn_instances"] == 127850


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["uber_text"])
    return directory


def test_fixture_layout(mirror):
    with zipfile.ZipFile(mirror / "data_CVPR2021.zip") as zf:
        names = zf.namelist()
    for folder in uber_samples.WORDS:
        assert f"data_CVPR2021/{folder}/data.mdb" in names and f"data_CVPR2021/{folder}/lock.mdb" in names
    assert uber_samples.TEST in uber_samples.WORDS and uber_samples.DECOY in uber_samples.WORDS


def test_build_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(
            BuildOptions(tmp_path, sources=("uber_text",), mirror=server.base_url, progress=False)
        ).sources
    contents = uber_samples.lmdb_contents()
    truth = [(folder, i, text, data)
             for folder in (uber_samples.TRAIN, uber_samples.VAL)
             for i, (text, data) in enumerate(contents[folder], start=1)]  # fmt: skip
    policy = LabelPolicy("36")
    results = [(t, *policy.normalize(t[2])) for t in truth]
    kept = [(t, label) for t, label, _ in results if label]
    assert summary.kept == len(kept)
    assert summary.dropped == dict(Counter(reason for _, label, reason in results if not label))
    assert summary.dropped == {"empty_label": 1, "label_too_long": 1}
    samples = read_built(tmp_path, "uber_text")
    assert [s["label"] for s in samples] == [label for _, label in kept]
    for sample, ((folder, i, text, data), _) in zip(samples, kept):
        assert sample["image"] == data  # the LMDB's bytes, stored as they are
        assert sample["meta"]["label_raw"] == text
        assert sample["key"] == f"uber_text/data_CVPR2021/{folder}#{i}"
    read = {s["meta"]["label_raw"] for s in samples}
    assert not read & set(uber_samples.WORDS[uber_samples.TEST]) and not read & set(
        uber_samples.WORDS[uber_samples.DECOY]
    )
