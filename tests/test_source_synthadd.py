"""SynthAdd: the gt_<n>.txt line format, the release / MMOCR label.txt / LMDB readers' quirks on inline files,
and end-to-end builds of all three inputs from a sample mirror served over HTTP."""

import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest

from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import synthadd as samples
from rebusyn.samplegen import write_samples
from rebusyn.samplegen._word_crops import write_str_lmdb
from rebusyn.sources import synthadd
from rebusyn.sources._str_lmdb import iter_lmdb_tree
from rebusyn.sources._word_labels import Entry
from rebusyn.sources.base import ParseContext, Problem
from tests._source_helpers import build_over_http, crop_summary, write_tree

JPEG = b"\xff\xd8jpeg"


_summary = crop_summary
_tree = write_tree


@pytest.mark.parametrize(
    "line, expected",
    [
        ('1_0.jpg,"Hello"', ("1_0.jpg", "Hello")),
        ('1_1.jpg,"Rome,Italy"', ("1_1.jpg", "Rome,Italy")),  # commas after the first one are the label's
        ('1_2.jpg,"say"hi""', ("1_2.jpg", 'say"hi"')),  # inner quotes kept as SAR's reader keeps them
        ('1_3.jpg,""""', ("1_3.jpg", '""')),
        ('1_4.jpg,"a""b"', ("1_4.jpg", 'a""b')),
        ('1_5.jpg, "spaced" ', ("1_5.jpg", "spaced")),  # ICDAR-style `, "..."` tolerated
        ('1_6.jpg,"  padded  "', ("1_6.jpg", "  padded  ")),  # inside the quotes: verbatim
        ('1_7.jpg,","', ("1_7.jpg", ",")),
        ('1_8.jpg,""', ("empty_label",)),
        ("1_9.jpg,plain", ("bad_line",)),
        ('1_9.jpg,"open', ("bad_line",)),
        ('1_9.jpg,"', ("bad_line",)),
        ("1_9.jpg", ("missing_label",)),
        ("1_9.jpg,", ("missing_label",)),
        ("1_9.jpg,   ", ("missing_label",)),
        (',"orphan"', ("bad_line",)),
    ],
)
def test_gt_line(line, expected):
    got = synthadd.parse_gt_line(line, "gt_1.txt:3")
    if len(expected) == 1:
        assert isinstance(got, Problem) and (got.where, got.reason) == ("gt_1.txt:3", expected[0])
    else:
        assert got == Entry("gt_1.txt:3", *expected)


def test_gt_line_doubled_quotes():
    assert synthadd.parse_gt_line('a.jpg,"a""b"', "w", "doubled").text == 'a"b'
    assert synthadd.parse_gt_line('a.jpg,""""', "w", "doubled").text == '"'
    assert synthadd.parse_gt_line('a.jpg,"plain"', "w", "doubled").text == "plain"


def test_release_quirks(tmp_path):
    gt1 = b'\xef\xbb\xbf1.jpg,"ONE"\r\n\r\n2.jpg,"Rome,Italy"\r\n9.jpg,"gone"\r\n'  # BOM, CRLF
    gt1 += b'../x.jpg,"up"\r\n/abs.jpg,"abs"\r\nsub\\3.jpg,"win"\r\n1.jpg,"again"\r\n'
    gt1 += b'4.jpg,"\xff"\r\n4.jpg,""\r\n4.jpg,"!!!"'  # no final newline
    gt2 = b'1.jpg,"TWO"\n'  # the same file name as in crop_img_1
    root = _tree(
        tmp_path / "extract" / "SynthText_Add",
        {
            "annotationlist/gt_1.txt": gt1,
            "annotationlist/gt_2.txt": gt2,
            "annotationlist/readme.txt": b"not a gt file",
            "crop_img_1/1.jpg": JPEG,
            "crop_img_1/2.jpg": JPEG,
            "crop_img_1/sub/3.jpg": JPEG,
            "crop_img_1/4.jpg": JPEG,
            "crop_img_2/1.jpg": JPEG,
            "crop_img_3/1.jpg": JPEG,  # a folder without its gt file
        },
    )
    items = list(synthadd.iter_release(tmp_path / "extract"))
    w = "annotationlist/gt_1.txt"
    assert _summary(items) == [
        ("crop_img_1/1.jpg", "ONE", "crop_img_1"),
        ("crop_img_1/2.jpg", "Rome,Italy", "crop_img_1"),
        (f"{w}:4", "missing_image"),
        (f"{w}:5", "bad_path"),
        (f"{w}:6", "bad_path"),
        ("crop_img_1/sub/3.jpg", "win", "crop_img_1"),
        (f"{w}:8", "duplicate_image"),
        (f"{w}:9", "invalid_utf8"),
        (f"{w}:10", "empty_label"),
        ("crop_img_1/4.jpg", "!!!", "crop_img_1"),  # the build's policy drops it, not the parser
        ("crop_img_2/1.jpg", "TWO", "crop_img_2"),
        ("crop_img_3", "missing_annotations"),
    ]
    assert items[0].image == root / "crop_img_1" / "1.jpg"
    assert items[0].attrs == {"image": "crop_img_1/1.jpg", "subset": "crop_img_1", "annotation": f"{w}:1"}
    assert items[-2].attrs["annotation"] == "annotationlist/gt_2.txt:1"


def test_parts_in_natural_order_and_root_lookup(tmp_path):
    files = {f"annotationlist/gt_{n}.txt": f'{n}.jpg,"p{n}"\n'.encode() for n in (1, 2, 10)}
    files.update({f"crop_img_{n}/{n}.jpg": JPEG for n in (1, 2, 10)})
    # MMOCR's layout: SynthAdd/SynthText_Add/..., one folder deeper than the archive's own top folder
    _tree(tmp_path / "a" / "SynthAdd" / "SynthText_Add", files)
    assert [i.text for i in synthadd.iter_release(tmp_path / "a")] == ["p1", "p2", "p10"]
    _tree(tmp_path / "b", files)  # no top folder at all
    assert synthadd.find_root(tmp_path / "b") == tmp_path / "b"
    assert [i.image_id for i in synthadd.iter_release(tmp_path / "b")][2] == "crop_img_10/10.jpg"
    _tree(tmp_path / "c", {"other/readme.txt": b"x"})
    with pytest.raises(FileNotFoundError, match="SynthText_Add"):
        synthadd.find_root(tmp_path / "c")
    _tree(tmp_path / "d", {"SynthText_Add/crop_img_1/1.jpg": JPEG})  # images without any gt file
    with pytest.raises(FileNotFoundError, match="gt_<n>.txt"):
        list(synthadd.iter_release(tmp_path / "d"))
    with pytest.raises(ValueError, match="quote_escape"):
        synthadd.parse(ParseContext("release", "train", {"dataset": tmp_path / "b"}, {"quote_escape": "csv"}))
    ctx = ParseContext("release", "train", {"dataset": tmp_path / "b"}, {"quote_escape": "doubled"})
    assert [i.text for i in synthadd.parse(ctx)] == ["p1", "p2", "p10"]


def test_mmocr_label_txt_quirks(tmp_path):
    root = _tree(
        tmp_path / "extract" / "SynthText_Add",
        {
            "crop_img_1/a.jpg": JPEG,
            "crop_img_1/b.jpg": JPEG,
            "crop_img_2/a.jpg": JPEG,
            "annotationlist/gt_1.txt": b"",
        },
    )
    lines = [
        b"SynthText_Add/crop_img_1/a.jpg Hello",
        b"crop_img_2/a.jpg World",  # without the SynthText_Add/ prefix [?]
        b"SynthText_Add\\crop_img_1\\b.jpg two words",  # the rest of the line is the label
        b"SynthText_Add/crop_img_1/missing.jpg x",
        b"SynthText_Add/crop_img_1/a.jpg dup",
        b"SynthText_Add/../etc/passwd x",
        b"SynthText_Add x",
        b"SynthText_Add/crop_img_1/b.jpg",
        b"",
        b"crop_img_1/b.jpg \xff",
    ]
    labels = tmp_path / "label.txt"
    labels.write_bytes(b"\r\n".join(lines) + b"\r\n")
    items = list(synthadd.iter_mmocr(tmp_path / "extract", labels))
    assert _summary(items) == [
        ("crop_img_1/a.jpg", "Hello", "crop_img_1"),
        ("crop_img_2/a.jpg", "World", "crop_img_2"),
        ("crop_img_1/b.jpg", "two words", "crop_img_1"),
        ("label.txt:4", "missing_image"),
        ("label.txt:5", "duplicate_image"),
        ("label.txt:6", "bad_path"),
        ("label.txt:7", "bad_path"),
        ("label.txt:8", "missing_label"),
        ("label.txt:10", "invalid_utf8"),
    ]
    assert items[1].image == root / "crop_img_2" / "a.jpg"
    assert items[1].attrs == {
        "image": "crop_img_2/a.jpg",
        "subset": "crop_img_2",
        "annotation": "label.txt:2",
    }
    ctx = ParseContext("mmocr", "train", {"dataset": tmp_path / "extract", "labels": labels}, {})
    assert _summary(synthadd.parse(ctx)) == _summary(items)


def test_lmdb(tmp_path):
    write_str_lmdb(tmp_path / "x" / "SynthAdd", [("one", JPEG), ("two", JPEG)])
    items = list(synthadd.parse(ParseContext("lmdb", "train", {"lmdb": tmp_path / "x"}, {})))
    assert [(i.image_id, i.text, i.data) for i in items] == [
        ("SynthAdd#1", "one", JPEG),
        ("SynthAdd#2", "two", JPEG),
    ]
    assert items[0].attrs == {"subset": "SynthAdd", "lmdb_index": 1}
    # the archive may hold data.mdb at its top: the extraction folder (named after the archive) names it
    write_str_lmdb(tmp_path / "SynthAdd", [("top", JPEG)])
    assert [i.image_id for i in iter_lmdb_tree(tmp_path / "SynthAdd")] == ["SynthAdd#1"]
    (tmp_path / "empty").mkdir()
    assert _summary(iter_lmdb_tree(tmp_path / "empty")) == [("empty", "missing_lmdb")]


def test_recipe_facts():
    r = load_recipe("synthadd")
    assert (r.group, r.login_required, r.parser, r.default_input) == ("S", True, "synthadd", "release")
    (release,) = r.input("release").archives
    zipped, labels = r.input("mmocr").archives
    (packed,) = r.input("lmdb").archives
    assert (release.name, release.role) == (samples.RELEASE, "dataset") and zipped == release
    assert (labels.name, labels.role, packed.name, packed.role) == (
        samples.LABELS,
        "labels",
        samples.LMDB_ARCHIVE,
        "lmdb",
    )
    assert release.url == "https://pan.baidu.com/s/1uV0LtoNmcxbO-0YA7Ch4dg"
    assert labels.url == "https://download.openmmlab.com/mmocr/data/mixture/SynthAdd/label.txt"
    assert packed.url == "https://aistudio.baidu.com/datasetdetail/138433"
    assert all(a.md5 is None and a.sha256 is None for a in (release, labels, packed))  # none published
    assert r.options == {"quote_escape": "none"} and r.counts == {"rebu_syn_instances": 1200000}


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["synthadd"])
    return directory


def test_fixture_layout(mirror):
    with zipfile.ZipFile(mirror / samples.RELEASE) as zf:
        names = set(zf.namelist())
        gt2 = zf.read("SynthText_Add/annotationlist/gt_2.txt")
        gt10 = zf.read("SynthText_Add/annotationlist/gt_10.txt")
    assert {f"SynthText_Add/annotationlist/gt_{n}.txt" for n in (1, 2, 10)} <= names
    assert {"SynthText_Add/crop_img_1/1_0.jpg", "SynthText_Add/crop_img_2/1_0.jpg"} <= names
    assert "SynthText_Add/crop_img_1/1_4.jpg" not in names  # listed in gt_1.txt, not shipped
    assert gt2.startswith(b'\xef\xbb\xbf1_0.jpg,"World"\r\n') and gt10.endswith(b'10_0.jpg,"again"\n')
    assert (mirror / samples.LABELS).read_bytes().startswith(b"SynthText_Add/crop_img_1/1_0.jpg Hello\n")


def _expect(rows):
    """rows: (key, label or None) -> (kept [(key, raw, label)], policy drops Counter)."""
    policy = LabelPolicy("36")
    kept, dropped = [], Counter()
    for key, raw in rows:
        label, reason = policy.normalize(raw)
        if label:
            kept.append((key, raw, label))
        else:
            dropped[reason] += 1
    return kept, dropped


def _release_truth():
    rows = [(f"crop_img_{n}/{file}", label) for n, part in samples.GT.items() for file, _, label in part]
    return [(k, raw) for k, raw in rows if raw is not None]


def _build(tmp_path, mirror, input_name):
    return build_over_http(tmp_path, mirror, "synthadd", input_name)


def _check_stored(built, kept, crops):
    assert [s["key"] for s in built] == [f"synthadd/{k}" for k, _, _ in kept]
    for sample, (key, raw, label) in zip(built, kept):
        assert (sample["label"], sample["meta"]["label_raw"]) == (label, raw)
        assert sample["image"] == crops[key]  # stored byte for byte
        pixels = cv2.imdecode(np.frombuffer(sample["image"], np.uint8), cv2.IMREAD_GRAYSCALE)
        assert pixels is not None and float(pixels.std()) > 10  # a real crop, not blank


def test_build_release_from_http_mirror(tmp_path, mirror):
    summary, report, built = _build(tmp_path, mirror, None)
    kept, dropped = _expect(_release_truth())
    assert [label for _, _, label in kept] == ["hello", "romeitaly", "sayhi", "world", "cafe", "zoneb", "42"]
    parser_drops = {
        "missing_image": 1,
        "bad_line": 1,
        "empty_label": 1,
        "missing_label": 1,
        "duplicate_image": 1,
    }
    assert summary.kept == len(kept) == 7
    assert summary.dropped == dict(dropped + Counter(parser_drops))
    assert report["dropped"] == {"bad_line": 1, "duplicate_image": 1, "empty_label": 2, "label_too_long": 1,
                                 "missing_image": 1, "missing_label": 1}  # fmt: skip
    assert report["status"] == "complete" and report["group"] == "S" and report["kept"] == 7
    assert {e["where"] for e in report["errors"]} >= {
        "annotationlist/gt_1.txt:5",
        "annotationlist/gt_10.txt:4",
    }
    assert report["output"]["directory"] == "train/synth/synthadd"
    assert (tmp_path / "train" / "synth" / "synthadd").is_dir()
    _check_stored(built, kept, samples.crops())
    assert built[0]["meta"]["annotation"] == "annotationlist/gt_1.txt:1"
    assert [s["meta"]["subset"] for s in built][3] == "crop_img_2"


def test_build_mmocr_from_http_mirror(tmp_path, mirror):
    summary, report, built = _build(tmp_path, mirror, "mmocr")
    rows = []
    for line, label in samples.MMOCR_LINES:
        if label is not None:
            path = line.split(" ", 1)[0]
            rows.append((path.removeprefix("SynthText_Add/"), label))
    kept, dropped = _expect(rows)
    assert summary.kept == len(kept) == 7
    assert summary.dropped == dict(dropped + Counter({"missing_image": 1, "missing_label": 1, "bad_path": 1}))
    assert report["options"]["input"] == "mmocr"
    _check_stored(built, kept, samples.crops())
    # the same images get the same keys and labels from either annotation file
    release_kept, _ = _expect(_release_truth())
    assert kept == release_kept


def test_build_lmdb_from_http_mirror(tmp_path, mirror):
    summary, report, built = _build(tmp_path, mirror, "lmdb")
    rows = [(f"lmdb/{i}", t) for i, t in enumerate(samples.LMDB_WORDS, start=1)]
    kept, dropped = _expect(rows)
    assert summary.kept == len(kept) == 3 and summary.dropped == dict(dropped)
    assert summary.dropped == {"empty_label": 1, "label_too_long": 1}
    crops = samples.crops()
    assert [s["key"] for s in built] == ["synthadd/SynthAdd#1", "synthadd/SynthAdd#2", "synthadd/SynthAdd#4"]
    for sample, (key, raw, label) in zip(built, kept):
        assert (sample["label"], sample["meta"]["label_raw"], sample["image"]) == (label, raw, crops[key])
        assert sample["meta"]["subset"] == "SynthAdd"
    assert report["inputs"][0]["name"] == samples.LMDB_ARCHIVE
