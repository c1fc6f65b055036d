"""MLT 2019: parser quirks on inline native text (detection and word-crop GT) and builds over HTTP."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import mlt19 as gen
from rebusyn.samplegen import write_samples
from rebusyn.sources._rrc_txt import LanguageFilter
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem, WordCrop
from rebusyn.sources.mlt19 import iter_detection, iter_word_crops, parse, parse_gt, parse_word_gt
from tests._rrc_checks import check_crop, index_rows, lmdb_records
from tests.httpserver import FileServer

LATIN = LanguageFilter(scripts=frozenset({"Latin", "Symbols"}))

# --- detection ground truth --------------------------------------------------------------------------


def test_transcription_is_everything_after_the_ninth_comma():
    text = (
        "10,20,110,20,110,60,10,60,Latin,100,000\n"
        "1,2,3,4,5,6,7,8,Latin,a,b,,c\n"
        '1,2,3,4,5,6,7,8,Latin,"quoted"\n'
        "1,2,3,4,5,6,7,8,Arabic,مرحبا\n"
        "1,2,3,4,5,6,7,8,Symbols, 50% \n"
    )
    instances, problems = parse_gt(text, "tr_img_01001.txt")
    assert problems == []
    assert [(i.text, i.attrs["script"]) for i in instances] == [
        ("100,000", "Latin"),
        ("a,b,,c", "Latin"),
        ('"quoted"', "Latin"),  # no escapes: quotes are text
        ("مرحبا", "Arabic"),
        (" 50% ", "Symbols"),  # kept verbatim; the label policy trims
    ]
    assert instances[0].points == ((10, 20), (110, 20), (110, 60), (10, 60))


def test_dont_care_carries_any_script_and_malformed_lines_are_reported():
    text = (
        "1,1,9,1,9,9,1,9,None,###\n"
        "1,1,9,1,9,9,1,9,Bangla,###\n"
        "1,1,9,1,9,9,1,9,Latin\n"
        "1,1,9,1,9,z,1,9,Latin,x\n"
    )
    instances, problems = parse_gt(text, "g.txt")
    assert [(i.attrs["script"], i.ignore) for i in instances] == [("None", True), ("Bangla", True)]
    assert [(p.where, p.reason) for p in problems] == [
        ("g.txt:3", "malformed_line"),
        ("g.txt:4", "malformed_line"),
    ]


def _scene_dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    part1, part2, gts = (tmp_path / "ImagesPart1", tmp_path / "ImagesPart2", tmp_path / "gt")
    for d in (part1, part2, gts):
        d.mkdir()
    return part1, part2, gts


def test_script_filter_bom_crlf_and_image_formats(tmp_path):
    part1, part2, gts = _scene_dirs(tmp_path)
    (part1 / "tr_img_02001.png").write_bytes(b"png")
    (part2 / "tr_img_04001.gif").write_bytes(b"gif")
    (gts / "tr_img_02001.txt").write_bytes(
        "\ufeff1,1,9,1,9,9,1,9,Latin,Café\r\n1,1,9,1,9,9,1,9,Chinese,北京\r\n1,1,9,1,9,9,1,9,Arabic,###\r\n".encode()
    )
    (gts / "gt_tr_img_04001.txt").write_bytes(b"1,1,9,1,9,9,1,9,Mixed,Wi-Fi\n1,1,9,1,9,9,1,9,Symbols,50%\n")
    first, second = iter_detection([part1, part2], [gts], LATIN)
    assert first.image.name == "tr_img_02001.png" and second.image.name == "tr_img_04001.gif"
    assert [(i.text, i.ignore) for i in first.instances] == [("Café", False), ("###", True)]
    assert [(p.where, p.reason) for p in first.problems] == [
        (f"{gts / 'tr_img_02001.txt'}:2", "language_filtered")
    ]
    assert "Chinese" in first.problems[0].detail
    assert [i.text for i in second.instances] == ["50%"] and second.problems[0].reason == "language_filtered"
    everything = list(iter_detection([part1, part2], [gts], LanguageFilter()))
    assert sum(len(i.instances) for i in everything) == 5


def test_scripts_option_forms():
    assert LanguageFilter.from_options({}, scripts=gen.KEPT_SCRIPTS).scripts == {"Latin", "Symbols"}
    assert LanguageFilter.from_options({"scripts": "all"}).scripts is None
    assert LanguageFilter.from_options({"scripts": "Latin, Korean"}).scripts == {"Latin", "Korean"}
    assert LanguageFilter.from_options({"scripts": ["Latin"]}).reject("SEOUL", "Korean") is not None


def test_images_are_paired_across_parts_in_numeric_order(tmp_path):
    part1, part2, gts = _scene_dirs(tmp_path)
    for n, folder in ((9001, part2), (1, part1), (10000, part2)):
        (folder / f"tr_img_{n:05d}.jpg").write_bytes(b"jpg")
        (gts / f"tr_img_{n:05d}.txt").write_text("1,1,9,1,9,9,1,9,Latin,A\n")
    (gts / "tr_img_00002.txt").write_text("1,1,9,1,9,9,1,9,Latin,A\n")
    items = list(iter_detection([part1, part2], [gts], LATIN))
    assert [i.image_id if isinstance(i, AnnotatedImage) else i.reason for i in items] == [
        "tr_img_00001",
        "missing_image",
        "tr_img_09001",
        "tr_img_10000",
    ]


# --- word-crop ground truth --------------------------------------------------------------------------


def test_word_gt_lines():
    text = 'word_1.png,Latin,Hello, World\nword_2.png,Arabic,مرحبا\nword_3.png,Latin,"Quoted"\nword_4.png\n\n'
    entries, problems = parse_word_gt(text, "gt.txt")
    assert [e[1:] for e in entries] == [
        ("word_1.png", "Latin", "Hello, World"),
        ("word_2.png", "Arabic", "مرحبا"),
        ("word_3.png", "Latin", '"Quoted"'),
    ]
    assert [(p.where, p.reason) for p in problems] == [("gt.txt:4", "malformed_line")]
    unquoted, _ = parse_word_gt(text, "gt.txt", unquote=True)
    assert unquoted[2][3] == "Quoted"


def test_word_crops_across_parts_with_bom(tmp_path):
    p1, p2, p3 = (tmp_path / f"words_part_{k}" for k in (1, 2, 3))
    for d in (p1, p2, p3):
        d.mkdir()
    (p1 / "word_1.png").write_bytes(b"1")
    (p3 / "word_3.png").write_bytes(b"3")
    (p1 / "gt.txt").write_bytes(
        "\ufeffword_1.png,Latin,SALE\r\nword_2.png,Korean,서울\r\nword_3.png,Symbols,50%\r\nword_9.png,Latin,gone\r\n".encode()
    )
    items = list(iter_word_crops([p1, p2, p3], LATIN, {}))
    assert isinstance(items[0], WordCrop) and (items[0].image, items[0].text) == (p1 / "word_1.png", "SALE")
    assert (items[1].where, items[1].reason) == (f"{p1 / 'gt.txt'}:2", "language_filtered")
    assert isinstance(items[2], WordCrop) and items[2].image == p3 / "word_3.png"
    assert items[2].attrs == {"script": "Symbols"}
    assert (items[3].reason, items[3].where) == ("missing_image", f"{p1 / 'gt.txt'}:4")
    ctx = ParseContext("word_crops", "train", {"crops_part1": p1, "crops_part2": p2, "crops_part3": p3}, {})
    assert len([i for i in parse(ctx) if isinstance(i, WordCrop)]) == 2
    missing = list(iter_word_crops([p2], LATIN, {}))
    assert [(type(i), i.reason) for i in missing] == [(Problem, "missing_annotation")]


# --- end to end over HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mlt19_mirror")
    write_samples(directory, ["mlt19"])
    return directory


@pytest.fixture(scope="module")
def server(mirror):
    with FileServer(mirror) as srv:
        yield srv


def _expected(policy: LabelPolicy, crops: bool) -> tuple[list[str], dict[str, int]]:
    """From the generator's word list: don't care, other scripts, then the label policy."""
    labels: list[str] = []
    dropped: dict[str, int] = {}
    for scene in gen.scenes():
        for word in scene.words:
            spec = word.word
            if not spec.legible:
                if crops:
                    continue  # the word-crop archives hold legible words only
                reason = "dont_care"
            elif spec.attrs["script"] not in gen.KEPT_SCRIPTS:
                reason = "language_filtered"
            else:
                label, reason = policy.normalize(spec.text)
                if label is not None:
                    labels.append(label)
                    continue
            dropped[reason] = dropped.get(reason, 0) + 1
    return labels, dropped


def test_fixture_is_native(mirror):
    with zipfile.ZipFile(mirror / "ImagesPart1.zip") as zf:
        names = zf.namelist()
    assert "ImagesPart1/tr_img_02001.png" in names and "ImagesPart1/tr_img_04001.gif" in names
    with zipfile.ZipFile(mirror / "train_gt_t13.zip") as zf:
        assert zf.read("tr_img_00001.txt").startswith(b"\xef\xbb\xbf")
        assert not zf.read("tr_img_02001.txt").startswith(b"\xef\xbb\xbf")
        scripts = {line.split(b",")[8] for n in zf.namelist() for line in zf.read(n).splitlines()}
    assert {s.lstrip(b"\xef\xbb\xbf").decode() for s in scripts} >= set(gen.KEPT_SCRIPTS) | {
        "Arabic",
        "Mixed",
        "None",
    }
    with zipfile.ZipFile(mirror / "words_part_1.zip") as zf:
        assert zf.read("gt.txt").startswith(b"\xef\xbb\xbfword_1.png,Arabic,")


def test_detection_build(tmp_path, server):
    (summary,) = build(
        BuildOptions(tmp_path, sources=("mlt19",), mirror=server.base_url, progress=False)
    ).sources
    labels, dropped = _expected(LabelPolicy("36"), crops=False)
    assert summary.kept == len(labels) and summary.dropped == dropped
    assert dropped.keys() >= {"dont_care", "language_filtered", "empty_label", "label_too_long"}
    rows = index_rows(tmp_path, "mlt19")
    assert [r["label"] for r in rows] == labels
    assert {"cafe", "strae", "backerei", "100000"} <= set(labels)  # from the PNG and the GIF scenes too
    records = lmdb_records(tmp_path, rows)
    assert [label for _, label, _ in records] == labels
    for image, _, meta in records:
        check_crop(image, meta)
    assert {meta["image"] for _, _, meta in records} >= {"tr_img_02001.png", "tr_img_04001.gif"}
    report = json.loads(summary.report.read_text())
    assert [i["name"] for i in report["inputs"]] == ["ImagesPart1.zip", "ImagesPart2.zip", "train_gt_t13.zip"]


def test_word_crop_build_stores_official_bytes(tmp_path, server, mirror):
    (summary,) = build(
        BuildOptions(tmp_path, sources=("mlt19",), mirror=server.base_url, progress=False, input="word_crops")
    ).sources
    labels, dropped = _expected(LabelPolicy("36"), crops=True)
    assert summary.kept == len(labels) and summary.dropped == dropped
    rows = index_rows(tmp_path, "mlt19")
    assert [r["label"] for r in rows] == labels
    official = {}
    for k in (1, 2, 3):
        with zipfile.ZipFile(mirror / f"words_part_{k}.zip") as zf:
            official.update({n: zf.read(n) for n in zf.namelist() if n.endswith(".png")})
    records = lmdb_records(tmp_path, rows)
    for row, (image, _, meta) in zip(rows, records):
        name = row["key"].split("/", 1)[1]
        assert image == official[name] and meta["script"] in gen.KEPT_SCRIPTS
    # crops come from all three parts
    assert {int(r["key"].split("_")[1].split(".")[0]) > sum(gen.CROPS_PER_PART) for r in rows} == {
        True,
        False,
    }
