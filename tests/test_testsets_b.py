"""The group-T benchmarks of IIIT5K, SVT, ICDAR 2013 and ICDAR 2015: subset rules and pre-made lists on
planted cases, exact counts against the generators' own marks, and the one-LMDB-per-benchmark layout."""

from __future__ import annotations

import json
import re

import lmdb
import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import icdar2013 as ic13
from rebusyn.samplegen import icdar2015_test as ic15
from rebusyn.samplegen import iiit5k, svt, write_samples
from rebusyn.sources._benchmark_subset import SubsetList, SubsetRule, select_listed
from rebusyn.sources.base import Problem, WordCrop
from tests._benchmark_helpers import build_one
from tests._source_helpers import read_built, serve

BENCHMARKS = {
    "iiit5k_test": 3000,
    "svt_test": 647,
    "icdar2013_test_857": 857,
    "icdar2013_test_1015": 1015,
    "icdar2015_test_1811": 1811,
    "icdar2015_test_2077": 2077,
}
PARSEQ_NAMES = {
    "iiit5k_test": "IIIT5k",
    "svt_test": "SVT",
    "icdar2013_test_857": "IC13_857",
    "icdar2013_test_1015": "IC13_1015",
    "icdar2015_test_1811": "IC15_1811",
    "icdar2015_test_2077": "IC15_2077",
}
POLICY = LabelPolicy("36")


# --- rules and lists ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ic13_1015", "ic13_857"),
    [
        ("Tiredness", None, None),
        ("24h", None, None),
        ("A", None, "subset_too_short"),
        ("ok", None, "subset_too_short"),
        ("it's", "subset_non_alphanumeric", "subset_non_alphanumeric"),
        ("Café", "subset_non_alphanumeric", "subset_non_alphanumeric"),  # ASCII letters only
        ("two words", "subset_non_alphanumeric", "subset_non_alphanumeric"),
        ("", "subset_non_alphanumeric", "subset_non_alphanumeric"),
    ],
)
def test_subset_rules(text, ic13_1015, ic13_857):
    assert SubsetRule(drop_non_alphanumeric=True).reject(text) == ic13_1015
    assert SubsetRule(drop_non_alphanumeric=True, min_length=3).reject(text) == ic13_857
    assert SubsetRule().reject(text) is None and not SubsetRule().active
    assert SubsetRule.from_options({"drop_non_alphanumeric": True, "min_length": 3}).active


def _crops(*names):
    return [WordCrop(None, name, name.upper(), data=b"x") for name in names]


def test_subset_list_formats(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(
        json.dumps({"metainfo": {}, "data_list": [{"img_path": "textrecog_imgs/test/word_2.png"}]})
    )
    assert SubsetList.load(path)[0].names == ("word_2.png",)
    path.write_text(json.dumps([{"filename": "test\\word_3.png", "text": "x"}, "word_4.png"]))
    assert SubsetList.load(path)[0].names == ("word_3.png", "word_4.png")
    for bad, reason in (
        ("{", "invalid_json"),
        ('{"data": []}', "malformed_json"),
        ('[{"text": "x"}]', "malformed_json"),
    ):
        path.write_text(bad)
        assert SubsetList.load(path)[1].reason == reason


def test_subset_list_selects_in_native_order(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(
        json.dumps({"data_list": [{"img_path": f"t/{n}"} for n in ("word_3", "word_1", "word_9", "word_1")]})
    )
    out = list(
        select_listed(path, [*_crops("word_1", "word_2", "word_3"), Problem("gt:4", "malformed_line")])
    )
    assert [i.image_id if isinstance(i, WordCrop) else (i.reason, i.detail) for i in out] == [
        "word_1",
        ("subset_not_listed", "'WORD_2' is not in list.json"),
        "word_3",
        ("malformed_line", ""),
        ("subset_list_unmatched", "word_9 is listed but not in the GT"),
    ]
    path.write_text("not json")
    assert [p.reason for p in select_listed(path, _crops("word_1"))] == ["invalid_json"]  # never the full set


# --- builds from the sample mirror -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("testsets_mirror")
    write_samples(directory, ["iiit5k", "svt", "icdar2013", "icdar2015_test"])
    return directory


@pytest.fixture(scope="module")
def built(tmp_path_factory, mirror):
    """Every benchmark of this group, default inputs, one build into one root (as `build --test` does)."""
    root = tmp_path_factory.mktemp("testsets_root")
    with serve(mirror, root / "www") as server:
        result = build(
            BuildOptions(root / "out", sources=tuple(BENCHMARKS), mirror=server.base_url, progress=False)
        )
    return root / "out", {s.source: s for s in result.sources}


def _build_one(tmp_path, mirror, source, inp):
    summary, records = build_one(tmp_path, mirror, source, input=inp)
    return summary, [r["label"] for r in records]


def _labels(texts):
    return [label for label in (POLICY.normalize(t)[0] for t in texts) if label]


def ic13_test_words():
    return [sw.word for sc in ic13.scenes()["test"] for sw in sc.words]


def test_recipes_are_group_t_with_official_counts():
    for name, count in BENCHMARKS.items():
        recipe = load_recipe(name)
        assert (
            recipe.group == "T"
            and recipe.counts["test_words" if "test_words" in recipe.counts else "test_word_crops"] == count
        )


def test_one_lmdb_per_benchmark_under_parseqs_name(built):
    root, summaries = built
    assert sorted(summaries) == sorted(BENCHMARKS)
    assert sorted(p.name for p in (root / "test").iterdir()) == sorted(PARSEQ_NAMES.values())
    for name, summary in summaries.items():
        folder = root / "test" / PARSEQ_NAMES[name]  # what PARSeq's test.py opens
        assert sorted(p.name for p in folder.iterdir()) == ["data.mdb", "lock.mdb"]
        assert (root / "index" / f"{name}.parquet").is_file()
        env = lmdb.open(str(folder), readonly=True, lock=False)
        with env.begin() as txn:
            assert int(txn.get(b"num-samples")) == summary.kept > 0
        env.close()
        assert {r["meta"]["group"] for r in read_built(root, name)} == {"T"}


def test_ic13_1015_and_857_exact_counts(built):
    _, summaries = built
    words = ic13_test_words()
    in_1015 = [w.text for w in words if "1015" in w.subsets]
    in_857 = [w.text for w in words if "857" in w.subsets]
    too_long = [t for t in in_1015 if POLICY.normalize(t)[1] == "label_too_long"]
    assert len(words) == 16 and len(in_1015) == 10 and len(in_857) == 6 and len(too_long) == 1
    s1015, s857 = summaries["icdar2013_test_1015"], summaries["icdar2013_test_857"]
    assert s1015.kept == len(in_1015) - 1
    assert s1015.dropped == {"subset_non_alphanumeric": len(words) - len(in_1015), "label_too_long": 1}
    assert s857.kept == len(in_857) - 1
    assert s857.dropped == {
        "subset_non_alphanumeric": len(words) - len(in_1015),
        "subset_too_short": len(in_1015) - len(in_857),
        "label_too_long": 1,  # the label policy still applies to a benchmark
    }


def test_ic13_labels_in_order(built):
    root, _ = built
    words = ic13_test_words()
    for name, subset in (("icdar2013_test_1015", "1015"), ("icdar2013_test_857", "857")):
        expected = _labels(w.text for w in words if subset in w.subsets)
        assert [r["label"] for r in read_built(root, name)] == expected


@pytest.mark.parametrize(
    ("source", "inp"), [("icdar2013_test_857", "mmocr_list"), ("icdar2013_test_1015", "detection")]
)
def test_ic13_other_inputs_agree_with_the_rule(tmp_path, mirror, source, inp):
    subset = source.rsplit("_", 1)[1]
    summary, labels = _build_one(tmp_path, mirror, source, inp)
    assert labels == _labels(w.text for w in ic13_test_words() if subset in w.subsets)
    if inp == "mmocr_list":
        assert summary.dropped["subset_not_listed"] == sum(
            1 for w in ic13_test_words() if subset not in w.subsets
        )


def test_ic15_1811_from_the_list_and_2077(built):
    root, summaries = built
    words = [w for _, w, _ in ic15.crops()]
    listed = [w.text for w in words if w.in_1811]
    s1811, s2077 = summaries["icdar2015_test_1811"], summaries["icdar2015_test_2077"]
    assert s1811.kept == len(listed) == 7
    assert s1811.dropped == {"subset_not_listed": len(words) - len(listed)}
    assert [r["label"] for r in read_built(root, "icdar2015_test_1811")] == _labels(listed)
    assert s2077.kept == len(words) - 1 and s2077.dropped == {"empty_label": 1}  # `!!` under the 36 charset
    assert [r["meta"]["label_raw"] for r in read_built(root, "icdar2015_test_2077")] == [
        w.text for w in words if w.text != "!!"
    ]  # commas and inner quotes kept


def test_ic15_1811_rule_approximation_keeps_the_rotated_words(tmp_path, mirror):
    summary, labels = _build_one(tmp_path, mirror, "icdar2015_test_1811", "rule")
    words = [w for _, w, _ in ic15.crops()]
    alnum = [w.text for w in words if re.fullmatch(r"[A-Za-z0-9]+", w.text)]
    assert summary.kept == len(alnum) == 9 and labels == _labels(alnum)
    assert summary.dropped == {"subset_non_alphanumeric": len(words) - len(alnum)}
    vertical = {w.text.lower() for w in words if w.vertical}
    assert vertical <= set(labels) and not vertical & {
        t.lower() for t in [w.text for w in words if w.in_1811]
    }


def test_iiit5k_and_svt_benchmarks_are_whole(built):
    root, summaries = built
    assert [r["label"] for r in read_built(root, "iiit5k_test")] == _labels(
        w.ground_truth for w in iiit5k.SPLITS["test"]
    )
    svt_words = [t.text for sc in svt.scenes()["test"] for t in sc.spec.tags]
    assert [r["label"] for r in read_built(root, "svt_test")] == _labels(svt_words)
    assert summaries["iiit5k_test"].dropped == {} and summaries["svt_test"].dropped == {}
