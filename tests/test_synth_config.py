"""rebusyn/synth/config.py: the versioned effect configs `recipes/synth/<engine>.yaml`.

Every file here is written by the test (YAML text or bytes) and loaded with `load_config` against a
small schema that uses every kind of parameter spec (range, int_range, value, choice, none). Each
validation rule is checked by breaking one field of a valid file: the error must be a SynthConfigError
whose message names the file and the field.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from rebusyn.recipes import RecipeError
from rebusyn.synth import config as cfgmod
from rebusyn.synth.config import SynthConfigError, default_config_path, load_config

SCHEMA = {
    "effects": {
        "blur": {"sigma": ("range", 0.0, 5.0), "kind": ("choice", ("gaussian", "motion"))},
        "jpeg": {"quality": ("int_range", 1, 100)},
        "gain": {"level": ("value", 0, 2)},
        "flip": {},
    },
    "text": {"upper": None, "title": None},
}
VALID = {
    "schema": 1,
    "engine": "demo",
    "version": 2,
    "effects": {
        "blur": {"p": 0.3, "sigma": [0, 1.5], "kind": ["gaussian", "motion", "gaussian"]},
        "jpeg": {"p": 1, "quality": [20, 60]},
        "gain": {"p": 0, "level": 1},
        "flip": {"p": 0.5},
    },
    "text": {"upper": 0.1, "title": 0.25},
}


def write(tmp_path: Path, data: object, name: str = "demo.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else yaml.safe_dump(data, sort_keys=False).encode())
    return path


Change = Callable[[dict], None]


def broken(change: Change) -> dict:
    data = copy.deepcopy(VALID)
    change(data)
    return data


# -- a valid file --------------------------------------------------------------------------------------


def test_valid_file_loads_with_normalized_values(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    cfg = load_config(path, "demo", SCHEMA)
    assert (cfg.engine, cfg.version, cfg.path) == ("demo", 2, str(path))
    assert cfg.effects == {
        "blur": {"p": 0.3, "sigma": [0.0, 1.5], "kind": ["gaussian", "motion", "gaussian"]},
        "jpeg": {"p": 1.0, "quality": [20, 60]},
        "gain": {"p": 0.0, "level": 1.0},
        "flip": {"p": 0.5},
    }
    assert all(isinstance(v, float) for v in cfg.effects["blur"]["sigma"])
    assert all(type(v) is int for v in cfg.effects["jpeg"]["quality"])
    assert isinstance(cfg.effects["jpeg"]["p"], float) and isinstance(cfg.effects["gain"]["level"], float)
    assert cfg.text == {"upper": 0.1, "title": 0.25}
    assert cfg.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_describe_stamp_and_json(tmp_path: Path) -> None:
    (tmp_path / "deep" / "dir").mkdir(parents=True)
    path = write(tmp_path / "deep" / "dir", VALID, "fx.yaml")
    cfg = load_config(path, "demo", SCHEMA)
    described = cfg.describe()
    assert described == {"file": "fx.yaml", "engine": "demo", "version": 2, "sha256": cfg.sha256,
                         "effects": cfg.effects, "text": cfg.text}  # the file name only: no local path
    assert cfg.stamp() == f"fx.yaml@v2:{cfg.sha256[:8]}"
    assert cfg.to_json() == json.dumps(described, sort_keys=True).encode()
    assert json.loads(cfg.to_json()) == described


def test_any_byte_changes_the_stamp_not_the_effects(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, VALID, "a.yaml"), "demo", SCHEMA)
    raw = yaml.safe_dump(VALID, sort_keys=False).encode() + b"# a comment\n"
    b = load_config(write(tmp_path, raw, "a2.yaml"), "demo", SCHEMA)
    assert a.effects == b.effects and a.sha256 != b.sha256
    assert a.stamp().split(":")[1] != b.stamp().split(":")[1]


def test_engine_without_text_variants(tmp_path: Path) -> None:
    schema = {"effects": SCHEMA["effects"]}
    for text in (None, {}):
        data = broken(lambda d, t=text: d.update(text=t))
        assert load_config(write(tmp_path, data), "demo", schema).text == {}
    data = broken(lambda d: d.pop("text"))
    assert load_config(write(tmp_path, data), "demo", schema).text == {}
    with pytest.raises(SynthConfigError, match=r"demo\.yaml: field 'text' this engine has no text variants"):
        load_config(write(tmp_path, VALID), "demo", schema)


def test_text_probabilities_may_sum_to_one(tmp_path: Path) -> None:
    data = broken(lambda d: d["text"].update(upper=0.75, title=0.25))
    assert sum(load_config(write(tmp_path, data), "demo", SCHEMA).text.values()) == 1.0


# -- every rule: file and field in the message ---------------------------------------------------------


def _set(path: str, value: object) -> Change:
    def change(d: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            d = d[key]
        d[last] = value

    return change


def _drop(path: str) -> Change:
    def change(d: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            d = d[key]
        del d[last]

    return change


CASES = [
    # (change, field, message)
    (_set("schema", 2), "schema", "must be 1, got 2"),
    (_drop("schema"), "schema", "must be 1, got None"),
    (_set("engine", "trdg"), "engine", r"must be 'demo' \(this file is for 'trdg'\)"),
    (_set("version", 0), "version", "must be a positive integer, got 0"),
    (_set("version", -3), "version", "must be a positive integer"),
    (_set("version", "2"), "version", "must be a positive integer, got '2'"),
    (_set("version", 2.0), "version", "must be a positive integer, got 2.0"),
    (_set("version", True), "version", "must be a positive integer, got True"),
    (_drop("version"), "version", "must be a positive integer, got None"),
    (_set("colour", "red"), "colour", r"is not a config field \(schema, engine, version, effects, text\)"),
    (_set("effects", ["blur"]), "effects", "must be a mapping of effect name"),
    (_drop("effects"), "effects", "must be a mapping of effect name"),
    (_drop("effects.jpeg"), "effects.jpeg", r"is missing \(give it p: 0 to disable it\)"),
    (_set("effects.sharpen", {"p": 0.1}), "effects.sharpen", r"is not an effect of this engine \(blur, jpeg"),
    (_set("effects.flip", 0.5), "effects.flip", "must be a mapping with p and the effect's parameters"),
    (_set("effects.flip.angle", 3), "effects.flip.angle", r"is not a parameter of flip \(\)"),
    (_set("effects.blur.radius", 3), "effects.blur.radius", r"is not a parameter of blur \(sigma, kind\)"),
    (_drop("effects.flip.p"), "effects.flip.p", r"must be a probability in \[0, 1\], got None"),
    (_set("effects.flip.p", 1.5), "effects.flip.p", r"must be a probability in \[0, 1\], got 1.5"),
    (_set("effects.flip.p", -0.1), "effects.flip.p", "must be a probability"),
    (_set("effects.flip.p", "0.5"), "effects.flip.p", "must be a probability"),
    (_set("effects.flip.p", True), "effects.flip.p", "must be a probability"),
    (_set("effects.flip.p", float("nan")), "effects.flip.p", "must be a probability"),
    (_drop("effects.blur.sigma"), "effects.blur.sigma", "is missing"),
    # range
    (_set("effects.blur.sigma", 1.0), "effects.blur.sigma", r"must be \[lo, hi\] numbers with 0.0 <= lo"),
    (_set("effects.blur.sigma", [1.0]), "effects.blur.sigma", r"must be \[lo, hi\] numbers"),
    (_set("effects.blur.sigma", [1, 2, 3]), "effects.blur.sigma", r"must be \[lo, hi\] numbers"),
    (_set("effects.blur.sigma", [2.0, 1.0]), "effects.blur.sigma", r"lo <= hi <= 5.0, got \[2.0, 1.0\]"),
    (_set("effects.blur.sigma", [-1.0, 1.0]), "effects.blur.sigma", "must be"),
    (_set("effects.blur.sigma", [1.0, 6.0]), "effects.blur.sigma", "must be"),
    (_set("effects.blur.sigma", [1.0, float("inf")]), "effects.blur.sigma", "must be"),
    (_set("effects.blur.sigma", ["1", "2"]), "effects.blur.sigma", "must be"),
    (_set("effects.blur.sigma", [False, True]), "effects.blur.sigma", "must be"),
    # int_range
    (_set("effects.jpeg.quality", [20.0, 60.0]), "effects.jpeg.quality", r"must be \[lo, hi\] integers"),
    (_set("effects.jpeg.quality", [0, 60]), "effects.jpeg.quality", r"with 1 <= lo <= hi <= 100"),
    (_set("effects.jpeg.quality", [20, 101]), "effects.jpeg.quality", "integers"),
    (_set("effects.jpeg.quality", [True, 60]), "effects.jpeg.quality", "integers"),
    # value
    (_set("effects.gain.level", [1, 1]), "effects.gain.level", r"must be a number in \[0, 2\], got \[1, 1\]"),
    (_set("effects.gain.level", 3), "effects.gain.level", r"must be a number in \[0, 2\], got 3"),
    (_set("effects.gain.level", True), "effects.gain.level", "must be a number"),
    # choice
    (_set("effects.blur.kind", "gaussian"), "effects.blur.kind",
     r"must be a non-empty list of gaussian, motion, got 'gaussian'"),
    (_set("effects.blur.kind", []), "effects.blur.kind", "must be a non-empty list"),
    (_set("effects.blur.kind", ["box"]), "effects.blur.kind", r"list of gaussian, motion, got \['box'\]"),
    # text
    (_set("text", ["upper"]), "text", r"must be a mapping of variant -> probability \(upper, title\)"),
    (_drop("text"), "text", "must be a mapping of variant"),
    (_set("text.leet", 0.1), "text.leet", r"is not a text variant \(upper, title\)"),
    (_drop("text.title"), "text.title", r"is missing \(give it 0 to disable it\)"),
    (_set("text.upper", 1.2), "text.upper", "must be a probability"),
    (_set("text.upper", None), "text.upper", "must be a probability"),
    (_set("text.upper", 0.9), "text", "probabilities sum to 1.150, more than 1"),
]


@pytest.mark.parametrize(("change", "field", "message"), CASES,
                         ids=[f"{case[1]}-{i}" for i, case in enumerate(CASES)])
def test_invalid_field_is_named(tmp_path: Path, change: Change, field: str, message: str) -> None:
    path = write(tmp_path, broken(change), "bad-config.yaml")
    with pytest.raises(SynthConfigError) as err:
        load_config(path, "demo", SCHEMA)
    text = str(err.value)
    assert text.startswith(f"{path}: field '{field}' "), text
    assert re.search(message, text), text


@pytest.mark.parametrize(("content", "message"), [
    (b"effects: [unclosed\n", "not valid YAML"),
    (b"- just\n- a list\n", "a synth config is a mapping"),
    (b"", "a synth config is a mapping"),
    (b"42\n", "a synth config is a mapping"),
])
def test_unparseable_files_are_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, content, "weird.yaml")
    with pytest.raises(SynthConfigError, match=message) as err:
        load_config(path, "demo", SCHEMA)
    assert str(err.value).startswith(f"{path}: ")


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SynthConfigError, match=r"nope\.yaml: cannot read the synth config"):
        load_config(tmp_path / "nope.yaml", "demo", SCHEMA)
    with pytest.raises(SynthConfigError, match="cannot read the synth config"):
        load_config(tmp_path, "demo", SCHEMA)  # a directory


def test_error_types() -> None:
    assert issubclass(SynthConfigError, RecipeError) and issubclass(SynthConfigError, ValueError)


def test_default_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REBUSYN_RECIPES", raising=False)
    repo = Path(cfgmod.__file__).resolve().parents[2]
    assert default_config_path("fast") == repo / "recipes" / "synth" / "fast.yaml"
    monkeypatch.setenv("REBUSYN_RECIPES", str(tmp_path))
    assert default_config_path("scene") == tmp_path / "synth" / "scene.yaml"


# -- found by these tests, fixed in config.py -------------------------------------------------------------


@pytest.mark.parametrize("value", [True, 1.0])
def test_schema_must_be_the_integer_1(tmp_path: Path, value: object) -> None:
    with pytest.raises(SynthConfigError, match="field 'schema'"):
        load_config(write(tmp_path, broken(_set("schema", value))), "demo", SCHEMA)


def test_unknown_keys_of_mixed_types_are_named(tmp_path: Path) -> None:
    data = broken(lambda d: d["effects"]["flip"].update({1: 2, "angle": 3}))
    with pytest.raises(SynthConfigError, match="is not a parameter of flip"):
        load_config(write(tmp_path, data), "demo", SCHEMA)


def test_duplicate_effect_is_an_error(tmp_path: Path) -> None:
    raw = yaml.safe_dump(VALID, sort_keys=False) + "  "  # trailing indentation is harmless
    second = "  blur: {p: 0.9, sigma: [4, 5], kind: [motion]}\n"
    raw = raw.replace("  flip:\n    p: 0.5\n", "  flip:\n    p: 0.5\n" + second)
    path = write(tmp_path, raw.encode())
    assert yaml.safe_load(raw)["effects"]["blur"]["p"] == 0.9  # the second `blur` silently wins
    with pytest.raises(SynthConfigError, match="duplicate key 'blur'"):
        load_config(path, "demo", SCHEMA)
