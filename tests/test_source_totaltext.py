"""Total-Text: parser quirks on inline native ground truth (legacy txt, legacy and refined .mat written with
scipy.io.savemat), and end-to-end builds of all three inputs from a sample mirror served over HTTP."""

import io
import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest
import scipy.io

from rebusyn.build import BuildOptions, build
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import totaltext as tt_samples
from rebusyn.samplegen import write_samples
from rebusyn.sources import totaltext
from rebusyn.sources.base import AnnotatedImage, ParseContext, Problem
from tests._source_helpers import check_crop, read_built, serve, word_size

# Real lines (test image 2 of the legacy release, source_formats.md §10), a numpy-wrapped 20-vertex record,
# and the Python 2 string reprs a word can take.
TXT = (
    "\ufeffx: [[115 503 494 115]], y: [[322 346 426 404]], ornt: [u'm'], transcriptions: [u'nauGHTY']\n"
    "x: [[603 632 630 603]], y: [[408 413 426 423]], ornt: [u'h'], transcriptions: [u'EST']\n"
    "x: [[543 583 660 701 691 653 592 557]], y: [[347 288 288 347 358 308 302 355]], ornt: [u'#'],"
    " transcriptions: [u'#']\n"
    "x: [[ 72  83  94 107 120 133 147 161 176 190 179 168 157 147 137 128 119 110\n"
    "  102  93]], y: [[108  97  88  81  76  73  72  73  76  81 108 104 102 101 102 104 107 112\n"
    "  119 127]], ornt: [u'c'], transcriptions: [u'Station']\n"
    "\n"
    "x: [[ -3  40  40  -3]], y: [[  1   1  19  19]], ornt: [u'h'], transcriptions: [u\"McDonald's\"]\n"
    "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'Caf\\xe9 \\u2019n']\n"
    "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [u'm'], transcriptions: [u'RM1,000 [06]']\n"
    "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [u'#'], transcriptions: [u'smudge']\n"
    "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [u'c'], transcriptions: []\n"
    "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [], transcriptions: [u'noornt']\n"
    "x: [[1 20 40 40 1]], y: [[1 0 1 9 9]], ornt: [u'h'], transcriptions: [u'odd']\n"
    "x: [[1 40 20]], y: [[1 1 9]], ornt: [u'h'], transcriptions: [u'TINY']\n"
    "x: [[1 40 40 1]], y: [[1 1 9]], ornt: [u'h'], transcriptions: [u'uneven']\n"
    "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'\u4e2d\u6587']\n"
    "x: [[1 a 40 1]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'bad']\n"
    "x: [[1 40 40 1]], y: [[1 1 9 9]], transcriptions: [u'no ornt key']\n"
)


def _txt_instances(text=TXT, **options):
    records, problems = totaltext.parse_txt_gt(text, "poly_gt_img2.txt")
    instances, dropped = totaltext.to_instances(records, {**totaltext.DEFAULTS, **options})
    return instances, list(problems) + list(dropped)


def test_legacy_txt_quirks():
    instances, problems = _txt_instances()
    got = [(i.text, i.ignore, len(i.points), i.attrs["at"].split(":")[1]) for i in instances]
    assert got == [
        ("nauGHTY", False, 4, "1"),  # BOM before the first record
        ("EST", False, 4, "2"),
        ("#", True, 8, "3"),  # don't care: transcription `#`, orientation `#`
        ("Station", False, 20, "4"),  # one record over three physical lines
        ("McDonald's", False, 4, "8"),  # u"..." when the text has an apostrophe
        ("Café \u2019n", False, 4, "9"),  # \\x and \\u escapes
        ("RM1,000 [06]", False, 4, "10"),  # commas and brackets inside the quotes
        ("smudge", True, 4, "11"),  # orientation `#` alone marks don't care
        ("", True, 4, "12"),  # transcriptions: [] -> don't care
        ("noornt", False, 4, "13"),  # ornt: [] is fine
        ("odd", False, 5, "14"),  # odd vertex counts pass through
    ]
    assert instances[0].points == ((115, 322), (503, 346), (494, 426), (115, 404))
    assert instances[3].points[-2:] == ((102, 119), (93, 127))
    assert instances[4].points[0] == (-3, 1)  # negative coordinates kept
    assert instances[0].attrs["orientation"] == "m"
    assert [(p.where, p.reason) for p in problems] == [
        ("poly_gt_img2.txt:18", "malformed_annotation"),  # non-numeric coordinate
        ("poly_gt_img2.txt:19", "malformed_annotation"),  # missing `ornt:`
        ("poly_gt_img2.txt:15", "degenerate_polygon"),  # 3 vertices
        ("poly_gt_img2.txt:16", "malformed_annotation"),  # 4 x but 3 y values
        ("poly_gt_img2.txt:17", "language_filtered"),
    ]


def test_options_switch_off():
    instances, problems = _txt_instances(ornt_dont_care=False, dont_care_marks=[], latin_only=False)
    by_text = {i.text: i.ignore for i in instances}
    assert by_text["smudge"] is False and by_text["#"] is False
    assert by_text[""] is True  # an empty transcription is never a label
    assert "中文" in by_text and not any(p.reason == "language_filtered" for p in problems)
    instances, _ = _txt_instances(ornt_dont_care=False)  # `#` alone still marks don't care
    by_text = {i.text: i.ignore for i in instances}
    assert by_text["#"] is True and by_text["smudge"] is False


def test_dont_care_marks_without_ornt():
    line = "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'#']\n"
    (inst,), _ = _txt_instances(line, ornt_dont_care=False)
    assert inst.ignore
    (inst,), _ = _txt_instances(line, ornt_dont_care=False, dont_care_marks=[])
    assert not inst.ignore  # `#` is then an ordinary (empty after the label policy) transcription


def test_python2_strings():
    assert totaltext._py2_strings("u'caf\\xe9', u\"it's\"") == ["café", "it's"]
    assert totaltext._py2_strings("'caf\\xc3\\xa9'") == ["café"]  # a Python 2 byte string of UTF-8
    assert totaltext._py2_strings("__import__('os')") is None  # never evaluated
    assert totaltext._py2_strings("u'a', 3") is None


def test_continuation_line_before_any_record():
    text = "  12 13]], y: [[1 2]]\nx: [[1 2 3 4]], y: [[1 2 3 4]], ornt: [u'h'], transcriptions: [u'ok']\n"
    records, problems = totaltext.parse_txt_gt(text, "g.txt")
    assert [r.text for r in records] == ["ok"] and [p.reason for p in problems] == ["malformed_annotation"]


def _mat(rows, variable="polygt"):
    cells = np.empty((len(rows), 6), dtype=object)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            cells[i, j] = value
    buf = io.BytesIO()
    scipy.io.savemat(buf, {variable: cells})
    return buf.getvalue()


def _row(xs, ys, text, ornt, dtype=np.int16, column=False):
    shape = (-1, 1) if column else (1, -1)
    return ["x:", np.array(xs, dtype).reshape(shape), "y:", np.array(ys, dtype).reshape(shape), text, ornt]


def test_legacy_mat_polygt(tmp_path):
    path = tmp_path / "poly_gt_img1.mat"
    path.write_bytes(
        _mat(
            [
                _row([53, 120, 121, 56], [446, 443, 456, 458], "PETROSAINS", "c"),
                _row([1, 9, 9], [1, 1, 9], "TINY", "h"),  # too few points
                _row([1, 9, 9, 1], [1, 1, 9, 9], "", "#"),  # empty char: loads as an empty array
                _row([1, 9, 9, 1], [1, 1, 9, 9], "Caf\u00e9", "m", np.uint16),
                _row([1, 9, 9, 1], [1, 1, 9, 9], "#", ""),
            ]
        )
    )
    records, problems = totaltext.read_mat_gt(path)
    assert not problems
    instances, dropped = totaltext.to_instances(records, totaltext.DEFAULTS)
    assert [(i.text, i.ignore, i.attrs["orientation"]) for i in instances] == [
        ("PETROSAINS", False, "c"),
        ("", True, "#"),
        ("Café", False, "m"),
        ("#", True, ""),
    ]
    assert instances[0].points == ((53, 446), (120, 443), (121, 456), (56, 458))
    assert [(p.where, p.reason) for p in dropped] == [("poly_gt_img1.mat#2", "degenerate_polygon")]


def test_refined_mat_gt_with_column_vectors_of_doubles(tmp_path):
    path = tmp_path / "gt_img11.mat"
    xs = [10.5, 20, 30, 40, 50, 50, 40, 30, 20, 10]
    ys = [5, 4, 3, 4, 5, 25, 24, 23, 24, 25.5]
    path.write_bytes(_mat([_row(xs, ys, "Genting", "c", np.float64, column=True)], variable="gt"))
    records, problems = totaltext.read_mat_gt(path)
    assert not problems and records[0].text == "Genting"
    assert records[0].xs == (10.5, 20, 30, 40, 50, 50, 40, 30, 20, 10) and records[0].ys[-1] == 25.5


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not a mat file at all", "unreadable_mat"),
        (_mat([_row([1, 2, 3, 4], [1, 2, 3, 4], "x", "h")], variable="boxes"), "malformed_annotation"),
    ],
)
def test_unusable_mat_is_one_problem(tmp_path, payload, reason):
    path = tmp_path / "poly_gt_img3.mat"
    path.write_bytes(payload)
    records, problems = totaltext.read_mat_gt(path)
    assert records == [] and [p.reason for p in problems] == [reason]


def test_mat_with_no_words_and_bad_cells():
    assert totaltext.parse_mat_gt({"polygt": np.empty((0, 0), dtype=object)}, "a.mat") == ([], [])
    cells = np.empty((1, 6), dtype=object)
    cells[0] = ["x:", np.array([[1, 2, 3, 4]]), "y:", np.array([[1, 2, 3, 4]]), np.array([[7.0]]), "h"]
    records, problems = totaltext.parse_mat_gt({"polygt": cells}, "a.mat")
    assert records == [] and [(p.where, p.reason) for p in problems] == [("a.mat#1", "malformed_annotation")]


def _layout(tmp_path):
    """The extracted totaltext.zip and txt_format.zip, with the traps of their layout."""
    images, gts = tmp_path / "totaltext", tmp_path / "txt_format"
    line = "x: [[1 40 40 1]], y: [[1 1 9 9]], ornt: [u'h'], transcriptions: [u'{}']\n"
    for rel in ("Images/Train/img9.jpg", "Images/Train/img10.JPG", "Images/Train/img100.jpg",
                "Images/Train/img7.jpg", "Images/Test/img1.jpg", "Images/Train/.img9.jpg"):  # fmt: skip
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        (images / rel).write_bytes(b"not decoded by the parser")
    for rel, word in (("Train/poly_gt_img9.txt", "nine"), ("Train/poly_gt_img10.txt", "ten"),
                      ("Train/poly_gt_img100.txt", "hundred"), ("Train/poly_gt_img8.txt", "eight"),
                      ("Test/poly_gt_img1.txt", "LEAKED"), ("Rectangular/Train/poly_gt_img9.txt", "BOX"),
                      ("Train/readme.txt", "?")):  # fmt: skip
        (gts / rel).parent.mkdir(parents=True, exist_ok=True)
        (gts / rel).write_bytes(line.format(word).encode().replace(b"\n", b"\r\n"))
    return images, gts


def test_parse_pairs_training_files_in_numeric_order(tmp_path):
    images, gts = _layout(tmp_path)
    ctx = ParseContext("legacy_txt", "train", {"images": images, "annotations": gts}, {})
    items = list(totaltext.parse(ctx))
    scenes = [i for i in items if isinstance(i, AnnotatedImage)]
    assert [(s.image_id, s.image.name, s.instances[0].text) for s in scenes] == [
        ("img9", "img9.jpg", "nine"),
        ("img10", "img10.JPG", "ten"),  # upper-case extension
        ("img100", "img100.jpg", "hundred"),
    ]
    problems = [(p.where.split("/")[-1], p.reason) for p in items if isinstance(p, Problem)]
    assert problems == [("img7.jpg", "missing_annotation"), ("poly_gt_img8.txt", "missing_image")]


def test_recipe_facts_and_defaults_agree():
    r = load_recipe("totaltext")
    assert (r.group, r.login_required, r.default_input, r.parser) == ("E", True, "refined", "totaltext")
    assert {name: [(a.name, a.role) for a in inp.archives] for name, inp in r.inputs.items()} == {
        "refined": [("totaltext.zip", "images"), ("TT_new_train_GT.zip", "annotations")],
        "legacy_txt": [("totaltext.zip", "images"), ("txt_format.zip", "annotations")],
        "legacy_mat": [("totaltext.zip", "images"), ("groundtruth_text.zip", "annotations")],
    }
    drive = {a.url for inp in r.inputs.values() for a in inp.archives}
    assert all(u.startswith("https://drive.google.com/file/d/") for u in drive) and len(drive) == 4
    assert {k: r.options[k] for k in totaltext.DEFAULTS} == totaltext.DEFAULTS
    assert r.options["keep_ignored"] is False and r.counts["rebu_syn_instances"] == 12251
    assert {
        "images": r.input().archive("images").name,
        "refined": r.input("refined").archive("annotations").name,
        "legacy_mat": r.input("legacy_mat").archive("annotations").name,
        "legacy_txt": r.input("legacy_txt").archive("annotations").name,
    } == tt_samples.ARCHIVES


# --- end to end: the sample mirror over HTTP ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["totaltext"])
    return directory


@pytest.fixture
def server(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as srv:
        yield srv


def expected(flavour):
    """Each training word of the generator's ground truth -> ("keep", label) or ("drop", reason)."""
    policy = LabelPolicy("36")
    out = []
    for scene in tt_samples.scenes():
        if scene.test:
            continue
        for word in scene.words:
            if flavour == "refined" and word.points is None:
                continue  # the refined release has no entry for it
            if flavour != "refined" and len(word.legacy_points) < 4:
                out.append(("drop", "degenerate_polygon", scene, word))
            elif not word.legible:
                out.append(("drop", "dont_care", scene, word))
            else:
                label, reason = policy.normalize(word.text)
                out.append(("keep", label, scene, word) if label else ("drop", reason, scene, word))
    return out


def test_fixture_carries_the_traps(mirror):
    words = [w for s in tt_samples.scenes() for w in s.words]
    assert {len(w.legacy_points) for w in words if w.curved} >= {6, 8, 10, 12, 14, 20}
    assert {len(w.legacy_points) for w in words} >= {3, 4, 5, 7}
    assert all(len(w.points) == 10 for w in words if w.points is not None)
    assert any(w.vertical for w in words) and any(w.legacy_text == "" for w in words)
    with zipfile.ZipFile(mirror / "txt_format.zip") as zf:
        txt = {n: zf.read(n) for n in zf.namelist()}
    assert txt["Train/poly_gt_img10.txt"].startswith(b"\xef\xbb\xbf")
    assert b"transcriptions: []" in txt["Train/poly_gt_img12.txt"]
    assert b"\n  " in txt["Train/poly_gt_img13.txt"]  # a numpy-wrapped record
    assert (
        b"u'Caf\\xe9'" in txt["Train/poly_gt_img9.txt"]
        and b'u"McDonald\'s"' in txt["Train/poly_gt_img10.txt"]
    )
    assert "Test/poly_gt_img1.txt" in txt
    with zipfile.ZipFile(mirror / "totaltext.zip") as zf:
        assert {"Images/Train/img11.JPG", "Images/Test/img1.jpg", "Images/Train/img100.jpg"} <= set(
            zf.namelist()
        )
    with zipfile.ZipFile(mirror / "groundtruth_text.zip") as zf:
        names = zf.namelist()
        legacy = scipy.io.loadmat(io.BytesIO(zf.read("Groundtruth/Polygon/Train/poly_gt_img9.mat")))
    assert "Groundtruth/Rectangular/Train/rect_gt_img9.mat" in names
    assert legacy["polygt"].shape[1] == 6 and legacy["polygt"][0][1].dtype == np.int16
    with zipfile.ZipFile(mirror / "TT_new_train_GT.zip") as zf:
        assert not any("Test" in n for n in zf.namelist())
        refined = scipy.io.loadmat(io.BytesIO(zf.read("Train/gt_img9.mat")))
    assert refined["gt"][0][1].shape == (1, 10)


def _flat_aspect(points):
    length, height = word_size(points)
    return length / height


def test_build_refined_from_http_mirror(tmp_path, server):
    (summary,) = build(
        BuildOptions(tmp_path, sources=("totaltext",), mirror=server.base_url, progress=False)
    ).sources
    truth = expected("refined")
    kept = [t for t in truth if t[0] == "keep"]
    assert summary.kept == len(kept)
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert {"dont_care", "empty_label", "label_too_long"} <= set(summary.dropped)
    samples = read_built(tmp_path, "totaltext")
    assert [s["label"] for s in samples] == [t[1] for t in kept]
    assert not {"leaked", "testset", "holdout"} & {s["label"] for s in samples}  # the test split stays out
    curved = far_from_bbox = 0
    for sample, (_, _, scene, word) in zip(samples, kept):
        meta = sample["meta"]
        assert meta["image"] == scene.file_name and meta["label_raw"] == word.text
        assert meta["points"] == [list(p) for p in word.points]  # the 10 vertices, unchanged
        check_crop(sample["image"], meta["points"], bool(meta.get("rotated")))
        if word.curved:
            curved += 1
            # unrolled: the crop has the word's flat aspect, far from its bounding box's
            pixels = cv2.imdecode(np.frombuffer(sample["image"], np.uint8), cv2.IMREAD_COLOR)
            crop_aspect = pixels.shape[1] / pixels.shape[0]
            pts = np.asarray(word.points)
            bw, bh = pts.max(axis=0) - pts.min(axis=0)
            crop_error = abs(np.log(crop_aspect / _flat_aspect(word.points)))
            bbox_error = abs(np.log(bw / bh / _flat_aspect(word.points)))
            assert crop_error < min(bbox_error, np.log(1.2)), word.text
            far_from_bbox += bbox_error > np.log(1.5)
    assert curved >= 7 and far_from_bbox >= 5
    assert any(s["meta"].get("rotated") for s in samples)  # the vertical word comes out horizontal


@pytest.mark.parametrize("flavour", ["legacy_txt", "legacy_mat"])
def test_build_legacy_inputs_give_the_same_words(tmp_path, server, flavour):
    opts = BuildOptions(
        tmp_path, sources=("totaltext",), mirror=server.base_url, progress=False, input=flavour
    )
    (summary,) = build(opts).sources
    truth = expected(flavour)
    assert summary.dropped == dict(Counter(t[1] for t in truth if t[0] == "drop"))
    assert summary.dropped["degenerate_polygon"] == 1
    samples = read_built(tmp_path, "totaltext")
    assert [s["label"] for s in samples] == [t[1] for t in truth if t[0] == "keep"]
    assert [s["label"] for s in samples] == [t[1] for t in expected("refined") if t[0] == "keep"]
    for sample, (_, _, _, word) in zip(samples, [t for t in truth if t[0] == "keep"]):
        assert sample["meta"]["points"] == [list(p) for p in word.legacy_points]
        odd = len(word.legacy_points) % 2 == 1
        assert (sample["meta"]["crop"] == "min_area_rect") == odd


def test_login_gated_without_mirror(tmp_path):
    from rebusyn.fetch import ManualDownloadRequired

    with pytest.raises(ManualDownloadRequired) as info:
        build(BuildOptions(tmp_path, sources=("totaltext",), progress=False))
    assert "TT_new_train_GT.zip" in str(info.value) and "drive.google.com" in str(info.value)


def test_samples_are_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    tt_samples.write(a)
    tt_samples.write(b)
    for path in a.iterdir():
        assert path.read_bytes() == (b / path.name).read_bytes(), path.name
