"""SCUT-CTW1500: parser quirks on inline native XML and test-format TXT, and an end-to-end build from a
sample mirror served over HTTP."""

import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.crop import crop_word
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import ctw1500 as ctw_samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import ctw1500
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, read_text
from tests._source_helpers import check_crop, read_built, serve, word_size

OLATHE_SEGS = (
    "131,58,208,49,279,56,346,76,412,101,473,141,530,192,"
    "510,246,458,210,405,175,350,151,291,137,228,133,165,134"
)
# The official README's example (data/README.md), misspelled closing tag included, plus more boxes.
README_XML = f"""<Annotations>
 <image file="0200.jpg">
  <box height="197" left="131" top="49" width="399">
   <label>OLATHE</label>
   <segs>{OLATHE_SEGS}</segs>
   <pts x="183" y="95" />
   <pts x="251" y="89" />
   <pts x="322" y="107" />
   <pts x="383" y="124" />
   <pts x="441" y="161" />
   <pts x="493" y="201" />
  </box>
  <box height="20" left="10" top="10" width="60">
   <label>
     H&amp;M  STORE
   </label>
   <segs>10,10,20,10,30,10,40,10,50,10,60,10,70,10,70,30,60,30,50,30,40,30,30,30,20,30,10,30</segs>
  </box>
  <box height="20" left="10" top="40" width="60">
   <label>###</label>
   <segs>10,40,20,40,30,40,40,40,50,40,60,40,70,40,70,60,60,60,50,60,40,60,30,60,20,60,10,60</segs>
  </box>
  <box height="20" left="10" top="70" width="60"><label>no segs</label></box>
  <box><label>odd</label><segs>1,2,3,4,5,6,7,8,9</segs></box>
  <box><label>text</label><segs>1,2,3,x,5,6,7,8</segs></box>
  <box><label>two</label><segs>1,2,30,20</segs></box>
  <box><label>中文</label><segs>10,10,70,10,70,30,10,30</segs></box>
  <box><label/><segs>10,10,70,10,70,30,10,30</segs></box>
 </image>
</Annotataions>
"""
# MMOCR's unit-test lines of the test split's TXT (test_ctw1500_parser.py), then a comma in a transcription.
TEST_TXT = (
    "\ufeff48,84,61,79,75,73,88,68,102,74,116,79,130,84,135,73,119,67,104,60,89,56,74,61,59,67,45,73,#######\r\n"
    "51,137,58,137,66,137,74,137,82,137,90,137,98,137,98,119,90,119,82,119,74,119,66,119,58,119,50,119,####E-313\r\n"
    "41,193,57,193,74,194,90,194,107,195,123,195,140,196,146,168,128,167,110,167,92,167,74,166,56,166,39,166,"
    "####F.D.N.Y.\r\n"
    "\r\n"
    "10,10,70,10,70,30,10,30,####1,000 YEARS, OLD\r\n"
    "10,10,70,10,70,30,10,30,#####1\r\n"
    "10,10,70,10,70,30,10,30,no separator\r\n"
    "10,10,70,10,70,x,10,30,####bad\r\n"
)


def test_readme_xml_quirks():
    instances, problems = ctw1500.parse_xml(README_XML.encode(), "0200.xml")
    assert [(i.text, i.ignore, len(i.points)) for i in instances] == [
        ("OLATHE", False, 14),
        ("H&M  STORE", False, 14),  # &amp; decoded, surrounding whitespace of the element stripped
        ("###", True, 14),
        ("", False, 4),  # <label/>: left to the label policy (`empty_label`)
    ]
    olathe = instances[0]
    assert olathe.points == tuple(
        zip(map(int, OLATHE_SEGS.split(",")[::2]), map(int, OLATHE_SEGS.split(",")[1::2]))
    )
    assert olathe.attrs["box"] == {"left": 131, "top": 49, "width": 399, "height": 197}
    assert "reoriented" not in olathe.attrs  # the training XML is clockwise already
    assert [(p.where, p.reason) for p in problems] == [
        ("0200.xml#4", "malformed_annotation"),  # no <segs>
        ("0200.xml#5", "malformed_annotation"),  # odd number of values
        ("0200.xml#6", "malformed_annotation"),  # non-numeric value
        ("0200.xml#7", "degenerate_polygon"),  # 2 points would read as a box
        ("0200.xml#8", "language_filtered"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        README_XML.encode().replace(b"</Annotataions>", b"</Annotations>"),
        b'<?xml version="1.0" encoding="utf-8"?>\n' + README_XML.encode(),
        b"\xef\xbb\xbf" + README_XML.encode(),
    ],
)
def test_xml_variants_read_the_same(data):
    instances, _ = ctw1500.parse_xml(data, "0200.xml")
    assert [i.text for i in instances] == ["OLATHE", "H&M  STORE", "###", ""]


def test_broken_xml_is_one_problem():
    instances, (problem,) = ctw1500.parse_xml(b"<Annotations><image><box>", "0001.xml")
    assert instances == () and (problem.where, problem.reason) == ("0001.xml", "invalid_xml")


def test_test_format_txt_quirks(tmp_path):
    path = tmp_path / "0001001.txt"
    path.write_bytes(TEST_TXT.encode("utf-8"))
    text = read_text(path)  # what the parser reads files with: BOM dropped, CRLF -> LF
    instances, problems = ctw1500.parse_txt(text, "0001001.txt")
    assert [(i.text, i.ignore) for i in instances] == [
        ("###", True),  # `#######` = `####` + `###`
        ("E-313", False),
        ("F.D.N.Y.", False),
        ("1,000 YEARS, OLD", False),  # split on `,####` only: commas stay in the transcription
        ("#1", False),
    ]
    # bottom boundary first (counter-clockwise): reversed, so the top-left vertex comes first
    e313 = instances[1]
    assert e313.points[0] == (50, 119) and e313.points[6] == (98, 119) and e313.points[7] == (98, 137)
    assert e313.attrs["reoriented"] is True and ctw1500.signed_area(e313.points) > 0
    assert [(p.where, p.reason) for p in problems] == [
        ("0001001.txt:7", "malformed_annotation"),
        ("0001001.txt:8", "malformed_annotation"),
    ]
    kept_order, _ = ctw1500.parse_txt(text, "0001001.txt", {"reorient_ccw": False})
    assert kept_order[1].points[0] == (51, 137)


def test_reoriented_test_polygon_crops_upright():
    """Top half dark, bottom half bright: the crop of a bottom-first polygon keeps dark on top."""
    image = np.full((200, 200, 3), 230, np.uint8)
    image[119:128, 40:110] = 20
    (line,), _ = ctw1500.parse_txt(TEST_TXT.splitlines()[1], "0001001.txt")
    crop = crop_word(image, line.points, line.text).pixels
    assert crop.shape[:2] == (18, 48)  # 7 + 7 vertices paired top/bottom: neither sheared nor mirrored
    assert crop[: crop.shape[0] // 3].mean() < 40 and crop[-crop.shape[0] // 3 :].mean() > 200


def _layout(tmp_path):
    images, labels = tmp_path / "train_images", tmp_path / "train_labels"
    for rel in (
        "train_images/0200.jpg",
        "train_images/0007.jpg",
        "train_images/1001.JPG",
        "train_images/0009.jpg",
    ):
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        (images / rel).write_bytes(b"not decoded by the parser")
    one = "<Annotations><image file='{0}.jpg'><box><label>{0}</label><segs>1,1,9,1,9,9,1,9</segs></box>"
    one += "</image></Annotations>"
    for stem in ("0200", "0007", "0008"):
        path = labels / "ctw1500_train_labels" / f"{stem}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(one.format(stem), encoding="utf-8")
    (labels / "0001001.txt").write_bytes(b"1,1,9,1,9,9,1,9,####test format\r\n")
    (labels / "README.txt").write_text("not an annotation")
    return images, labels


def test_parse_pairs_by_number(tmp_path):
    images, labels = _layout(tmp_path)
    items = list(ctw1500.parse(ParseContext("xml", "train", {"images": images, "annotations": labels}, {})))
    scenes = [(i.image_id, i.instances[0].text) for i in items if isinstance(i, AnnotatedImage)]
    assert scenes == [("0007", "0007"), ("0200", "0200"), ("1001", "test format")]
    problems = [(p.where.split("/")[-1], p.reason) for p in items if isinstance(p, Problem)]
    assert problems == [("0008.xml", "missing_image"), ("0009.jpg", "missing_annotation")]


def test_recipe_facts_and_defaults_agree():
    r = load_recipe("ctw1500")
    assert (r.group, r.login_required, r.default_input, r.parser) == ("E", False, "xml", "ctw1500")
    assert [(a.name, a.role, a.md5) for a in r.input().archives] == [
        ("train_images.zip", "images", "f1453464b764343040644464d5c0c4fa"),
        ("train_labels.zip", "annotations", "d9ba721b25be95c2d78aeb54f812a5b1"),
    ]
    assert all(
        a.url.startswith("https://universityofadelaide.box.com/shared/static/") for a in r.input().archives
    )
    assert {k: r.options[k] for k in ctw1500.DEFAULTS} == ctw1500.DEFAULTS
    assert r.options["keep_ignored"] is False and r.counts["rebu_syn_instances"] == 3170
    assert {a.name for a in r.input().archives} == set(ctw_samples.ARCHIVES.values())


# --- end to end: the sample mirror over HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["ctw1500"])
    return directory


@pytest.fixture
def server(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as srv:
        yield srv


def expected():
    """Each line of the generator's ground truth -> ("keep", label) or ("drop", reason)."""
    policy = LabelPolicy("36")
    out = []
    for scene in ctw_samples.scenes():
        for line in scene.lines:
            if not line.legible:
                out.append(("drop", "dont_care", scene, line))
            else:
                label, reason = policy.normalize(line.label)
                out.append(("keep", label, scene, line) if label else ("drop", reason, scene, line))
    return out


def test_fixture_carries_the_traps(mirror):
    lines = [line for s in ctw_samples.scenes() for line in s.lines]
    assert all(len(line.points) == 14 for line in lines)
    assert any(line.curved for line in lines) and any(line.vertical for line in lines)
    assert any(line.label == "###" and line.drawn != "###" and not line.drawn.isascii() for line in lines)
    assert any(" " in line.label for line in lines)
    with zipfile.ZipFile(mirror / "train_labels.zip") as zf:
        docs = {n: zf.read(n) for n in zf.namelist()}
    assert sorted(docs) == [f"ctw1500_train_labels/{n:04d}.xml" for n in range(1, 8)]
    assert docs["ctw1500_train_labels/0003.xml"].rstrip().endswith(b"</Annotataions>")
    assert b"<label>H&amp;M</label>" in docs["ctw1500_train_labels/0002.xml"]
    assert b"<pts x=" in docs["ctw1500_train_labels/0001.xml"]
    with zipfile.ZipFile(mirror / "train_images.zip") as zf:
        assert "train_images/0001.jpg" in zf.namelist()


def test_build_from_http_mirror(tmp_path, server):
    (summary,) = build(
        BuildOptions(tmp_path, sources=("ctw1500",), mirror=server.base_url, progress=False)
    ).sources
    truth = expected()
    kept = [t for t in truth if t[0] == "keep"]
    assert summary.kept == len(kept)
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert {"dont_care", "empty_label", "label_too_long"} <= set(summary.dropped)
    samples = read_built(tmp_path, "ctw1500")
    assert [s["label"] for s in samples] == [t[1] for t in kept]
    assert "grandhotel" in {s["label"] for s in samples}  # text lines: spaces dropped by the 36-char policy
    curved = 0
    for sample, (_, _, scene, line) in zip(samples, kept):
        meta = sample["meta"]
        assert meta["image"] == f"{scene.image_id}.jpg" and meta["label_raw"] == line.label
        assert meta["points"] == [list(p) for p in line.points]  # the 14 vertices, unchanged
        check_crop(sample["image"], meta["points"], bool(meta.get("rotated")))
        if line.curved:
            curved += 1
            pixels = cv2.imdecode(np.frombuffer(sample["image"], np.uint8), cv2.IMREAD_COLOR)
            length, height = word_size(line.points)
            pts = np.asarray(line.points)
            bw, bh = pts.max(axis=0) - pts.min(axis=0)
            crop_error = abs(np.log(pixels.shape[1] / pixels.shape[0] / (length / height)))
            assert crop_error < min(abs(np.log(bw / bh / (length / height))), np.log(1.2)), line.label
    assert curved >= 6
    assert any(s["meta"].get("rotated") for s in samples)  # the vertical word comes out horizontal


def test_samples_are_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    ctw_samples.write(a)
    ctw_samples.write(b)
    for path in a.iterdir():
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name
