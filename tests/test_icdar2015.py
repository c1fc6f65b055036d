"""ICDAR 2015 parser and crops on five genuine training images (tests/data/icdar2015, CC BY 4.0)."""

from pathlib import Path

import numpy as np
import pytest

from rebusyn.build import process_scene_image
from rebusyn.crop import decode_image
from rebusyn.sample import LabelPolicy
from rebusyn.sources.base import AnnotatedImage, Problem, WordCrop
from rebusyn.sources.icdar2015 import iter_detection, iter_word_crops, parse_detection_gt, parse_word_gt

DATA = Path(__file__).parent / "data" / "icdar2015"
LEGIBLE = [
    ("img_1", "Genaxis Theatre", "genaxistheatre"),
    ("img_1", "[06]", "06"),
    ("img_1", "62-03", "6203"),
    ("img_1", "Carpark", "carpark"),
    ("img_2", "EXIT", "exit"),
    ("img_2", "I2R", "i2r"),
    ("img_3", "fusionopolis", "fusionopolis"),
    ("img_3", "fusionopolis", "fusionopolis"),
]


@pytest.fixture(params=["lf", "crlf"])
def native_dir(request, tmp_path):
    """The genuine files as circulated (LF) and as the official archive ships them (CRLF)."""
    for path in DATA.iterdir():
        data = path.read_bytes()
        if path.suffix == ".txt" and request.param == "crlf":
            data = data.replace(b"\n", b"\r\n")
        (tmp_path / path.name).write_bytes(data)
    return tmp_path


def test_gt_files_really_carry_a_bom():
    assert (DATA / "gt_img_1.txt").read_bytes().startswith(b"\xef\xbb\xbf")


def test_parse_detection_gt_quirks():
    text = "\ufeff" if False else ""
    text += "1,2,3,4,5,6,7,8,100,000\r\n9,9,19,9,19,19,9,19,###\r\n\r\nbad line\r\n1,2,3,4,5,6,7,x,word\r\n"
    instances, problems = parse_detection_gt(text.replace("\r\n", "\n"), "gt.txt")
    assert [(i.text, i.ignore) for i in instances] == [("100,000", False), ("###", True)]
    assert instances[0].points == ((1, 2), (3, 4), (5, 6), (7, 8))
    assert [(p.where, p.reason) for p in problems] == [
        ("gt.txt:4", "malformed_line"),
        ("gt.txt:5", "malformed_line"),
    ]


def test_the_eight_legible_words_come_out_exactly(native_dir):
    policy = LabelPolicy("36")
    items = list(iter_detection(native_dir, native_dir))
    assert [i.image_id for i in items] == ["img_1", "img_2", "img_3", "img_4", "img_5"]
    assert all(isinstance(i, AnnotatedImage) and not i.problems for i in items)
    assert items[0].instances[0].text == "Genaxis Theatre"  # BOM stripped, not glued to the first x
    got, dont_care = [], 0
    for item in items:
        samples, drops = process_scene_image(item, source="icdar2015", group="B", policy=policy, options={})
        assert {d.reason for d in drops} <= {"dont_care"}
        dont_care += len(drops)
        got += [(item.image_id, s.label_raw, s.label, s) for s in samples]
    assert [(g[0], g[1], g[2]) for g in got] == LEGIBLE
    assert dont_care == 7 - 4 + 0 + 13 - 2 + 3 + 2
    assert got[0][3].key == "icdar2015/img_1.jpg#1"


def _crop_of(word_index):
    item = next(i for i in iter_detection(DATA, DATA) if i.image_id == LEGIBLE[word_index][0])
    samples, _ = process_scene_image(
        item, source="icdar2015", group="B", policy=LabelPolicy("36"), options={}
    )
    sample = next(s for s in samples if s.label_raw == LEGIBLE[word_index][1])
    return sample, decode_image(sample.image), decode_image(item.image.read_bytes())


@pytest.mark.parametrize("word_index", range(len(LEGIBLE)))
def test_crops_are_sensible(word_index):
    sample, crop, scene = _crop_of(word_index)
    pts = np.array(sample.extra["points"], dtype=float)
    top, bottom = np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[3])
    left, right = np.linalg.norm(pts[3] - pts[0]), np.linalg.norm(pts[2] - pts[1])
    # size from the quad's edge lengths
    assert (sample.width, sample.height) == (round(max(top, bottom)), round(max(left, right)))
    assert crop.shape[:2] == (sample.height, sample.width)
    # the crop shows the annotated region: close to the scene's pixels there, and not flat
    x0, y0 = pts.min(axis=0).astype(int)
    x1, y1 = pts.max(axis=0).astype(int)
    region = scene[y0:y1, x0:x1].astype(float)
    assert abs(crop.astype(float).mean() - region.mean()) < 25
    assert crop.std() > 10


def test_axis_aligned_word_crop_matches_scene_pixels():
    sample, crop, scene = _crop_of(3)  # Carpark: 376,198 .. 422,212, an exact rectangle
    expected = scene[198:212, 376:422].astype(float)
    assert crop.shape[:2] == (14, 46)
    # JPEG re-encoding (quality 95) changes pixels only slightly
    assert np.abs(crop[:13, :45].astype(float) - expected[:13, :45]).mean() < 3


def test_word_gt_quirks():
    text = '\ufeffword_1.png, "Genaxis Theatre"\nword_4.png, "62-,03"\nword_9.png, ""Quoted""\nword_5.png\n'
    entries, problems = parse_word_gt(text.lstrip("\ufeff"), "gt.txt")
    assert entries == [
        ("word_1.png", "Genaxis Theatre"),
        ("word_4.png", "62-,03"),
        ("word_9.png", '"Quoted"'),
    ]
    assert [(p.where, p.reason) for p in problems] == [("gt.txt:4", "malformed_line")]


def test_word_crops_directory(tmp_path):
    (tmp_path / "word_1.png").write_bytes(b"png")
    (tmp_path / "gt.txt").write_bytes('\ufeffword_1.png, "EXIT"\r\nword_2.png, "gone"\r\n'.encode())
    items = list(iter_word_crops(tmp_path))
    assert isinstance(items[0], WordCrop) and items[0].text == "EXIT"
    assert isinstance(items[1], Problem) and items[1].reason == "missing_image"


def test_unpaired_and_undecodable_files_are_problems(tmp_path):
    (tmp_path / "img_7.jpg").write_bytes((DATA / "img_2.jpg").read_bytes())
    (tmp_path / "gt_img_8.txt").write_bytes(b"1,1,9,1,9,9,1,9,word\r\n")
    (tmp_path / "img_9.jpg").write_bytes((DATA / "img_2.jpg").read_bytes())
    (tmp_path / "gt_img_9.txt").write_bytes(b"1,1,9,1,9,9,1,9,caf\xe9\r\n")  # latin-1, not UTF-8
    reasons = [(type(i).__name__, getattr(i, "reason", None)) for i in iter_detection(tmp_path, tmp_path)]
    assert reasons == [
        ("Problem", "missing_annotation"),
        ("Problem", "missing_image"),
        ("Problem", "invalid_utf8"),
    ]
