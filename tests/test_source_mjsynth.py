"""MJSynth: the streamed tar reader (split lists, lexicon, defects) on the native layout, and end-to-end
builds of its three inputs (the tarball, DTRB's and PARSeq's LMDB packs) from a sample mirror over HTTP."""

import io
import json
import tarfile
from collections import Counter

import cv2
import numpy as np
import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.report import report_path
from rebusyn.samplegen import _synth_lmdb, write_samples
from rebusyn.samplegen import mjsynth as samples
from rebusyn.sources import mjsynth
from rebusyn.sources.base import WordCrop
from tests._source_helpers import read_built, serve

EXPECTED = [
    ("annotation_train.txt:3", "bad_annotation"),
    ("1/1/1_Slinking_1.jpg", "Slinking", "train"),
    ("1/1/2_PRITCHARD_2.jpg", "PRITCHARD", "train"),
    ("1/2/3_exit_3.jpg", "exit", "train"),
    ("2/1/4_salt_4.jpg", "empty_image"),
    ("2/1/5_mobile_5.jpg", "mobile", "train"),  # corrupt: the build's decode drops it
    ("2/2/6_Hotel_7.jpg", "lexicon_mismatch"),
    ("3/1/8_2008_9.jpg", "2008", "train"),
    ("3/2/9_Ballet_10.jpg", "Ballet", "val"),
    ("3/3/10_cafe_11.jpg", "cafe", "test"),
    ("4/1/11_ghost_12.jpg", "unlisted_image"),
    ("annotation_train.txt:8", "missing_image"),
]


def _summary(items):
    return [(i.image_id, i.text, i.attrs["split"]) if isinstance(i, WordCrop) else (i.where, i.reason)
            for i in items]  # fmt: skip


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["mjsynth"])
    return directory


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_fixture_layout(mirror):
    with tarfile.open(mirror / samples.ARCHIVE) as tar:
        names = tar.getnames()
    top = samples.TOP
    assert f"{top}/1/1/1_Slinking_1.jpg" in names and f"{top}/2/3/7_missing_8.jpg" not in names
    # every image comes before the lists: the first pass has to read the whole archive
    assert names.index(f"{top}/annotation_train.txt") > names.index(f"{top}/4/1/11_ghost_12.jpg")
    with tarfile.open(mirror / samples.ARCHIVE) as tar:
        first = tar.extractfile(f"{top}/annotation_train.txt").read().decode().splitlines()[0]
        lexicon = tar.extractfile(f"{top}/lexicon.txt").read().decode().split("\n")
    assert first == "./1/1/1_Slinking_1.jpg 1" and lexicon[1] == "slinking"  # 0-based lexicon lines


def test_stream_reader_on_native_layout(mirror):
    items = list(mjsynth.iter_tar(mirror / samples.ARCHIVE, list(mjsynth.SPLITS)))
    assert _summary(items) == EXPECTED
    crop = items[1]
    assert crop.attrs == {"image": "1/1/1_Slinking_1.jpg", "split": "train", "lexicon": 1}
    pixels = cv2.imdecode(np.frombuffer(crop.data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert pixels.shape[0] == 32 and crop.data == samples.images()["1/1/1_Slinking_1.jpg"]


def test_splits_and_lexicon_labels(mirror):
    items = list(mjsynth.iter_tar(mirror / samples.ARCHIVE, ["val", "test"], "lexicon"))
    # train's images are skipped (not defects) and train's list problems are not reported
    assert _summary(items) == [
        ("3/2/9_Ballet_10.jpg", "ballet", "val"),
        ("3/3/10_cafe_11.jpg", "cafe", "test"),
        ("4/1/11_ghost_12.jpg", "unlisted_image"),
    ]


def test_dot_slash_members_and_windows_lists(tmp_path):
    # `tar czf mjsynth.tar.gz ./mnt` writes names with ./; lists with CRLF and a BOM are read the same
    img = samples.images()["1/1/1_Slinking_1.jpg"]
    top = "./mnt/ramdisk/max/90kDICT32px"
    arc = _tar(tmp_path / "m.tar.gz", {
        f"{top}/annotation_train.txt": b"\xef\xbb\xbf./1/1/1_Slinking_1.jpg 1\r\n./1/1/2_A_b_2.jpg 2\r\n",
        f"{top}/annotation_val.txt": b"",
        f"{top}/annotation_test.txt": b"",
        f"{top}/lexicon.txt": b"zero\r\nslinking\r\na_b\r\n",
        f"{top}/1/1/1_Slinking_1.jpg": img,
        f"{top}/1/1/2_A_b_2.jpg": img,  # a word holding '_'
    })  # fmt: skip
    assert _summary(mjsynth.iter_tar(arc, ["train"])) == [
        ("1/1/1_Slinking_1.jpg", "Slinking", "train"),
        ("1/1/2_A_b_2.jpg", "A_b", "train"),
    ]


def test_not_mjsynth_is_a_clear_error(tmp_path):
    arc = _tar(tmp_path / "x.tar.gz", {"a/annotation_train.txt": b"", "a/lexicon.txt": b"x\n"})
    with pytest.raises(mjsynth.MJSynthError, match="annotation_val.txt, annotation_test.txt"):
        list(mjsynth.iter_tar(arc, ["train"]))
    arc = _tar(tmp_path / "y.tar.gz", {
        "a/annotation_train.txt": b"", "a/annotation_val.txt": b"", "b/annotation_test.txt": b"",
        "a/lexicon.txt": b"x\n",
    })  # fmt: skip
    with pytest.raises(mjsynth.MJSynthError, match="not in a/"):
        list(mjsynth.iter_tar(arc, ["train"]))


def test_split_lists_are_hashes_not_strings(tmp_path):
    # 8.9M paths as a Python set would take ~1 GB; the lists are kept as 8-byte hashes
    lines = "".join(f"./{k % 4000}/{k % 7}/{k}_w_{k % 9}.jpg {k % 9}\n" for k in range(50_000))
    (tmp_path / "a.txt").write_text(lines + "./x/../../escape.jpg 1\n")
    listing, problems = mjsynth.SplitList.read("train", tmp_path / "a.txt")
    assert listing.hashes.dtype == np.uint64 and listing.hashes.nbytes == 8 * 50_000
    assert listing.lookup(mjsynth.path_hash("3/3/3_w_3.jpg")) >= 0
    assert listing.lookup(mjsynth.path_hash("3/3/3_w_4.jpg")) == -1
    assert [p.reason for p in problems] == ["bad_annotation"]


def _report(root):
    return json.loads(report_path(root, "mjsynth").read_text())


def test_build_tar_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(BuildOptions(tmp_path, groups=("S",), sources=("mjsynth",),
                                        mirror=server.base_url, progress=False)).sources  # fmt: skip
    built = read_built(tmp_path, "mjsynth")
    assert [s["label"] for s in built] == ["slinking", "pritchard", "exit", "2008", "ballet", "cafe"]
    assert [s["meta"]["label_raw"] for s in built][:2] == ["Slinking", "PRITCHARD"]
    assert [s["meta"]["split"] for s in built] == ["train"] * 4 + ["val", "test"]
    assert built[0]["key"] == "mjsynth/1/1/1_Slinking_1.jpg"
    assert built[0]["image"] == samples.images()["1/1/1_Slinking_1.jpg"]  # stored byte for byte
    expected_drops = Counter(r for _, r in (e for e in EXPECTED if len(e) == 2))
    expected_drops["corrupt_image"] += 1
    assert summary.dropped == dict(expected_drops)
    assert _report(tmp_path)["dropped"] == dict(expected_drops) and sum(expected_drops.values()) == 6
    assert (tmp_path / "train" / "synth" / "mjsynth").is_dir()
    assert not (tmp_path / "cache" / "extract" / "mjsynth").exists()  # streamed, never unpacked


def test_build_dtrb_lmdb_unpacks_only_mj(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(BuildOptions(tmp_path, sources=("mjsynth",), input="dtrb_lmdb",
                                        mirror=server.base_url, progress=False)).sources  # fmt: skip
    built = read_built(tmp_path, "mjsynth")
    assert [s["label"] for s in built] == ["slinking", "pritchard", "exit", "ballet", "cafe"]
    assert [s["meta"]["image"] for s in built][::2] == [
        "data_lmdb_release/training/MJ/MJ_train#1",
        "data_lmdb_release/training/MJ/MJ_train#3",
        "data_lmdb_release/training/MJ/MJ_test#1",
    ]
    extracted = tmp_path / "cache" / "extract" / "mjsynth" / "data_lmdb_release" / "data_lmdb_release"
    assert sorted(p.name for p in extracted.iterdir()) == ["training"]
    assert sorted(p.name for p in (extracted / "training").iterdir()) == ["MJ"]  # not ST, validation, ...
    assert summary.dropped == {}


def test_build_parseq_lmdb(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        build(BuildOptions(tmp_path, sources=("mjsynth",), input="parseq_lmdb", mirror=server.base_url,
                           progress=False))  # fmt: skip
    built = read_built(tmp_path, "mjsynth")
    assert [s["meta"]["label_raw"] for s in built] == [
        w for d in ("synth/MJ/train", "synth/MJ/val", "synth/MJ/test") for w in _synth_lmdb.PARSEQ_WORDS[d]
    ]
