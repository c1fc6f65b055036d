"""Union14M-L: the release reader's quirks on inline JSONL / MMOCR 1.x JSON, the LMDB reader, and end-to-end
builds of both inputs from a sample mirror served over HTTP."""

import json
import tarfile
from collections import Counter

import cv2
import numpy as np
import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.fetch import safe_extract
from rebusyn.recipes import load_recipe
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import union14m as samples
from rebusyn.samplegen import write_samples
from rebusyn.samplegen._word_crops import write_str_lmdb
from rebusyn.sources import union14m
from rebusyn.sources.base import ParseContext, WordCrop
from tests._source_helpers import read_built, serve


def _summary(items):
    return [(i.image_id, i.text, i.attrs.get("subset")) if isinstance(i, WordCrop) else (i.where, i.reason)
            for i in items]  # fmt: skip


def _release(tmp_path, files, *, wrapper="Union14M-L", images=("full_images/a/1.jpg", "full_images/b/1.jpg")):
    root = tmp_path / "extract" / wrapper if wrapper else tmp_path / "extract"
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for rel in images:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\xff\xd8jpeg")
    return tmp_path / "extract"


def test_jsonl_quirks(tmp_path):
    lines = [
        b'{"filename": "full_images/a/1.jpg", "text": "Caf\\u00e9 au lait"}',  # escaped non-ASCII, spaces
        b"",
        b'{"filename": "full_images/b/1.jpg", "text": "dup name"}',  # same basename, other source folder
        b'{"filename": "full_images/a/2.jpg", "text": "x"}',  # not in the archive
        b'{"filename": "a/1.jpg", "text": "no prefix"}',  # resolved under full_images/ [?]
        b'{"filename": "../../etc/passwd", "text": "x"}',
        b'{"filename": "/abs/1.jpg", "text": "x"}',
        b'{"filename": "full_images/a/1.jpg"}',
        b'{"filename": "full_images/a/1.jpg", "text": 7}',
        b'["full_images/a/1.jpg", "x"]',
        b'{"filename": "full_images/a/1.jpg", "text": "trunc',
        b'{"filename": "full_images\\\\b\\\\1.jpg", "text": "windows"}',
        b'{"filename": "full_images/a/1.jpg", "text": "\xff"}',
    ]
    raw = b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n"
    root = _release(tmp_path, {"train_annos/mmocr-0.x/train_easy.jsonl": raw})
    items = list(union14m.iter_release(root, ["easy"]))
    w = "train_annos/mmocr-0.x/train_easy.jsonl"
    assert _summary(items) == [
        ("full_images/a/1.jpg", "Café au lait", "easy"),
        ("full_images/b/1.jpg", "dup name", "easy"),
        (f"{w}:4", "missing_image"),
        ("full_images/a/1.jpg", "no prefix", "easy"),
        (f"{w}:6", "bad_path"),
        (f"{w}:7", "bad_path"),
        (f"{w}:8", "bad_annotation"),
        (f"{w}:9", "bad_annotation"),
        (f"{w}:10", "bad_annotation"),
        (f"{w}:11", "bad_json"),
        ("full_images/b/1.jpg", "windows", "easy"),
        (f"{w}:13", "invalid_utf8"),
    ]
    assert items[0].attrs == {"image": "full_images/a/1.jpg", "subset": "easy"}
    assert items[0].image == root / "Union14M-L" / "full_images/a/1.jpg"


def test_mmocr1_json_quirks(tmp_path):
    doc = {
        "metainfo": {"dataset_type": "TextRecogDataset", "task_name": "textrecog"},
        "data_list": [
            {"img_path": "full_images/a/1.jpg", "instances": [{"text": "ONE"}]},
            {"img_path": "full_images/b/1.jpg", "instances": [{"text": "A"}, {"text": "B"}]},
            {"img_path": "full_images/b/1.jpg", "instances": []},
            {"instances": [{"text": "no path"}]},
        ],
    }
    # the README's tree names the folder mmocr1.0.x, MAERec's configs mmocr1.0: both are found
    root = _release(tmp_path, {"train_annos/mmocr1.0.x/train_hard.json": json.dumps(doc).encode()})
    items = list(union14m.iter_release(root, ["hard"], "auto"))
    w = "train_annos/mmocr1.0.x/train_hard.json"
    assert _summary(items) == [
        ("full_images/a/1.jpg", "ONE", "hard"),
        (f"{w}#2", "bad_annotation"),
        (f"{w}#3", "bad_annotation"),
        (f"{w}#4", "bad_annotation"),
    ]
    for bad in (b"{not json", b'{"data_list": {}}', b"[]"):
        (root / "Union14M-L" / w).write_bytes(bad)
        assert _summary(union14m.iter_release(root, ["hard"])) == [(w, "bad_json")]


def test_format_choice_missing_files_and_root_lookup(tmp_path):
    files = {
        "train_annos/mmocr-0.x/train_easy.jsonl": b'{"filename": "full_images/a/1.jpg", "text": "jsonl"}\n',
        "train_annos/mmocr1.0/train_easy.json": json.dumps(
            {"data_list": [{"img_path": "full_images/a/1.jpg", "instances": [{"text": "json"}]}]}
        ).encode(),
    }
    root = _release(tmp_path, files, wrapper="outer/Union14M-L")  # one folder deeper than usual
    texts = {
        fmt: [i.text for i in union14m.iter_release(root, ["easy"], fmt)] for fmt in ("auto", "json", "jsonl")
    }
    assert texts == {"auto": ["jsonl"], "json": ["json"], "jsonl": ["jsonl"]}
    (problem,) = union14m.iter_release(root, ["normal"])
    assert problem.reason == "missing_annotations" and "normal" in problem.where
    with pytest.raises(FileNotFoundError, match="train_annos"):
        list(union14m.iter_release(tmp_path / "extract" / "outer" / "Union14M-L" / "full_images", ["easy"]))
    with pytest.raises(ValueError, match="annotations"):
        union14m.parse(ParseContext("images", "train", {"dataset": root}, {"annotations": "xml"}))


def test_default_subsets_are_the_five_training_levels(tmp_path):
    files = {
        f"train_annos/mmocr-0.x/{stem}.jsonl": json.dumps(
            {"filename": "full_images/a/1.jpg", "text": stem}
        ).encode()
        for stem in ["val_annos", *(f"train_{lv}" for lv in union14m.LEVELS)]
    }
    files["Union14M-Benchmarks/general/annotation.jsonl"] = (
        b'{"filename": "full_images/a/1.jpg", "text": "B"}\n'
    )
    root = _release(tmp_path, files)
    ctx = ParseContext("images", "train", {"dataset": root}, {})
    assert [i.text for i in union14m.parse(ctx)] == [f"train_{lv}" for lv in union14m.LEVELS]
    ctx = ParseContext("images", "train", {"dataset": root}, {"subsets": "val"})
    assert [i.text for i in union14m.parse(ctx)] == ["val_annos"]


def test_lmdb_subsets(tmp_path):
    base = tmp_path / "extract" / "Union14M_L_lmdb_format"
    for name in ("simple", "hell", "hard"):
        write_str_lmdb(base / name, [(f"{name}-1", b"\xff\xd8a"), (f"{name}-2", b"\xff\xd8b")])
    extracted = tmp_path / "extract"
    items = list(union14m.parse(ParseContext("lmdb", "train", {"lmdb": extracted}, {})))
    assert [(i.image_id, i.text) for i in items][:3] == [
        ("Union14M_L_lmdb_format/hard#1", "hard-1"),
        ("Union14M_L_lmdb_format/hard#2", "hard-2"),
        ("Union14M_L_lmdb_format/hell#1", "hell-1"),
    ]
    assert len(items) == 6 and items[0].attrs == {"subset": "hard", "lmdb_index": 1}
    ctx = ParseContext("lmdb", "train", {"lmdb": extracted}, {"lmdb_subsets": ["simple", "difficult"]})
    chosen = list(union14m.parse(ctx))
    assert _summary(chosen) == [
        ("extract/difficult", "missing_lmdb"),
        ("Union14M_L_lmdb_format/simple#1", "simple-1", "simple"),
        ("Union14M_L_lmdb_format/simple#2", "simple-2", "simple"),
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [p.reason for p in union14m.parse(ParseContext("lmdb", "train", {"lmdb": empty}, {}))] == [
        "missing_lmdb"
    ]


def test_recipe_facts():
    r = load_recipe("union14m")
    assert (r.group, r.login_required, r.parser, r.default_input) == ("U", True, "union14m", "images")
    (release,) = r.input("images").archives
    (packed,) = r.input("lmdb").archives
    assert (release.name, release.role, packed.name, packed.role) == (
        samples.RELEASE, "dataset", samples.LMDB_ARCHIVE, "lmdb"
    )  # fmt: skip
    assert all(a.md5 is None and a.sha256 is None for a in (release, packed))  # none published
    assert release.url.startswith("https://1drv.ms/") and packed.url == release.url
    assert r.options["subsets"] == list(union14m.LEVELS) and r.options["lmdb_subsets"] is None
    assert r.counts == {"rebu_syn_instances": 3000000, "official_train": 3230742}


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["union14m"])
    return directory


def test_fixture_layout(mirror):
    with tarfile.open(mirror / samples.RELEASE) as tar:
        names = set(tar.getnames())
    for level in union14m.LEVELS:
        assert f"Union14M-L/train_annos/mmocr-0.x/train_{level}.jsonl" in names
        assert f"Union14M-L/train_annos/mmocr1.0/train_{level}.json" in names
    assert "Union14M-L/Union14M-Benchmarks/general/annotation.jsonl" in names
    basenames = Counter(n.rsplit("/", 1)[1] for n in names if n.startswith("Union14M-L/full_images/"))
    assert basenames["1.jpg"] == 2  # the same file name in two source folders


def _expect(truth):
    """(kept [(truth row, label)], dropped Counter) under the default label policy."""
    policy = LabelPolicy("36")
    results = [(row, *policy.normalize(row[1])) for row in truth]
    return [(row, label) for row, label, _ in results if label], Counter(
        r for _, label, r in results if not label
    )


def _check_stored(samples_built, kept, crops):
    for sample, ((name, text, subset), label) in zip(samples_built, kept):
        assert sample["label"] == label and sample["meta"]["label_raw"] == text
        assert sample["image"] == crops[name]  # stored byte for byte
        assert sample["meta"]["subset"] == subset
        pixels = cv2.imdecode(np.frombuffer(sample["image"], np.uint8), cv2.IMREAD_GRAYSCALE)
        assert pixels is not None and float(pixels.std()) > 10  # a real crop, not blank


def test_build_release_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(
            BuildOptions(tmp_path, sources=("union14m",), mirror=server.base_url, progress=False)
        ).sources
    truth = [(f"full_images/{f}", t, level)
             for level in union14m.LEVELS for f, t in samples.RELEASE_WORDS[level]]  # fmt: skip
    kept, dropped = _expect(truth)
    assert summary.kept == len(kept) == 9 and summary.dropped == dict(dropped)
    assert summary.dropped == {"empty_label": 1, "label_too_long": 1}
    built = read_built(tmp_path, "union14m")
    assert [s["label"] for s in built] == [label for _, label in kept]
    _check_stored(built, kept, samples.crops())
    assert {s["meta"]["image"] for s in built} >= {
        "full_images/COCOTextV2/1.jpg",
        "full_images/TextOCR/1.jpg",
    }
    raw = {s["meta"]["label_raw"] for s in built}
    assert "VALONLY" not in raw and not raw & {t for ws in samples.BENCHMARK_WORDS.values() for _, t in ws}
    assert (tmp_path / "train" / "real" / "U" / "union14m").is_dir()


def test_release_json_and_jsonl_agree(tmp_path, mirror):
    safe_extract(mirror / samples.RELEASE, tmp_path / "x")
    read = {
        fmt: _summary(union14m.iter_release(tmp_path / "x", list(union14m.LEVELS), fmt))
        for fmt in ("json", "jsonl")
    }
    assert read["json"] == read["jsonl"] and len(read["json"]) == 11


def test_build_lmdb_from_http_mirror(tmp_path, mirror):
    with serve(mirror, tmp_path / "www") as server:
        opts = BuildOptions(
            tmp_path, sources=("union14m",), mirror=server.base_url, progress=False, input="lmdb"
        )
        (summary,) = build(opts).sources
    truth = [(f"lmdb/{subset}/{i}", t, subset)
             for subset in sorted(samples.LMDB_WORDS)
             for i, t in enumerate(samples.LMDB_WORDS[subset], start=1)]  # fmt: skip
    kept, dropped = _expect(truth)
    assert summary.kept == len(kept) == 8 and summary.dropped == dict(dropped)
    built = read_built(tmp_path, "union14m")
    _check_stored(built, kept, samples.crops())
    assert [s["key"] for s in built][:2] == [
        "union14m/Union14M_L_lmdb_format/difficult#1",
        "union14m/Union14M_L_lmdb_format/difficult#2",
    ]
    assert [s["meta"]["lmdb_index"] for s in built][:2] == [1, 2]
