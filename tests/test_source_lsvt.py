"""LSVT 2019: parser quirks on inline native JSON, and an end-to-end build from a sample mirror over HTTP."""

import json
import re
import tarfile
from collections import Counter

import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import lsvt as lsvt_samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import lsvt
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from tests._source_helpers import check_crop, read_built, serve

QUAD = [[45, 272], [215, 273], [212, 296], [45, 290]]
CURVE = [[0, 10], [50, 0], [100, 10], [100, 30], [50, 20], [0, 30]]


def _entry(text, points=None, illegible=False):
    # the field order of MMOCR's docstring example; no `language` field
    return {"transcription": text, "points": points or QUAD, "illegibility": illegible}


def _layout(tmp_path, labels, part0=("gt_0",), part1=(), raw=None):
    """Images split over the two extracted archives, as the real distribution has them."""
    dirs = {}
    for n, stems in enumerate((part0, part1)):
        folder = tmp_path / f"train_full_images_{n}" / f"train_full_images_{n}"
        folder.mkdir(parents=True)
        for stem in stems:
            (folder / f"{stem}.jpg").write_bytes(f"{n}:{stem}".encode())
        dirs[f"images_{n}"] = folder.parent
    ann = tmp_path / "train_full_labels.json"
    ann.write_bytes(raw if raw is not None else json.dumps(labels, ensure_ascii=False).encode())
    return {**dirs, "annotations": ann}


def _parse(files, **options):
    return list(lsvt.parse(ParseContext("full", "train", files, options)))


def _quirk_labels():
    labels = {
        "gt_0": [
            _entry("一站式购物中心"),  # the MMOCR docstring example: CJK -> dropped
            _entry("KFC肯德基"),  # mixed lines are dropped too
            _entry("Story #"),  # whitelisted, exact match
            _entry("Story # "),  # PARSeq does not strip: not whitelisted
            _entry("#Find YOUR Fun#"),
            _entry("*0#"),
            _entry("#5 Gate"),
            _entry("LOFTINESS*"),
            _entry("###", illegible=True),
            _entry("Open Daily", CURVE),  # polygon passed through unchanged
            _entry("カフェ"),  # kana is outside PARSeq's [\u4e00-\u9fff]: kept (the 36 policy empties it)
            _entry("ＯＰＥＮ"),  # fullwidth Latin: kept, NFKD makes it OPEN
            _entry("Tel", [[1, 1], [9, 9]]),  # 2 vertices would read as a box
            _entry("lang") | {"language": "Latin"},  # a stray field is ignored
        ]
    }
    return labels


def test_parse_quirks(tmp_path):
    files = _layout(tmp_path, _quirk_labels(), part0=("gt_0",))
    (scene,) = _parse(files)
    assert isinstance(scene, AnnotatedImage) and scene.image_id == "gt_0"
    assert [(i.text, i.ignore) for i in scene.instances] == [
        ("Story #", False),
        ("#Find YOUR Fun#", False),
        ("*0#", False),
        ("###", True),
        ("Open Daily", False),
        ("カフェ", False),
        ("ＯＰＥＮ", False),
        ("lang", False),
    ]
    assert scene.instances[4].points == tuple(tuple(p) for p in CURVE)
    assert "language" not in scene.instances[0].attrs
    assert [(p.where, p.reason) for p in scene.problems] == [
        ("train_full_labels.json:gt_0#1", "language_filtered"),
        ("train_full_labels.json:gt_0#2", "language_filtered"),
        ("train_full_labels.json:gt_0#4", "hash_in_label"),
        ("train_full_labels.json:gt_0#7", "hash_in_label"),
        ("train_full_labels.json:gt_0#8", "blacklisted_label"),
        ("train_full_labels.json:gt_0#13", "degenerate_polygon"),
    ]
    policy = LabelPolicy("36")
    assert [policy.normalize(i.text)[0] for i in scene.instances if not i.ignore] == [
        "story", "findyourfun", "0", "opendaily", None, "open", "lang"
    ]  # fmt: skip


def test_filters_switch_off(tmp_path):
    files = _layout(tmp_path, _quirk_labels(), part0=("gt_0",))
    (scene,) = _parse(files, drop_cjk=False, drop_hash_labels=False, blacklist=[])
    assert [p.reason for p in scene.problems] == ["degenerate_polygon"]
    assert scene.instances[0].text == "一站式购物中心"


def test_images_split_over_two_archives(tmp_path):
    labels = {"gt_3": [_entry("A")], "gt_12": [_entry("B")], "gt_0": [_entry("C")], "gt_7": []}
    files = _layout(tmp_path, labels, part0=("gt_0", "gt_3"), part1=("gt_3", "gt_7", "gt_12", "gt_40"))
    items = _parse(files)
    scenes = [i for i in items if isinstance(i, AnnotatedImage)]
    assert [s.image_id for s in scenes] == ["gt_0", "gt_3", "gt_7", "gt_12"]
    assert scenes[1].image.read_bytes() == b"0:gt_3"  # the first archive wins ...
    assert scenes[3].image.read_bytes() == b"1:gt_12"
    assert scenes[2].instances == ()  # an image without text is fine
    problems = [(p.reason, p.where.split("/")[-1]) for p in items if isinstance(p, Problem)]
    assert problems == [
        ("duplicate_image", "gt_3.jpg"),
        ("missing_annotation", "gt_40.jpg"),
    ]  # ... and says so


def test_unusable_json(tmp_path):
    files = _layout(tmp_path, None, raw=b"\xef\xbb\xbf{'gt_1234': [{'transcription': 'x'}]}")  # a Python repr
    (problem,) = _parse(files)
    assert problem.reason == "invalid_json"


def test_recipe_facts_and_defaults_agree():
    r = load_recipe("lsvt")
    assert (r.group, r.login_required, r.default_input, r.parser) == ("R", True, "full", "lsvt")
    assert [(a.name, a.role) for a in r.input().archives] == [
        ("train_full_images_0.tar.gz", "images_0"),
        ("train_full_images_1.tar.gz", "images_1"),
        ("train_full_labels.json", "annotations"),
    ]
    for a in r.input().archives:
        assert (
            a.url == f"https://dataset-bj.cdn.bcebos.com/lsvt/{a.name}" and a.md5 is None and a.sha256 is None
        )
    keys = ("drop_cjk", "drop_hash_labels", "hash_whitelist", "blacklist")
    assert {k: r.options[k] for k in keys} == {k: lsvt.DEFAULTS[k] for k in keys}
    assert r.counts == {"train_images": 30000, "rebu_syn_instances": 8164}


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["lsvt"])
    return directory


def expected():
    """The generator's ground truth through PARSeq's lsvt_converter rules, written out independently."""
    policy = LabelPolicy("36")
    out = []
    for scene in lsvt_samples.scenes():
        for word in scene.words:
            text = word.text
            if not word.legible:
                reason = "dont_care"
            elif re.search(r"[\u4e00-\u9fff]", text):
                reason = "language_filtered"
            elif text == "LOFTINESS*":
                reason = "blacklisted_label"
            elif "#" in text and text not in ("#Find YOUR Fun#", "Story #", "*0#"):
                reason = "hash_in_label"
            else:
                label, reason = policy.normalize(text)
                if label:
                    out.append(("keep", label, scene, word))
                    continue
            out.append(("drop", reason, scene, word))
    return out


def test_fixture_carries_the_traps(mirror):
    words = [w for s in lsvt_samples.scenes() for w in s.words]
    assert {len(w.points) for w in words if w.curved} == {6, 8}
    assert any(w.vertical and re.search(r"[\u4e00-\u9fff]", w.text) for w in words)
    assert any(w.vertical and w.text.isascii() for w in words)
    assert {"Story #", "#Find YOUR Fun#", "*0#", "LOFTINESS*", "#5 Gate", "KFC肯德基"} <= {
        w.text for w in words
    }
    raw = (mirror / "train_full_labels.json").read_bytes()
    assert "一站式购物中心".encode() in raw and b'"language"' not in raw
    for n in (0, 1):
        with tarfile.open(mirror / f"train_full_images_{n}.tar.gz") as tar:
            names = tar.getnames()
        assert names[0] == f"train_full_images_{n}" and all(x.startswith(names[0]) for x in names)


def test_build_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(
            BuildOptions(tmp_path, sources=("lsvt",), mirror=server.base_url, progress=False)
        ).sources
    truth = expected()
    kept = [t for t in truth if t[0] == "keep"]
    assert summary.kept == len(kept) > 10
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert {"dont_care", "language_filtered", "hash_in_label", "blacklisted_label"} <= set(summary.dropped)
    samples = read_built(tmp_path, "lsvt")
    assert [s["label"] for s in samples] == [t[1] for t in kept]
    assert {"story", "findyourfun", "0"} <= {s["label"] for s in samples}
    images = set()
    for sample, (_, _, scene, word) in zip(samples, kept):
        assert sample["meta"]["image"] == f"{scene.image_id}.jpg"
        assert sample["meta"]["points"] == [list(p) for p in word.points]
        check_crop(sample["image"], sample["meta"]["points"], bool(sample["meta"].get("rotated")))
        images.add(int(scene.image_id[3:]))
    assert min(images) < lsvt_samples.SPLIT <= max(images)  # both archives were read
    assert any(s["meta"].get("rotated") for s in samples)
