"""Archives distributed in numbered parts (`train_images.zip.001`, `train_images.zip.002`, ...).

The build extracts only files whose names end in .zip/.tar*, so it hands such parts to the parser as plain
files. Two kinds exist in the wild and cannot be told apart by name:

- a byte-split archive (7-Zip/HaoZip "split to volumes", or `split -b`): the parts concatenated are one zip
  (`cat train_images.zip.001 train_images.zip.002 > train_images.zip`);
- independent archives that merely share a name: every part is a complete zip on its own.

`extract_parts` finds out which (a complete zip has its end-of-central-directory record in the first part),
then extracts with `rebusyn.fetch.safe_extract` into `<root>/cache/extract/<source>/<stem>/`, the folder the
build uses for ordinary archives, and reuses a completed extraction on the next run.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

from rebusyn.fetch import MARKER, FetchError, safe_extract
from rebusyn.sources.base import Problem

_PART = re.compile(r"^(?P<stem>.+?)(?P<ext>\.zip|\.tar(?:\.gz|\.bz2|\.xz)?|\.tgz)?\.(?P<n>\d{2,4})$")


def part_stem(name: str) -> str:
    """`train_images.zip.001` -> `train_images`."""
    m = _PART.match(name)
    return m.group("stem") if m else name


def target_dir(first_part: Path) -> Path:
    """`<root>/downloads/<source>/<name>.001` -> `<root>/cache/extract/<source>/<stem>`; elsewhere (tests,
    hand-made folders) a sibling `<stem>.extracted` folder."""
    stem = part_stem(first_part.name)
    downloads = first_part.parent
    if downloads.parent.name == "downloads":
        return downloads.parent.parent / "cache" / "extract" / downloads.name / stem
    return downloads / f"{stem}.extracted"


def _completed(target: Path, archive_name: str, size: int) -> bool:
    try:
        info = json.loads((target / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("archive") == archive_name and info.get("size") == size


def extract_parts(parts: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Extract the numbered parts of one archive; returns the folders holding the contents."""
    if not parts:
        return [], []
    parts = sorted(parts, key=lambda p: p.name)
    target = target_dir(parts[0])
    try:
        if zipfile.is_zipfile(parts[0]):
            # independent archives: each extracts on its own (safe_extract reuses completed extractions)
            folders = []
            for part in parts:
                folders.append(target / part.name.replace(".", "_"))
                safe_extract(part, folders[-1])
            return folders, []
        joined_name = f"{part_stem(parts[0].name)}.zip"
        total = sum(p.stat().st_size for p in parts)
        if _completed(target, joined_name, total):
            return [target], []
        target.parent.mkdir(parents=True, exist_ok=True)
        joined = target.parent / joined_name
        try:
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        shutil.copyfileobj(src, out, 1 << 20)
            safe_extract(joined, target)
        finally:
            joined.unlink(missing_ok=True)  # the joined copy doubles the disk use; the parts stay
        return [target], []
    except (FetchError, OSError, zipfile.BadZipFile) as exc:
        names = " + ".join(p.name for p in parts)
        return [], [Problem(str(parts[0]), "corrupt_archive", f"{names}: {exc}")]
