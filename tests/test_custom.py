"""`rebusyn build --custom mine --from PATH`: every layout `rebusyn.sources.custom` detects, end to end
through the CLI, read back from train/real/custom/mine/ with plain lmdb."""

import json

import cv2
import lmdb
import numpy as np
import pytest

from rebusyn.cli import main
from rebusyn.samplegen._word_crops import write_str_lmdb
from rebusyn.sources import custom


def _png(text: str, seed: int = 0) -> bytes:
    """A small non-blank crop with the text drawn on it."""
    rng = np.random.default_rng(seed + len(text))
    pixels = np.full((32, 16 * max(len(text), 2), 3), rng.integers(180, 255), np.uint8)
    cv2.putText(
        pixels, text.encode("ascii", "replace").decode(), (2, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 2
    )
    return cv2.imencode(".png", pixels)[1].tobytes()


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _build(tmp_path, source, *extra):
    root = tmp_path / "root"
    code = main(["build", "--custom", "mine", "--from", str(source), "--root", str(root), "-q", *extra])
    return code, root


def _read(root):
    """(labels, images, metas) of the built custom source, with plain lmdb."""
    shards = sorted((root / "train" / "real" / "custom" / "mine").rglob("data.mdb"))
    assert shards, "no LMDB under train/real/custom/mine"
    labels, images, metas = [], [], []
    for shard in shards:
        env = lmdb.open(str(shard.parent), readonly=True, lock=False)
        with env.begin() as txn:
            for i in range(1, int(txn.get(b"num-samples")) + 1):
                labels.append(txn.get(b"label-%09d" % i).decode())
                images.append(bytes(txn.get(b"image-%09d" % i)))
                metas.append(json.loads(txn.get(b"meta-%09d" % i)))
        env.close()
    return labels, images, metas


def _report(root):
    report = json.loads((root / "reports" / "mine.json").read_text())
    assert report["status"] == "complete" and report["group"] == "C"
    return report


def _errors(report):
    return sorted((e["reason"], e["where"]) for e in report["errors"])


# --- 1. label lists ------------------------------------------------------------------------------------


def test_tab_list_with_spaces_in_paths_bom_crlf_and_problems(tmp_path, capsys):
    data = tmp_path / "data"
    crops = {"img/word 1.png": "Hello World", "img/b.png": "Straße", "img/c.png": "x"}
    for name, text in crops.items():
        _write(data / name, _png(text))
    absolute = _write(tmp_path / "elsewhere" / "abs.png", _png("ABS"))
    lines = [
        "img/word 1.png\tHello World",  # path with a space: the tab decides
        "img/b.png\tStraße",
        "",  # blank lines are skipped
        "img/missing.png\tGone",
        "img/c.png\t   ",  # empty label
        f"{absolute}\tABS",
        "img/c.png",  # no label at all
    ]
    raw = b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n" + b"img/c.png\t\xff\xfe\r\n"
    _write(data / "gt.txt", raw)
    code, root = _build(tmp_path, data / "gt.txt", "--charset", "unicode")
    assert code == 0, capsys.readouterr().err
    labels, images, metas = _read(root)
    assert labels == ["Hello World", "Straße", "ABS"]
    assert images[0] == (data / "img/word 1.png").read_bytes()  # stored byte for byte
    assert [m["image"] for m in metas[:2]] == ["img/word 1.png", "img/b.png"]
    report = _report(root)
    assert report["kept"] == 3
    assert _errors(report) == [
        ("empty_label", "gt.txt:5"),
        ("invalid_utf8", "gt.txt:8"),
        ("missing_image", "gt.txt:4"),
        ("missing_label", "gt.txt:7"),
    ]


def test_space_list_splits_on_first_whitespace_run_and_falls_back_for_spaced_paths(tmp_path):
    data = tmp_path / "data"
    for name in ("a.png", "my photo.png", "sub/c.png"):
        _write(data / name, _png(name))
    _write(
        data / "labels.txt",
        b"a.png   two  words\nmy photo.png Hello there\ndata/sub/c.png C\n",  # last: rooted one level up
    )
    code, root = _build(tmp_path, data / "labels.txt", "--charset", "unicode")
    assert code == 0
    labels, _, metas = _read(root)
    assert labels == ["two words", "Hello there", "C"]
    assert metas[1]["image"] == "my photo.png" and metas[2]["image"] == "sub/c.png"
    assert _report(root)["dropped"] == {}


def test_folder_with_one_list_next_to_the_images(tmp_path):
    data = tmp_path / "crops"
    _write(data / "1.jpg", _png("one"))
    _write(data / "2.jpg", _png("two"))
    _write(data / "annotations.txt", b"1.jpg ONE\n2.jpg TWO\n")
    code, root = _build(tmp_path, data)
    assert code == 0
    assert _read(root)[0] == ["one", "two"]  # default 36-character policy: lower-cased


def test_folder_with_several_lists_prefers_gt_txt_or_refuses(tmp_path, capsys):
    data = tmp_path / "crops"
    _write(data / "1.jpg", _png("one"))
    _write(data / "gt.txt", b"1.jpg ONE\n")
    _write(data / "notes.txt", b"not a list\n")
    assert _build(tmp_path, data)[0] == 0
    (data / "gt.txt").rename(data / "train.txt")
    code, _ = _build(tmp_path, data)
    err = capsys.readouterr().err
    assert code == 1 and "several label lists" in err and "notes.txt" in err and "train.txt" in err


# --- 2. one label file per image -----------------------------------------------------------------------


def test_img_and_label_folders(tmp_path):
    data = tmp_path / "svt_like"
    for i, text in [(1, "Salutes"), (2, "PRIVATE"), (10, "Tenth")]:
        _write(data / "IMG" / f"{i}.jpg", _png(text))
        _write(data / "label" / f"{i}.txt", text.encode() + (b"\n" if i == 2 else b""))
    _write(data / "IMG" / "3.png", _png("three"))  # no label file
    _write(data / "label" / "4.txt", b"orphan")  # no image
    _write(data / "label" / "5.txt", b"\xef\xbb\xbfBOM\r\n")
    _write(data / "IMG" / "5.jpg", _png("BOM"))
    _write(data / "label" / "6.txt", b"")
    _write(data / "IMG" / "6.jpg", _png("six"))
    _write(data / "IMG" / ".DS_Store", b"\0" * 16)
    code, root = _build(tmp_path, data, "--charset", "94")
    assert code == 0
    labels, _, metas = _read(root)
    assert labels == ["Salutes", "PRIVATE", "BOM", "Tenth"]  # natural order: 10 after 5
    assert metas[0]["image"] == "svt_like/IMG/1.jpg"
    assert _errors(_report(root)) == [
        ("empty_label", "svt_like/label/6.txt"),
        ("missing_image", "svt_like/label/4.txt"),
        ("missing_label", "svt_like/IMG/3.png"),
    ]


def test_images_with_label_files_side_by_side(tmp_path):
    data = tmp_path / "pairs"
    _write(data / "a.jpg", _png("alpha"))
    _write(data / "a.txt", b"alpha\r\n")
    _write(data / "deeper" / "b c.png", _png("beta"))
    _write(data / "deeper" / "b c.txt", "Beta Gamma".encode("utf-16"))  # a Windows "Unicode" file
    _write(data / "lonely.jpg", _png("lonely"))
    _write(data / "README.txt", b"about these crops")
    code, root = _build(tmp_path, data, "--charset", "unicode")
    assert code == 0
    labels, _, metas = _read(root)
    assert labels == ["alpha", "Beta Gamma"]
    assert [m["image"] for m in metas] == ["a.jpg", "deeper/b c.png"]
    assert _errors(_report(root)) == [
        ("missing_image", "pairs/README.txt"),
        ("missing_label", "pairs/lonely.jpg"),
    ]


# --- 3. STR LMDBs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("point_at", ["folder", "data.mdb"])
def test_one_lmdb(tmp_path, point_at):
    samples = [("Hello", _png("Hello")), ("World!", _png("World!"))]
    folder = write_str_lmdb(tmp_path / "my_lmdb", samples, extra_keys={"imagepath-000000001": b"x.jpg"})
    code, root = _build(tmp_path, folder if point_at == "folder" else folder / "data.mdb")
    assert code == 0
    labels, images, metas = _read(root)
    assert labels == ["hello", "world"] and images == [s[1] for s in samples]
    assert [m["key"] for m in metas] == ["mine/my_lmdb#1", "mine/my_lmdb#2"]
    assert metas[0]["label_raw"] == "Hello" and metas[0]["lmdb_index"] == 1


def test_folder_of_several_lmdbs(tmp_path):
    base = tmp_path / "lmdbs"
    write_str_lmdb(base / "b_second", [("two", _png("two"))])
    write_str_lmdb(base / "a_first" / "inner", [("one", _png("one")), ("", _png("empty"))])
    code, root = _build(tmp_path, base)
    assert code == 0
    labels, _, metas = _read(root)
    assert labels == ["one", "two"]
    assert [m["key"] for m in metas] == ["mine/lmdbs/a_first/inner#1", "mine/lmdbs/b_second#1"]
    assert _report(root)["dropped"] == {"empty_label": 1}


# --- detection -----------------------------------------------------------------------------------------


def test_unknown_layout_is_an_error_that_names_the_folder(tmp_path, capsys):
    data = tmp_path / "nothing_here"
    _write(data / "a.jpg", _png("a"))
    code, root = _build(tmp_path, data)
    err = capsys.readouterr().err
    assert code == 1 and "nothing_here" in err and "cannot tell the layout" in err
    assert not (root / "reports" / "mine.json").exists()


def test_detect(tmp_path):
    _write(tmp_path / "l" / "x" / "data.mdb", b"")
    _write(tmp_path / "l" / "gt.txt", b"")
    assert custom.detect(tmp_path / "l") == ("list", tmp_path / "l" / "gt.txt")  # a list wins over LMDBs
    (tmp_path / "l" / "gt.txt").unlink()
    assert custom.detect(tmp_path / "l") == ("lmdb", tmp_path / "l")
    with pytest.raises(FileNotFoundError):
        custom.detect(tmp_path / "absent")
