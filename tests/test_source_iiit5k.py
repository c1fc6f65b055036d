"""IIIT5K-Words: the .mat reader's quirks on small MATLAB v5 files written like the official ones, the
case-sensitive relabel layout, and builds of `iiit5k` from a sample mirror served over HTTP."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import scipy.io

from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import _case_sensitive_pinned as relabels
from rebusyn.samplegen import iiit5k as gen
from rebusyn.sources import iiit5k
from rebusyn.sources.base import ParseContext, Problem, WordCrop
from tests._benchmark_helpers import build_one, sample_mirror

FIELDS = [("ImgName", "O"), ("GroundTruth", "O"), ("smallLexi", "O"), ("mediumLexi", "O")]


def _cell(words):
    cell = np.empty((1, len(words)), dtype=object)
    for i, w in enumerate(words):
        cell[0, i] = w
    return cell


def _write_mat(path, variable, rows, fields=FIELDS):
    records = np.zeros((1, len(rows)), dtype=fields)
    for i, row in enumerate(rows):
        records[0, i] = row
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), {variable: records})


def _dataset(tmp_path, split="train", rows=None, images=("1009_2.png", "1017_1.png")):
    root = tmp_path / "IIIT5K"
    rows = rows or [
        (f"{split}/1009_2.png", "RESTAURANT", _cell(["RESTAURANT", "HOUSE"]), _cell(["A", "B", "C"])),
        (f"{split}/1017_1.png", "2012", _cell(["2012"]), _cell(["2012", "X"])),
    ]
    _write_mat(root / f"{split}data.mat", f"{split}data", rows)
    for name in images:
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / split / name).write_bytes(b"\x89PNG " + name.encode())
    return tmp_path


def _summary(items):
    return [(i.image_id, i.text) if isinstance(i, WordCrop) else (i.reason, i.detail) for i in items]


# --- the .mat reader --------------------------------------------------------------------------------------


def test_mat_string_handles_what_loadmat_returns():
    assert iiit5k.mat_string(np.array(["MAKE"])) == "MAKE"
    assert iiit5k.mat_string(np.array([], dtype="<U1")) == ""  # MATLAB '' (an empty char array)
    assert iiit5k.mat_string(np.array([np.array(["PIZZA"])], dtype=object)) == "PIZZA"  # a 1x1 cell
    assert iiit5k.mat_string(np.array([[2012.0]])) == "2012"  # a word typed as a number
    assert iiit5k.mat_string(np.array([[1.5]])) == "1.5"
    assert iiit5k.mat_string(np.array([["A", "B"]], dtype=object)) is None  # a cell of several strings


def test_struct_array_in_file_order_with_crops_byte_for_byte(tmp_path):
    root = _dataset(tmp_path)
    items = list(iiit5k.iter_original(root, "train"))
    assert _summary(items) == [("train/1009_2.png", "RESTAURANT"), ("train/1017_1.png", "2012")]
    assert items[0].read() == b"\x89PNG 1009_2.png"  # stored as is, never re-encoded
    assert items[0].attrs == {"img_name": "train/1009_2.png"}


def test_split_picks_the_test_file_and_backslashes_are_normalised(tmp_path):
    rows = [("test\\3_1.png", "MAKE", _cell(["MAKE"]), _cell(["MAKE"]))]
    root = _dataset(tmp_path, "test", rows, images=("3_1.png",))
    _dataset(tmp_path, "train")  # both files present: the split decides
    ctx = ParseContext("original", "test", {"dataset": root}, {"labels": "ground_truth"})
    assert _summary(iiit5k.parse(ctx)) == [("test/3_1.png", "MAKE")]


def test_missing_crop_missing_file_and_bad_records(tmp_path):
    root = _dataset(tmp_path, images=("1009_2.png",))
    assert [i.reason if isinstance(i, Problem) else i.text for i in iiit5k.iter_original(root, "train")] == [
        "RESTAURANT",
        "missing_image",
    ]
    assert [p.reason for p in iiit5k.iter_original(root, "test")] == ["missing_annotation"]
    bad = [(np.array([], dtype="<U1"), "X", _cell(["X"]), _cell(["X"]))]  # empty ImgName
    _write_mat(root / "IIIT5K" / "traindata.mat", "traindata", bad)
    assert [p.reason for p in iiit5k.iter_original(root, "train")] == ["malformed_entry"]


def test_unreadable_and_malformed_mat_files(tmp_path):
    root = tmp_path / "IIIT5K"
    root.mkdir()
    # a MATLAB v7.3 file is HDF5, which scipy's loadmat refuses
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM"
    (root / "traindata.mat").write_bytes(header + bytes(400))
    ((problem),) = iiit5k.iter_original(tmp_path, "train")
    assert problem.reason == "unreadable_mat"
    (root / "traindata.mat").write_bytes(b"not a mat file at all" * 10)
    assert [p.reason for p in iiit5k.iter_original(tmp_path, "train")] == ["unreadable_mat"]
    scipy.io.savemat(str(root / "traindata.mat"), {"other": np.zeros(3)})
    ((problem),) = iiit5k.iter_original(tmp_path, "train")
    assert problem.reason == "malformed_mat" and "other" in problem.detail
    _write_mat(root / "traindata.mat", "traindata", [("train/a.png",)], fields=[("ImgName", "O")])
    ((problem),) = iiit5k.iter_original(tmp_path, "train")
    assert problem.reason == "malformed_mat" and "GroundTruth" in problem.detail


def test_char_bound_labels_keep_the_case(tmp_path):
    root = _dataset(tmp_path)
    fields = [("ImgName", "O"), ("chars", "O"), ("charBB", "O")]
    boxes = np.array([[0, 0, 5, 9], [5, 0, 5, 9]], dtype=float)
    _write_mat(
        root / "IIIT5K" / "trainCharBound.mat",
        "trainCharBound",
        [("train/1009_2.png", "Restaurant", boxes)],
        fields,
    )
    items = list(iiit5k.iter_original(root, "train", labels="char_bound"))
    assert _summary(items) == [
        ("train/1009_2.png", "Restaurant"),
        ("missing_annotation", "train/1017_1.png ('2012') has no CharBound entry"),
    ]
    with pytest.raises(ValueError, match="labels"):
        iiit5k.parse(ParseContext("original", "train", {"dataset": root}, {"labels": "upper"}))


def test_case_sensitive_layout(tmp_path):
    top = tmp_path / "Case-Sensitive-Scene-Text-Recognition-Datasets-abc" / "iiit5k_train"
    (top / "IMG").mkdir(parents=True)
    (top / "label").mkdir()
    for i, label in enumerate(["Salutes", "Don't \n", "x", "", "", "", "", "", "", "SALE!"], start=1):
        if label:
            (top / "label" / f"{i}.txt").write_bytes(label.encode())
            (top / "IMG" / f"{i}.jpg").write_bytes(b"jpg")
    (top / "IMG" / "3.jpg").unlink()
    (top / "IMG" / "4.jpg").write_bytes(b"no label")
    (top / "IMG" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (top / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    ctx = ParseContext("case_sensitive", "train", {"relabel": tmp_path}, {})
    got = [i.text if isinstance(i, WordCrop) else i.reason for i in iiit5k.parse(ctx)]
    # label/10.txt sorts after 9; the trailing blank and newline are stripped, as PARSeq's converter does
    assert got == ["Salutes", "Don't", "missing_image", "missing_label", "SALE!"]


# --- end to end over HTTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    return sample_mirror(tmp_path_factory.mktemp("iiit5k_mirror"), "iiit5k")


def _build(tmp_path, mirror, **kw):
    return build_one(tmp_path, mirror, "iiit5k", **kw)


def test_fixture_is_native(mirror):
    with tarfile.open(mirror / gen.ARCHIVE) as tar:
        names = tar.getnames()
        mat = tar.extractfile("IIIT5K/traindata.mat").read()
    assert {"IIIT5K", "IIIT5K/train", "IIIT5K/test", "IIIT5K/lexicon.txt", "IIIT5K/testCharBound.mat"} <= set(
        names
    )
    assert mat.startswith(b"MATLAB 5.0 MAT-file")
    data = scipy.io.loadmat(io.BytesIO(mat))["traindata"]
    assert data.shape == (1, len(gen.SPLITS["train"])) and data.dtype.names == tuple(f for f, _ in FIELDS)
    assert data[0, 0]["smallLexi"].shape == (1, 5)


def test_build_original_stores_the_crops_byte_for_byte(tmp_path, mirror):
    summary, records = _build(tmp_path, mirror, charset="94")
    words = gen.SPLITS["train"]
    assert summary.kept == len(words) and summary.dropped == {}
    assert [r["label"] for r in records] == [w.ground_truth for w in words]  # upper-case, no punctuation
    with tarfile.open(mirror / gen.ARCHIVE) as tar:
        for record, word in zip(records, words):
            assert record["image"] == tar.extractfile(f"IIIT5K/{word.img_name}").read()
            assert record["meta"]["image"] == word.img_name.split("/")[1]
            assert record["meta"]["label_raw"] == word.ground_truth


@pytest.mark.parametrize(
    ("inp", "fork"), [("case_sensitive", "jyouhou"), ("case_sensitive_parseq", "parseq")]
)
def test_build_case_sensitive_relabels(tmp_path, mirror, inp, fork):
    summary, records = _build(tmp_path, mirror, input=inp, charset="94")
    expected = [LabelPolicy("94").normalize(t)[0] for t in relabels.labels(fork)["iiit5k_train"]]
    assert [r["label"] for r in records] == expected
    assert ("HoteI" in expected) == (fork == "jyouhou")  # the typo baudm's fork corrects
    assert {"Don't", "SALE!", "Restaurant"} <= set(expected)
    assert summary.kept == len(gen.SPLITS["train"])
    assert all(r["image"].startswith(b"\xff\xd8") for r in records)  # the repository's JPEGs, as stored


def test_build_default_policy_folds_ground_truth_and_char_bound_alike(tmp_path, mirror):
    _, records = _build(tmp_path, mirror)
    assert [r["label"] for r in records] == [
        LabelPolicy("36").normalize(w.chars)[0] for w in gen.SPLITS["train"]
    ]
