"""ICDAR 2013 Focused Scene Text: both detection-GT dialects (train space-separated, test ", "-separated),
quoting and backslash escapes, the word-crop GT, file pairing, and builds of `icdar2013` from a sample mirror.
The benchmark subsets (857/1015) are tested in test_testsets_b.py."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest

from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import icdar2013 as gen
from rebusyn.samplegen import write_samples
from rebusyn.sources import icdar2013
from rebusyn.sources._benchmark_subset import SubsetRule
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop
from tests._benchmark_helpers import build_one

# train lines as MMOCR's sample_anno.md quotes them, then the quirks (escapes, blanks, a don't-care)
TRAIN_GT = (
    '\ufeff158 128 411 181 "Footpath"\r\n'
    '443 128 501 169 "To"\r\n'
    '64 200 401 243 "\\"HOT\\" dogs"\r\n'  # escaped quotes and a space inside
    '10 10 50 30 "C:\\\\"\r\n'  # an escaped backslash at the end
    '1  2\t3 4   "tabs"  \r\n'
    '5 6 7 8 "###"\r\n'
    "\r\n"
    "9 9 19 19 bare\r\n"
    '1 2 3 "three numbers"\r\n'
)
TEST_GT = '38, 43, 920, 215, "Tiredness"\r\n275, 264, 665, 450, "kills"\r\n0, 699, 77, 830, "A"\r\n'


def test_train_dialect_quotes_and_escapes():
    instances, problems = icdar2013.parse_detection_gt(
        TRAIN_GT.lstrip("\ufeff").replace("\r\n", "\n"), "gt_100.txt"
    )
    assert [(i.text, i.points, i.ignore) for i in instances] == [
        ("Footpath", ((158, 128), (411, 181)), False),
        ("To", ((443, 128), (501, 169)), False),
        ('"HOT" dogs', ((64, 200), (401, 243)), False),
        ("C:\\", ((10, 10), (50, 30)), False),
        ("tabs", ((1, 2), (3, 4)), False),
        ("###", ((5, 6), (7, 8)), True),
        ("bare", ((9, 9), (19, 19)), False),  # unquoted text is taken as is (lenient)
    ]
    assert instances[6].attrs == {"line": 8, "quoted": False}
    assert [(p.where, p.reason) for p in problems] == [("gt_100.txt:9", "malformed_line")]


def test_test_dialect_comma_space_separated():
    instances, problems = icdar2013.parse_detection_gt(TEST_GT, "gt_img_1.txt")
    assert problems == []
    assert [(i.text, i.points) for i in instances] == [
        ("Tiredness", ((38, 43), (920, 215))),
        ("kills", ((275, 264), (665, 450))),
        ("A", ((0, 699), (77, 830))),
    ]


def test_word_gt_lines():
    text = (
        'word_1.png, "PROPER"\nword_2.png, "FOOD"\nword_3.png, "\\"HOT\\""\n'
        'word_4.png, "62-,03"\nword_5.png PROPER\n'
    )
    entries, problems = icdar2013.parse_word_gt(text, "gt.txt")
    assert entries == [
        ("word_1.png", "PROPER"),
        ("word_2.png", "FOOD"),
        ("word_3.png", '"HOT"'),
        ("word_4.png", "62-,03"),
    ]
    assert [(p.where, p.reason) for p in problems] == [("gt.txt:5", "malformed_line")]


def _scene_files(tmp_path, names):
    images, gts = tmp_path / "images", tmp_path / "gt"
    images.mkdir()
    gts.mkdir()
    for image, gt, text in names:
        if image:
            (images / image).write_bytes(b"jpg")
        if gt:
            (gts / gt).write_bytes(text.encode())
    return images, gts


def test_pairing_train_and_test_names_in_numeric_order(tmp_path):
    images, gts = _scene_files(
        tmp_path,
        [
            ("101.jpg", "gt_101.txt", TRAIN_GT),
            ("100.jpg", "gt_100.txt", '1 1 9 9 "a"\r\n'),
            ("img_10.jpg", "gt_img_10.txt", TEST_GT),
            ("img_2.jpg", "gt_img_2.txt", TEST_GT),
            ("img_3.jpg", None, ""),
            (None, "gt_img_4.txt", TEST_GT),
            ("img_5.jpg", "gt_img_5.txt", ""),
        ],
    )
    (gts / "gt_img_5.txt").write_bytes(b"\xff\xfe bad")
    items = list(icdar2013.iter_detection(images, gts))
    assert [i.image_id if isinstance(i, AnnotatedImage) else i.reason for i in items] == [
        "img_2",
        "missing_annotation",
        "missing_image",
        "invalid_utf8",
        "img_10",
        "100",
        "101",
    ]
    assert items[-1].instances[0].text == "Footpath"  # the BOM is not glued to the first number


def test_subset_rule_in_detection_keeps_dont_care_for_the_build(tmp_path):
    images, gts = _scene_files(tmp_path, [("100.jpg", "gt_100.txt", TRAIN_GT)])
    (item,) = icdar2013.iter_detection(images, gts, SubsetRule(drop_non_alphanumeric=True, min_length=3))
    assert [i.text for i in item.instances] == ["Footpath", "tabs", "###", "bare"]
    assert sorted(p.reason for p in item.problems) == [
        "malformed_line",
        "subset_non_alphanumeric",  # "HOT" dogs
        "subset_non_alphanumeric",  # C:\\
        "subset_too_short",  # To
    ]


def test_word_crops_from_zip_gt_or_separate_file(tmp_path):
    (tmp_path / "word_1.png").write_bytes(b"png1")
    (tmp_path / "word_2.png").write_bytes(b"png2")
    (tmp_path / "gt.txt").write_bytes(b'word_1.png, "PROPER"\r\nword_2.png, "it\'s"\r\nword_3.png, "X"\r\n')
    ctx = ParseContext("word_crops", "train", {"crops": tmp_path}, {})
    got = [(i.image_id, i.text) if isinstance(i, WordCrop) else i.reason for i in icdar2013.parse(ctx)]
    assert got == [("word_1", "PROPER"), ("word_2", "it's"), "missing_image"]
    separate = tmp_path / "Challenge2_Test_Task3_GT.txt"
    separate.write_bytes(b'word_2.png, "kills"\r\n')
    ctx = ParseContext("word_crops", "test", {"crops": tmp_path, "annotations": separate}, {})
    assert [i.text for i in icdar2013.parse(ctx)] == ["kills"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [p.reason for p in icdar2013.iter_word_crops(empty)] == ["missing_annotation"]


# --- end to end over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("icdar2013_mirror")
    write_samples(directory, ["icdar2013"])
    return directory


def test_fixture_is_native(mirror):
    with zipfile.ZipFile(mirror / gen.ARCHIVES["train_gt"]) as zf:
        train = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(mirror / gen.ARCHIVES["test_gt"]) as zf:
        test = zf.read("gt_img_1.txt")
    with zipfile.ZipFile(mirror / gen.ARCHIVES["train_words"]) as zf:
        assert "gt.txt" in zf.namelist() and "word_1.png" in zf.namelist()
    assert sorted(train) == ["gt_100.txt", "gt_101.txt", "gt_102.txt", "gt_103.txt"]
    assert train["gt_101.txt"].startswith(b"\xef\xbb\xbf") and b"\r\n" in train["gt_100.txt"]
    assert b'\\"HOT\\"' in train["gt_100.txt"] and b", " not in train["gt_100.txt"]  # space-separated
    assert test.split(b"\r\n")[0].count(b", ") == 4
    assert (mirror / gen.ARCHIVES["test_words_gt"]).read_bytes().startswith(b'word_1.png, "Tiredness"\r\n')


@pytest.mark.parametrize("inp", ["detection", "word_crops"])
def test_build_training_split(tmp_path, mirror, inp):
    summary, records = build_one(tmp_path, mirror, "icdar2013", input=inp)
    words = [(sw.word.text, sw.box) for sc in gen.scenes()["train"] for sw in sc.words]
    policy = LabelPolicy("36")
    assert summary.kept == len(words) and summary.dropped == {}
    assert [r["label"] for r in records] == [policy.normalize(t)[0] for t, _ in words]
    assert [r["meta"]["label_raw"] for r in records] == [t for t, _ in words]  # '"HOT"' unescaped
    for record, (_, (x0, y0, x1, y1)) in zip(records, words):
        crop = cv2.imdecode(np.frombuffer(record["image"], np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape[:2] == (y1 - y0, x1 - x0) and float(crop.std()) > 10
        if inp == "detection":
            assert record["meta"]["points"] == [[x0, y0], [x1, y1]]


def test_problems_are_never_raised_for_bad_lines(tmp_path):
    gt = tmp_path / "gt"
    gt.mkdir()
    (gt / "gt_1.txt").write_bytes(b"garbage\r\n")
    (tmp_path / "1.jpg").write_bytes(b"jpg")
    (item,) = icdar2013.iter_detection(tmp_path, gt)
    assert item.instances == () and [p.reason for p in item.problems] == ["malformed_line"]
    assert all(isinstance(p, Problem) for p in item.problems)
