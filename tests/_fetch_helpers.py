"""Shared by the download and extraction tests: options with short back-offs, tar archives built member by
member. Their fixtures (no proxy, `dest`) are in tests/conftest.py."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from rebusyn.fetch import FetchOptions


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def opts(**kw: object) -> FetchOptions:
    base: dict[str, object] = {"retries": 3, "backoff": 0.01, "timeout": 5.0, "progress": False}
    base.update(kw)
    return FetchOptions(**base)  # type: ignore[arg-type]


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    """A tar (PAX format) of (name, bytes) members and ready-made TarInfo entries (links, devices)."""
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def tinfo(name: str, type_: bytes, linkname: str = "") -> tarfile.TarInfo:
    t = tarfile.TarInfo(name)
    t.type = type_
    t.linkname = linkname
    return t
