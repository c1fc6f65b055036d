"""COCO-Text v2: parser quirks on inline native JSON, and an end-to-end build from the sample mirror served
over HTTP."""

import html
import json
import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image

from rebusyn.build import BuildOptions, build
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import coco_text as samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import coco_text
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from tests._source_helpers import check_crop, read_built, serve

# The annotation MMOCR's sample_anno.md shows (hand-edited there: its key is not its id)
MMOCR_SAMPLE = {"mask": [468.9, 286.7, 468.9, 295.2, 493.0, 295.8, 493.0, 287.2], "class": "machine printed",
                "bbox": [468.9, 286.7, 24.1, 9.1], "image_id": 522579, "id": 167312, "language": "english",
                "area": 55.5, "utf8_string": "the", "legibility": "legible"}  # fmt: skip


def ann(text, image_id=522579, ann_id=1, mask=None, **fields):
    entry = {"mask": mask or [10.0, 10.0, 10.0, 30.0, 90.0, 30.0, 90.0, 10.0], "class": "machine printed",
             "bbox": [10.0, 10.0, 80.0, 20.0], "image_id": image_id, "id": ann_id, "language": "english",
             "area": 1600.0, "utf8_string": text, "legibility": "legible"}  # fmt: skip
    entry.update(fields)
    return entry


def dataset(images, annotations, size=(100, 60)):
    """cocotext.v2.json from {image id: (set, [ann, ...])}: string keys, int ids, int imgToAnns lists."""
    imgs, anns, img_to_anns = {}, {}, {}
    for image_id, (split, entries) in images.items():
        imgs[str(image_id)] = {"file_name": samples.file_name(image_id), "height": size[1], "width": size[0],
                               "id": image_id, "set": split}  # fmt: skip
        img_to_anns[str(image_id)] = [e["id"] for e in entries]
        for e in entries:
            anns[str(e["id"])] = e
    anns.update(annotations)
    return {"cats": {}, "info": {}, "imgs": imgs, "anns": anns, "imgToAnns": img_to_anns}


def write_native(tmp_path, data, image_ids, size=(100, 60), raw=None):
    """train2014/ with real image files, and cocotext.v2.json (as the extracted zip holds it)."""
    images = tmp_path / "train2014_x" / "train2014"
    images.mkdir(parents=True)
    for image_id in image_ids:
        Image.new("RGB", size, (90, 120, 150)).save(images / samples.file_name(image_id))
    folder = tmp_path / "cocotext.v2"
    folder.mkdir()
    (folder / "cocotext.v2.json").write_bytes(raw if raw is not None else json.dumps(data).encode())
    return folder, images.parent


def run(tmp_path, data, image_ids=(522579,), size=(100, 60), raw=None, **options):
    ann_dir, img_dir = write_native(tmp_path, data, image_ids, size, raw)
    ctx = ParseContext("train", "train", {"annotations": ann_dir, "images": img_dir}, options)
    return list(coco_text.parse(ctx))


def scenes_of(items):
    return [i for i in items if isinstance(i, AnnotatedImage)]


def test_string_keys_int_ids_and_imgtoanns_int_lists(tmp_path):
    data = dataset({522579: ("train", [ann("STOP", ann_id=7)])}, {})
    data["anns"]["45346"] = MMOCR_SAMPLE  # key != id: found through imgToAnns's 45346, as PARSeq does
    data["imgToAnns"]["522579"].append(45346)
    (scene,) = run(tmp_path, data)
    assert scene.image_id == "522579" and scene.image.name == "COCO_train2014_000000522579.jpg"
    assert [i.text for i in scene.instances] == ["STOP", "the"]
    assert scene.instances[1].attrs["id"] == 167312 and not scene.problems
    # the mask runs TL, BL, BR, TR (counter-clockwise): it comes out TL, TR, BR, BL
    assert scene.instances[1].points == ((468.9, 286.7), (493.0, 287.2), (493.0, 295.8), (468.9, 295.2))


def test_html_entities_are_unescaped_after_stripping(tmp_path):
    words = [ann("AT&amp;T", ann_id=1), ann(" Ben&#39;s ", ann_id=2), ann("&quot;FRESH&quot;", ann_id=3),
             ann("&amp;amp;", ann_id=4), ann("caf&eacute;", ann_id=5)]  # fmt: skip
    data = dataset({522579: ("train", words)}, {})
    (scene,) = run(tmp_path, data)
    assert [i.text for i in scene.instances] == ["AT&T", "Ben's", '"FRESH"', "&amp;", "café"]
    (scene,) = run(tmp_path / "raw", data, html_unescape=False)
    assert [i.text for i in scene.instances] == ["AT&amp;T", "&quot;FRESH&quot;", "&amp;amp;", "caf&eacute;"]
    # unescaping comes before the `#` filter: left escaped, `&#39;` reads as a corrupted label
    assert [(p.where, p.reason) for p in scene.problems] == [("cocotext.v2.json:anns/2", "hash_in_label")]


def test_star_and_hash_markers(tmp_path):
    words = [ann("*ILK", ann_id=1), ann("PIZZ*", ann_id=2), ann("No#5", ann_id=3), ann("#", ann_id=4),
             ann("a*b", ann_id=5), ann("  *x ", ann_id=6)]  # fmt: skip
    data = dataset({522579: ("train", words)}, {})
    (scene,) = run(tmp_path, data)
    assert [i.text for i in scene.instances] == ["#", "a*b"]  # `#` alone passes PARSeq's filter
    assert [(p.where, p.reason) for p in scene.problems] == [
        ("cocotext.v2.json:anns/1", "star_marked"),
        ("cocotext.v2.json:anns/2", "star_marked"),
        ("cocotext.v2.json:anns/3", "hash_in_label"),
        ("cocotext.v2.json:anns/6", "star_marked"),  # stripped first, as PARSeq does
    ]
    (scene,) = run(tmp_path / "off", data, drop_star_marked=False, drop_hash_labels=False)
    assert len(scene.instances) == 6


def test_legibility_language_and_class(tmp_path):
    words = [
        ann("Straße", ann_id=1, language="not english"),
        ann("hello", ann_id=2, **{"class": "handwritten"}),
        ann("Sale", ann_id=3, **{"class": "others"}),
        ann("", ann_id=4, legibility="illegible", language="na"),
        ann("xx", ann_id=5, legibility="illegible", language="not english", **{"class": "others"}),
        {k: v for k, v in ann("", ann_id=6, legibility="illegible").items() if k != "utf8_string"},
        {k: v for k, v in ann("", ann_id=7).items() if k != "utf8_string"},
        ann("ok", ann_id=8, legibility="unreadable"),
        ann("Good", ann_id=9, language="na"),
    ]
    data = dataset({522579: ("train", words)}, {})
    (scene,) = run(tmp_path, data)
    # illegible words stay (as don't-care) whatever their language and class
    assert [(i.text, i.ignore) for i in scene.instances] == [("", True), ("xx", True), ("", True)]
    assert [(p.where.split(":")[1], p.reason) for p in scene.problems] == [
        ("anns/1", "language_filtered"),
        ("anns/2", "class_filtered"),
        ("anns/3", "class_filtered"),
        ("anns/7", "malformed_annotation"),
        ("anns/8", "malformed_annotation"),
        ("anns/9", "language_filtered"),
    ]
    (scene,) = run(tmp_path / "all", data, languages=[], classes=[])
    assert [i.text for i in scene.instances if not i.ignore] == ["Straße", "hello", "Sale", "Good"]


def test_sets_select_the_split_and_order_is_numeric(tmp_path):
    data = dataset(
        {
            10: ("val", [ann("ten", image_id=10, ann_id=1)]),
            9: ("train", [ann("nine", image_id=9, ann_id=2)]),
            100: ("train", [ann("hundred", image_id=100, ann_id=3)]),
        },
        {},
    )
    items = run(tmp_path, data, image_ids=(9, 10, 100))
    assert [s.image_id for s in scenes_of(items)] == ["9", "10", "100"]  # not "10" < "100" < "9"
    items = run(tmp_path / "train", data, image_ids=(9, 10, 100), sets=["train"])
    assert [s.image_id for s in scenes_of(items)] == ["9", "100"]
    (problem,) = [i for i in items if isinstance(i, Problem)]
    assert (problem.where, problem.reason) == ("cocotext.v2.json:imgs/10", "set_filtered")


def test_unusable_pieces_are_problems(tmp_path):
    data = dataset(
        {
            522579: ("train", [ann("ok", ann_id=1), ann("wrong image", image_id=5, ann_id=2)]),
            30: ("train", []),  # a COCO image without text: silently nothing
            77: ("train", [ann("no file", image_id=77, ann_id=3)]),
        },
        {"99": ann("orphan", ann_id=99)},
    )
    data["imgToAnns"]["522579"].append(4242)  # an id with no anns entry
    data["imgToAnns"]["31"] = [5]  # a list for an image that is not in imgs
    data["anns"]["5"] = ann("lost", image_id=31, ann_id=5)
    items = run(tmp_path, data, image_ids=(522579, 30))
    (scene,) = scenes_of(items)
    assert [i.text for i in scene.instances] == ["ok"]
    assert [(p.where.split(":")[1], p.reason) for p in scene.problems] == [
        ("anns/2", "malformed_annotation"),
        ("imgToAnns/522579", "missing_annotation"),
    ]
    rest = [(p.where.split(":")[1], p.reason) for p in items if isinstance(p, Problem)]
    assert rest == [
        ("imgs/77", "missing_image"),
        ("imgToAnns/31", "missing_image"),
        ("anns/5", "orphan_annotation"),
        ("anns/99", "orphan_annotation"),
    ]


def test_masks_become_reading_order_quads(tmp_path):
    cream = [386.1, 93.0, 383.1, 99.5, 354.1, 90.5, 355.6, 85.5]  # bgshih/cocotext data: starts top-right
    strawberry = [479.6, 46.5, 472.6, 53.0, 422.1, 36.0, 421.6, 27.5, 455.6, 35.0]  # 5 vertices
    bowtie = [10.0, 10.0, 90.0, 10.0, 10.0, 30.0, 90.0, 30.0]  # TL, TR, BL, BR: self-intersecting
    words = [ann("cream", ann_id=1, mask=cream), ann("strawberry", ann_id=2, mask=strawberry),
             ann("bowtie", ann_id=3, mask=bowtie), ann("three", ann_id=4, mask=[1.0, 1.0, 9.0, 1.0, 9, 9]),
             ann("none", ann_id=5, mask=None) | {"mask": None},
             ann("broken", ann_id=6) | {"mask": None, "bbox": [1, 2]}]  # fmt: skip
    data = dataset({522579: ("train", words)}, {}, size=(640, 480))
    (scene,) = run(tmp_path, data, size=(640, 480))
    points = {i.text: i.points for i in scene.instances}
    assert points["cream"] == ((355.6, 85.5), (386.1, 93.0), (383.1, 99.5), (354.1, 90.5))
    assert points["bowtie"] == ((10, 10), (90, 10), (90, 30), (10, 30))
    sb = np.array(points["strawberry"])  # its minimum-area rectangle, from the word's left end
    assert len(sb) == 4 and sb[0, 0] < 430 and sb[1, 0] > 470 and sb[0, 1] < sb[3, 1]
    assert points["three"] == points["none"] == ((10, 10), (90, 30))  # too few vertices: the bbox
    assert [(p.where, p.reason) for p in scene.problems] == [
        ("cocotext.v2.json:anns/6", "malformed_annotation")
    ]


def test_geometry_bbox_is_parseqs_padded_crop(tmp_path):
    edge = ann("edge", ann_id=2, bbox=[97.2, 55.5, 2.5, 4.0])
    data = dataset({522579: ("train", [ann("the", ann_id=1, bbox=[46.9, 28.7, 24.1, 9.1]), edge])}, {})
    (scene,) = run(tmp_path, data, geometry="bbox")
    # x0 = floor(46.9) - 2, x1 = x0 + ceil(24.1) + 4; clipped to the annotated 100 x 60 image
    assert [i.points for i in scene.instances] == [((44, 26), (73, 40)), ((95, 53), (100, 60))]
    (scene,) = run(tmp_path / "nopad", data, geometry="bbox", bbox_padding=0)
    assert scene.instances[0].points == ((46, 28), (71, 38))
    with pytest.raises(ValueError, match="geometry"):
        run(tmp_path / "bad", data, geometry="quad")


def test_image_size_mismatch(tmp_path):
    data = dataset({522579: ("train", [ann("STOP")])}, {})
    (problem,) = run(tmp_path, data, size=(60, 100))
    assert problem.reason == "image_size_mismatch" and "rotated" in problem.detail
    (scene,) = run(tmp_path / "off", data, size=(60, 100), check_image_size=False)
    assert scene.instances[0].text == "STOP"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"imgs": {', "invalid_json"),
        (b'[{"imgs": {}}]', "invalid_json"),
        (b'{"imgs": [], "anns": {}, "imgToAnns": {}}', "invalid_json"),
        (b'{"imgs": {"1": {"file_name": "caf\xe9"}}}', "invalid_utf8"),
    ],
)
def test_unusable_json_is_one_problem(tmp_path, raw, reason):
    (problem,) = run(tmp_path, None, raw=raw)
    assert problem.reason == reason


def test_bom_and_plain_json_file(tmp_path):
    data = dataset({522579: ("train", [ann("Café")])}, {})
    raw = b"\xef\xbb\xbf" + json.dumps(data, ensure_ascii=False).encode()
    ann_dir, img_dir = write_native(tmp_path, data, (522579,), raw=raw)
    # the annotation role may also be the JSON itself (a user's unzipped copy)
    ctx = ParseContext("train", "train", {"annotations": ann_dir / "cocotext.v2.json", "images": img_dir}, {})
    (scene,) = coco_text.parse(ctx)
    assert scene.instances[0].text == "Café"
    empty = tmp_path / "empty"
    empty.mkdir()
    ctx = ParseContext("train", "train", {"annotations": empty, "images": img_dir}, {})
    assert [p.reason for p in coco_text.parse(ctx)] == ["missing_annotation"]


def test_recipe_facts_and_defaults_agree():
    r = load_recipe("coco_text")
    assert (r.group, r.login_required, r.default_input, r.parser) == ("R", False, "train", "coco_text")
    assert [(a.name, a.role, a.md5) for a in r.input().archives] == [
        ("cocotext.v2.zip", "annotations", "5e39f7d6f2f11324c6451e63523c440c"),
        ("train2014.zip", "images", "0da8c0bd3d6becc4dcb32757491aca88"),
    ]
    assert {k: r.options[k] for k in coco_text.DEFAULTS} == coco_text.DEFAULTS
    assert r.options["keep_ignored"] is False and r.counts["rebu_syn_instances"] == 72950


# --- end to end: the sample mirror over HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["coco_text"])
    return directory


def expected():
    """Each drawn word (images in numeric id order) -> ("keep", label) or ("drop", reason), by PARSeq's
    rules applied to the generator's ground truth."""
    policy = LabelPolicy("36")
    out = []
    for scene in sorted(samples.scenes(), key=lambda s: int(s.image_id)):
        for word in scene.words:
            f = word.spec.fields
            text = html.unescape(f["utf8_string"].strip())
            if not word.spec.legible:
                verdict = ("drop", "dont_care")
            elif f["language"] != "english":
                verdict = ("drop", "language_filtered")
            elif f["class"] != "machine printed":
                verdict = ("drop", "class_filtered")
            elif "#" in text and text != "#":
                verdict = ("drop", "hash_in_label")
            elif text.startswith("*") or text.endswith("*"):
                verdict = ("drop", "star_marked")
            else:
                label, reason = policy.normalize(text)
                verdict = ("keep", label) if label else ("drop", reason)
            out.append((*verdict, scene, word))
    return out


def test_fixture_carries_the_traps(mirror):
    with zipfile.ZipFile(mirror / "cocotext.v2.zip") as zf:
        assert zf.namelist() == ["cocotext.v2.json"]
        raw = zf.read("cocotext.v2.json")
    data = json.loads(raw)
    assert set(data) == {"cats", "info", "imgs", "anns", "imgToAnns"}
    assert all(isinstance(k, str) and v["id"] == int(k) for k, v in data["imgs"].items())
    assert all(isinstance(i, int) for ids in data["imgToAnns"].values() for i in ids)
    assert {v["set"] for v in data["imgs"].values()} == {"train", "val"}
    assert [] in data["imgToAnns"].values()
    anns = data["anns"].values()
    assert {len(a["mask"]) for a in anns} == {8, 10, 28}  # quads, 5-vertex masks, a curved word
    assert b"&amp;" in raw and b"&#39;" in raw and b"\\u041c" in raw  # entities; Cyrillic as \u escapes
    assert {a["language"] for a in anns} == {"english", "not english", "na"}
    assert {a["class"] for a in anns} == {"machine printed", "handwritten", "others"}
    assert any(a["legibility"] == "illegible" and a["utf8_string"] == "" for a in anns)
    words = [w for s in samples.scenes() for w in s.words]
    assert any(w.vertical for w in words) and any(w.curved for w in words)
    with zipfile.ZipFile(mirror / "train2014.zip") as zf:
        names = zf.namelist()
    assert "train2014/COCO_train2014_000000000009.jpg" in names and len(names) == len(samples.scenes()) + 3


def test_build_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(
            BuildOptions(tmp_path, sources=("coco_text",), mirror=server.base_url, progress=False)
        ).sources
    truth = expected()
    kept = [t for t in truth if t[0] == "keep"]
    assert summary.kept == len(kept)
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert {"dont_care", "language_filtered", "class_filtered", "hash_in_label", "star_marked", "empty_label",
            "label_too_long"} <= set(summary.dropped)  # fmt: skip
    with zipfile.ZipFile(mirror / "cocotext.v2.zip") as zf:
        masks = {
            a["utf8_string"]: a["mask"] for a in json.loads(zf.read("cocotext.v2.json"))["anns"].values()
        }
    built = read_built(tmp_path, "coco_text")
    assert [s["label"] for s in built] == [t[1] for t in kept]
    exact = 0
    for sample, (_, _, scene, word) in zip(built, kept):
        meta = sample["meta"]
        assert meta["image"] == samples.file_name(int(scene.image_id))
        assert meta["label_raw"] == html.unescape(word.spec.fields["utf8_string"].strip())
        if len(masks[word.spec.fields["utf8_string"]]) == 8:
            # a 4-vertex mask from any start vertex, either way round: the word's own TL, TR, BR, BL again
            assert meta["points"] == [list(p) for p in word.points]
            exact += 1
        else:
            # 5+ vertices: the minimum-area rectangle of the drawn polygon
            (_, _), (w, h), _ = cv2.minAreaRect(np.array(word.points, np.float32))
            pts = np.array(meta["points"])
            sides = sorted([np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[1])])
            assert np.allclose(sides, sorted([w, h]), atol=1.5)
        check_crop(sample["image"], meta["points"], bool(meta.get("rotated")))
    assert exact >= 10
    assert sum(bool(s["meta"].get("rotated")) for s in built) == sum(w.vertical for _, _, _, w in kept)


def test_samples_are_reproducible(tmp_path):
    samples.write(tmp_path / "a")
    samples.write(tmp_path / "b")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_json_is_walked_lazily_and_emptied(tmp_path, monkeypatch):
    """No second structure: entries are popped from the one parsed JSON as images are built."""
    data = dataset({9: ("train", [ann("nine", 9, 1)]), 10: ("train", [ann("ten", 10, 2)])}, {})
    held = json.loads(json.dumps(data))
    monkeypatch.setattr("rebusyn.sources._coco_like.load_json", lambda path: (held, None))
    ann_dir, img_dir = write_native(tmp_path, data, (9, 10))
    items = coco_text.parse(ParseContext("train", "train", {"annotations": ann_dir, "images": img_dir}, {}))
    first = next(items)
    assert first.image_id == "9" and list(held["anns"]) == ["2"] and list(held["imgs"]) == ["10"]
    assert [i.image_id for i in items] == ["10"]
    assert held["imgs"] == held["anns"] == held["imgToAnns"] == {}
