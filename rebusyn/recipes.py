"""Recipes: one YAML file per source under `recipes/`, loaded and validated with errors that name the
file and the field."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from rebusyn.fetch import ArchiveRef
from rebusyn.sample import GROUPS

RECIPE_SCHEMA = 1
_HEX = {"md5": 32, "sha256": 64}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# A published, approximate size as download pages write it: "6.6 GB", "441 MB" (decimal units).
_APPROX_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?(KB|MB|GB|TB)$")
_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


class RecipeError(ValueError):
    """A recipe file is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    role: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    # True: unpack everything; False: the parser reads the archive itself (files[role] is the archive;
    # MJSynth's 8.9M files are streamed, never unpacked); a tuple of folders: unpack only those members.
    extract: bool | tuple[str, ...] = True
    # None: as the recipe's login_required; set when one file differs (SynthAdd's public MMOCR label.txt
    # next to its Baidu-only images, PARSeq's Google Drive folder next to MJSynth's direct tarball)
    login_required: bool | None = None

    def ref(self) -> ArchiveRef:
        return ArchiveRef(
            name=self.name,
            url=self.url,
            md5=self.md5,
            sha256=self.sha256,
            size=self.size,
            login_required=self.login_required,
        )


@dataclass(frozen=True)
class RecipeInput:
    name: str
    split: str
    archives: tuple[Archive, ...]
    # `download_size: "6.9 GB"` in the YAML: what the source's pages publish for all of this input's files,
    # in bytes. Approximate, so only shown to people (`rebusyn sources`); never a checksum (that is `size`).
    download_size: int | None = None

    def archive(self, role: str) -> Archive:
        for a in self.archives:
            if a.role == role:
                return a
        raise KeyError(f"input {self.name!r} has no archive with role {role!r}")


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    title: str
    group: str
    homepage: str
    download_page: str
    licence: str
    login_required: bool
    parser: str
    default_input: str
    inputs: dict[str, RecipeInput]
    options: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    citation: str = ""

    def input(self, name: str | None = None) -> RecipeInput:
        name = name or self.default_input
        if name not in self.inputs:
            raise RecipeError(
                f"{self.path}: source {self.name!r} has no input {name!r} "
                f"(choose one of: {', '.join(self.inputs)})"
            )
        return self.inputs[name]


def recipes_dir() -> Path:
    """`$REBUSYN_RECIPES`, else the `recipes/` folder of the source checkout this package runs from."""
    env = os.environ.get("REBUSYN_RECIPES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "recipes"


def available_sources(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or recipes_dir()).glob("*.yaml"))


# Recipe fields that describe a source without changing what a build writes: editing them (or a comment)
# must not make every existing root rebuild the source.
_DESCRIPTIVE_FIELDS = frozenset({"download_size", "counts"})


def output_digest(path: str | Path) -> str:
    """sha256 of what in a recipe file decides a build's output: the parsed YAML (so comments and layout
    do not count) without the descriptive fields."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _DESCRIPTIVE_FIELDS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    data = strip(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def load_recipe(name: str, directory: Path | None = None) -> Recipe:
    directory = directory or recipes_dir()
    path = directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available_sources(directory)) or "none"
        raise RecipeError(f"no recipe for source {name!r} in {directory} (known: {known})")
    return parse_recipe(path)


def load_all(directory: Path | None = None) -> dict[str, Recipe]:
    return {name: load_recipe(name, directory) for name in available_sources(directory)}


def parse_recipe(path: Path) -> Recipe:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    v = _Validator(path)
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of fields, got {type(data).__name__}")
    if data.get("schema") != RECIPE_SCHEMA:
        raise RecipeError(f"{path}: field 'schema' must be {RECIPE_SCHEMA}, got {data.get('schema')!r}")
    name = v.string(data, "name")
    if not _NAME.match(name) or name != path.stem:
        raise RecipeError(
            f"{path}: field 'name' must be lower-case [a-z0-9_] and equal the file name, got {name!r}"
        )
    group = v.string(data, "group")
    if group not in GROUPS:
        raise RecipeError(f"{path}: field 'group' must be one of {', '.join(GROUPS)}, got {group!r}")
    raw_inputs = data.get("inputs")
    if not isinstance(raw_inputs, dict) or not raw_inputs:
        raise RecipeError(f"{path}: field 'inputs' must be a non-empty mapping of input name -> archives")
    inputs = {key: v.recipe_input(key, value) for key, value in raw_inputs.items()}
    default_input = v.string(data, "default_input")
    if default_input not in inputs:
        raise RecipeError(f"{path}: field 'default_input' names {default_input!r}, which is not in 'inputs'")
    login = data.get("login_required")
    if not isinstance(login, bool):
        raise RecipeError(f"{path}: field 'login_required' must be true or false, got {login!r}")
    options = data.get("options") or {}
    counts = data.get("counts") or {}
    if not isinstance(options, dict) or not isinstance(counts, dict):
        raise RecipeError(f"{path}: fields 'options' and 'counts' must be mappings")
    return Recipe(
        path=path,
        name=name,
        title=v.string(data, "title"),
        group=group,
        homepage=v.url(data, "homepage"),
        download_page=v.url(data, "download_page"),
        licence=v.string(data, "licence"),
        login_required=login,
        parser=v.string(data, "parser"),
        default_input=default_input,
        inputs=inputs,
        options=dict(options),
        counts=dict(counts),
        citation=str(data.get("citation") or ""),
    )


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> RecipeError:
        return RecipeError(f"{self.path}: field '{where}' {message}")

    def string(self, data: dict[str, Any], key: str, where: str | None = None) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where or key, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def url(self, data: dict[str, Any], key: str, where: str | None = None) -> str:
        value = self.string(data, key, where)
        if not value.startswith(("https://", "http://", "ftp://")):
            raise self.fail(where or key, f"must be an http(s)/ftp URL, got {value!r}")
        return value

    def recipe_input(self, name: str, value: Any) -> RecipeInput:
        where = f"inputs.{name}"
        if not isinstance(value, dict):
            raise self.fail(where, "must be a mapping with 'split' and 'archives'")
        split = self.string(value, "split", f"{where}.split")
        archives = value.get("archives")
        if not isinstance(archives, list) or not archives:
            raise self.fail(f"{where}.archives", "must be a non-empty list")
        return RecipeInput(
            name,
            split,
            tuple(self.archive(f"{where}.archives[{i}]", a) for i, a in enumerate(archives)),
            download_size=self.approx_size(value.get("download_size"), f"{where}.download_size"),
        )

    def approx_size(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        try:
            return parse_approx_size(value)
        except ValueError as exc:
            raise self.fail(where, str(exc)) from None

    def archive(self, where: str, value: Any) -> Archive:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a mapping with name, url, role")
        checksums: dict[str, str | None] = {}
        for algo, length in _HEX.items():
            digest = value.get(algo)
            if digest is not None and not (
                isinstance(digest, str) and re.fullmatch(f"[0-9a-f]{{{length}}}", digest)
            ):
                raise self.fail(f"{where}.{algo}", f"must be {length} lower-case hex digits, got {digest!r}")
            checksums[algo] = digest
        size = value.get("size")
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise self.fail(f"{where}.size", f"must be a positive integer, got {size!r}")
        name = self.string(value, "name", f"{where}.name")
        if "/" in name or name.startswith("."):
            raise self.fail(f"{where}.name", f"must be a plain file name, got {name!r}")
        return Archive(
            name=name,
            url=self.url(value, "url", f"{where}.url"),
            role=self.string(value, "role", f"{where}.role"),
            size=size,
            extract=self.extract(value.get("extract", True), f"{where}.extract"),
            login_required=self.optional_bool(value, "login_required", where),
            **checksums,
        )

    def optional_bool(self, data: dict[str, Any], key: str, where: str) -> bool | None:
        value = data.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.fail(f"{where}.{key}", f"must be true or false, got {value!r}")
        return value

    def extract(self, value: Any, where: str) -> bool | tuple[str, ...]:
        if isinstance(value, bool):
            return value
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, str) and v.strip("/") and ".." not in v.split("/") for v in value)
        ):
            return tuple(v.strip("/") for v in value)
        raise self.fail(
            where, f"must be true, false or a non-empty list of folders in the archive, got {value!r}"
        )


def parse_approx_size(text: Any) -> int:
    """A published size such as "6.6 GB" or "441 MB" in bytes (decimal units: 1 GB = 10**9 bytes, as
    download pages mean them). Anything else, a bare number included, is a ValueError: an exact byte count
    belongs in an archive's `size`, which is checked against the file."""
    match = _APPROX_SIZE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f'must be a size with a unit such as "6.6 GB" (KB, MB, GB or TB), got {text!r}')
    number = Decimal(match.group(1))
    if number == 0:
        raise ValueError(f"must be more than zero, got {text!r}")
    return int(number * _SIZE_UNITS[match.group(2)])
