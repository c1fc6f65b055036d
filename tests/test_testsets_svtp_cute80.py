"""SVTP (645) and CUTE80 (288), group T: the readers' quirks on inline files, and end-to-end builds of every
input from a sample mirror over HTTP into <root>/test/<name>/data.mdb (one LMDB each), with exact counts."""

import json
import shutil
import zipfile

import cv2
import lmdb
import numpy as np
import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.cli import main
from rebusyn.recipes import load_recipe, recipes_dir
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import _case_sensitive, write_samples
from rebusyn.samplegen import cute80 as cute_samples
from rebusyn.samplegen import svtp as svtp_samples
from rebusyn.sources import cute80, svtp
from rebusyn.sources._word_labels import iter_case_sensitive, iter_img_text
from rebusyn.sources.base import ParseContext, WordCrop
from tests._source_helpers import serve


def _summary(items):
    return [(i.image_id, i.text) if isinstance(i, WordCrop) else (i.where, i.reason) for i in items]


def _files(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# --- the case-sensitive layout (IMG/<i>.jpg + label/<i>.txt) -----------------------------------------------


def test_case_sensitive_quirks(tmp_path):
    folder = _files(
        tmp_path / "svtp_test",
        {
            "IMG/1.jpg": b"j1",
            "label/1.txt": b"WYNDHAM",  # Long & Yao: no trailing newline
            "IMG/2.jpg": b"j2",
            "label/2.txt": b"Casbah\n",  # PARSeq's corrections end with a newline
            "IMG/10.jpg": b"j10",
            "label/10.txt": b"THE Casbah",  # two words in one label
            "IMG/3.png": b"p3",  # png when there is no jpg
            "label/3.txt": b"\xef\xbb\xbfBOM\r\nsecond line",  # BOM, CRLF: first line only
            "IMG/4.jpg": b"j4",
            "IMG/4.png": b"p4",  # jpg preferred, as PARSeq's converter does
            "label/4.txt": b"  padded  ",
            "IMG/5.jpg": b"j5",
            "label/5.txt": b"\n",
            "IMG/6.jpg": b"j6",
            "label/6.txt": b"\xff\xfe\xfa",
            "label/7.txt": b"no image",
            "IMG/8.jpg": b"no label",
            "IMG/.DS_Store": b"\0",
            "label/.DS_Store": b"\0",
        },
    )
    items = list(iter_case_sensitive(folder, "svtp_test"))
    assert _summary(items) == [
        ("svtp_test/IMG/1.jpg", "WYNDHAM"),
        ("svtp_test/IMG/2.jpg", "Casbah"),
        ("svtp_test/IMG/3.png", "BOM"),
        ("svtp_test/IMG/4.jpg", "padded"),
        ("svtp_test/label/5.txt", "empty_label"),
        ("svtp_test/label/6.txt", "invalid_utf8"),
        ("svtp_test/label/7.txt", "missing_image"),
        ("svtp_test/IMG/8.jpg", "missing_label"),
        ("svtp_test/IMG/10.jpg", "THE Casbah"),  # natural order: 10 after 8
    ]
    assert items[3].read() == b"j4" and items[0].attrs == {"image": "svtp_test/IMG/1.jpg"}


def test_case_sensitive_set_in_a_github_archive(tmp_path):
    top = tmp_path / "Case-Sensitive-Scene-Text-Recognition-Datasets-master"
    _files(top, {"svtp_test/IMG/1.jpg": b"s", "svtp_test/label/1.txt": b"S", "cute80_test/IMG/1.jpg": b"c",
                 "cute80_test/label/1.txt": b"C"})  # fmt: skip
    for module, text in ((svtp, "S"), (cute80, "C")):
        items = list(module.parse(ParseContext("case_sensitive", "test", {"crops": tmp_path}, {})))
        assert [i.text for i in items] == [text]
    with pytest.raises(FileNotFoundError, match="iiit5k_test"):
        svtp.parse(ParseContext("case_sensitive", "test", {"crops": tmp_path}, {"folder": "iiit5k_test"}))


# --- MMOCR's mirrors ------------------------------------------------------------------------------------


def test_img_text_lines(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_bytes(b"a.jpg WYNDHAM\r\n\r\nb.jpg\nc.jpg  TWO WORDS \n")
    assert [(e.where, e.image, e.text) if hasattr(e, "image") else (e.where, e.reason)
            for e in iter_img_text(path, "gt.txt")] == [
        ("gt.txt:1", "a.jpg", "WYNDHAM"),
        ("gt.txt:3", "missing_label"),
        ("gt.txt:4", "c.jpg", "TWO WORDS"),
    ]  # fmt: skip
    path.write_bytes(b"timage/001.jpg RONALDO 1 RONALDO\ntimage/002.jpg 7 1\ntimage/003.jpg A B 1 A B\n")
    assert [(e.where, e.text if hasattr(e, "text") else e.reason)
            for e in iter_img_text(path, "t", extra_fields=2)] == [
        ("t:1", "RONALDO"), ("t:2", "bad_line"), ("t:3", "bad_line")
    ]  # fmt: skip


def test_svtp_mmocr_layout(tmp_path):
    _files(
        tmp_path,
        {"svtp/gt.txt": b"13_15_0_par.jpg WYNDHAM\n9_9_9_par.jpg GONE\n", "svtp/par1/13_15_0_par.jpg": b"x"},
    )
    items = list(svtp.parse(ParseContext("mmocr", "test", {"crops": tmp_path}, {})))
    assert _summary(items) == [("svtp/par1/13_15_0_par.jpg", "WYNDHAM"), ("svtp/gt.txt:2", "missing_image")]
    with pytest.raises(FileNotFoundError, match="svtp/gt.txt"):
        list(svtp.iter_mmocr(tmp_path / "svtp" / "par1"))


def test_cute80_mmocr_txt_and_json(tmp_path):
    images = _files(tmp_path / "timage_x", {"timage/001.jpg": b"1", "timage/002.jpg": b"2"})
    labels = _files(tmp_path, {"test_label.txt": b"timage/001.jpg SEACRST 1 SEACRST\ntimage/003.jpg X 1 X\n"})
    ctx = ParseContext("mmocr", "test", {"images": images, "labels": labels / "test_label.txt"}, {})
    assert _summary(cute80.parse(ctx)) == [
        ("timage/001.jpg", "SEACRST"),
        ("test_label.txt:2", "missing_image"),
    ]
    doc = {
        "metainfo": {},
        "data_list": [{"img_path": "textrecog_imgs/test/002.jpg", "instances": [{"text": "BEACH"}]}],
    }
    (tmp_path / "t.json").write_text(json.dumps(doc))
    ctx = ParseContext("mmocr_json", "test", {"images": images, "labels": tmp_path / "t.json"}, {})
    assert _summary(cute80.parse(ctx)) == [("timage/002.jpg", "BEACH")]
    (tmp_path / "no_images").mkdir()
    ctx = ParseContext(
        "mmocr", "test", {"images": tmp_path / "no_images", "labels": labels / "test_label.txt"}, {}
    )
    with pytest.raises(FileNotFoundError, match="timage"):
        list(cute80.parse(ctx))


def test_recipe_facts():
    svtp_r, cute_r = load_recipe("svtp_test"), load_recipe("cute80_test")
    for r in (svtp_r, cute_r):
        assert (r.group, r.login_required, r.default_input) == ("T", False, "case_sensitive")
        (archive,) = r.input().archives
        assert archive.name == _case_sensitive.ARCHIVE and archive.role == "crops" and archive.md5 is None
        assert archive.url.startswith(
            "https://github.com/baudm/Case-Sensitive-Scene-Text-Recognition-Datasets/"
        )
    assert svtp_r.homepage == "http://www.comp.nus.edu.sg/~phanquyt/"
    assert svtp_r.input("mmocr").archive("crops").md5 == "4232b46c81ba99eea6d057dcb06b8f75"
    assert cute_r.input("mmocr").archive("images").md5 == "9f3b1fe0e76f1fdfc70de3a365603d5e"
    assert cute_r.input("mmocr").archive("labels").md5 == "f679dec62916d3268aff9cd81990d260"
    assert cute_r.input("mmocr_json").archive("labels").md5 == "9c5c79d843b900325e7fd453b318cad9"
    assert (svtp_r.counts["test_word_crops"], cute_r.counts["test_word_crops"]) == (645, 288)


# --- end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["svtp", "cute80"])
    return directory


def test_fixture_layout(mirror):
    with zipfile.ZipFile(mirror / _case_sensitive.ARCHIVE) as zf:
        names = set(zf.namelist())
        top = _case_sensitive.TOP
        assert zf.read(f"{top}/svtp_test/label/5.txt") == b"Casbah\n"
    assert {f"{top}/.DS_Store", f"{top}/cute80_test/.DS_Store", f"{top}/iiit5k_test/IMG/1.jpg"} <= names
    assert sum(n.startswith(f"{top}/svtp_test/IMG/") for n in names) == 10
    assert sum(n.startswith(f"{top}/cute80_test/IMG/") for n in names) == 8


PARSEQ_NAMES = {"svtp_test": "SVTP", "cute80_test": "CUTE80"}  # the folders PARSeq's test.py opens


def _read_test_lmdb(root, source):
    """Labels, images and keys of <root>/test/<PARSeq name>/data.mdb, with plain lmdb."""
    name = PARSEQ_NAMES[source]
    assert (root / "test" / name / "data.mdb").is_file()
    env = lmdb.open(str(root / "test" / name), readonly=True, lock=False)
    with env.begin() as txn:
        n = int(txn.get(b"num-samples"))
        rows = [(txn.get(b"label-%09d" % i).decode(), bytes(txn.get(b"image-%09d" % i)),
                 json.loads(txn.get(b"meta-%09d" % i))) for i in range(1, n + 1)]  # fmt: skip
    env.close()
    return rows


def _build(tmp_path, mirror, source, input_name=None):
    with serve(mirror, tmp_path / "www") as server:
        opts = BuildOptions(
            tmp_path / "root", sources=(source,), mirror=server.base_url, progress=False, input=input_name
        )
        (summary,) = build(opts).sources
    return summary, _read_test_lmdb(tmp_path / "root", source)


def _check(rows, truth):
    """truth: [(label_raw, image bytes)] in file order; checks labels (36-character policy) and bytes."""
    policy = LabelPolicy("36")
    kept = [(policy.normalize(t)[0], t, img) for t, img in truth if policy.normalize(t)[0]]
    assert [(r[0], r[2]["label_raw"], r[1]) for r in rows] == kept
    for _, image, _ in rows:
        pixels = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert pixels is not None and pixels.shape[0] >= 8 and float(pixels.std()) > 10


def test_build_svtp_case_sensitive(tmp_path, mirror):
    summary, rows = _build(tmp_path, mirror, "svtp_test")
    assert (summary.kept, summary.dropped, summary.group) == (9, {"empty_label": 1}, "T")
    crops = _case_sensitive.crops()["svtp_test"]
    _check(
        rows, [(lbl.decode().strip(), img) for (lbl, _), img in zip(_case_sensitive.SETS["svtp_test"], crops)]
    )
    assert rows[5][0] == "carnegiehall"  # Long & Yao's two-word label, spaces dropped by the 36 policy
    # the key is the source plus the parser's image id (the path inside the archive), unique across folders
    key, image = rows[0][2]["key"], rows[0][2]["image"]
    assert (key, image) == ("svtp_test/svtp_test/IMG/1.jpg", "svtp_test/IMG/1.jpg")


def test_build_svtp_mmocr(tmp_path, mirror):
    summary, rows = _build(tmp_path, mirror, "svtp_test", "mmocr")
    assert (summary.kept, summary.dropped) == (5, {})
    truth = [
        (text, img) for (_, text), img in zip(svtp_samples.MMOCR_GT, _case_sensitive.crops()["svtp_test"])
    ]
    _check(rows, truth)
    assert rows[0][2]["image"] == "svtp/par1/13_15_0_par.jpg"


def test_build_cute80_case_sensitive(tmp_path, mirror):
    summary, rows = _build(tmp_path, mirror, "cute80_test")
    assert (summary.kept, summary.dropped) == (8, {})
    crops = _case_sensitive.crops()["cute80_test"]
    _check(
        rows,
        [(lbl.decode().strip(), img) for (lbl, _), img in zip(_case_sensitive.SETS["cute80_test"], crops)],
    )
    assert [r[0] for r in rows][4:6] == ["southampton", "imperial"]


@pytest.mark.parametrize(("input_name", "column"), [("mmocr", 0), ("mmocr_json", 1)])
def test_build_cute80_mmocr(tmp_path, mirror, input_name, column):
    summary, rows = _build(tmp_path, mirror, "cute80_test", input_name)
    assert (summary.kept, summary.dropped) == (8, {})
    crops = _case_sensitive.crops()["cute80_test"]
    _check(rows, [(labels[column], img) for labels, img in zip(cute_samples.MMOCR_LABELS, crops)])
    assert rows[2][0] == ("seacrst" if input_name == "mmocr" else "seacrest")  # the typo-fixed JSON


def test_build_test_flag_builds_both_benchmarks(tmp_path, mirror, monkeypatch, capsys):
    """`rebusyn build --test` over HTTP, with a recipes folder holding just these two group-T recipes."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name in ("svtp_test", "cute80_test"):
        shutil.copy(recipes_dir() / f"{name}.yaml", recipes)
    monkeypatch.setenv("REBUSYN_RECIPES", str(recipes))
    with serve(mirror, tmp_path / "www") as server:
        code = main(
            ["build", "--test", "--mirror", server.base_url + "/", "--root", str(tmp_path / "r"), "-q"]
        )
    assert code == 0, capsys.readouterr().err
    assert len(_read_test_lmdb(tmp_path / "r", "svtp_test")) == 9
    assert len(_read_test_lmdb(tmp_path / "r", "cute80_test")) == 8
    assert not (tmp_path / "r" / "train").exists()
