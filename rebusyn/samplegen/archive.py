"""Byte-reproducible archives: fixed member order, timestamps and owners, so SHA256SUMS stay stable."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

from rebusyn.sources.base import natural_key

_EPOCH = (2015, 1, 1, 0, 0, 0)
_MTIME = 1546300800  # 2019-01-01, for tar members and the gzip header


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members, key=natural_key):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name])
    os.replace(tmp, path)
    return path


def write_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    """A .tar.gz with directory entries, fixed mtime/owner/mode and member order: byte-reproducible."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=_MTIME) as gz:
        gz.write(_tar_bytes(members))
    tmp.replace(path)
    return path


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    """The same, uncompressed."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(_tar_bytes(members))
    tmp.replace(path)
    return path


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(Path(name).parent) for name in members if "/" in name})
        for name in dirs + sorted(members, key=natural_key):
            is_dir = name in dirs
            info = tarfile.TarInfo(name + "/" if is_dir else name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = _MTIME, 0, 0, "", ""
            if is_dir:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(members[name]), 0o644
                tar.addfile(info, io.BytesIO(members[name]))
    return raw.getvalue()


def write_sha256sums(directory: Path) -> Path:
    """`<sha256>  <name>` for every file in `directory` (what `sha256sum` prints), sorted by name."""
    lines = []
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.name != "SHA256SUMS"):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    out = directory / "SHA256SUMS"
    out.write_text("".join(lines), encoding="ascii")
    return out
