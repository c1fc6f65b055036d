"""ArT 2019: parser quirks on inline native JSON, and end-to-end builds of both inputs from a sample mirror
served over HTTP."""

import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import art as art_samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import art
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop
from tests._source_helpers import check_crop, read_built, serve

CURVE = [[10, 40], [30, 30], [50, 26], [70, 26], [90, 30], [110, 40], [110, 60], [90, 50], [70, 46], [50, 46],
         [30, 50], [10, 60]]  # fmt: skip


def _entry(text, points=None, language="Latin", illegible=False):
    return {"points": points or [[1, 2], [41, 2], [41, 22], [1, 22]], "transcription": text,
            "language": language, "illegibility": illegible}  # fmt: skip


def _scene_dir(tmp_path, labels, images=("gt_2", "gt_10"), raw=None):
    img = tmp_path / "train_images" / "train_images"
    img.mkdir(parents=True)
    for stem in images:
        (img / f"{stem}.jpg").write_bytes(b"not decoded by the parser")
    ann = tmp_path / "train_labels.json"
    ann.write_bytes(raw if raw is not None else json.dumps(labels).encode())
    return img.parent, ann


def _parse(images, ann, **options):
    return list(
        art.parse(ParseContext("detection", "train", {"images": images, "annotations": ann}, options))
    )


def test_scene_json_quirks(tmp_path):
    labels = {
        "gt_10": [
            _entry("PETROSAINS"),
            _entry("Curved", CURVE),  # 12 vertices: passed through unchanged
            _entry("Odd", [[0, 0], [20, 0], [40, 2], [40, 20], [0, 20]]),  # odd count: still passed through
            _entry("###", illegible=True),
            _entry("###", illegible=False),  # `###` is don't-care even when the flag is false (OpenVINO)
            _entry("中文", language="Chinese"),
            _entry("word", language="latin"),  # language compared case-insensitively, as PARSeq does
            _entry("LocaL#3"),
            _entry(" LocaL#3 "),  # PARSeq strips before comparing with its whitelist
            _entry("#1"),
            _entry("Line", [[1.5, 2.25], [40.0, 2], [40, 20.5], [1, 20]]),  # floats are fine
        ],
        "gt_2": [
            _entry("two", [[1, 1], [30, 20]]),  # 2 vertices would read as a box: refused
            _entry("tri", [[1, 1], [30, 1], [30, 20]]),
            _entry("bad", [[1, "2"], [3, 4], [5, 6], [7, 8]]),
            {"points": [[1, 1], [9, 1], [9, 9], [1, 9]], "language": "Latin", "illegibility": False},
            _entry("flag") | {"illegibility": "false"},
            "not an object",
        ],
        "gt_5": [_entry("no image")],
    }
    images, ann = _scene_dir(tmp_path, labels, images=("gt_2", "gt_10", "gt_99"))
    items = _parse(images, ann)
    scenes = [i for i in items if isinstance(i, AnnotatedImage)]
    assert [s.image_id for s in scenes] == ["gt_2", "gt_10"]  # numeric order, not gt_10 before gt_2
    first, second = scenes
    assert first.instances == ()
    assert [(p.where, p.reason) for p in first.problems] == [
        ("train_labels.json:gt_2#1", "degenerate_polygon"),
        ("train_labels.json:gt_2#2", "degenerate_polygon"),
        ("train_labels.json:gt_2#3", "malformed_annotation"),
        ("train_labels.json:gt_2#4", "malformed_annotation"),
        ("train_labels.json:gt_2#5", "malformed_annotation"),
        ("train_labels.json:gt_2#6", "malformed_annotation"),
    ]
    assert [(i.text, i.ignore) for i in second.instances] == [
        ("PETROSAINS", False),
        ("Curved", False),
        ("Odd", False),
        ("###", True),
        ("###", True),
        ("word", False),
        ("LocaL#3", False),
        (" LocaL#3 ", False),
        ("Line", False),
    ]
    assert second.instances[1].points == tuple(tuple(p) for p in CURVE)
    assert len(second.instances[2].points) == 5
    assert second.instances[-1].points[0] == (1.5, 2.25)
    assert second.instances[0].attrs["language"] == "Latin"
    assert [(p.where, p.reason) for p in second.problems] == [
        ("train_labels.json:gt_10#6", "language_filtered"),
        ("train_labels.json:gt_10#10", "hash_in_label"),
    ]
    rest = [(p.where.split("/")[-1], p.reason) for p in items if isinstance(p, Problem)]
    assert rest == [("train_labels.json:gt_5", "missing_image"), ("gt_99.jpg", "missing_annotation")]


def test_filters_switch_off(tmp_path):
    images, ann = _scene_dir(
        tmp_path, {"gt_2": [_entry("中文", language="Chinese"), _entry("#1")]}, ("gt_2",)
    )
    (scene,) = _parse(images, ann, languages=[], drop_hash_labels=False)
    assert [i.text for i in scene.instances] == ["中文", "#1"] and not scene.problems
    (scene,) = _parse(images, ann, languages=["Chinese"])
    assert [i.text for i in scene.instances] == ["中文"]


@pytest.mark.parametrize(
    "raw",
    [
        "\ufeff" + json.dumps({"gt_2": [_entry("中文招牌", language="Chinese")]}, ensure_ascii=False),
        json.dumps({"gt_2": [_entry("中文招牌", language="Chinese")]}),  # \uXXXX escapes
    ],
)
def test_utf8_bom_and_escapes_read_the_same(tmp_path, raw):
    images, ann = _scene_dir(tmp_path, None, ("gt_2",), raw=raw.encode("utf-8"))
    (scene,) = _parse(images, ann, languages=[])
    assert scene.instances[0].text == "中文招牌"


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"gt_1": [', "Expecting"),
        (b'{"gt_1": [], "gt_1": []}', "duplicate key"),
        (b'[{"gt_1": []}]', "expected an object"),
        (b'{"gt_1": [\xff]}', ""),
    ],
)
def test_unusable_json_is_one_problem(tmp_path, raw, detail):
    images, ann = _scene_dir(tmp_path, None, ("gt_1",), raw=raw)
    (problem,) = _parse(images, ann)
    assert problem.reason in ("invalid_json", "invalid_utf8") and detail in problem.detail


def test_value_that_is_not_a_list(tmp_path):
    images, ann = _scene_dir(tmp_path, {"gt_1": {"points": []}}, ("gt_1",))
    assert [(p.where, p.reason) for p in _parse(images, ann)] == [
        ("train_labels.json:gt_1", "malformed_annotation")
    ]


def _task2(tmp_path, labels, crops):
    folder = tmp_path / "train_task2_images" / "train_task2_images"
    folder.mkdir(parents=True)
    for stem in crops:
        (folder / f"{stem}.jpg").write_bytes(stem.encode())
    ann = tmp_path / "train_task2_labels.json"
    ann.write_text(json.dumps(labels), encoding="utf-8")
    return folder.parent, ann


def test_task2_values_are_one_element_lists(tmp_path):
    labels = {
        "gt_2836_0": [
            {
                "transcription": "URDER",
                "points": [[25, 51], [0, 2], [21, 0], [42, 43]],
                "language": "Latin",
                "illegibility": False,
            }
        ],  # fmt: skip
        "gt_2836_1": [_entry("a"), _entry("b")],
        "gt_2836_2": [],
        "gt_9_0": [_entry("###", illegible=True)],
        "gt_9_1": [_entry("中文", language="Chinese")],
        "gt_9_2": [_entry("#5")],
        "gt_9_3": [_entry("LocaL#3")],
        "gt_9_4": [_entry("gone")],
    }
    crops, ann = _task2(tmp_path, labels, ["gt_2836_0", "gt_9_3", "gt_9_9"])
    ctx = ParseContext("word_crops", "train", {"crops": crops, "crop_annotations": ann}, {})
    items = list(art.parse(ctx))
    got = [
        (i.image_id, i.text) if isinstance(i, WordCrop) else (i.where.split("/")[-1], i.reason) for i in items
    ]
    assert got == [
        ("train_task2_labels.json:gt_9_0", "dont_care"),
        ("train_task2_labels.json:gt_9_1", "language_filtered"),
        ("train_task2_labels.json:gt_9_2", "hash_in_label"),
        ("gt_9_3", "LocaL#3"),
        ("train_task2_labels.json:gt_9_4", "missing_image"),
        ("gt_2836_0", "URDER"),
        ("train_task2_labels.json:gt_2836_1", "malformed_annotation"),
        ("train_task2_labels.json:gt_2836_2", "malformed_annotation"),
        ("gt_9_9.jpg", "missing_annotation"),
    ]
    crop = next(i for i in items if isinstance(i, WordCrop) and i.image_id == "gt_2836_0")
    assert crop.read() == b"gt_2836_0" and crop.attrs == {"language": "Latin"}
    keep = ParseContext(
        "word_crops", "train", {"crops": crops, "crop_annotations": ann}, {"keep_ignored": True}
    )
    assert not any(isinstance(i, Problem) and i.reason == "dont_care" for i in art.parse(keep))


def test_recipe_facts_and_defaults_agree():
    r = load_recipe("art")
    assert (r.group, r.login_required, r.default_input, r.parser) == ("R", True, "detection", "art")
    assert [(a.name, a.role) for a in r.input().archives] == [
        ("train_images.tar.gz", "images"),
        ("train_labels.json", "annotations"),
    ]
    assert [(a.name, a.role) for a in r.input("word_crops").archives] == [
        ("train_task2_images.tar.gz", "crops"),
        ("train_task2_labels.json", "crop_annotations"),
    ]
    for a in (*r.input().archives, *r.input("word_crops").archives):
        assert (
            a.url == f"https://dataset-bj.cdn.bcebos.com/art/{a.name}" and a.md5 is None and a.sha256 is None
        )
    # what the recipe ships is what the parser assumes when an option is missing
    assert {k: r.options[k] for k in ("languages", "drop_hash_labels", "hash_whitelist", "blacklist")} == {
        k: art.DEFAULTS[k] for k in ("languages", "drop_hash_labels", "hash_whitelist", "blacklist")
    }
    assert r.options["keep_ignored"] is False and r.counts["rebu_syn_instances"] == 31966


# --- end to end: the sample mirror over HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["art"])
    return directory


@pytest.fixture
def server(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as srv:
        yield srv


def expected():
    """Each word of the generator's ground truth -> ("keep", label) or ("drop", reason), by PARSeq's rules."""
    policy = LabelPolicy("36")
    out = []
    for scene in art_samples.scenes():
        for word in scene.words:
            if not word.legible:
                out.append(("drop", "dont_care", scene, word))
            elif word.language != "Latin":
                out.append(("drop", "language_filtered", scene, word))
            elif "#" in word.text and word.text.strip() != "LocaL#3":
                out.append(("drop", "hash_in_label", scene, word))
            else:
                label, reason = policy.normalize(word.text)
                out.append(("keep", label, scene, word) if label else ("drop", reason, scene, word))
    return out


def test_fixture_carries_the_traps(mirror):
    words = [w for s in art_samples.scenes() for w in s.words]
    assert {len(w.points) for w in words if w.curved} == {8, 10, 12, 14}
    assert any(w.vertical for w in words) and any(not w.legible for w in words)
    assert {w.language for w in words} == {"Latin", "Chinese"}
    raw = (mirror / "train_labels.json").read_bytes()
    assert b"\\u" in raw and list(json.loads(raw))[:3] == ["gt_0", "gt_1", "gt_2"]
    with tarfile.open(mirror / "train_images.tar.gz") as tar:
        names = tar.getnames()
    assert names[0] == "train_images" and "train_images/gt_10.jpg" in names
    task2 = json.loads((mirror / "train_task2_labels.json").read_bytes())
    assert all(isinstance(v, list) and len(v) == 1 for v in task2.values()) and len(task2) == len(words)


def test_build_detection_from_http_mirror(tmp_path, server):
    (summary,) = build(
        BuildOptions(tmp_path, sources=("art",), mirror=server.base_url, progress=False)
    ).sources
    truth = expected()
    kept = [t for t in truth if t[0] == "keep"]
    assert summary.kept == len(kept)
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert {"dont_care", "language_filtered", "hash_in_label", "empty_label", "label_too_long"} <= set(
        summary.dropped
    )
    samples = read_built(tmp_path, "art")
    assert [s["label"] for s in samples] == [t[1] for t in kept]
    curved = 0
    for sample, (_, _, scene, word) in zip(samples, kept):
        assert sample["meta"]["image"] == f"{scene.image_id}.jpg"
        assert sample["meta"]["points"] == [list(p) for p in word.points]  # polygons passed through unchanged
        assert sample["meta"]["label_raw"] == word.text
        check_crop(sample["image"], sample["meta"]["points"], bool(sample["meta"].get("rotated")))
        curved += word.curved
    assert curved >= 8
    assert any(s["meta"].get("rotated") for s in samples)  # vertical words come out horizontal


def test_build_word_crops_stores_official_bytes(tmp_path, server, mirror):
    opts = BuildOptions(
        tmp_path, sources=("art",), mirror=server.base_url, progress=False, input="word_crops"
    )
    (summary,) = build(opts).sources
    truth = expected()
    assert summary.kept == sum(t[0] == "keep" for t in truth)
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    samples = read_built(tmp_path, "art")
    assert [s["label"] for s in samples] == [t[1] for t in truth if t[0] == "keep"]
    with tarfile.open(mirror / "train_task2_images.tar.gz") as tar:
        crops = {Path(m.name).stem: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    for sample in samples:
        assert sample["image"] == crops[Path(sample["meta"]["image"]).stem]  # byte for byte
        assert sample["key"] == f"art/{sample['meta']['image']}"


def test_login_gated_without_mirror(tmp_path):
    from rebusyn.fetch import ManualDownloadRequired

    with pytest.raises(ManualDownloadRequired) as info:
        build(BuildOptions(tmp_path, sources=("art",), progress=False))
    assert "train_images.tar.gz" in str(info.value) and "train_labels.json" in str(info.value)


def test_samples_are_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    art_samples.write(a)
    art_samples.write(b)
    for path in a.iterdir():
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name
    assert io.BytesIO((a / "train_images.tar.gz").read_bytes()).read(2) == b"\x1f\x8b"
