"""Hostile transcriptions: control and format characters, lone surrogates, 10,000-character and blank labels,
and ground-truth files that are not UTF-8, through the label policy, every parser that reads a text file,
and a whole build whose shards are read back with plain lmdb."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest

from rebusyn.build import BuildOptions, build, process_word_crop
from rebusyn.sample import LabelPolicy
from rebusyn.sources import (
    art,
    coco_text,
    cst,
    ctw1500,
    custom,
    icdar2013,
    icdar2015,
    lsvt,
    mlt19,
    openvino,
    rctw17,
    rects,
    svt,
    synthadd,
    textocr,
    totaltext,
    union14m,
)
from rebusyn.sources._str_lmdb import iter_lmdb
from rebusyn.sources._word_labels import read_label_file
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop
from tests._source_helpers import read_built, write_tree

# --- the label policy ----------------------------------------------------------------------------------

PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645"  # "I want", written with a ZERO WIDTH NON-JOINER


@pytest.mark.parametrize(
    ("raw", "labels"),
    [  # raw -> (36, 94, unicode); None: dropped as empty_label
        ("a\x00b", ("ab", "ab", "ab")),
        ("a\x1b[31mb", ("a31mb", "a[31mb", "a[31mb")),  # ESC goes, the printable rest of the sequence stays
        ("ab\u200bcd", ("abcd", "abcd", "abcd")),  # zero-width space
        ("\u202eSTOP", ("stop", "STOP", "STOP")),  # right-to-left override
        ("\ufeffStart\u00adup", ("startup", "Startup", "Startup")),  # BOM, soft hyphen
        ("two\twords\nhere", ("twowordshere", "twowordshere", "two words here")),  # white space, not deleted
        (PERSIAN, (None, None, PERSIAN)),  # ZWNJ kept: it is how the word is spelt
        ("\U0001f468\u200d\U0001f469", (None, None, "\U0001f468\u200d\U0001f469")),  # ZWJ sequence kept
        ("   \t ", (None, None, None)),
        ("\u200b\u200d\x00", (None, None, "\u200d")),  # only a joiner survives, under unicode
    ],
)
def test_control_and_format_characters_never_reach_a_label(raw: str, labels: tuple) -> None:
    for charset, want in zip(("36", "94", "unicode"), labels):
        got = LabelPolicy(charset, max_len=25).normalize(raw)
        assert got == ((want, None) if want is not None else (None, "empty_label")), charset
        if want is not None:
            assert all(c.isprintable() or c in "\u200c\u200d" for c in want)


@pytest.mark.parametrize("charset", ["36", "94", "unicode"])
def test_lone_surrogates_long_and_blank_labels(charset: str) -> None:
    policy = LabelPolicy(charset, max_len=25)
    half_an_emoji = "caf\u00e9\ud83d"  # what json.loads makes of an escaped high surrogate alone
    assert policy.normalize(half_an_emoji) == (None, "invalid_label")
    assert policy.normalize("\udcff") == (None, "invalid_label")  # a non-UTF-8 byte kept by surrogateescape
    # json.loads joins an escaped pair into one character: only a lone half is refused
    assert policy.normalize(json.loads('"\\ud83d\\ude00ok"'))[1] != "invalid_label"
    assert policy.normalize("x" * 10_000) == (None, "label_too_long")
    assert policy.normalize(" \u3000\u2028 ") == (None, "empty_label")  # ideographic space, line separator


def test_a_dropped_long_label_is_quoted_briefly_in_the_report() -> None:
    crop = WordCrop(None, "lmdb#1", "y" * 10_000, data=b"never read")
    samples, drops = process_word_crop(crop, source="s", group="C", policy=LabelPolicy("36"))
    assert samples == [] and [(d.where, d.reason) for d in drops] == [("lmdb#1", "label_too_long")]
    assert len(drops[0].detail) < 260 and "10,002 characters" in drops[0].detail


# --- ground truths that are not UTF-8, parser by parser -------------------------------------------------

LATIN1 = "Caf\u00e9".encode("latin-1")  # what a ground truth saved by a Windows editor holds
JPEG = cv2.imencode(".jpg", np.full((40, 80, 3), 200, np.uint8))[1].tobytes()
QUAD = b"1,1,60,1,60,30,1,30,"
TT_RECORD = b"x: [[1 60 60 1]], y: [[1 1 30 30]], ornt: [u'h'], transcriptions: [u'%s']"
SVT_XML = b"<tagset><image><imageName>img/1.jpg</imageName><tag>%s</tag></image></tagset>"
CTW_XML = b"<Annotations><box><label>%s</label><segs>1,1</segs></box></Annotations>"
UNION = "Union14M-L/train_annos/mmocr1.0/train_easy.json"

# source: (parser, input, roles -> path under tmp, files under tmp, options, reason, file the Problem names)
CASES: dict[str, tuple] = {
    "icdar2015": (icdar2015.parse, "detection", {"images": "img", "annotations": "gt"},
                  {"img/img_1.jpg": JPEG, "gt/gt_img_1.txt": QUAD + LATIN1}, {}, "invalid_utf8",
                  "gt_img_1.txt"),
    "icdar2015 gt.txt": (icdar2015.parse, "word_crops", {"crops": "."},
                         {"gt.txt": b'word_1.png, "%s"' % LATIN1}, {}, "invalid_utf8", "gt.txt"),
    "icdar2013": (icdar2013.parse, "detection", {"images": "img", "annotations": "gt"},
                  {"img/100.jpg": JPEG, "gt/gt_100.txt": b'1 1 60 30 "%s"' % LATIN1}, {}, "invalid_utf8",
                  "gt_100.txt"),
    "rctw17": (rctw17.parse, "detection", {"images": "img", "annotations": "gt"},
               {"img/image_0.jpg": JPEG, "gt/image_0.txt": QUAD + b'0,"%s"' % LATIN1}, {}, "invalid_utf8",
               "image_0.txt"),
    "mlt19": (mlt19.parse, "detection", {"images_1": "img", "annotations": "gt"},
              {"img/tr_img_1.jpg": JPEG, "gt/tr_img_1.txt": QUAD + b"Latin," + LATIN1}, {}, "invalid_utf8",
              "tr_img_1.txt"),
    "totaltext": (totaltext.parse, "detection", {"images": "img", "annotations": "gt"},
                  {"img/img1.jpg": JPEG, "gt/poly_gt_img1.txt": TT_RECORD % LATIN1}, {}, "invalid_utf8",
                  "poly_gt_img1.txt"),
    "ctw1500": (ctw1500.parse, "detection", {"images": "img", "annotations": "gt"},
                {"img/0001.jpg": JPEG, "gt/0001.xml": CTW_XML % LATIN1}, {}, "invalid_xml", "0001.xml"),
    "rects": (rects.parse, "detection", {"dataset": "."},
              {"img/1.jpg": JPEG, "gt_unicode/1.json": b'{"lines": [{"transcription": "%s"}]}' % LATIN1}, {},
              "invalid_utf8", "1.json"),
    "art": (art.parse, "detection", {"images": "img", "annotations": "train_labels.json"},
            {"img/gt_1.jpg": JPEG, "train_labels.json": b'{"gt_1": "%s"}' % LATIN1}, {}, "invalid_utf8",
            "train_labels.json"),
    "lsvt": (lsvt.parse, "detection", {"images_0": "img", "annotations": "labels.json"},
             {"img/gt_1.jpg": JPEG, "labels.json": b'{"%s": []}' % LATIN1}, {}, "invalid_utf8",
             "labels.json"),
    "coco_text": (coco_text.parse, "detection", {"annotations": "cocotext.v2.json", "images": "img"},
                  {"img/a.jpg": JPEG, "cocotext.v2.json": b'{"imgs": "%s"}' % LATIN1}, {}, "invalid_utf8",
                  "cocotext.v2.json"),
    "textocr": (textocr.parse, "detection", {"images": "img", "annotations_train": "train.json"},
                {"img/a.jpg": JPEG, "train.json": LATIN1}, {}, "invalid_utf8", "train.json"),
    "openvino": (openvino.parse, "detection", {"images_train_1": "img", "annotations_train_1": "ov.json"},
                 {"img/a.jpg": JPEG, "ov.json": b"[%s]" % LATIN1}, {}, "invalid_utf8", "ov.json"),
    "svt": (svt.parse, "original", {"dataset": "."}, {"img/1.jpg": JPEG, "train.xml": SVT_XML % LATIN1}, {},
            "invalid_xml", "train.xml"),
    "cst": (cst.parse, "release", {"dataset": "."},
            {"IMG/1.jpg": JPEG, "Label.json": b'[{"img": "IMG/1.jpg", "word": "%s"}]' % LATIN1}, {},
            "invalid_utf8", "Label.json"),
    "union14m json": (union14m.parse, "images", {"dataset": "."}, {UNION: b'{"data_list": "%s"}' % LATIN1},
                      {"subsets": ["easy"], "annotations": "json"}, "invalid_utf8", "train_easy.json"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_ground_truth_that_is_not_utf8_is_a_counted_problem_naming_its_file(
    tmp_path: Path, name: str
) -> None:
    parse, input_name, roles, files, options, reason, file_name = CASES[name]
    write_tree(tmp_path, files)
    ctx = ParseContext(input_name, "train", {role: tmp_path / rel for role, rel in roles.items()}, options)
    items = list(parse(ctx))
    problems = [i for i in items if isinstance(i, Problem)]
    problems += [p for i in items if isinstance(i, AnnotatedImage) for p in i.problems]  # per-image faults
    assert any(p.reason == reason and file_name in p.where for p in problems), problems


def test_line_readers_lose_only_the_bad_line(tmp_path: Path) -> None:
    """Label lists are decoded line by line: one Latin-1 line is one `invalid_utf8`, its neighbours stay."""
    write_tree(tmp_path, {"a.jpg": JPEG, "b.jpg": JPEG, "c.jpg": JPEG})
    (tmp_path / "gt.txt").write_bytes(b"a.jpg\tfine\nb.jpg\t" + LATIN1 + b"\nc.jpg\tcaf\xc3\xa9\n")
    items = list(custom.parse(ParseContext("custom", "train", {"input": tmp_path / "gt.txt"}, {})))
    assert [(i.text if isinstance(i, WordCrop) else (i.where, i.reason)) for i in items] == [
        "fine",
        ("gt.txt:2", "invalid_utf8"),
        "caf\u00e9",
    ]
    root = write_tree(tmp_path / "sa", {
        "SynthText_Add/annotationlist/gt_1.txt": b'1.jpg,"ok"\n2.jpg,"' + LATIN1 + b'"\n',
        "SynthText_Add/crop_img_1/1.jpg": JPEG, "SynthText_Add/crop_img_1/2.jpg": JPEG,
    })  # fmt: skip
    items = list(synthadd.parse(ParseContext("release", "train", {"dataset": root}, {})))
    assert [(i.text if isinstance(i, WordCrop) else i.reason) for i in items] == ["ok", "invalid_utf8"]
    label = tmp_path / "label.txt"
    label.write_bytes(LATIN1)
    assert read_label_file(label, "label/1.txt") == Problem(
        "label/1.txt", "invalid_utf8", "label file is not UTF-8"
    )


def test_lmdb_label_that_is_not_utf8(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for key, value in {b"num-samples": b"2", b"image-000000001": JPEG, b"label-000000001": LATIN1,
                           b"image-000000002": JPEG, b"label-000000002": b"ok"}.items():  # fmt: skip
            txn.put(key, value)
    env.close()
    items = list(iter_lmdb(tmp_path, "pack"))
    assert [(i.where, i.reason) if isinstance(i, Problem) else i.text for i in items] == [
        ("pack#1", "invalid_utf8"),
        "ok",
    ]


# --- a whole build: ArT JSON with hostile transcriptions and a file name that is not UTF-8 ------------------

BOX = [[10, 20], [150, 20], [150, 80], [10, 80]]
TRANSCRIPTIONS = ["Hello", "caf\u00e9\ud83d", "\u202eSTOP\u200b", "x" * 10_000, "   ", "a\x00b\x1bc"]


@pytest.fixture(scope="module")
def art_build(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    tmp = tmp_path_factory.mktemp("hostile_art")
    manual = tmp / "manual"
    manual.mkdir()
    pixels = np.full((120, 200, 3), 230, np.uint8)
    cv2.putText(pixels, "Hi", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0), 3)
    jpeg = cv2.imencode(".jpg", pixels)[1].tobytes()
    # an archive made where file names were Latin-1: tarfile hands the byte 0xFF back as the surrogate \udcff
    with tarfile.open(manual / "train_images.tar.gz", "w:gz", format=tarfile.GNU_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tf:  # fmt: skip
        for name in ("gt_1.jpg", "gt_\udcff.jpg"):
            info = tarfile.TarInfo(f"train_images/{name}")
            info.size = len(jpeg)
            tf.addfile(info, io.BytesIO(jpeg))
    entry = {"points": BOX, "language": "Latin", "illegibility": False}
    labels = {
        "gt_1": [{**entry, "transcription": t} for t in TRANSCRIPTIONS],
        "gt_\udcff": [{**entry, "transcription": "Name"}],  # json.dumps writes the key as the escape \udcff
    }
    (manual / "train_labels.json").write_text(json.dumps(labels))
    root = tmp / "root"
    opts = BuildOptions(
        root, sources=("art",), from_dir=manual, skip_checksum=True, progress=False, charset="unicode"
    )
    (summary,) = build(opts).sources
    return summary, json.loads(summary.report.read_text()), read_built(root, "art")


def test_build_keeps_clean_labels_and_counts_the_rest(art_build: tuple) -> None:
    summary, report, samples = art_build
    assert [s["label"] for s in samples] == ["Hello", "STOP", "abc", "Name"]
    assert [s["meta"]["label_raw"] for s in samples] == ["Hello", "\u202eSTOP\u200b", "a\x00b\x1bc", "Name"]
    assert summary.dropped == {"invalid_label": 1, "label_too_long": 1, "empty_label": 1}
    assert [(e["reason"], e["where"]) for e in report["errors"]] == [
        ("invalid_label", "gt_1.jpg#2"),
        ("label_too_long", "gt_1.jpg#4"),
        ("empty_label", "gt_1.jpg#5"),
    ]
    assert max(len(e["detail"]) for e in report["errors"]) < 260  # the 10,000 x's are not copied out


def test_a_file_name_that_is_not_utf8_is_escaped_in_keys_and_meta(art_build: tuple) -> None:
    _, _, samples = art_build
    name = samples[-1]
    assert name["key"] == "art/gt_\\udcff.jpg#1" and name["meta"]["image"] == "gt_\\udcff.jpg"
    assert cv2.imdecode(np.frombuffer(name["image"], np.uint8), cv2.IMREAD_COLOR).shape[:2] == (60, 140)
