"""`rebusyn build` end to end: native-layout archives over real HTTP on 127.0.0.1 -> shards, index, report."""

import json
import zipfile
from pathlib import Path

import lmdb
import pyarrow.parquet as pq
import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.cli import main
from rebusyn.fetch import ChecksumMismatch, ManualDownloadRequired
from rebusyn.sample import LabelPolicy
from rebusyn.samplegen import write_samples
from rebusyn.samplegen.icdar2015 import WORDS
from tests.httpserver import FileServer

DATA = Path(__file__).parent / "data" / "icdar2015"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror")
    write_samples(directory, ["icdar2015"])
    return directory


@pytest.fixture
def server(tmp_path, mirror):
    www = tmp_path / "www"
    www.mkdir()
    for path in mirror.iterdir():
        (www / path.name).write_bytes(path.read_bytes())
    with FileServer(www) as srv:
        yield srv


def opts(root, **kw):
    return BuildOptions(root=root, sources=("icdar2015",), progress=False, **kw)


def read_lmdb_labels(shard):
    env = lmdb.open(str(shard), readonly=True, lock=False)
    with env.begin() as txn:
        n = int(txn.get(b"num-samples"))
        labels = [txn.get(b"label-%09d" % i).decode() for i in range(1, n + 1)]
    env.close()
    return labels


def native_gt_words(mirror):
    """Legible transcriptions straight from the sample gt files (BOM, CRLF, text after the 8th comma)."""
    words = []
    with zipfile.ZipFile(mirror / "ch4_training_localization_transcription_gt.zip") as zf:
        for name in sorted(zf.namelist(), key=lambda n: int(n[7:-4])):
            text = zf.read(name).decode("utf-8-sig")
            words += [
                line.split(",", 8)[8] for line in text.split("\r\n") if line and not line.endswith(",###")
            ]
    return words


def test_build_from_http_mirror(tmp_path, server, mirror):
    result = build(opts(tmp_path / "root", mirror=server.base_url + "/"))
    (summary,) = result.sources
    assert result.groups_without_sources == []
    policy = LabelPolicy("36")
    words = native_gt_words(mirror)
    expected = [policy.normalize(w)[0] for w in words]
    assert summary.kept == sum(1 for e in expected if e)
    assert summary.dropped["empty_label"] == sum(1 for w in words if policy.normalize(w)[1] == "empty_label")
    assert summary.dropped["label_too_long"] >= 1 and summary.dropped["dont_care"] >= 1

    root = tmp_path / "root"
    index = pq.read_table(root / "index" / "icdar2015.parquet").to_pylist()
    assert [r["label"] for r in index] == [e for e in expected if e]
    assert all(r["label_raw"] in WORDS for r in index)
    shards = sorted({r["shard"] for r in index})
    assert sum(len(read_lmdb_labels(root / s)) for s in shards) == summary.kept
    assert read_lmdb_labels(root / shards[0])[:3] == [r["label"] for r in index[:3]]

    report = json.loads((root / "reports" / "icdar2015.json").read_text())
    assert report["status"] == "complete" and report["kept"] == summary.kept
    assert {i["name"]: (i["origin"], i["checksum_ok"]) for i in report["inputs"]} == {
        "ch4_training_images.zip": ("mirror", True),
        "ch4_training_localization_transcription_gt.zip": ("mirror", True),
    }
    assert report["options"]["charset"] == "36" and report["tool"]["name"] == "rebusyn"
    # vertical words were annotated with upright boxes and come out rotated
    assert any(json.loads(_meta(root / s)).get("rotated") for s in shards)


def _meta(shard):
    env = lmdb.open(str(shard), readonly=True, lock=False)
    with env.begin() as txn:
        n = int(txn.get(b"num-samples"))
        metas = [txn.get(b"meta-%09d" % i) for i in range(1, n + 1)]
    env.close()
    rotated = [m for m in metas if b'"rotated": true' in m]
    return (rotated or metas)[0]


def test_dropped_connection_is_resumed_and_workers_do_not_change_output(tmp_path, server):
    server.fault("/ch4_training_images.zip", drop_first=1, drop_after=50_000)
    one = build(opts(tmp_path / "a", mirror=server.base_url))
    ranges = [h.range for h in server.hits("/ch4_training_images.zip")]
    assert ranges[0] is None and ranges[1] == "bytes=50000-"
    two = build(opts(tmp_path / "b", mirror=server.base_url, workers=2))
    assert one.sources[0].kept == two.sources[0].kept
    sha_a = pq.read_table(tmp_path / "a" / "index" / "icdar2015.parquet", columns=["sha1", "key"])
    sha_b = pq.read_table(tmp_path / "b" / "index" / "icdar2015.parquet", columns=["sha1", "key"])
    assert sha_a.equals(sha_b)


def test_wrong_bytes_fail_closed_and_publish_nothing(tmp_path, server):
    server.fault("/ch4_training_localization_transcription_gt.zip", corrupt=True)
    with pytest.raises(ChecksumMismatch, match="ch4_training_localization_transcription_gt.zip"):
        build(opts(tmp_path, mirror=server.base_url))
    assert not (tmp_path / "index").exists() and not (tmp_path / "train").exists()
    assert not list((tmp_path / "downloads" / "icdar2015").glob("*gt.zip*"))


def test_login_gated_source_says_what_to_download(tmp_path, capsys):
    with pytest.raises(ManualDownloadRequired) as info:
        build(opts(tmp_path))
    text = str(info.value)
    assert "ch4_training_images.zip" in text and "ch4_training_localization_transcription_gt.zip" in text
    assert "rrc.cvc.uab.es" in text
    code = main(["build", "--sources", "icdar2015", "--root", str(tmp_path)])
    assert code == 2
    assert "must be downloaded by hand" in capsys.readouterr().err


def _real_archives(directory):
    """The five genuine images and ground truths, zipped under the official archive names."""
    directory.mkdir()
    with zipfile.ZipFile(directory / "ch4_training_images.zip", "w") as zf:
        for p in sorted(DATA.glob("img_*.jpg")):
            zf.write(p, p.name)
    with zipfile.ZipFile(directory / "ch4_training_localization_transcription_gt.zip", "w") as zf:
        for p in sorted(DATA.glob("gt_img_*.txt")):
            zf.writestr(p.name, p.read_bytes().replace(b"\n", b"\r\n"))
    return directory


def test_from_dir_with_real_images(tmp_path, caplog):
    manual = _real_archives(tmp_path / "manual")
    # not the official archives: their md5 differs, and the build fails closed ...
    with pytest.raises(ChecksumMismatch):
        build(opts(tmp_path / "root", from_dir=manual))
    # ... unless the user accepts that, with a warning per file
    result = build(opts(tmp_path / "root", from_dir=manual, skip_checksum=True))
    (summary,) = result.sources
    assert summary.kept == 8 and summary.dropped == {"dont_care": 19}
    assert [i["checksum_ok"] for i in summary.inputs] == [False, False]
    assert sum("checksum" in r.getMessage().lower() for r in caplog.records) >= 2
    labels = (
        pq.read_table(tmp_path / "root" / "index" / "icdar2015.parquet", columns=["label"])
        .column(0)
        .to_pylist()
    )
    assert labels == [
        "genaxistheatre",
        "06",
        "6203",
        "carpark",
        "exit",
        "i2r",
        "fusionopolis",
        "fusionopolis",
    ]


def test_corrupt_image_is_counted_not_fatal(tmp_path):
    manual = _real_archives(tmp_path / "manual")
    with zipfile.ZipFile(manual / "ch4_training_images.zip", "a") as zf:
        zf.writestr("img_6.jpg", (DATA / "img_1.jpg").read_bytes()[:300])  # truncated JPEG
    with zipfile.ZipFile(manual / "ch4_training_localization_transcription_gt.zip", "a") as zf:
        zf.writestr("gt_img_6.txt", b"\xef\xbb\xbf1,1,50,1,50,20,1,20,Hello\r\n")
    (summary,) = build(opts(tmp_path / "root", from_dir=manual, skip_checksum=True)).sources
    assert summary.kept == 8 and summary.dropped["corrupt_image"] == 1
    report = json.loads(summary.report.read_text())
    assert any(e["reason"] == "corrupt_image" and e["where"].endswith("img_6.jpg") for e in report["errors"])


def test_word_crop_input_stores_official_bytes(tmp_path, server, mirror):
    (summary,) = build(opts(tmp_path, mirror=server.base_url, input="word_crops")).sources
    with zipfile.ZipFile(mirror / "ch4_training_word_images_gt.zip") as zf:
        lines = zf.read("gt.txt").decode("utf-8-sig").strip().split("\r\n")
        first = zf.read("word_1.png")
    assert summary.kept + sum(summary.dropped.values()) == len(lines)
    index = pq.read_table(tmp_path / "index" / "icdar2015.parquet").to_pylist()
    assert index[0]["key"] == "icdar2015/word_1.png"
    env = lmdb.open(str(tmp_path / index[0]["shard"]), readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.get(b"image-%09d" % index[0]["idx"]) == first
    env.close()


def test_cli_build_summary(tmp_path, server, capsys):
    code = main(
        ["build", "--sources", "icdar2015", "--root", str(tmp_path), "--mirror", server.base_url, "-q"]
    )
    out = capsys.readouterr().out
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split() == [
        "source",
        "group",
        "archives",
        "images",
        "instances",
        "kept",
        "dropped",
        "shards",
        "MiB",
        "samples/s",
    ]
    cells = row.split()
    assert cells[:4] == ["icdar2015", "B", "2/2", "ok"] and cells[4] == "24"
    images, instances, kept, dropped = (int(c.replace(",", "")) for c in cells[4:8])
    assert kept + dropped == instances and kept > 0
    assert "icdar2015: dropped dont_care" in out and str(tmp_path) in out
    assert "groups with no source recipes yet" not in out


def test_unknown_group_is_a_one_line_error(tmp_path, capsys):
    assert main(["build", "--groups", "X", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown group 'X'" in err[0]


def test_crop_bbox_reproduces_the_axis_aligned_crop(tmp_path):
    manual = _real_archives(tmp_path / "manual")
    (warp,) = build(opts(tmp_path / "warp", from_dir=manual, skip_checksum=True)).sources
    (bbox,) = build(opts(tmp_path / "bbox", from_dir=manual, skip_checksum=True, crop="bbox")).sources
    assert warp.kept == bbox.kept == 8
    rows = pq.read_table(tmp_path / "bbox" / "index" / "icdar2015.parquet").to_pylist()
    env = lmdb.open(str(tmp_path / "bbox" / rows[0]["shard"]), readonly=True, lock=False)
    with env.begin() as txn:
        metas = [json.loads(txn.get(b"meta-%09d" % r["idx"])) for r in rows]
    env.close()
    for row, meta in zip(rows, metas):
        xs, ys = [p[0] for p in meta["points"]], [p[1] for p in meta["points"]]
        assert meta["crop"] == "bbox"
        assert (row["w"], row["h"]) == (max(xs) - min(xs), max(ys) - min(ys))
    warp_sizes = pq.read_table(
        tmp_path / "warp" / "index" / "icdar2015.parquet", columns=["w", "h"]
    ).to_pylist()
    assert warp_sizes != [{"w": r["w"], "h": r["h"]} for r in rows]  # slanted quads differ from their boxes
