"""The group-S acceptance path: `rebusyn samples M`, then `rebusyn build --groups S --mirror http://...`
builds the four public synthetic sets of REBU-Syn into `train/synth/`."""

import json

import lmdb
import pyarrow.parquet as pq

from rebusyn.cli import main
from rebusyn.recipes import load_all
from tests.httpserver import FileServer

S_SOURCES = ["cst", "mjsynth", "synthadd", "synthtext"]


def test_group_s_has_the_four_public_synthetic_sets():
    assert sorted(n for n, r in load_all().items() if r.group == "S") == S_SOURCES


def test_samples_then_build_group_s_over_http(tmp_path, capsys):
    mirror, root = tmp_path / "M", tmp_path / "root"
    assert main(["samples", str(mirror), "--sources", ",".join(S_SOURCES)]) == 0
    with FileServer(mirror) as server:
        argv = ["build", "--groups", "S", "--mirror", server.base_url + "/", "--root", str(root), "-q"]
        code = main([*argv, "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["source", "group"])
    table = {line.split()[0]: line.split() for line in lines[start + 1 : start + 1 + len(S_SOURCES)]}
    assert sorted(table) == S_SOURCES
    for name in S_SOURCES:
        report = json.loads((root / "reports" / f"{name}.json").read_text())
        assert report["status"] == "complete" and report["kept"] > 0, name
        assert all(i["origin"] == "mirror" and i["checksum_ok"] for i in report["inputs"]), name
        rows = pq.read_table(root / "index" / f"{name}.parquet").to_pylist()
        assert len(rows) == report["kept"] and {r["group"] for r in rows} == {"S"}
        assert all(r["shard"].startswith(f"train/synth/{name}/shard-") for r in rows)
        env = lmdb.open(str(root / rows[0]["shard"]), readonly=True, lock=False)
        with env.begin() as txn:
            assert int(txn.get(b"num-samples")) == len(rows)
            assert txn.get(b"label-%09d" % rows[-1]["idx"]).decode() == rows[-1]["label"]
        env.close()
    # never unpacked: the tarball and the 41 GB zip are read in place
    assert not (root / "cache" / "extract" / "mjsynth").exists()
    assert not (root / "cache" / "extract" / "synthtext").exists()
