"""Byte-reproducible archives: fixed member order and timestamps, so SHA256SUMS stay stable."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

_EPOCH = (2015, 1, 1, 0, 0, 0)


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members, key=_natural):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    os.replace(tmp, path)
    return path


def _natural(name: str) -> tuple:
    import re

    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def write_sha256sums(directory: Path) -> Path:
    """`<sha256>  <name>` for every file in `directory` (what `sha256sum` prints), sorted by name."""
    lines = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.name != "SHA256SUMS"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    out = directory / "SHA256SUMS"
    out.write_text("".join(lines), encoding="ascii")
    return out
