"""SynthText: gt.mat walked in lock-step from inside the zip, words paired with their boxes, the known defects
counted; end-to-end builds (warp and bbox crops, the LMDB inputs) from a sample mirror over HTTP."""

import io
import zipfile

import cv2
import numpy as np
import pytest
import scipy.io

from rebusyn.build import BuildOptions, build
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import _synth_lmdb, write_samples
from rebusyn.samplegen import synthtext as samples
from rebusyn.sources import synthtext
from rebusyn.sources._matv5 import MatFormatError
from rebusyn.sources.base import AnnotatedImage
from tests._source_helpers import check_crop, read_built, serve


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["synthtext"])
    return directory


def _summary(items):
    return [(i.name, [w.text for w in i.instances]) if isinstance(i, AnnotatedImage) else (i.where, i.reason)
            for i in items]  # fmt: skip


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _gt(imnames, boxes, txts):
    cells = {k: np.empty((1, len(imnames)), dtype=object) for k in ("imnames", "wordBB", "txt")}
    for i, (name, bb, rows) in enumerate(zip(imnames, boxes, txts)):
        cells["imnames"][0, i], cells["wordBB"][0, i] = np.array([name]), bb
        cells["txt"][0, i] = np.array(rows)
    buf = io.BytesIO()
    scipy.io.savemat(buf, cells, do_compression=True)
    return buf.getvalue()


def test_words_are_whitespace_runs_over_all_rows():
    # rows as loadmat returns SynthText's char matrices: padded with spaces, '\n' inside a row
    assert synthtext.words_of(["Lines:\nI lost", "Kevin        ", "will         "]) == [
        "Lines:", "I", "lost", "Kevin", "will"
    ]  # fmt: skip
    assert synthtext.words_of(["  ", "\n"]) == []


def test_boxes_one_word_is_2x4():
    quad = [[1, 2, 3, 4], [5, 6, 7, 8]]  # x row, y row
    assert synthtext.boxes_of(np.array(quad, dtype=float)).tolist() == [[[1, 5], [2, 6], [3, 7], [4, 8]]]
    two = np.stack([quad, np.array(quad) + 10], axis=2)
    assert synthtext.boxes_of(two).shape == (2, 4, 2)
    with pytest.raises(ValueError, match="2x4"):
        synthtext.boxes_of(np.zeros((2, 3)))


def test_reader_on_native_layout(mirror):
    items = list(synthtext.iter_zip(mirror / samples.ARCHIVE))
    assert _summary(items) == [
        ("1/ballet_1_0.jpg", ["Lines:", "I", "lost", "Kevin", "will"]),
        ("1/ant+hill_2_0.jpg", ["Tax-free"]),
        ("2/ballet_1_0.jpg", ["café", "--"]),
        ("2/mismatch_3_0.jpg", "word_count_mismatch"),
        ("2/bad_4_0.jpg", ["good", "flat", "away"]),
        ("SynthText/3/absent_5_0.jpg", "missing_image"),
    ]
    first = items[0]
    truth = samples.scenes()[0]
    assert first.read() == truth[1]  # the scene's bytes, read from the zip
    # corners in gt.mat order (x/y × 4 corners × words) become (x, y) points clockwise from top-left
    assert [list(p) for p in first.instances[3].points] == truth[2][:, :, 3].T.tolist()


def test_gt_mat_must_match_its_images(tmp_path):
    bb = np.zeros((2, 4))
    gt = _gt(["1/a.jpg", "1/b.jpg"], [bb, bb], [["x"], ["y"]])
    arc = _zip(tmp_path / "a.zip", {"SynthText/gt.mat": gt})
    with zipfile.ZipFile(arc, "a") as zf:  # gt.mat with a shorter txt: refuse, do not mis-pair
        buf = io.BytesIO()
        cells = {k: np.empty((1, 2), dtype=object) for k in ("imnames", "wordBB")}
        cells["imnames"][0, 0], cells["imnames"][0, 1] = np.array(["1/a.jpg"]), np.array(["1/b.jpg"])
        cells["wordBB"][0, 0] = cells["wordBB"][0, 1] = bb
        txt = np.empty((1, 1), dtype=object)
        txt[0, 0] = np.array(["x"])
        scipy.io.savemat(buf, {**cells, "txt": txt})
        zf.writestr("other/gt.mat", buf.getvalue())  # deeper: the top-most gt.mat is the one read
    assert [p.reason for p in synthtext.iter_zip(arc)] == ["missing_image", "missing_image"]
    short = _zip(tmp_path / "b.zip", {"gt.mat": buf.getvalue()})
    with pytest.raises(synthtext.SynthTextError, match="different lengths"):
        list(synthtext.iter_zip(short))
    with pytest.raises(synthtext.SynthTextError, match="no gt.mat"):
        list(synthtext.iter_zip(_zip(tmp_path / "c.zip", {"SynthText/1/a.jpg": b"x"})))


def test_truncated_gt_mat_names_the_file(tmp_path):
    gt = samples.gt_mat()
    arc = _zip(tmp_path / "t.zip", {"SynthText/gt.mat": gt[: len(gt) // 2]})
    with pytest.raises(MatFormatError, match="gt.mat"):
        list(synthtext.iter_zip(arc))


def test_build_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(BuildOptions(tmp_path, sources=("synthtext",), mirror=server.base_url,
                                        progress=False)).sources  # fmt: skip
    built = read_built(tmp_path, "synthtext")
    assert [s["label"] for s in built] == ["lines", "i", "lost", "kevin", "will", "taxfree", "cafe", "good"]
    assert summary.dropped == {
        "empty_label": 1,  # "--"
        "word_count_mismatch": 1,
        "degenerate_box": 1,
        "box_outside_image": 1,
        "missing_image": 1,
    }
    keys = [s["key"] for s in built]
    assert keys[0] == "synthtext/1/ballet_1_0.jpg#1" and "synthtext/2/ballet_1_0.jpg#1" in keys
    assert len(set(keys)) == len(keys)
    for sample in built:
        check_crop(sample["image"], sample["meta"]["points"], sample["meta"].get("rotated", False))
    assert (tmp_path / "train" / "synth" / "synthtext").is_dir()
    assert not (tmp_path / "cache" / "extract" / "synthtext").exists()  # read in place


def test_build_bbox_crops_like_abinet(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        build(BuildOptions(tmp_path, sources=("synthtext",), mirror=server.base_url, progress=False,
                           crop="bbox"))  # fmt: skip
    built = read_built(tmp_path, "synthtext")
    for sample in built:
        pts = np.array(sample["meta"]["points"])
        pixels = cv2.imdecode(np.frombuffer(sample["image"], np.uint8), cv2.IMREAD_COLOR)
        width = np.ceil(pts[:, 0].max()) - np.floor(max(pts[:, 0].min(), 0))
        assert abs(pixels.shape[1] - width) <= 1 and sample["meta"]["crop"] == "bbox"


@pytest.mark.parametrize("which", ["dtrb_lmdb", "parseq_lmdb"])
def test_build_lmdb_inputs(tmp_path, mirror, which):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(BuildOptions(tmp_path, sources=("synthtext",), input=which,
                                        mirror=server.base_url, progress=False)).sources  # fmt: skip
    words = {
        "dtrb_lmdb": _synth_lmdb.DTRB_WORDS["training/ST"],
        "parseq_lmdb": _synth_lmdb.PARSEQ_WORDS["synth/ST"],
    }[which]
    policy = LabelPolicy()
    expected = [label for label, _ in map(policy.normalize, words) if label]
    assert [s["label"] for s in read_built(tmp_path, "synthtext")] == expected
    assert summary.kept + sum(summary.dropped.values()) == len(words)
