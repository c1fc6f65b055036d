"""TextOCR v0.1: parser quirks on inline native JSON, and an end-to-end build from the sample mirror served
over HTTP."""

import json
import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image

from rebusyn.build import BuildOptions, build
from rebusyn.crop import crop_word, decode_image
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import textocr as samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import textocr
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from tests._source_helpers import check_crop, read_built, serve

IMG = "a4ea732cd3d5948a"
CURVE = [10.0, 40.0, 30.0, 30.0, 50.0, 26.0, 70.0, 26.0, 90.0, 30.0, 110.0, 40.0,
         110.0, 60.0, 90.0, 50.0, 70.0, 46.0, 50.0, 46.0, 30.0, 50.0, 10.0, 60.0]  # fmt: skip


def ann(text, n=1, image_id=IMG, points=None, **fields):
    points = points or [10.5, 10.25, 90.0, 12.0, 89.0, 30.0, 11.0, 29.0]
    xs, ys = points[0::2], points[1::2]
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    entry = {"id": f"{image_id}_{n}", "image_id": image_id, "bbox": bbox, "utf8_string": text,
             "points": points, "area": bbox[2] * bbox[3]}  # fmt: skip
    entry.update(fields)
    return entry


def dataset(images, size=(120, 80), split="train"):
    """TextOCR_0.1_<split>.json from {image id: [ann, ...]}: string ids, file_name train/<id>.jpg."""
    imgs, anns, img_to_anns = {}, {}, {}
    for image_id, entries in images.items():
        imgs[image_id] = {"id": image_id, "width": size[0], "height": size[1], "set": split,
                          "file_name": f"train/{image_id}.jpg"}  # fmt: skip
        img_to_anns[image_id] = [e["id"] for e in entries]
        anns.update({e["id"]: e for e in entries})
    return {"info": {}, "imgs": imgs, "anns": anns, "imgToAnns": img_to_anns}


def run(tmp_path, *files, images=(IMG,), size=(120, 80), **options):
    """train_images/ (what the zip extracts to) + one JSON per `files` entry (a dict or raw bytes)."""
    folder = tmp_path / "train_val_images" / "train_images"
    folder.mkdir(parents=True)
    for image_id in images:
        Image.new("RGB", size, (200, 180, 90)).save(folder / f"{image_id}.jpg")
    roles = {"images": folder.parent}
    for k, data in enumerate(files):
        path = tmp_path / f"TextOCR_0.1_{k}.json"
        path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
        roles[f"annotations_{k}"] = path
    return list(textocr.parse(ParseContext("train_val", "train", roles, options)))


def test_string_ids_and_train_prefix_remapped(tmp_path):
    (scene,) = run(tmp_path, dataset({IMG: [ann("Coca-Cola"), ann("I'M", 2)]}))
    assert isinstance(scene, AnnotatedImage) and scene.image_id == IMG
    assert scene.image.parent.name == "train_images"  # JSON says train/<id>.jpg
    assert [(i.text, i.attrs["id"]) for i in scene.instances] == [
        ("Coca-Cola", f"{IMG}_1"),
        ("I'M", f"{IMG}_2"),
    ]
    assert scene.instances[0].points == ((10.5, 10.25), (90.0, 12.0), (89.0, 30.0), (11.0, 29.0))


def test_dot_marks_illegible_or_non_english(tmp_path):
    words = [ann(".", 1), ann("...", 2), ann(" .", 3), ann("$4.99", 4), ann("Straße", 5)]
    (scene,) = run(tmp_path, dataset({IMG: words}))
    # only the exact "." is the marker (PARSeq's test); punctuation and case are kept
    assert [(i.text, i.ignore) for i in scene.instances] == [
        (".", True),
        ("...", False),
        (" .", False),
        ("$4.99", False),
        ("Straße", False),
    ]
    (scene,) = run(tmp_path / "none", dataset({IMG: words}), illegible_marks=[])
    assert not any(i.ignore for i in scene.instances)


def test_points_order_is_kept_curved_and_rotated(tmp_path):
    upside_down = [90.0, 30.0, 10.0, 29.0, 11.0, 10.0, 89.0, 12.0]  # the text's own TL is bottom-right
    vertical = [40.0, 5.0, 40.0, 75.0, 20.0, 75.0, 20.0, 5.0]  # turned clockwise: TL is the top-right corner
    odd = [10.0, 10.0, 50.0, 8.0, 90.0, 10.0, 90.0, 30.0, 10.0, 30.0]
    words = [ann("curved", 1, points=CURVE), ann("flip", 2, points=upside_down),
             ann("down", 3, points=vertical), ann("odd", 4, points=odd),
             ann("two", 5, points=[1.0, 1.0, 50.0, 20.0])]  # fmt: skip
    (scene,) = run(tmp_path, dataset({IMG: words}))
    got = {i.text: i for i in scene.instances}
    assert len(got["curved"].points) == 12 and got["curved"].points[0] == (10.0, 40.0)
    assert got["flip"].points[0] == (90.0, 30.0) and got["down"].points[0] == (40.0, 5.0)
    assert len(got["odd"].points) == 5  # passed through; the cropper cuts its minimum-area rectangle
    assert got["two"].points == ((1, 1), (50, 20)) and got["two"].attrs["geometry"] == "bbox"


def test_geometry_bbox_is_parseqs_crop(tmp_path):
    words = [ann("w", 1, bbox=[10.5, 10.25, 79.5, 19.75]), ann("edge", 2, bbox=[100.2, 70.9, 30.0, 20.0])]
    (scene,) = run(tmp_path, dataset({IMG: words}), geometry="bbox")
    # floor(x), floor(y), then ceil(w), ceil(h) added: no padding; clipped to the 120 x 80 image
    assert [i.points for i in scene.instances] == [((10, 10), (90, 30)), ((100, 70), (120, 80))]


def test_train_then_val_files_and_problems(tmp_path):
    val_id = "0b8d6c3b9e1f2a44"
    train = dataset(
        {IMG: [ann("one"), ann("bad", 2) | {"points": [1, 2, 3]}, ann("lost", 3) | {"image_id": "zzz"}]}
    )
    train["imgToAnns"][IMG].append(f"{IMG}_9")  # listed, but not in anns
    train["anns"]["orphan_1"] = ann("orphan", 1, image_id="orphan")
    train["imgs"]["ffff000011112222"] = {"id": "ffff000011112222", "width": 120, "height": 80, "set": "train",
                                         "file_name": "train/ffff000011112222.jpg"}  # fmt: skip
    train["imgToAnns"]["ffff000011112222"] = [f"{IMG}_1"]  # no file in the zip (and a shared id)
    train["imgs"]["nothing"] = {"id": "nothing", "file_name": "train/nothing.jpg", "set": "train"}
    train["imgToAnns"]["nothing"] = []
    val = dataset({val_id: [ann("two", 1, image_id=val_id)]}, split="val")
    items = run(tmp_path, train, val, images=(IMG, val_id))
    scenes = [i for i in items if isinstance(i, AnnotatedImage)]
    assert [s.image_id for s in scenes] == [IMG, val_id]
    assert [i.text for i in scenes[0].instances] == ["one"]
    assert [(p.where.split(":")[1], p.reason) for p in scenes[0].problems] == [
        (f"anns/{IMG}_2", "malformed_annotation"),
        (f"anns/{IMG}_3", "malformed_annotation"),
        (f"imgToAnns/{IMG}", "missing_annotation"),
    ]
    rest = [(p.where, p.reason) for p in items if isinstance(p, Problem)]
    assert rest == [
        ("TextOCR_0.1_0.json:imgs/ffff000011112222", "missing_image"),
        ("TextOCR_0.1_0.json:anns/orphan_1", "orphan_annotation"),
    ]


def test_image_size_is_checked(tmp_path):
    items = run(tmp_path, dataset({IMG: [ann("x")]}, size=(80, 120)))
    assert [(p.reason, "rotated" in p.detail) for p in items] == [("image_size_mismatch", True)]
    (scene,) = run(tmp_path / "off", dataset({IMG: [ann("x")]}, size=(80, 120)), check_image_size=False)
    assert scene.instances[0].text == "x"


@pytest.mark.parametrize("raw", [b"", b'{"imgs": {}}', b"[]", b'{"imgs": {"\xff": 1}}'])
def test_unusable_json_is_one_problem(tmp_path, raw):
    (problem,) = run(tmp_path, raw)
    assert problem.reason in ("invalid_json", "invalid_utf8")


def test_recipe_facts_and_defaults_agree():
    r = load_recipe("textocr")
    assert (r.group, r.login_required, r.default_input, r.parser) == ("R", False, "train_val", "textocr")
    assert [(a.name, a.role, a.md5) for a in r.input().archives] == [
        ("train_val_images.zip", "images", "d12dd8098899044e4ae1af34db7ecfef"),
        ("TextOCR_0.1_train.json", "annotations_train", "0f8ba1beefd2ca4d08a4f82bcbe6cfb4"),
        ("TextOCR_0.1_val.json", "annotations_val", "fb151383ea7b3c530cde9ef0d5c08347"),
    ]
    assert [a.role for a in r.input("train").archives] == ["images", "annotations_train"]
    assert {k: r.options[k] for k in textocr.DEFAULTS} == textocr.DEFAULTS
    assert r.options["keep_ignored"] is False and r.counts["train_words"] == 714770


# --- end to end: the sample mirror over HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["textocr"])
    return directory


def expected():
    """Each word (train JSON then val JSON, images in id order) -> ("keep", label) or ("drop", reason)."""
    policy = LabelPolicy("36")
    out = []
    for split in ("train", "val"):
        for scene in sorted(
            (s for s in samples.scenes() if s.fields["set"] == split), key=lambda s: s.image_id
        ):
            for word in scene.words:
                text = word.spec.fields["utf8_string"]
                if text == ".":
                    out.append(("drop", "dont_care", scene, word))
                    continue
                label, reason = policy.normalize(text)
                out.append(("keep", label, scene, word) if label else ("drop", reason, scene, word))
    return out


def test_fixture_carries_the_traps(mirror):
    train = json.loads((mirror / "TextOCR_0.1_train.json").read_bytes())
    assert list(train) == ["info", "imgs", "anns", "imgToAnns"]
    assert all(v["file_name"] == f"train/{k}.jpg" and v["set"] == "train" for k, v in train["imgs"].items())
    assert all(a["id"].startswith(a["image_id"] + "_") for a in train["anns"].values())
    assert {len(a["points"]) for a in train["anns"].values()} == {8, 28}
    words = [w for s in samples.scenes() for w in s.words]
    assert any(
        w.spec.text != "xxxx" and w.spec.fields["utf8_string"] == "." for w in words
    )  # legible, not English
    assert any(w.spec.fields["utf8_string"] == "..." for w in words)
    assert any(w.vertical for w in words) and any(w.curved for w in words)
    assert any(s.fields["upside_down"] for s in samples.scenes())
    with zipfile.ZipFile(mirror / "train_val_images.zip") as zf:
        names = zf.namelist()
    assert all(n.startswith("train_images/") for n in names) and len(names) == len(samples.scenes()) + 1


def test_build_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(
            BuildOptions(tmp_path, sources=("textocr",), mirror=server.base_url, progress=False)
        ).sources
    truth = expected()
    kept = [t for t in truth if t[0] == "keep"]
    assert summary.kept == len(kept) and summary.images == len(samples.scenes())
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert set(summary.dropped) == {"dont_care", "empty_label"}
    built = read_built(tmp_path, "textocr")
    assert [s["label"] for s in built] == [t[1] for t in kept]
    for sample, (_, _, scene, word) in zip(built, kept):
        meta = sample["meta"]
        assert (
            meta["image"] == f"{scene.image_id}.jpg" and meta["label_raw"] == word.spec.fields["utf8_string"]
        )
        assert meta["points"] == [list(p) for p in word.points]  # passed through unchanged
        # vertical words start at their own top-left: warped straight to horizontal, no extra turn needed
        assert not meta.get("rotated")
        check_crop(sample["image"], meta["points"], False)
    assert sum(len(s["meta"]["points"]) > 4 for s in built) >= 3


def test_upside_down_scene_comes_out_upright(tmp_path, mirror):
    """The stored-upside-down scene: each crop equals the crop of the scene turned back, with the points
    turned back too, and not that crop upside down."""
    with serve(mirror, tmp_path / "www") as server:
        build(BuildOptions(tmp_path, sources=("textocr",), mirror=server.base_url, progress=False))
    scene = next(s for s in samples.scenes() if s.fields["upside_down"])
    upright = decode_image(scene.jpeg)[::-1, ::-1]
    built = [s for s in read_built(tmp_path, "textocr") if s["meta"]["image"] == f"{scene.image_id}.jpg"]
    assert len(built) == len(scene.words) >= 3
    for sample in built:
        points = tuple((scene.width - x, scene.height - y) for x, y in sample["meta"]["points"])
        want = crop_word(np.ascontiguousarray(upright), points, "xx").pixels.astype(float)
        got = cv2.resize(decode_image(sample["image"]), want.shape[1::-1]).astype(float)
        assert np.abs(got - want).mean() < 0.5 * np.abs(got - want[::-1, ::-1]).mean()


def test_samples_are_reproducible(tmp_path):
    samples.write(tmp_path / "a")
    samples.write(tmp_path / "b")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
