"""`rebusyn sources`: the table of every recipe, and each source's state in a real root built from sample
archives (built, missing, partial, downloaded, verified, checksum differs, failed)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from rebusyn.build import BuildOptions, build
from rebusyn.catalog import catalog, format_table
from rebusyn.cli import main
from rebusyn.fetch import cached_digests
from rebusyn.recipes import available_sources, recipes_dir
from rebusyn.samplegen import write_samples


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mirror")
    write_samples(folder, ["icdar2015", "svt", "iiit5k"])
    return folder


def states(root: Path) -> dict[str, str | None]:
    return {r.name: r.state for r in catalog(root, ("B",))}


def test_every_recipe_is_listed_with_its_facts() -> None:
    rows = catalog()
    assert sorted(r.name for r in rows) == sorted(available_sources())
    svt = next(r for r in rows if r.name == "svt")
    assert (svt.group, svt.login_required, svt.reference_count) == ("B", False, 257)  # recipes/svt.yaml
    assert [r.group for r in rows] == sorted((r.group for r in rows), key="REBUSTC".index)
    assert all(r.state is None for r in rows)


def test_states_in_a_root(mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    build(BuildOptions(root, sources=("icdar2015",), mirror=str(mirror), progress=False))
    expected = {"icdar2013": "missing", "icdar2015": "built", "iiit5k": "missing", "svt": "missing"}
    assert states(root) == expected
    built = next(r for r in catalog(root) if r.name == "icdar2015")
    report = json.loads((root / "reports" / "icdar2015.json").read_text())
    assert (built.kept, built.dropped) == (report["kept"], report["dropped_total"])

    # svt's archive copied by hand: present, never hashed -> downloaded
    (root / "downloads" / "svt").mkdir(parents=True)
    shutil.copy(mirror / "svt.zip", root / "downloads" / "svt" / "svt.zip")
    assert states(root)["svt"] == "downloaded"
    # hashed (as a build does): the sample archive is not the official svt.zip -> its checksum differs
    cached_digests(root / "downloads" / "svt" / "svt.zip")
    assert states(root)["svt"] == "checksum differs"
    # a recipe whose md5 is this file's: verified
    recipes = tmp_path / "recipes"
    shutil.copytree(recipes_dir(), recipes)
    md5 = hashlib.md5((mirror / "svt.zip").read_bytes()).hexdigest()
    text = (recipes / "svt.yaml").read_text().replace("42d19160010d990ae6223b14f45eff88", md5)
    (recipes / "svt.yaml").write_text(text)
    monkeypatch.setenv("REBUSYN_RECIPES", str(recipes))
    assert states(root)["svt"] == "verified"
    # a file changed after it was hashed is only "downloaded" again until it is hashed anew
    with open(root / "downloads" / "svt" / "svt.zip", "ab") as handle:
        handle.write(b"x")
    assert states(root)["svt"] == "downloaded"

    # icdar2015's downloads (and their digest sidecars) without its build: the sample archives are not the
    # official files -> checksum differs; one of its two archives gone -> partial
    other = tmp_path / "other"
    shutil.copytree(root / "downloads", other / "downloads")
    assert states(other)["icdar2015"] == "checksum differs"
    assert len(list((other / "downloads" / "icdar2015").glob(".*.digests.json"))) == 2
    next((other / "downloads" / "icdar2015").glob("*.zip")).unlink()
    assert states(other)["icdar2015"] == "partial"

    # a failed build's report
    (root / "reports" / "icdar2013.json").write_text(json.dumps({"status": "failed", "kept": 0,
                                                                   "dropped_total": 0}))  # fmt: skip
    assert states(root)["icdar2013"] == "failed"


def test_cli_table(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    build(BuildOptions(root, sources=("icdar2015",), mirror=str(mirror), progress=False))
    assert main(["sources", "--root", str(root), "--groups", "b"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["source", "group", "login", "state", "kept", "dropped"]
    assert any(line.startswith("icdar2015") and " built " in line for line in lines)
    assert f"under {root}: 3 missing, 1 built" in out
    assert out == format_table(catalog(root, ("B",)), root) + "\n"
