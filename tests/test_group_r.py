"""The group-R acceptance path: `rebusyn samples M`, then `rebusyn build --groups R --mirror http://...`."""

import json

import lmdb
import pyarrow.parquet as pq

from rebusyn.cli import main
from rebusyn.recipes import load_all
from tests.httpserver import FileServer

R_SOURCES = ["art", "coco_text", "lsvt", "mlt19", "openvino", "rctw17", "rects", "textocr", "uber_text"]


def test_group_r_has_the_nine_sources_of_rebu_syn():
    assert sorted(n for n, r in load_all().items() if r.group == "R") == R_SOURCES


def test_samples_then_build_group_r_over_http(tmp_path, capsys):
    mirror, root = tmp_path / "M", tmp_path / "root"
    assert main(["samples", str(mirror)]) == 0
    with FileServer(mirror) as server:
        code = main(
            [
                "build",
                "--groups",
                "R",
                "--mirror",
                server.base_url + "/",
                "--root",
                str(root),
                "--workers",
                "2",
                "-q",
            ]
        )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["source", "group"])
    table = {line.split()[0]: line.split() for line in lines[start + 1 : start + 10]}
    assert sorted(table) == R_SOURCES
    for name in R_SOURCES:
        report = json.loads((root / "reports" / f"{name}.json").read_text())
        assert report["status"] == "complete" and report["kept"] > 0, name
        assert all(i["origin"] == "mirror" and i["checksum_ok"] for i in report["inputs"]), name
        rows = pq.read_table(root / "index" / f"{name}.parquet").to_pylist()
        assert len(rows) == report["kept"] and {r["group"] for r in rows} == {"R"}
        env = lmdb.open(str(root / rows[0]["shard"]), readonly=True, lock=False)
        with env.begin() as txn:
            assert int(txn.get(b"num-samples")) == len(rows)
            assert txn.get(b"label-%09d" % rows[-1]["idx"]).decode() == rows[-1]["label"]
        env.close()
        assert all(r["label"] and len(r["label"]) <= 25 for r in rows)
