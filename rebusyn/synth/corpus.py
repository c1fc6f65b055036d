"""Text corpora for synthetic rendering: the embedded English word list, or a user's file.

The embedded corpus (`rebusyn/data/corpus_en.txt.gz`, 778,530 distinct printable-ASCII entries) is built
offline by `scripts/build_corpus.py` from trdg's `en.txt`, wordfreq 'large' English and english-words;
`rebusyn/data/corpus_en.json` records its origins, licences and sha256.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import unicodedata
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
EMBEDDED_CORPUS = DATA_DIR / "corpus_en.txt.gz"
EMBEDDED_CORPUS_META = DATA_DIR / "corpus_en.json"


class CorpusError(ValueError):
    """A corpus file that cannot be used (missing, unreadable, not UTF-8, or without entries)."""


def load_corpus(path: Path | None = None) -> list[str]:
    """Entries of the corpus at `path` (None = the embedded English corpus), in file order.

    A user file holds one entry per line (an entry may contain spaces: it is rendered as one line),
    UTF-8 with an optional BOM; entries are NFC-normalized and stripped, blank lines are skipped and
    duplicates dropped keeping the first occurrence. A fresh list is returned each call.
    """
    if path is None:
        return list(_read_cached(str(EMBEDDED_CORPUS), *_stat(EMBEDDED_CORPUS)))
    path = Path(path)
    return list(_read_cached(str(path), *_stat(path)))


def corpus_info(path: Path | None = None) -> dict[str, Any]:
    """What a report records about a corpus: where, how many entries, sha256 of the file's bytes."""
    target = EMBEDDED_CORPUS if path is None else Path(path)
    info: dict[str, Any] = {
        "path": "embedded:" + EMBEDDED_CORPUS.name if path is None else str(target),
        "entries": len(_read_cached(str(target), *_stat(target))),
        "sha256": _sha256(str(target), *_stat(target)),
    }
    if path is None and EMBEDDED_CORPUS_META.is_file():
        meta = json.loads(EMBEDDED_CORPUS_META.read_text(encoding="utf-8"))
        info["origins"] = {k: v.get("distinct_kept", v.get("added")) for k, v in meta["origins"].items()}
    return info


def _stat(path: Path) -> tuple[int, int]:
    # (size, mtime_ns) are part of the cache key, so an edited file is re-read within one process.
    try:
        st = path.stat()
    except OSError as exc:
        raise CorpusError(f"corpus file {path}: cannot read it ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise CorpusError(f"corpus file {path}: not a regular file")
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    # Cached as an immutable tuple: worker processes forked after the first load share it for free.
    p = Path(path)
    try:
        raw = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CorpusError(f"corpus file {p}: cannot read it ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"corpus file {p}: not UTF-8 (byte {exc.start}: {exc.reason})") from exc
    # Split on newlines only: str.splitlines would also split on U+2028 and friends inside an entry.
    entries = dict.fromkeys(
        e for e in (unicodedata.normalize("NFC", line).strip() for line in text.split("\n")) if e
    )
    if not entries:
        raise CorpusError(f"corpus file {p}: no entries (empty or only blank lines)")
    return tuple(entries)


@functools.lru_cache(maxsize=4)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()
