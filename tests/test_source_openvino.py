"""OpenVINO Open Images V5 text annotation: parser quirks on inline native JSON, and an end-to-end build
from the sample mirror served over HTTP."""

import json
import tarfile
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image

from rebusyn.build import BuildOptions, build
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import openvino as samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import openvino
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from tests._source_helpers import check_crop, read_built, serve

QUAD = [10, 10, 90, 12, 89, 30, 11, 29]


def ann(text, ann_id, image_id=0, polygon=None, legible=True, language="english", **fields):
    polygon = polygon or QUAD
    xs, ys = polygon[0::2], polygon[1::2]
    bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
    entry = {"bbox": bbox, "segmentation": [polygon],
             "attributes": {"transcription": text, "legible": legible, "language": language, "chars": []},
             "ignore": 0, "id": ann_id, "image_id": image_id, "area": bbox[2] * bbox[3],
             "iscrowd": 1 - int(legible), "category_id": 1}  # fmt: skip
    entry.update(fields)
    return entry


def dataset(images, annotations, size=(120, 80)):
    """COCO instances as TextOnlyCocoAnnotation writes them; `images` are file names, ids 0-based."""
    return {
        "type": "instances",
        "images": [
            {"file_name": name, "height": size[1], "width": size[0], "id": i} for i, name in enumerate(images)
        ],
        "categories": [{"supercategory": "none", "name": "text", "id": 1}],
        "annotations": annotations,
    }


def run(tmp_path, *files, tars=None, size=(120, 80), **options):
    """Extracted subset tars (`{subset: [ImageID, ...]}`) and one JSON per `files` entry."""
    roles = {}
    for subset, ids in (tars or {"train_1": ["1a2b3c4d5e6f7081"]}).items():
        folder = tmp_path / subset / subset
        folder.mkdir(parents=True)
        for image_id in ids:
            Image.new("RGB", size, (60, 160, 90)).save(folder / f"{image_id}.jpg")
        roles[f"images_{subset}"] = folder.parent
    for k, data in enumerate(files):
        path = tmp_path / f"text_spotting_openimages_v5_{k}.json"
        path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
        roles[f"annotations_{k}"] = path
    return list(openvino.parse(ParseContext("train_val", "train", roles, options)))


def test_attributes_legibility_and_language(tmp_path):
    anns = [
        ann("Exchange", 0),
        ann("", 1, legible=False),
        ann("ВЫХОД", 2, language="other"),
        ann("illegible other", 3, legible=False, language="other"),
        ann("ENGLISH", 4, language="English"),
        ann("flagged", 5, ignore=1),
        ann("int flags", 6, legible=1),  # the ICDAR converters write 1/0
    ]
    (scene,) = run(tmp_path, dataset(["openimages_v5/train_1/1a2b3c4d5e6f7081.jpg"], anns))
    assert isinstance(scene, AnnotatedImage) and scene.image_id == "1a2b3c4d5e6f7081"
    assert [(i.text, i.ignore) for i in scene.instances] == [
        ("Exchange", False),
        ("", True),
        ("illegible other", True),
        ("ENGLISH", False),
        ("flagged", True),
        ("int flags", False),
    ]
    assert [(p.where, p.reason) for p in scene.problems] == [
        ("text_spotting_openimages_v5_0.json:annotations/2", "language_filtered")
    ]
    (scene,) = run(tmp_path / "all", dataset(["x/1a2b3c4d5e6f7081.jpg"], anns), languages=[])
    assert "ВЫХОД" in [i.text for i in scene.instances]


def test_older_text_key_and_iscrowd_fallback(tmp_path):
    old = ann("Old", 0)
    old["text"] = old.pop("attributes")  # an older writer stored the attributes under `text`
    crowd = ann("Crowd", 1, iscrowd=1)
    del crowd["attributes"]["legible"]  # legible missing: iscrowd = 1 - legible decides
    broken = ann("x", 2) | {"attributes": "x"}
    (scene,) = run(tmp_path, dataset(["1a2b3c4d5e6f7081.jpg"], [old, crowd, broken]))
    assert [(i.text, i.ignore) for i in scene.instances] == [("Old", False), ("Crowd", True)]
    assert [p.reason for p in scene.problems] == ["malformed_annotation"]


def test_polygons_become_reading_order_quads(tmp_path):
    ccw_from_br = [89, 30, 90, 12, 10, 10, 11, 29]  # BR, TR, TL, BL: counter-clockwise
    five = [50, 11, 90, 12, 89, 30, 11, 29, 10, 10]  # extra vertex on the top edge, starting there
    anns = [ann("ccw", 0, polygon=ccw_from_br), ann("five", 1, polygon=five), ann("none", 2, segmentation=[]),
            ann("flat", 3, segmentation=QUAD)]  # fmt: skip
    (scene,) = run(tmp_path, dataset(["1a2b3c4d5e6f7081.jpg"], anns))
    got = {i.text: i.points for i in scene.instances}
    assert got["ccw"] == ((10, 10), (90, 12), (89, 30), (11, 29))
    five_quad = np.array(got["five"])
    assert len(five_quad) == 4 and five_quad[0, 0] < 15 and five_quad[0, 1] < 15  # min-area rect from TL
    # no polygon list: the bbox (the writer's segmentation is a list of polygons)
    assert got["none"] == got["flat"] == ((10, 10), (90, 30))
    (scene,) = run(tmp_path / "bbox", dataset(["1a2b3c4d5e6f7081.jpg"], anns), geometry="bbox")
    assert {i.points for i in scene.instances} == {((10, 10), (90, 30))}


def test_file_names_resolve_across_subsets_and_ids_repeat_per_file(tmp_path):
    tars = {"train_1": ["1a2b3c4d5e6f7081"], "validation": ["0123456789abcdef"]}
    first = dataset(["openimages_v5/train_1/1a2b3c4d5e6f7081.jpg"], [ann("one", 0)])
    second = dataset(["../images/val/0123456789abcdef.jpg", "openimages_v5/val/missing0000000.jpg"],
                     [ann("two", 0), ann("gone", 1, image_id=1), ann("nowhere", 2, image_id=7)])  # fmt: skip
    items = run(tmp_path, first, second, tars=tars)
    scenes = [i for i in items if isinstance(i, AnnotatedImage)]
    assert [(s.image_id, s.image.parent.name, s.instances[0].text) for s in scenes] == [
        ("1a2b3c4d5e6f7081", "train_1", "one"),
        ("0123456789abcdef", "validation", "two"),
    ]
    rest = [(p.where, p.reason) for p in items if isinstance(p, Problem)]
    assert rest == [
        ("text_spotting_openimages_v5_1.json:images/1", "missing_image"),
        ("text_spotting_openimages_v5_1.json:images/7", "missing_image"),
    ]


def test_malformed_entries_and_images_without_words(tmp_path):
    data = dataset(["1a2b3c4d5e6f7081.jpg", "1a2b3c4d5e6f7081.jpg", "1a2b3c4d5e6f7082.jpg"], [ann("ok", 0)])
    data["images"][1]["id"] = 0  # listed twice
    data["images"].append({"id": 3})  # no file_name
    data["annotations"].append({"id": 1, "image_id": None})
    items = run(tmp_path, data)
    assert [(type(i).__name__, getattr(i, "reason", None)) for i in items] == [
        ("Problem", "malformed_annotation"),
        ("AnnotatedImage", None),
        ("Problem", "duplicate_image"),
        ("Problem", "malformed_annotation"),
    ]  # image 2 has no annotations: nothing to report


def test_image_size_is_checked(tmp_path):
    items = run(tmp_path, dataset(["1a2b3c4d5e6f7081.jpg"], [ann("x", 0)], size=(80, 120)))
    assert [p.reason for p in items] == ["image_size_mismatch"]


@pytest.mark.parametrize(
    "raw", [b"{", b'{"images": {}, "annotations": []}', b'{"type": "instances"}', b"\xff\xfe{}"]
)
def test_unusable_json_is_one_problem(tmp_path, raw):
    (problem,) = run(tmp_path, raw)
    assert problem.reason in ("invalid_json", "invalid_utf8")


def test_recipe_facts_and_defaults_agree():
    r = load_recipe("openvino")
    assert (r.group, r.login_required, r.default_input, r.parser) == ("R", False, "train_val", "openvino")
    names = [a.name for a in r.input().archives]
    assert names == [f"{s}.tar.gz" for s in samples.SUBSETS] + [samples.json_name(s) for s in samples.SUBSETS]
    assert [a.name for a in r.input("train").archives] == [n for n in names if "validation" not in n]
    assert all(a.md5 is None and a.sha256 is None for a in r.input().archives)  # none published
    assert {k: r.options[k] for k in openvino.DEFAULTS} == openvino.DEFAULTS
    assert r.options["keep_ignored"] is False


# --- end to end: the sample mirror over HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["openvino"])
    return directory


def expected():
    """Each word (files in recipe order, images in file order) -> ("keep", label) or ("drop", reason)."""
    policy = LabelPolicy("36")
    out = []
    for subset in samples.SUBSETS:
        for scene in (s for s in samples.scenes() if s.fields["subset"] == subset):
            for word in scene.words:
                if not word.spec.legible:
                    out.append(("drop", "dont_care", scene, word))
                elif word.spec.fields["language"] != "english":
                    out.append(("drop", "language_filtered", scene, word))
                else:
                    label, reason = policy.normalize(word.spec.fields["transcription"])
                    out.append(("keep", label, scene, word) if label else ("drop", reason, scene, word))
    return out


def test_fixture_carries_the_traps(mirror):
    data = json.loads((mirror / samples.json_name("train_1")).read_bytes())
    assert list(data) == ["type", "images", "categories", "annotations"]
    assert [i["id"] for i in data["images"]] == [0, 1] and [a["id"] for a in data["annotations"]] == list(
        range(len(data["annotations"]))
    )
    assert all(a["iscrowd"] == 1 - int(a["attributes"]["legible"]) for a in data["annotations"])
    lengths = set()
    for subset in samples.SUBSETS:
        annotations = json.loads((mirror / samples.json_name(subset)).read_bytes())["annotations"]
        lengths |= {len(a["segmentation"][0]) for a in annotations}
    assert lengths == {8, 10, 12, 28}
    assert data["images"][0]["file_name"].startswith("openimages_v5/train_1/")
    with tarfile.open(mirror / "validation.tar.gz") as tar:
        assert tar.getnames()[0] == "validation" and all(m.mtime == 1546300800 for m in tar.getmembers())
    words = [w for s in samples.scenes() for w in s.words]
    assert (
        any(w.vertical for w in words)
        and any(w.curved for w in words)
        and not all(w.spec.legible for w in words)
    )


def test_build_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(
            BuildOptions(tmp_path, sources=("openvino",), mirror=server.base_url, progress=False)
        ).sources
    truth = expected()
    kept = [t for t in truth if t[0] == "keep"]
    assert summary.kept == len(kept) and summary.images == len(samples.scenes())
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert {"dont_care", "language_filtered"} <= set(summary.dropped)
    built = read_built(tmp_path, "openvino")
    assert [s["label"] for s in built] == [t[1] for t in kept]
    polygons = {}
    for subset in samples.SUBSETS:
        for a in json.loads((mirror / samples.json_name(subset)).read_bytes())["annotations"]:
            polygons[a["attributes"]["transcription"]] = a["segmentation"][0]
    exact = 0
    for sample, (_, _, scene, word) in zip(built, kept):
        meta = sample["meta"]
        assert meta["image"] == f"{scene.image_id}.jpg"
        if len(polygons[word.spec.text]) == 8:
            assert meta["points"] == [list(p) for p in word.points]  # any start, either way -> TL, TR, BR, BL
            exact += 1
        else:
            (_, _), (w, h), _ = cv2.minAreaRect(np.array(word.points, np.float32))
            pts = np.array(meta["points"])
            sides = sorted([np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[1])])
            assert np.allclose(sides, sorted([w, h]), atol=2.0)
        check_crop(sample["image"], meta["points"], bool(meta.get("rotated")))
    assert exact >= 8
    assert sum(bool(s["meta"].get("rotated")) for s in built) == sum(w.vertical for _, _, _, w in kept) >= 3


def test_samples_are_reproducible(tmp_path):
    samples.write(tmp_path / "a")
    samples.write(tmp_path / "b")
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
