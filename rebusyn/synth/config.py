"""Versioned effect configurations of the synthesis engines: `recipes/synth/<engine>.yaml`.

```yaml
schema: 1
engine: fast
version: 3                 # bump whenever a default changes: it is recorded with every sample
effects:
  skew:   {p: 0.4, angle: [-4, 4]}          # p: probability the effect is applied to a sample
  blur:   {p: 0.3, sigma: [0.3, 1.2]}       # [lo, hi]: drawn uniformly per sample
  noise:  {p: 0.5, kind: [gaussian, salt]}  # a list of names: one drawn per sample
text:
  upper: 0.1                                # probability of each text variant of a corpus entry
```

An engine declares what it accepts in `CONFIG_SCHEMA`: `{"effects": {name: {param: spec}}, "text": {name:
None}}` where a spec is `("range", lo, hi)` (a [lo, hi] pair inside those bounds), `("int_range", lo, hi)`,
`("value", lo, hi)` (one number), or `("choice", (names...))` (a non-empty list of those names). Every effect
and text variant of the schema must be present in the file (an explicit `p: 0` disables one), so a config
says everything it does. Errors name the file and the field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rebusyn.recipes import RecipeError, recipes_dir

CONFIG_SCHEMA_VERSION = 1


class SynthConfigError(RecipeError):
    """A synthesis config is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class SynthConfig:
    path: str
    engine: str
    version: int
    effects: dict[str, dict[str, Any]]  # name -> {"p": float, param: value}
    text: dict[str, float]
    sha256: str  # of the file's bytes

    def describe(self) -> dict[str, Any]:
        """What the report and the shards record."""
        return {"file": Path(self.path).name, "engine": self.engine, "version": self.version,
                "sha256": self.sha256, "effects": self.effects, "text": self.text}  # fmt: skip

    def stamp(self) -> str:
        """Short provenance for every sample's meta: `fast.yaml@v3:1a2b3c4d`."""
        return f"{Path(self.path).name}@v{self.version}:{self.sha256[:8]}"

    def to_json(self) -> bytes:
        return json.dumps(self.describe(), sort_keys=True).encode()


def default_config_path(engine: str) -> Path:
    return recipes_dir() / "synth" / f"{engine}.yaml"


def load_config(path: Path, engine: str, schema: dict[str, Any]) -> SynthConfig:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SynthConfigError(f"{path}: cannot read the synth config: {exc}") from exc
    try:
        data = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader that refuses duplicate keys
    except yaml.YAMLError as exc:
        raise SynthConfigError(f"{path}: not valid YAML: {exc}") from exc
    fail = _Fail(path)
    if not isinstance(data, dict):
        raise fail("", "a synth config is a mapping")
    if type(data.get("schema")) is not int or data.get("schema") != CONFIG_SCHEMA_VERSION:
        raise fail("schema", f"must be {CONFIG_SCHEMA_VERSION}, got {data.get('schema')!r}")
    if data.get("engine") != engine:
        raise fail("engine", f"must be {engine!r} (this file is for {data.get('engine')!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise fail("version", f"must be a positive integer, got {version!r}")
    unknown = set(data) - {"schema", "engine", "version", "effects", "text"}
    if unknown:
        first = str(sorted(unknown, key=str)[0])
        raise fail(first, "is not a config field (schema, engine, version, effects, text)")
    effects = _effects(data.get("effects"), schema.get("effects", {}), fail)
    text = _text(data.get("text"), schema.get("text", {}), fail)
    return SynthConfig(str(path), engine, version, effects, text, hashlib.sha256(raw).hexdigest())


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader, except that a key given twice is an error (PyYAML keeps the last one silently: two
    `blur:` entries would hide one of them)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Fail:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, where: str, message: str) -> SynthConfigError:
        field = f"field '{where}' " if where else ""
        return SynthConfigError(f"{self.path}: {field}{message}")


def _probability(value: Any, where: str, fail: _Fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise fail(where, f"must be a probability in [0, 1], got {value!r}")
    return float(value)


def _effects(data: Any, schema: dict[str, dict[str, tuple]], fail: _Fail) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict):
        raise fail("effects", "must be a mapping of effect name -> {p, parameters}")
    missing = [name for name in schema if name not in data]
    if missing:
        raise fail(f"effects.{missing[0]}", "is missing (give it p: 0 to disable it)")
    out: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        where = f"effects.{name}"
        if name not in schema:
            raise fail(where, f"is not an effect of this engine ({', '.join(schema)})")
        if not isinstance(value, dict):
            raise fail(where, "must be a mapping with p and the effect's parameters")
        params = schema[name]
        extra = set(value) - {"p"} - set(params)
        if extra:
            first = sorted(extra, key=str)[0]
            raise fail(f"{where}.{first}", f"is not a parameter of {name} ({', '.join(params)})")
        out[name] = {"p": _probability(value.get("p"), f"{where}.p", fail)}
        for param, spec in params.items():
            if param not in value:
                raise fail(f"{where}.{param}", "is missing")
            out[name][param] = _param(value[param], spec, f"{where}.{param}", fail)
    return out


def _param(value: Any, spec: tuple, where: str, fail: _Fail) -> Any:
    kind = spec[0]
    if kind == "choice":
        options = spec[1]
        if not isinstance(value, list) or not value or not all(v in options for v in value):
            raise fail(where, f"must be a non-empty list of {', '.join(options)}, got {value!r}")
        return list(value)
    lo, hi = spec[1], spec[2]
    numeric = (int,) if kind == "int_range" else (int, float)
    if kind == "value":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise fail(where, f"must be a number in [{lo}, {hi}], got {value!r}")
        return float(value)
    ok = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, numeric) and not isinstance(v, bool) for v in value)
        and lo <= value[0] <= value[1] <= hi
    )
    if not ok:
        what = "integers" if kind == "int_range" else "numbers"
        raise fail(where, f"must be [lo, hi] {what} with {lo} <= lo <= hi <= {hi}, got {value!r}")
    return [int(v) for v in value] if kind == "int_range" else [float(v) for v in value]


def _text(data: Any, schema: dict[str, Any], fail: _Fail) -> dict[str, float]:
    if not schema:
        if data not in (None, {}):
            raise fail("text", "this engine has no text variants")
        return {}
    if not isinstance(data, dict):
        raise fail("text", f"must be a mapping of variant -> probability ({', '.join(schema)})")
    for name in data:
        if name not in schema:
            raise fail(f"text.{name}", f"is not a text variant ({', '.join(schema)})")
    missing = [name for name in schema if name not in data]
    if missing:
        raise fail(f"text.{missing[0]}", "is missing (give it 0 to disable it)")
    out = {name: _probability(value, f"text.{name}", fail) for name, value in data.items()}
    if sum(out.values()) > 1 + 1e-9:
        raise fail("text", f"probabilities sum to {sum(out.values()):.3f}, more than 1")
    return out
