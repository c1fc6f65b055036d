"""ReCTS 2019: JSON quirks on inline native ground truth (lines vs chars, ignore) and a build over HTTP."""

from __future__ import annotations

import json
import zipfile

import pytest

from rebusyn.build import BuildOptions, build, process_scene_image
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import rects as gen
from rebusyn.samplegen import write_samples
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from rebusyn.sources.rects import find_folder, iter_detection, parse, parse_json
from tests._rrc_checks import check_crop, index_rows, lmdb_records
from tests.httpserver import FileServer

SAMPLE = {
    "chars": [
        {"ignore": 0, "transcription": "H", "points": [25, 175, 112, 175, 112, 286, 25, 286]},
        {"ignore": 0, "transcription": "O", "points": [102, 182, 210, 182, 210, 273, 102, 273]},
        {"ignore": 1, "transcription": "金", "points": [300, 10, 340, 10, 340, 50, 300, 50]},
    ],
    "lines": [
        {"ignore": 0, "transcription": "HOKI", "points": [23, 173, 327, 180, 327, 290, 23, 283]},
        {"ignore": 1, "transcription": "模糊", "points": [300, 10, 390, 10, 390, 50, 300, 50]},
        {"ignore": 0, "transcription": "###", "points": [1, 1, 9, 1, 9, 9, 1, 9]},
        {"ignore": False, "transcription": 'Tel:1,"2"', "points": [1, 1, 90, 1, 90, 20, 1, 20]},
    ],
}


def test_lines_are_the_default_level_and_ignore_is_respected():
    instances, problems = parse_json(json.dumps(SAMPLE, ensure_ascii=False), "a.json")
    assert problems == []
    assert [(i.text, i.ignore) for i in instances] == [
        ("HOKI", False),
        ("模糊", True),
        ("###", True),
        ('Tel:1,"2"', False),
    ]
    assert instances[0].points == ((23, 173), (327, 180), (327, 290), (23, 283))


def test_chars_level():
    instances, _ = parse_json(json.dumps(SAMPLE), "a.json", level="chars")
    assert [(i.text, i.ignore) for i in instances] == [("H", False), ("O", False), ("金", True)]


def test_unicode_escapes_and_raw_utf8_are_the_same():
    escaped, _ = parse_json(json.dumps(SAMPLE, ensure_ascii=True), "gt/a.json")
    raw, _ = parse_json(json.dumps(SAMPLE, ensure_ascii=False), "gt_unicode/a.json")
    assert [i.text for i in escaped] == [i.text for i in raw]


def test_malformed_json_and_entries():
    assert parse_json("{not json", "x.json")[1][0].reason == "malformed_json"
    assert parse_json('{"lines": {}}', "x.json")[1][0].reason == "malformed_json"
    assert parse_json('{"chars": []}', "x.json") == ([], [])  # no lines at all: nothing, no error
    bad = {
        "lines": [
            "text",
            {"points": [1, 2, 3], "transcription": "A", "ignore": 0},
            {"points": [1, 1, 9, 1, 9, "x", 1, 9], "transcription": "A", "ignore": 0},
            {"points": [1, 1, 9, 1, 9, 9, 1, 9], "transcription": 5, "ignore": 0},
            {"points": [1, 1, 9, 1, 9, 9, 1, 9], "transcription": "A", "ignore": 2},
            {"points": [1, 1, 9, 1, 9, 9, 1, 9, 0, 5, 0, 3], "transcription": "poly"},
        ]
    }
    instances, problems = parse_json(json.dumps(bad), "x.json")
    assert [p.where for p in problems] == [f"x.json:lines[{i}]" for i in range(5)]
    assert {p.reason for p in problems} == {"malformed_entry"}
    assert len(instances) == 1 and len(instances[0].points) == 6 and not instances[0].ignore


def _dataset(tmp_path, top: str = ""):
    root = tmp_path / "ReCTS"
    base = root / top if top else root
    for folder in ("img", "gt", "gt_unicode"):
        (base / folder).mkdir(parents=True)
    return root, base


def test_folders_pairing_and_language_filter(tmp_path):
    root, base = _dataset(tmp_path, top="ReCTS")  # an extra top folder is tolerated
    doc = {
        "chars": [],
        "lines": SAMPLE["lines"]
        + [{"points": [1, 1, 9, 1, 9, 9, 1, 9], "transcription": "7天酒店", "ignore": 0}],
    }
    for n in (10, 2):
        (base / "img" / f"train_ReCTS_{n:06d}.jpg").write_bytes(b"jpg")
        (base / "gt_unicode" / f"train_ReCTS_{n:06d}.json").write_text(json.dumps(doc, ensure_ascii=False))
    (base / "img" / "train_ReCTS_000003.jpg").write_bytes(b"jpg")
    (base / "gt_unicode" / "train_ReCTS_000003.json").write_bytes('{"lines": []}'.encode("utf-16"))
    (base / "img" / "train_ReCTS_000004.jpg").write_bytes(b"jpg")
    items = list(iter_detection(root, {}))
    assert [i.image_id if isinstance(i, AnnotatedImage) else i.reason for i in items] == [
        "train_ReCTS_000002",
        "invalid_utf8",
        "missing_annotation",
        "train_ReCTS_000010",
    ]
    first = items[0]
    assert [i.text for i in first.instances] == [
        "HOKI",
        "模糊",
        "###",
        'Tel:1,"2"',
    ]  # ignored ones stay don't care
    gt = base / "gt_unicode" / "train_ReCTS_000002.json"
    assert [(p.where, p.reason) for p in first.problems] == [(f"{gt}:lines[4]", "language_filtered")]
    kept = list(iter_detection(root, {"latin_only": False}))[0]
    assert kept.instances[-1].text == "7天酒店"


def test_annotation_folder_option_and_missing_folders(tmp_path):
    root, base = _dataset(tmp_path)
    (base / "img" / "a_1.jpg").write_bytes(b"jpg")
    (base / "gt" / "a_1.json").write_text(json.dumps({"lines": [SAMPLE["lines"][0]]}))
    assert list(iter_detection(root, {})) == [
        Problem(
            str(base / "img" / "a_1.jpg"), "missing_annotation", "no gt_unicode/<name>.json for this image"
        )
    ]
    (item,) = iter_detection(root, {"annotation_folder": "gt"})
    assert item.instances[0].text == "HOKI"
    (base / "gt_unicode").rmdir()
    assert [p.reason for p in iter_detection(root, {})] == ["missing_annotation"]
    assert find_folder(root, "img") == base / "img"
    with pytest.raises(ValueError, match="level"):
        list(iter_detection(root, {"level": "words"}))


# --- end to end over HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rects_mirror")
    write_samples(directory, ["rects"])
    return directory


def test_fixture_is_native(mirror):
    with zipfile.ZipFile(mirror / "ReCTS.zip") as zf:
        names = zf.namelist()
        raw = zf.read("gt_unicode/train_ReCTS_000001.json")
        escaped = zf.read("gt/train_ReCTS_000001.json")
    assert {n.split("/")[0] for n in names} == {"img", "gt", "gt_unicode"}
    assert "小肥羊".encode() in raw and b"\\u5c0f" in escaped
    assert json.loads(raw) == json.loads(escaped) and list(json.loads(raw)) == ["chars", "lines"]


def _expected(policy: LabelPolicy) -> tuple[list[str], dict[str, int]]:
    labels: list[str] = []
    dropped: dict[str, int] = {}
    for scene in gen.scenes():
        for word in scene.words:
            spec = word.word
            if not spec.legible:
                reason = "dont_care"
            elif not spec.attrs["latin"]:
                reason = "language_filtered"
            else:
                label, reason = policy.normalize(spec.text)
                if label is not None:
                    labels.append(label)
                    continue
            dropped[reason] = dropped.get(reason, 0) + 1
    return labels, dropped


def test_build_from_http_mirror(tmp_path, mirror):
    with FileServer(mirror) as server:
        (summary,) = build(
            BuildOptions(tmp_path, sources=("rects",), mirror=server.base_url, progress=False)
        ).sources
    labels, dropped = _expected(LabelPolicy("36"))
    assert summary.kept == len(labels) and summary.dropped == dropped
    assert {"hoki", "kfc", "7daysinn", "tel01066668888", "luckystar", "cafe"} <= set(labels)
    rows = index_rows(tmp_path, "rects")
    assert [r["label"] for r in rows] == labels
    records = lmdb_records(tmp_path, rows)
    assert [label for _, label, _ in records] == labels
    for image, _, meta in records:
        check_crop(image, meta)
    report = json.loads(summary.report.read_text())
    assert [(i["name"], i["origin"]) for i in report["inputs"]] == [("ReCTS.zip", "mirror")]


def test_chars_level_on_the_fixture(tmp_path, mirror):
    with zipfile.ZipFile(mirror / "ReCTS.zip") as zf:
        zf.extractall(tmp_path)
    ctx = ParseContext("detection", "train", {"dataset": tmp_path}, {"level": "chars"})
    first = next(parse(ctx))
    assert [i.text for i in first.instances] == list("HOKITEA") + ["###"]
    samples, drops = process_scene_image(
        first, source="rects", group="R", policy=LabelPolicy("36"), options={}
    )
    assert [s.label for s in samples] == list("hokitea")
    assert sorted({d.reason for d in drops}) == ["dont_care", "language_filtered"]
    for sample in samples:
        check_crop(sample.image, {"key": sample.key, **sample.extra})
