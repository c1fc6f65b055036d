"""SVT (Street View Text): the XML reader's quirks on inline native snippets (MMOCR's excerpt of test.xml
plus boxes past the image), the case-sensitive relabels, and builds of `svt` from a sample mirror."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import _case_sensitive_pinned as relabels
from rebusyn.samplegen import svt as gen
from rebusyn.sources import svt
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from tests._benchmark_helpers import build_one, sample_mirror

# MMOCR's dataset_zoo/svt/sample_anno.md (img/14_03.jpg of test.xml), lexicon shortened, plus planted boxes
XML = """<?xml version="1.0" encoding="utf-8"?>
<tagset>
<image>
  <imageName>img/14_03.jpg</imageName>
  <address>341 Southwest 10th Avenue Portland OR &amp; more</address>
  <lex>
  LIVING,ROOM,THEATERS,KENNY,ZUKE,RESTAURANT,RESTAURANT
  </lex>
  <Resolution x="1280" y="880"/>
  <taggedRectangles>
    <taggedRectangle height="75" width="236" x="375" y="253">
      <tag>LIVING</tag>
    </taggedRectangle>
    <taggedRectangle height="76" width="175" x="639" y="272">
      <tag>ROOM</tag>
    </taggedRectangle>
    <taggedRectangle height="87" width="281" x="839" y="283">
      <tag>THEATERS</tag>
    </taggedRectangle>
    <taggedRectangle height="40" width="60" x="-12" y="-3"><tag>ACE</tag></taggedRectangle>
    <taggedRectangle height="50" width="90" x="1230" y="850"><tag>ZUKE</tag></taggedRectangle>
    <taggedRectangle height="50" width="90" x="1300" y="10"><tag>GONE</tag></taggedRectangle>
    <taggedRectangle height="0" width="90" x="10" y="10"><tag>FLAT</tag></taggedRectangle>
    <taggedRectangle height="x" width="90" x="10" y="10"><tag>BAD</tag></taggedRectangle>
  </taggedRectangles>
</image>
<image>
  <imageName>img/missing.jpg</imageName>
  <taggedRectangles/>
</image>
<image>
  <address>no name</address>
</image>
</tagset>
"""


def _dataset(tmp_path, xml=XML, split="test", size=(1280, 880)):
    base = tmp_path / "svt1"
    (base / "img").mkdir(parents=True)
    (base / f"{split}.xml").write_text(xml, encoding="utf-8")
    Image.new("RGB", size, (120, 130, 140)).save(base / "img" / "14_03.jpg")
    return tmp_path


def test_mmocr_excerpt_boxes_clipping_and_problems(tmp_path):
    root = _dataset(tmp_path)
    first, *rest = svt.iter_original(root, "test")
    assert isinstance(first, AnnotatedImage) and first.image_id == "14_03"
    assert [(i.text, i.points) for i in first.instances] == [
        ("LIVING", ((375, 253), (611, 328))),
        ("ROOM", ((639, 272), (814, 348))),
        ("THEATERS", ((839, 283), (1120, 370))),
        ("ACE", ((0, 0), (48, 37))),  # negative x and y clipped to the image
        ("ZUKE", ((1230, 850), (1280, 880))),  # past the right and bottom edges
    ]
    assert first.instances[3].attrs["clipped"] and first.instances[3].attrs["box"] == [-12, -3, 60, 40]
    assert "clipped" not in first.instances[0].attrs
    assert [(p.where.rsplit(":", 1)[1], p.reason) for p in first.problems] == [
        ("image[1]#6", "box_outside_image"),
        ("image[1]#7", "degenerate_box"),
        ("image[1]#8", "malformed_entry"),
    ]
    assert [(p.where.rsplit(":", 1)[1], p.reason) for p in rest] == [
        ("image[2]", "missing_image"),
        ("image[3]", "malformed_entry"),
    ]


def test_clipping_can_be_switched_off_and_resolution_is_the_fallback(tmp_path):
    root = _dataset(tmp_path)
    ctx = ParseContext("original", "test", {"dataset": root}, {"clip_boxes": False})
    first = next(svt.parse(ctx))
    assert first.instances[3].points == ((-12, -3), (48, 37)) and len(first.instances) == 6
    # an image whose header cannot be read: the XML's Resolution decides the clip
    (root / "svt1" / "img" / "14_03.jpg").write_bytes(b"not a jpeg")
    first = next(svt.iter_original(root, "test"))
    assert first.instances[4].points == ((1230, 850), (1280, 880))


def test_split_file_missing_and_broken_xml(tmp_path):
    root = _dataset(tmp_path)
    assert [p.reason for p in svt.iter_original(root, "train")] == ["missing_annotation"]
    (root / "svt1" / "test.xml").write_text("<tagset><image>", encoding="utf-8")
    assert [p.reason for p in svt.iter_original(root, "test")] == ["invalid_xml"]


def test_case_sensitive_input_reads_the_split_folder(tmp_path):
    for split, label in (("train", "Living"), ("test", "Martinotti's")):
        folder = tmp_path / "repo-sha" / f"svt_{split}"
        (folder / "IMG").mkdir(parents=True)
        (folder / "label").mkdir()
        (folder / "IMG" / "1.jpg").write_bytes(b"jpg")
        (folder / "label" / "1.txt").write_bytes(label.encode())
    ctx = ParseContext("case_sensitive", "test", {"relabel": tmp_path}, {})
    assert [i.text for i in svt.parse(ctx)] == ["Martinotti's"]


# --- end to end over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    return sample_mirror(tmp_path_factory.mktemp("svt_mirror"), "svt")


def _build(tmp_path, mirror, source="svt", **kw):
    return build_one(tmp_path, mirror, source, **kw)


def test_fixture_is_native(mirror):
    with zipfile.ZipFile(mirror / gen.ARCHIVE) as zf:
        names = set(zf.namelist())
        xml = zf.read("svt1/train.xml").decode()
    assert {"svt1/train.xml", "svt1/test.xml", "svt1/img/14_03.jpg"} <= names
    assert 'x="-4"' in xml and "&amp;" in xml and "<lex>\n" in xml


@pytest.mark.parametrize(("source", "split"), [("svt", "train"), ("svt_test", "test")])
def test_build_cuts_the_clipped_boxes(tmp_path, mirror, source, split):
    summary, records = _build(tmp_path, mirror, source)
    scenes = gen.scenes()[split]
    expected = [
        (t.text, gen.clipped(box, sc.size)) for sc in scenes for t, box in zip(sc.spec.tags, sc.boxes)
    ]
    assert summary.kept == len(expected) and summary.dropped == {}
    assert [r["label"] for r in records] == [LabelPolicy("36").normalize(t)[0] for t, _ in expected]
    traps = [t.trap for sc in scenes for t in sc.spec.tags]
    assert sum(1 for t in traps if t) >= 2
    for record, (_, (x0, y0, x1, y1)), trap in zip(records, expected, traps):
        assert record["meta"]["points"] == [[x0, y0], [x1, y1]]
        crop = cv2.imdecode(np.frombuffer(record["image"], np.uint8), cv2.IMREAD_COLOR)
        assert crop.shape[:2] == (y1 - y0, x1 - x0)  # the clipped box, exactly
        assert float(crop.std()) > 10, record["key"]
        if trap.startswith("neg"):
            assert (x0, y0)[trap == "neg_y"] == 0


@pytest.mark.parametrize(
    ("inp", "fork"), [("case_sensitive", "jyouhou"), ("case_sensitive_parseq", "parseq")]
)
def test_build_case_sensitive_relabels(tmp_path, mirror, inp, fork):
    summary, records = _build(tmp_path, mirror, "svt_test", input=inp, charset="94")
    labels = relabels.labels(fork)["svt_test"]
    assert [r["label"] for r in records] == labels and summary.kept == len(labels)
    assert ("B00KS" in labels) == (fork == "jyouhou")
    archive = relabels.ARCHIVE if fork == "jyouhou" else relabels.PARSEQ_ARCHIVE
    with zipfile.ZipFile(mirror / archive) as zf:
        top = archive.removesuffix(".zip")
        assert records[0]["image"] == zf.read(f"{top}/svt_test/IMG/1.jpg")


def test_problem_reasons_are_counted(tmp_path):
    root = _dataset(tmp_path)
    items = list(svt.parse(ParseContext("original", "test", {"dataset": root}, {})))
    reasons = [p.reason for i in items for p in (i.problems if isinstance(i, AnnotatedImage) else [i])]
    assert sorted(reasons) == sorted(
        ["box_outside_image", "degenerate_box", "malformed_entry", "missing_image", "malformed_entry"]
    )
    assert all(isinstance(p, Problem) for i in items if not isinstance(i, AnnotatedImage) for p in [i])
