"""What every parser yields: images with their annotated words, crops with their labels, and problems.

Parsers read native files and know nothing of LMDB, cropping or label policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rebusyn.sample import Instance


@dataclass(frozen=True)
class Problem:
    """A piece of input that could not be used: `where` is file[:line], `reason` a short counter key."""

    where: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class AnnotatedImage:
    """A scene image and its words (detection-style input)."""

    image: Path
    image_id: str
    instances: tuple[Instance, ...]
    problems: tuple[Problem, ...] = field(default=())


@dataclass(frozen=True)
class WordCrop:
    """An already-cropped word image with its transcription (recognition-style input)."""

    image: Path
    image_id: str
    text: str


def read_text(path: Path) -> str:
    """UTF-8 with an optional BOM; universal newlines turn CRLF/CR into LF."""
    with open(path, encoding="utf-8-sig", newline=None) as f:
        return f.read()
