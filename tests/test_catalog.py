"""`rebusyn sources`: the table of every recipe, each source's download size (exact, published ≈, or ?),
and each source's state in a real root built from sample archives (built, missing, partial, downloaded,
verified, checksum differs, failed)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rebusyn.build import BuildOptions, build
from rebusyn.catalog import SourceRow, catalog, download_size, format_table
from rebusyn.cli import main
from rebusyn.fetch import cached_digests
from rebusyn.recipes import RecipeError, available_sources, load_recipe, parse_approx_size, recipes_dir
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


# -- download sizes ----------------------------------------------------------------------------------------


def size_column(table: str) -> dict[str, str]:
    """source -> the text of its `download size` cell, cut at the header's column positions."""
    lines = table.splitlines()
    start = lines[0].index("download size")
    end = lines[0].index("REBU-Syn count")
    return {line.split()[0]: line[start:end].strip() for line in lines[1:-1]}


def copied_recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "recipes"
    shutil.copytree(recipes_dir(), folder)
    monkeypatch.setenv("REBUSYN_RECIPES", str(folder))
    return folder


def edit_recipe(folder: Path, name: str, change) -> None:
    path = folder / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_published_sizes_are_shown_approximate() -> None:
    rows = {r.name: r for r in catalog()}
    textocr = rows["textocr"]  # recipes/textocr.yaml: 6.6 GB images + 272 MB + 39 MB JSON (TextOCR card)
    assert (textocr.official_bytes, textocr.approx_bytes) == (None, 6_900_000_000)
    assert rows["union14m"].approx_bytes == 12_000_000_000
    assert rows["art"].approx_bytes is None  # RRC publishes no size for ArT's files
    column = size_column(format_table(list(rows.values())))
    assert (column["textocr"], column["openvino"], column["totaltext"]) == ("≈6.9 GB", "≈138 GB", "≈441 MB")
    assert column["art"] == "?"
    # only the default input counts: MJSynth's DTRB LMDB pack (19 GB) is not what `build` fetches
    assert column["mjsynth"] == "≈10 GB"
    assert load_recipe("mjsynth").input("dtrb_lmdb").download_size == 19 * 10**9


def test_every_published_size_cites_its_source() -> None:
    for path in sorted(recipes_dir().glob("*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("download_size:"):
                where = f"{path.name}:{i + 1}"
                assert lines[i - 1].strip().startswith("#"), (
                    f"{where}: no comment says where the size is from"
                )


def test_exact_sizes_win_over_the_published_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copied_recipes(tmp_path, monkeypatch)

    def sized(*sizes: int | None):
        def change(data: dict) -> None:
            data["inputs"]["detection"]["download_size"] = "88 MB"
            for archive, size in zip(data["inputs"]["detection"]["archives"], sizes):
                if size is not None:
                    archive["size"] = size

        return change

    def icdar2015() -> tuple[SourceRow, str]:
        row = next(r for r in catalog(None, ("B",)) if r.name == "icdar2015")
        return row, size_column(format_table([row]))["icdar2015"]

    edit_recipe(folder, "icdar2015", sized(1_234_567, None))  # one archive's exact size only: the ≈ figure
    row, shown = icdar2015()
    assert (row.official_bytes, row.approx_bytes, shown) == (None, 88_000_000, "≈88 MB")
    edit_recipe(folder, "icdar2015", sized(1_234_567, 65_433))  # both: their exact sum, no ≈
    row, shown = icdar2015()
    assert (row.official_bytes, row.approx_bytes, shown) == (1_300_000, 88_000_000, "1.3 MB")


def test_size_text_and_totals() -> None:
    def shown(exact: int | None, approx: int | None) -> str:
        return download_size(SourceRow("x", "R", "", "", False, exact, None, approx))

    assert [shown(None, n) for n in (197 * 10**9, 9_960_000_000, 441 * 10**6, 999)] == [
        "≈197 GB", "≈10 GB", "≈441 MB", "≈999 B"]  # fmt: skip
    assert (shown(6_600_000_000, 1), shown(None, None)) == ("6.6 GB", "?")
    rows = [SourceRow("a", "R", "", "", False, None, None, 6_900_000_000),
            SourceRow("b", "R", "", "", False, 100_000_000, None, None),
            SourceRow("c", "R", "", "", False, None, None, None)]  # fmt: skip
    assert "download size ≈7.0 GB (unknown for 1)." in format_table(rows)
    assert "download size 100 MB." in format_table(rows[1:2])


def test_download_size_field_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # decimal arithmetic: 2.01 * 10**9 in floats is 2009999999.99..., which int() would cut to 2,009,999,999
    assert (parse_approx_size("2.01 GB"), parse_approx_size("8.42 GB")) == (2_010_000_000, 8_420_000_000)
    folder = copied_recipes(tmp_path, monkeypatch)
    for bad in (6_600_000_000, "6.6 gb", "6,6 GB", "0 GB", "about 6 GB", True):
        edit_recipe(folder, "svt", lambda data, bad=bad: data["inputs"]["original"].update(download_size=bad))
        with pytest.raises(RecipeError, match=r"svt\.yaml: field 'inputs\.original\.download_size' must be"):
            load_recipe("svt")
    edit_recipe(folder, "svt", lambda data: data["inputs"]["original"].update(download_size="118 MB"))
    assert load_recipe("svt").input().download_size == 118_000_000


def test_faq_tables_match_the_recipes() -> None:
    """docs/faq.md pastes the tables scripts/faq_tables.py prints; a recipe change must be pasted again."""
    checkout = Path(__file__).resolve().parent.parent
    printed = subprocess.run([sys.executable, str(checkout / "scripts" / "faq_tables.py"), "--bytes-per-crop",
                              "5842"], capture_output=True, text=True, check=True).stdout  # fmt: skip
    tables, current = [], []
    for line in printed.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current))
            current = []
    faq = (checkout / "docs" / "faq.md").read_text(encoding="utf-8")
    assert len(tables) == 3 and "| textocr | R | ≈6.9 GB | 800,000 |" in tables[0]
    for table in tables:
        assert table in faq, f"docs/faq.md is out of date; paste from scripts/faq_tables.py:\n{table}"
