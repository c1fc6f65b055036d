"""What every parser yields: images with their annotated words, crops with their labels, and problems.

Parsers read native files and know nothing of LMDB, cropping or label policy. A source's parser is the
module `rebusyn.sources.<recipe parser>` with a function `parse(ctx: ParseContext)` that yields
AnnotatedImage, WordCrop and Problem items.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rebusyn.sample import Instance


@dataclass(frozen=True)
class Problem:
    """A piece of input that could not be used: `where` is file[:line], `reason` a short counter key."""

    where: str
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        # Places and details quote the input: a lone surrogate from a JSON escape or a non-UTF-8 file name
        # would make the UTF-8 report unwritable at the very end of a build.
        object.__setattr__(self, "where", utf8_safe(self.where))
        object.__setattr__(self, "detail", utf8_safe(self.detail))


@dataclass(frozen=True)
class AnnotatedImage:
    """A scene image and its words (detection-style input).

    The encoded image is the file `image`, or `data` when it comes from a container read in place (a member
    of SynthText's 41 GB zip); `name` (keys, reports) is then `image_id`, the path inside the container, since
    file names alone repeat across its folders."""

    image: Path
    image_id: str
    instances: tuple[Instance, ...]
    problems: tuple[Problem, ...] = field(default=())
    data: bytes | None = None

    @property
    def name(self) -> str:
        return self.image_id if self.data is not None else self.image.name

    def read(self) -> bytes:
        return self.data if self.data is not None else self.image.read_bytes()


@dataclass(frozen=True)
class WordCrop:
    """An already-cropped word image with its transcription (recognition-style input).

    The encoded bytes are read from `image`, or given in `data` when the crop comes from a container
    (an LMDB, a zip member); `image_id` is then the provenance (e.g. `data.mdb#17`)."""

    image: Path | None
    image_id: str
    text: str
    data: bytes | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.image is None:
            raise ValueError(f"word crop {self.image_id} has neither a file nor bytes")
        return self.image.read_bytes()


@dataclass(frozen=True)
class ParseContext:
    """What a parser gets: the recipe input being built, its files by role, and the recipe's options.

    `files[role]` is the extracted folder of an archive, or the file itself for a plain file (a JSON,
    a TXT). Parsers must yield items in a deterministic order (sorted file names, annotation order)."""

    input: str
    split: str
    files: dict[str, Path]
    options: dict[str, Any]


def read_text(path: Path) -> str:
    """UTF-8 with an optional BOM; universal newlines turn CRLF/CR into LF."""
    with open(path, encoding="utf-8-sig", newline=None) as f:
        return f.read()


def is_file(path: Path) -> bool:
    """`path.is_file()` for a name taken from an annotation: False, not OSError, when the file system refuses
    the name (a component longer than 255 bytes: ENAMETOOLONG)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def utf8_safe(text: str) -> str:
    """`text` as it can be written to UTF-8 (LMDB labels, JSON meta, Parquet): lone surrogates, which a file
    name that was not UTF-8 decodes to (`\\udcff`), are spelled out as backslash escapes."""
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def short_repr(value: Any, limit: int = 200) -> str:
    """`repr(value)`, cut to `limit` characters (a 10,000-character label must not bloat the report)."""
    text = utf8_safe(repr(value))
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def natural_key(name: str) -> tuple:
    """Sort key under which `img_2` comes before `img_10` (and `crop_img_2` before `crop_img_10`)."""
    # isdecimal, not isdigit: `²` is a digit that int() refuses
    return tuple(int(t) if t.isdecimal() else t for t in re.split(r"(\d+)", name))


def finite_number(value: Any) -> bool:
    """A JSON number usable as a coordinate: int or float (not bool), finite as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # JSON integers have no size limit: 1 followed by 400 zeros is no float
        return False
