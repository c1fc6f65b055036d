from pathlib import Path

import pytest
import yaml

from rebusyn.recipes import RecipeError, load_all, load_recipe, parse_recipe, recipes_dir


def test_every_shipped_recipe_validates():
    recipes = load_all()
    assert "icdar2015" in recipes
    for recipe in recipes.values():
        assert recipe.homepage.startswith("http") and recipe.licence
        for inp in recipe.inputs.values():
            for archive in inp.archives:
                assert archive.url.startswith("https://"), archive
                assert "example" not in archive.url and "TODO" not in archive.url


def test_icdar2015_recipe_facts():
    r = load_recipe("icdar2015")
    assert (r.group, r.licence, r.login_required, r.default_input) == ("B", "CC BY 4.0", True, "detection")
    det = r.input()
    assert [a.name for a in det.archives] == [
        "ch4_training_images.zip",
        "ch4_training_localization_transcription_gt.zip",
    ]
    assert det.archive("images").md5 == "c51cbace155dcc4d98c8dd19d378f30d"
    assert det.archive("annotations").md5 == "3bfaf1988960909014f7987d2343060b"
    assert r.input("word_crops").archive("crops").md5 == "600caf8c6a64a3dcf638839820edcca9"
    assert all(
        a.url == f"https://rrc.cvc.uab.es/downloads/{a.name}" for i in r.inputs.values() for a in i.archives
    )
    with pytest.raises(RecipeError, match="no input 'test'"):
        r.input("test")


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((recipes_dir() / "icdar2015.yaml").read_text())
    mutate(data)
    path = tmp_path / "icdar2015.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(group="Q"), "'group'"),
        (lambda d: d.pop("licence"), "'licence'"),
        (lambda d: d.update(login_required="yes"), "'login_required'"),
        (
            lambda d: d["inputs"]["detection"]["archives"][0].update(md5="C51CBACE"),
            "'inputs.detection.archives[0].md5'",
        ),
        (
            lambda d: d["inputs"]["detection"]["archives"][1].update(url="rrc/downloads/x.zip"),
            "'inputs.detection.archives[1].url'",
        ),
        (lambda d: d["inputs"]["word_crops"].update(archives=[]), "'inputs.word_crops.archives'"),
        (lambda d: d.update(default_input="nope"), "'default_input'"),
        (lambda d: d.update(name="ic15"), "'name'"),
        (
            lambda d: d["inputs"]["detection"]["archives"][0].update(login_required="no"),
            "'inputs.detection.archives[0].login_required'",
        ),
        (
            lambda d: d["inputs"]["detection"]["archives"][0].update(extract="some"),
            "'inputs.detection.archives[0].extract'",
        ),
        (
            lambda d: d["inputs"]["detection"]["archives"][0].update(extract=["a/../b"]),
            "'inputs.detection.archives[0].extract'",
        ),
    ],
)
def test_validation_names_file_and_field(tmp_path, mutate, field):
    path = _write(tmp_path, mutate)
    with pytest.raises(RecipeError) as info:
        parse_recipe(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_extract_field(tmp_path):
    def mutate(d):
        d["inputs"]["detection"]["archives"][0]["extract"] = False
        d["inputs"]["detection"]["archives"][1]["extract"] = ["/training/MJ/", "x"]

    archives = parse_recipe(_write(tmp_path, mutate)).input("detection").archives
    assert [a.extract for a in archives] == [False, ("training/MJ", "x")]
    default = parse_recipe(_write(tmp_path, lambda d: None)).input("detection").archives
    assert all(a.extract is True for a in default)


def test_unknown_source_lists_known_ones():
    with pytest.raises(RecipeError, match="known: .*icdar2015"):
        load_recipe("icdar2051")


def test_broken_yaml(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        parse_recipe(path)


def test_output_digest_ignores_comments_and_descriptive_fields(tmp_path: Path) -> None:
    """A build's identity hashes the recipe through output_digest: editing a comment or a published
    download size must not rebuild every root's source; editing what decides the output must."""
    from rebusyn.recipes import output_digest, recipes_dir

    original = (recipes_dir() / "totaltext.yaml").read_text(encoding="utf-8")
    assert "download_size: 441 MB" in original and "split: train" in original
    path = tmp_path / "totaltext.yaml"
    path.write_text(original, encoding="utf-8")
    digest = output_digest(path)
    edited = original.replace("download_size: 441 MB", "download_size: 442 MB").replace("12251", "12252")
    path.write_text("# a new comment\n" + edited, encoding="utf-8")
    assert output_digest(path) == digest
    path.write_text(original.replace("split: train", "split: test", 1), encoding="utf-8")
    assert output_digest(path) != digest
