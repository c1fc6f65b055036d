import argparse

import pytest

from rebusyn.cli import build_parser, main, parse_count


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e6", 1_000_000), ("1_000_000", 1_000_000), ("1000000", 1_000_000), ("2000", 2000), ("2.5e3", 2500)],
)
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "1.5", "abc", "1e-3"])
def test_parse_count_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_count(text)


def test_contract_flags_parse():
    p = build_parser()
    a = p.parse_args(
        [
            "build",
            "--groups",
            "R,E,B,U",
            "--sources",
            "icdar2015",
            "--root",
            "d",
            "--from",
            "x",
            "--mirror",
            "http://127.0.0.1:1/",
            "--skip-checksum",
            "--charset",
            "94",
            "--workers",
            "2",
        ]
    )
    assert a.groups == ("R", "E", "B", "U") and a.sources == ("icdar2015",) and a.skip_checksum
    a = p.parse_args(["synth", "--n", "1e6", "--engine", "trdg", "--seed", "3", "--workers", "2"])
    assert a.n == 1_000_000 and a.seed == 3
    a = p.parse_args(["mix", "--ratio", "3:1", "--name", "x", "--out", "m", "--seed", "1", "--total", "1e3"])
    assert a.total == 1000


def test_root_from_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REBUSYN_ROOT", str(tmp_path / "envroot"))
    assert main(["mix", "--ratio", "3:1", "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "envroot") in err and len(err.strip().splitlines()) == 1


def test_samples_command(tmp_path, capsys):
    assert main(["samples", str(tmp_path / "mirror"), "--sources", "icdar2015"]) == 0
    names = sorted(p.name for p in (tmp_path / "mirror").iterdir())
    assert names == [
        "SHA256SUMS",
        "ch4_training_images.zip",
        "ch4_training_localization_transcription_gt.zip",
        "ch4_training_word_images_gt.zip",
    ]
    assert "--mirror" in capsys.readouterr().out
    assert main(["samples", str(tmp_path / "m2"), "--sources", "nosuch"]) == 1
