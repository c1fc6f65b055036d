"""Curved SynthText (CurvedSynth): the streaming Label.json reader, the release reader's quirks on inline
files, the LMDB reader, and end-to-end builds of both inputs from a sample mirror served over HTTP."""

import json
import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest

from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import cst as samples
from rebusyn.samplegen import write_samples
from rebusyn.samplegen._word_crops import write_str_lmdb
from rebusyn.sources import cst
from rebusyn.sources._str_lmdb import iter_lmdb_tree
from rebusyn.sources.base import ParseContext, Problem
from tests._source_helpers import build_over_http, crop_summary, write_tree

JPEG = b"\xff\xd8jpeg"
CHARS = [[[0, 9], [9, 18], [9, 18], [0, 9]], [[0, 0], [0, 0], [20, 20], [20, 20]]]  # 2 x 4 x 2


_summary = crop_summary
_tree = write_tree


# --- the streaming reader -------------------------------------------------------------------------------


VALUES = [
    {"img": "IMG/1.jpg", "word": 'Caf\u00e9 "x", [y]', "chars": CHARS},
    1234567,
    -1.5e10,
    "]",
    None,
    True,
    [1, [2, {"a": "}"}]],
    {"poly_x": [1, 2, 3], "poly_y": [4, 5, 6], "img": "\u4e2d.jpg"},
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 1 << 20])
@pytest.mark.parametrize("style", ["compact", "indented", "bom_crlf_utf8"])
def test_json_array_streams_whatever_the_chunk_boundaries(tmp_path, chunk, style):
    if style == "compact":
        raw = json.dumps(VALUES, separators=(",", ":")).encode()
    elif style == "indented":
        raw = json.dumps(VALUES, indent=2).encode()
    else:  # BOM, CRLF, non-ASCII written as UTF-8 (split across chunk boundaries with chunk=1)
        raw = (
            b"\xef\xbb\xbf" + json.dumps(VALUES, indent=1, ensure_ascii=False).replace("\n", "\r\n").encode()
        )
    path = tmp_path / "Label.json"
    path.write_bytes(raw)
    assert list(cst.iter_json_array(path, "L", chunk)) == list(enumerate(VALUES, start=1))


@pytest.mark.parametrize(
    "raw, values, problem",
    [
        (b"[]", [], None),
        (b" \n[ \n] \n", [], None),
        (b"", [], ("L", "bad_json")),
        (b'{"img": "a.jpg"}', [], ("L", "bad_json")),  # an object, not a list of them
        (b"[1, 2", [1, 2], ("L#2", "bad_json")),  # cut short: what came before is kept
        (b'[1, {"img": "a.j', [1], ("L#2", "bad_json")),
        (b"[1,, 2]", [1], ("L#2", "bad_json")),
        (b"[1 2]", [1], ("L#1", "bad_json")),
        (b"[1] [2]", [1], ("L", "bad_json")),
        (b'["\xff"]', [], ("L", "invalid_utf8")),
    ],
)
def test_json_array_faults(tmp_path, raw, values, problem):
    path = tmp_path / "Label.json"
    path.write_bytes(raw)
    for chunk in (1, 4, 1 << 20):
        items = list(cst.iter_json_array(path, "L", chunk))
        got = [v for _, v in (i for i in items if isinstance(i, tuple))]
        problems = [(p.where, p.reason) for p in items if isinstance(p, Problem)]
        assert got == values and problems == ([problem] if problem else []), chunk


def test_json_array_keeps_what_was_decoded_before_bad_bytes(tmp_path):
    path = tmp_path / "Label.json"
    path.write_bytes(b'[1, 2, "\xff"]')
    items = list(cst.iter_json_array(path, "L", 4))  # the bad byte is in the second chunk
    assert items[:2] == [(1, 1), (2, 2)] and (items[2].where, items[2].reason) == ("L", "invalid_utf8")


def test_json_array_gives_up_on_a_runaway_record(tmp_path, monkeypatch):
    monkeypatch.setattr(cst, "_MAX_RECORD", 100)
    path = tmp_path / "Label.json"
    # a 1000-character record is refused once 100 characters are buffered: a broken file (an unterminated
    # string) is never read whole into memory
    path.write_bytes(b'[1, "' + b"x" * 1000 + b'", 3]')
    items = list(cst.iter_json_array(path, "L", 16))
    assert items[0] == (1, 1) and (items[1].where, items[1].reason) == ("L#2", "bad_json") and len(items) == 2
    monkeypatch.setattr(cst, "_MAX_RECORD", 2000)
    assert [i[1] for i in cst.iter_json_array(path, "L", 16)] == [1, "x" * 1000, 3]


# --- input `release` ------------------------------------------------------------------------------------


def test_release_quirks(tmp_path):
    records = [
        {"img": "IMG/1.jpg", "word": "Curved", "chars": CHARS},
        {"img": "IMG/2.jpg", "word": "two words", "poly_x": [0, 1], "poly_y": [0, 1], "chars": CHARS},
        {"img": "IMG/3.jpg", "word": "..."},  # the build's policy drops it, not the parser
        {"img": "IMG/404.jpg", "word": "gone"},
        {"img": "../IMG/1.jpg", "word": "up"},
        {"img": "/abs/1.jpg", "word": "abs"},
        {"img": "IMG/1.jpg", "word": "again"},
        {"img": "IMG/4.jpg", "word": 7},
        {"img": "IMG/4.jpg", "word": ["list"]},
        {"img": "IMG/4.jpg"},
        {"img": "IMG/4.jpg", "word": ""},
        {"word": "no image"},
        {"img": "", "word": "empty path"},
        ["IMG/4.jpg", "a list"],
        "IMG/4.jpg",
        {"img": "IMG\\5.jpg", "word": "Windows"},
        {"img": "./IMG/6.jpg", "word": "dotted"},
    ]
    files = {f"IMG/{n}.jpg": JPEG for n in (1, 2, 3, 4, 5, 6)}
    files["Label.json"] = json.dumps(records).encode()
    root = _tree(tmp_path / "extract" / "curvedsynth", files)
    items = list(cst.iter_release(tmp_path / "extract"))
    w = "curvedsynth/Label.json"
    assert _summary(items) == [
        ("curvedsynth/IMG/1.jpg", "Curved", "curvedsynth"),
        ("curvedsynth/IMG/2.jpg", "two words", "curvedsynth"),
        ("curvedsynth/IMG/3.jpg", "...", "curvedsynth"),
        (f"{w}#4", "missing_image"),
        (f"{w}#5", "bad_path"),
        (f"{w}#6", "bad_path"),
        (f"{w}#7", "duplicate_image"),
        (f"{w}#8", "bad_annotation"),
        (f"{w}#9", "bad_annotation"),
        (f"{w}#10", "bad_annotation"),
        (f"{w}#11", "empty_label"),
        (f"{w}#12", "bad_annotation"),
        (f"{w}#13", "bad_annotation"),
        (f"{w}#14", "bad_annotation"),
        (f"{w}#15", "bad_annotation"),
        ("curvedsynth/IMG/5.jpg", "Windows", "curvedsynth"),
        ("curvedsynth/IMG/6.jpg", "dotted", "curvedsynth"),
    ]
    assert items[0].image == root / "IMG" / "1.jpg"
    assert items[0].attrs == {
        "image": "curvedsynth/IMG/1.jpg",
        "subset": "curvedsynth",
        "annotation": f"{w}#1",
    }


def test_dataset_folders(tmp_path):
    one = json.dumps([{"img": "IMG/1.jpg", "word": "one"}]).encode()
    # several parts in one archive, each its own dataset folder; natural order (part2 before part10)
    for part in ("part10", "part2"):
        _tree(tmp_path / "a" / "CurvedSynth" / part, {"Label.json": one, "IMG/1.jpg": JPEG})
    items = list(cst.parse(ParseContext("release", "train", {"dataset": tmp_path / "a"}, {})))
    assert _summary(items) == [
        ("CurvedSynth/part2/IMG/1.jpg", "one", "CurvedSynth/part2"),
        ("CurvedSynth/part10/IMG/1.jpg", "one", "CurvedSynth/part10"),
    ]
    # Label.json at the top of the archive: keys without a folder, no subset recorded
    _tree(tmp_path / "b", {"Label.json": one, "IMG/1.jpg": JPEG, "deeper/Label.json": b"not read"})
    (item,) = cst.iter_release(tmp_path / "b")
    assert item.image_id == "IMG/1.jpg" and item.attrs == {"image": "IMG/1.jpg", "annotation": "Label.json#1"}
    # more than two folders deep is not searched
    _tree(tmp_path / "c" / "x" / "y" / "z", {"Label.json": one, "IMG/1.jpg": JPEG})
    with pytest.raises(FileNotFoundError, match="Label.json"):
        list(cst.iter_release(tmp_path / "c"))
    assert cst.dataset_folders(tmp_path / "c", depth=3) == [tmp_path / "c" / "x" / "y" / "z"]


def test_lmdb(tmp_path):
    base = tmp_path / "extract" / "Curved_SynthText"
    write_str_lmdb(base / "syntext2", [("b1", JPEG)])
    write_str_lmdb(base / "syntext1", [("a1", JPEG), ("a2", JPEG)])
    items = list(cst.parse(ParseContext("lmdb", "train", {"lmdb": tmp_path / "extract"}, {})))
    assert _summary(items) == [
        ("Curved_SynthText/syntext1#1", "a1", "syntext1"),
        ("Curved_SynthText/syntext1#2", "a2", "syntext1"),
        ("Curved_SynthText/syntext2#1", "b1", "syntext2"),
    ]
    assert items[0].data == JPEG and items[0].attrs == {"subset": "syntext1", "lmdb_index": 1}
    (tmp_path / "empty").mkdir()
    assert _summary(iter_lmdb_tree(tmp_path / "empty")) == [("empty", "missing_lmdb")]


def test_recipe_facts():
    r = load_recipe("cst")
    assert (r.group, r.login_required, r.parser, r.default_input) == ("S", True, "cst", "release")
    (release,) = r.input("release").archives
    (packed,) = r.input("lmdb").archives
    assert (release.name, release.role, packed.name, packed.role) == (
        samples.RELEASE, "dataset", samples.LMDB_ARCHIVE, "lmdb"
    )  # fmt: skip
    assert release.url == "https://pan.baidu.com/s/1YYH9g1TvdbNvquj-7-u3tg"
    assert all(a.md5 is None and a.sha256 is None for a in (release, packed))  # none published
    assert r.options == {} and r.counts == {"rebu_syn_instances": 1700000}


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["cst"])
    return directory


def test_fixture_layout(mirror):
    with zipfile.ZipFile(mirror / samples.RELEASE) as zf:
        names = set(zf.namelist())
        records = json.loads(zf.read("CurvedSynth/Label.json"))
        raw = zf.read("CurvedSynth/Label.json")
    assert len(records) == len(samples.RECORDS) and b"Caf\\u00e9" in raw  # Python's default ensure_ascii
    assert "CurvedSynth/IMG/7.jpg" not in names and "CurvedSynth/IMG/11.jpg" in names
    for record in records:
        chars = np.asarray(record["chars"])
        assert chars.shape == (2, 4, max(len(str(record["word"])), 1))  # x/y x corners x characters
    with zipfile.ZipFile(mirror / samples.LMDB_ARCHIVE) as zf:
        assert {n.rsplit("/", 1)[0] for n in zf.namelist()} == {
            "Curved_SynthText/syntext1",
            "Curved_SynthText/syntext2",
        }


def _expect(rows):
    """rows: (key, crop name, raw) -> (kept [(key, crop name, raw, label)], policy drops Counter)."""
    policy = LabelPolicy("36")
    kept, dropped = [], Counter()
    for key, name, raw in rows:
        label, reason = policy.normalize(raw)
        if label:
            kept.append((key, name, raw, label))
        else:
            dropped[reason] += 1
    return kept, dropped


def _build(tmp_path, mirror, input_name):
    return build_over_http(tmp_path, mirror, "cst", input_name)


def _check_stored(built, kept, crops):
    assert [s["key"] for s in built] == [f"cst/{k}" for k, _, _, _ in kept]
    for sample, (_, name, raw, label) in zip(built, kept):
        assert (sample["label"], sample["meta"]["label_raw"]) == (label, raw)
        assert sample["image"] == crops[name]  # stored byte for byte
        pixels = cv2.imdecode(np.frombuffer(sample["image"], np.uint8), cv2.IMREAD_GRAYSCALE)
        assert pixels is not None and float(pixels.std()) > 10  # a real crop, not blank


def test_build_release_from_http_mirror(tmp_path, mirror):
    summary, report, built = _build(tmp_path, mirror, None)
    seen, rows = set(), []
    for img, word, shipped in samples.RECORDS:
        if (
            shipped
            and isinstance(word, str)
            and word
            and shipped not in seen
            and not img.startswith(("/", ".."))
        ):
            seen.add(shipped)
            rows.append((f"CurvedSynth/{shipped}", shipped, word))
    kept, dropped = _expect(rows)
    assert [label for *_, label in kept] == ["curved", "synthtext", "cafe", "twowords", "road", "exit"]
    parser_drops = {
        "missing_image": 1,
        "bad_path": 2,
        "bad_annotation": 1,
        "empty_label": 1,
        "duplicate_image": 1,
    }
    assert summary.kept == len(kept) == 6
    assert summary.dropped == dict(dropped + Counter(parser_drops))
    assert report["dropped"] == {"bad_annotation": 1, "bad_path": 2, "duplicate_image": 1, "empty_label": 2,
                                 "label_too_long": 1, "missing_image": 1}  # fmt: skip
    assert report["status"] == "complete" and report["group"] == "S" and report["kept"] == 6
    assert {e["where"] for e in report["errors"]} >= {"CurvedSynth/Label.json#8", "CurvedSynth/Label.json#12"}
    assert report["output"]["directory"] == "train/synth/cst"
    assert (tmp_path / "train" / "synth" / "cst").is_dir()
    _check_stored(built, kept, samples.crops())
    assert built[0]["meta"]["annotation"] == "CurvedSynth/Label.json#1"
    assert {s["meta"]["subset"] for s in built} == {"CurvedSynth"}


def test_build_lmdb_from_http_mirror(tmp_path, mirror):
    summary, report, built = _build(tmp_path, mirror, "lmdb")
    rows = [(f"Curved_SynthText/{subset}#{i}", f"lmdb/{subset}/{i}", t)
            for subset, words in samples.LMDB_WORDS.items()
            for i, t in enumerate(words, start=1)]  # fmt: skip
    kept, dropped = _expect(rows)
    assert summary.kept == len(kept) == 3 and summary.dropped == dict(dropped)
    assert summary.dropped == {"empty_label": 1, "label_too_long": 1}
    _check_stored(built, kept, samples.crops())
    assert [s["meta"]["subset"] for s in built] == ["syntext1", "syntext1", "syntext2"]
    assert report["options"]["input"] == "lmdb" and report["inputs"][0]["name"] == samples.LMDB_ARCHIVE
