"""RCTW-17: parser quirks on inline native text, the split image archive, and a build over HTTP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from rebusyn.build import BuildOptions, build, process_scene_image
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import rctw17 as gen
from rebusyn.samplegen import write_samples
from rebusyn.samplegen._rrc_fixture import split_bytes
from rebusyn.sources import _split_archive
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from rebusyn.sources.rctw17 import iter_detection, parse, parse_gt
from tests._rrc_checks import check_crop, index_rows, lmdb_records
from tests.httpserver import FileServer

# --- the ground-truth line format --------------------------------------------------------------------


def test_quoted_transcription_with_commas_and_quotes():
    text = (
        '390,902,1856,902,1856,1225,390,1225,0,"金氏眼镜"\n'
        '1,2,3,4,5,6,7,8,0,"9:00,21:00"\n'
        '1,2,3,4,5,6,7,8,0,"Say "Hi", ok"\n'
        '1,2,3,4,5,6,7,8,0,""\n'
        "1,2,3,4,5,6,7,8,0,NoQuotes\n"
    )
    instances, problems = parse_gt(text, "image_0.txt")
    assert problems == []
    assert [i.text for i in instances] == ["金氏眼镜", "9:00,21:00", 'Say "Hi", ok', "", "NoQuotes"]
    assert instances[0].points == ((390, 902), (1856, 902), (1856, 1225), (390, 1225))
    assert not any(i.ignore for i in instances)
    assert instances[4].attrs.get("unquoted") is True and "unquoted" not in instances[0].attrs


def test_difficult_and_hash_regions_are_dont_care():
    text = (
        '1,1,9,1,9,9,1,9,1,"模糊"\n1,1,9,1,9,9,1,9,1,"###"\n1,1,9,1,9,9,1,9,0,"###"\n1,1,9,1,9,9,1,9,0,"OK"\n'
    )
    instances, _ = parse_gt(text, "g.txt")
    assert [(i.text, i.ignore, i.attrs["difficult"]) for i in instances] == [
        ("模糊", True, True),
        ("###", True, True),
        ("###", True, False),
        ("OK", False, False),
    ]
    # keep_difficult: a difficult region with a real transcription becomes a sample; `###` never does
    kept, _ = parse_gt(text, "g.txt", keep_difficult=True)
    assert [i.ignore for i in kept] == [False, True, True, False]


def test_bom_crlf_floats_and_malformed_lines(tmp_path):
    raw = (
        '\ufeff10.5,20,30,20,30,40,10.5,40,0,"KFC"\r\n'
        "\r\n"
        '1,2,3,4,5,6,7,8,"short"\r\n'
        '1,2,3,4,5,x,7,8,0,"bad"\r\n'
        '1,2,3,4,5,6,7,8,yes,"bad"\r\n'
    ).encode()
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    (tmp_path / "img" / "image_0.jpg").write_bytes(b"jpg")
    (tmp_path / "gt" / "image_0.txt").write_bytes(raw)
    (item,) = iter_detection([tmp_path / "img"], [tmp_path / "gt"], {})
    assert isinstance(item, AnnotatedImage)
    assert [i.text for i in item.instances] == ["KFC"]  # the BOM did not stick to the first coordinate
    assert item.instances[0].points[0] == (10.5, 20)
    gt = tmp_path / "gt" / "image_0.txt"
    assert [(p.where, p.reason) for p in item.problems] == [
        (f"{gt}:3", "malformed_line"),
        (f"{gt}:4", "malformed_line"),
        (f"{gt}:5", "malformed_line"),
    ]


def test_latin_only_filter_and_its_switch(tmp_path):
    (tmp_path / "image_0.jpg").write_bytes(b"jpg")
    (tmp_path / "image_0.txt").write_text(
        '1,1,9,1,9,9,1,9,0,"创于1989"\n1,1,9,1,9,9,1,9,0,"ＯＰＥＮ"\n'
        '1,1,9,1,9,9,1,9,0,"Café"\n1,1,9,1,9,9,1,9,1,"模糊"\n1,1,9,1,9,9,1,9,0,"1989"\n',
        encoding="utf-8",
    )
    (item,) = iter_detection([tmp_path], [tmp_path], {})
    # full-width Latin and diacritics are Latin; the difficult region stays a don't-care instance
    assert [(i.text, i.ignore) for i in item.instances] == [
        ("ＯＰＥＮ", False),
        ("Café", False),
        ("模糊", True),
        ("1989", False),
    ]
    assert [(p.where, p.reason) for p in item.problems] == [
        (f"{tmp_path / 'image_0.txt'}:1", "language_filtered")
    ]
    assert "创于" in item.problems[0].detail
    (everything,) = iter_detection([tmp_path], [tmp_path], {"latin_only": False})
    assert len(everything.instances) == 5 and not everything.problems


def test_pairing_order_missing_files_and_encoding(tmp_path):
    for n in (10, 2, 9):
        (tmp_path / f"image_{n}.jpg").write_bytes(b"jpg")
        (tmp_path / f"image_{n}.txt").write_text('1,1,9,1,9,9,1,9,0,"A"\n', encoding="utf-8")
    (tmp_path / "image_3.jpg").write_bytes(b"jpg")  # no ground truth
    (tmp_path / "image_4.txt").write_text('1,1,9,1,9,9,1,9,0,"A"\n')  # no image
    (tmp_path / "image_2.txt").write_bytes('1,1,9,1,9,9,1,9,0,"金"\n'.encode("gbk"))  # not UTF-8
    items = list(iter_detection([tmp_path], [tmp_path], {}))
    summary = [
        (i.image_id, "ok") if isinstance(i, AnnotatedImage) else (Path(i.where).name, i.reason) for i in items
    ]
    assert summary == [
        ("image_2.txt", "invalid_utf8"),
        ("image_3.jpg", "missing_annotation"),
        ("image_4.txt", "missing_image"),
        ("image_9", "ok"),
        ("image_10", "ok"),  # numeric order, not image_10 < image_2
    ]


# --- the image archive in two parts ------------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _ctx(tmp_path: Path, parts: list[bytes]) -> ParseContext:
    downloads = tmp_path / "root" / "downloads" / "rctw17"
    downloads.mkdir(parents=True)
    files = {}
    for k, data in enumerate(parts, start=1):
        files[f"images_part{k}"] = downloads / f"train_images.zip.00{k}"
        files[f"images_part{k}"].write_bytes(data)
    gts = tmp_path / "gts"
    gts.mkdir()
    for n in (0, 1):
        (gts / f"image_{n}.txt").write_text(f'1,1,9,1,9,9,1,9,0,"W{n}"\n', encoding="utf-8")
    return ParseContext("detection", "train", {**files, "annotations": gts}, {})


def test_byte_split_zip_is_joined_and_extracted_once(tmp_path, monkeypatch):
    whole = _zip({"image_0.jpg": b"a" * 3000, "image_1.jpg": b"b" * 3000})
    ctx = _ctx(tmp_path, split_bytes(whole, 2))
    items = list(parse(ctx))
    assert [(i.image_id, i.instances[0].text) for i in items] == [("image_0", "W0"), ("image_1", "W1")]
    target = tmp_path / "root" / "cache" / "extract" / "rctw17" / "train_images"
    assert items[0].image == target / "image_0.jpg" and items[0].image.read_bytes() == b"a" * 3000
    assert not (target.parent / "train_images.zip").exists()  # the joined copy is removed

    def no_second_extraction(*args, **kwargs):
        raise AssertionError("extracted again")

    monkeypatch.setattr(_split_archive, "safe_extract", no_second_extraction)
    assert [i.image_id for i in parse(ctx)] == ["image_0", "image_1"]


def test_independent_zips_and_corrupt_parts(tmp_path):
    ctx = _ctx(tmp_path / "a", [_zip({"image_0.jpg": b"a"}), _zip({"sub/image_1.jpg": b"b"})])
    assert [i.image_id for i in parse(ctx)] == ["image_0", "image_1"]
    bad = _ctx(tmp_path / "b", [b"PK\x03\x04 not really a zip", b"garbage"])
    items = list(parse(bad))
    assert isinstance(items[0], Problem) and items[0].reason == "corrupt_archive"
    assert {i.reason for i in items[1:]} == {"missing_image"}


# --- end to end over HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rctw17_mirror")
    write_samples(directory, ["rctw17"])
    return directory


def _expected(policy: LabelPolicy) -> tuple[list[str], dict[str, int]]:
    """Labels and drop counts from the generator's own word list (what was rendered where)."""
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


def test_fixture_is_native(mirror):
    assert sorted(p.name for p in mirror.iterdir()) == [
        "SHA256SUMS",
        "train_gts.zip",
        "train_images.zip.001",
        "train_images.zip.002",
    ]
    assert not zipfile.is_zipfile(mirror / "train_images.zip.001")  # a volume, not a zip on its own
    joined = (mirror / "train_images.zip.001").read_bytes() + (mirror / "train_images.zip.002").read_bytes()
    assert zipfile.ZipFile(io.BytesIO(joined)).namelist()[:3] == ["image_0.jpg", "image_1.jpg", "image_2.jpg"]
    with zipfile.ZipFile(mirror / "train_gts.zip") as zf:
        first, plain = zf.read("image_0.txt"), zf.read("image_3.txt")
    assert first.startswith(b"\xef\xbb\xbf") and b"\r\n" in first and b',0,"\xe9\x87\x91' in first
    assert not plain.startswith(b"\xef\xbb\xbf") and b"\r" not in plain


def test_build_from_http_mirror(tmp_path, mirror):
    with FileServer(mirror) as server:
        result = build(BuildOptions(tmp_path, sources=("rctw17",), mirror=server.base_url, progress=False))
    (summary,) = result.sources
    labels, dropped = _expected(LabelPolicy("36"))
    assert summary.kept == len(labels) and summary.dropped == dropped
    assert dropped.keys() >= {"dont_care", "language_filtered", "empty_label", "label_too_long"}

    rows = index_rows(tmp_path, "rctw17")
    assert [r["label"] for r in rows] == labels
    records = lmdb_records(tmp_path, rows)
    assert [label for _, label, _ in records] == labels
    assert {"kfc", "bankofchina", "9002100", "sayhi", "open"} <= set(labels)
    for image, _, meta in records:
        check_crop(image, meta)
    assert any(meta.get("rotated") for _, _, meta in records)  # the vertical words

    report = json.loads(summary.report.read_text())
    assert {i["name"]: i["origin"] for i in report["inputs"]} == {
        "train_images.zip.001": "mirror",
        "train_images.zip.002": "mirror",
        "train_gts.zip": "mirror",
    }
    assert any(
        e["reason"] == "language_filtered" and e["where"].endswith("image_0.txt:1") for e in report["errors"]
    )


def test_crop_of_a_kept_word_matches_the_scene(tmp_path, mirror):
    """process_scene_image on the extracted fixture: KFC in image_0 comes out at its quad's size."""
    ctx_dir = tmp_path / "gts"
    with zipfile.ZipFile(mirror / "train_gts.zip") as zf:
        zf.extractall(ctx_dir)
    images = tmp_path / "images"
    joined = (mirror / "train_images.zip.001").read_bytes() + (mirror / "train_images.zip.002").read_bytes()
    zipfile.ZipFile(io.BytesIO(joined)).extractall(images)
    item = next(iter_detection([images], [ctx_dir], {}))
    samples, drops = process_scene_image(
        item, source="rctw17", group="R", policy=LabelPolicy("36"), options={}
    )
    assert [s.label_raw for s in samples] == ["KFC"]
    assert sorted(d.reason for d in drops) == [
        "dont_care",
        "language_filtered",
        "language_filtered",
        "language_filtered",
    ]
    assert samples[0].key == "rctw17/image_0.jpg#1"
