"""The demo is the embedded main job: everything offline, through the real fetch path."""

import numpy as np
from PIL import Image

from rebusyn.demo import run_demo
from rebusyn.samplegen import write_samples


def test_sample_mirror_is_byte_reproducible(tmp_path):
    write_samples(tmp_path / "a")
    write_samples(tmp_path / "b")
    assert (tmp_path / "a" / "SHA256SUMS").read_bytes() == (tmp_path / "b" / "SHA256SUMS").read_bytes()


def test_demo_end_to_end(tmp_path):
    summary = run_demo(tmp_path, progress=False, synth_n=120, workers=1)
    text = summary.text()
    titles = [t.split(" ")[0] for t, _ in summary.sections]
    assert [t for t in titles if t != "build"] == [
        "samples", "synth", "mix", "load", "stats", "preview", "done"]  # fmt: skip
    assert titles[1] == "build" and titles.index("synth") in (2, 3)  # train groups, then the test sets if any
    assert "icdar2015  B      2/2 ok" in text
    # the report records that every input came from the mirror and was verified against its SHA256SUMS
    report = (tmp_path / "dataset" / "reports" / "icdar2015.json").read_text()
    assert '"origin": "mirror"' in report and '"checksum_ok": false' not in report
    assert (tmp_path / "manifests" / "rebusyn-3to1" / "manifest.parquet").is_file()
    load = dict(summary.sections)["load"]
    real = int(load.split("real ")[1].split(",")[0])
    synthetic = int(load.split("synthetic ")[1])
    assert real > 0 and synthetic == round(real / 3)
    sheet = np.asarray(Image.open(tmp_path / "preview.png").convert("L"))
    assert sheet.shape[0] > 100 and sheet.std() > 20  # not blank
    stats = dict(summary.sections)["stats"]
    assert f"real : synthetic = {real:,} : {synthetic:,}" in stats
    page = (tmp_path / "stats.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 4 and "icdar2015" in page
