#!/usr/bin/env python
"""Build the embedded English word corpus `rebusyn/data/corpus_en.txt.gz` (+ `corpus_en.json`).

An offline, reproducible step: every input ships inside a pip package (`pip install -e .[corpus]`), nothing
is downloaded. Run from the repository root:

    .venv/bin/python scripts/build_corpus.py

Inputs (in this order; the order only decides which origin an entry is credited to):
  1. trdg's bundled `trdg/dicts/en.txt` (trdg 1.8.0, MIT): 466k mixed-case words and odd tokens.
  2. `wordfreq.top_n_list('en', 10**7, wordlist='large')` (wordfreq data, CC-BY-SA 4.0): every English
     token seen at least once per 10^8 words, lower-cased, in frequency order.
  3. `english_words.get_english_words_set(['web2', 'gcide'], lower=False)` (english-words, MIT).

Rules, applied to every entry: Unicode NFC, strip surrounding whitespace, drop empty entries, drop entries
containing whitespace or control characters, drop entries with any character outside printable ASCII
(U+0021..U+007E: the bundled fonts are Latin and the 36/94 charsets are ASCII), then deduplicate exactly
(case-sensitive) and sort by code point. If fewer than --min-entries remain, deterministic case variants
(Capitalized, then UPPER) of the most frequent wordfreq words are added until the target is met, and the
output says so. The gzip stream is written with mtime=0 and no file name, so the same inputs give the
same bytes (with the same zlib).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "rebusyn" / "data"
CORPUS_NAME = "corpus_en.txt.gz"
META_NAME = "corpus_en.json"
DEFAULT_MIN_ENTRIES = 700_000

LICENCES = {
    "trdg": "MIT (trdg 1.8.0, Copyright (c) 2017 Edouard Belval)",
    "wordfreq": "wordfreq data: CC-BY-SA 4.0 (code Apache-2.0)",
    "english-words": "MIT (english-words package)",
}


def clean(entry: str) -> tuple[str | None, str | None]:
    """(entry, None) if kept, else (None, reason)."""
    text = unicodedata.normalize("NFC", entry).strip()
    if not text:
        return None, "empty"
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in text):
        return None, "whitespace_or_control"
    if any(not 0x21 <= ord(c) <= 0x7E for c in text):
        return None, "not_printable_ascii"
    return text, None


def read_trdg() -> list[str]:
    import trdg

    path = Path(trdg.__file__).parent / "dicts" / "en.txt"
    # split on "\n" only: str.splitlines would also split on U+2028, U+0085, ... inside an entry.
    return path.read_text(encoding="utf-8-sig").split("\n")


def read_wordfreq() -> list[str]:
    import wordfreq

    return wordfreq.top_n_list("en", 10**7, wordlist="large")


def read_english_words() -> list[str]:
    from english_words import get_english_words_set

    # A set: sort so that the per-origin bookkeeping below does not depend on hash order.
    return sorted(get_english_words_set(["web2", "gcide"], lower=False))


def build(sources: dict[str, Iterable[str]], min_entries: int) -> tuple[list[str], dict]:
    """Apply the rules to each source in order; returns (sorted entries, per-origin statistics)."""
    seen: set[str] = set()
    origins: dict[str, dict] = {}
    for name, entries in sources.items():
        raw = 0
        drops: Counter = Counter()
        kept: set[str] = set()
        new = 0
        for entry in entries:
            raw += 1
            text, reason = clean(entry)
            if text is None:
                drops[reason] += 1
                continue
            kept.add(text)
            if text not in seen:
                seen.add(text)
                new += 1
        origins[name] = {
            "raw_entries": raw,
            "dropped": dict(sorted(drops.items())),
            "distinct_kept": len(kept),
            "new_in_union": new,  # not already contributed by an earlier origin
            "version": _version(name),
            "licence": LICENCES[name],
        }
    variants = 0
    if len(seen) < min_entries:
        # Deterministic padding: Capitalized, then UPPER forms of the most frequent wordfreq words.
        frequent = [t for t in (clean(w)[0] for w in read_wordfreq()) if t]
        for form in (str.capitalize, str.upper):
            for word in frequent:
                if len(seen) >= min_entries:
                    break
                variant = form(word)
                if variant not in seen:
                    seen.add(variant)
                    variants += 1
        origins["case_variants"] = {"added": variants, "from": "wordfreq, most frequent first",
                                    "licence": LICENCES["wordfreq"]}
    return sorted(seen), origins


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:  # noqa: BLE001 - the version is informative only
        return "unknown"


def write_gzip(entries: list[str], path: Path) -> bytes:
    payload = ("\n".join(entries) + "\n").encode("utf-8")
    buf = io.BytesIO()
    # mtime=0 and an empty file name: nothing time- or path-dependent in the header.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="default: rebusyn/data")
    parser.add_argument("--min-entries", type=int, default=DEFAULT_MIN_ENTRIES)
    args = parser.parse_args(argv)

    sources = {"trdg": read_trdg(), "wordfreq": read_wordfreq(), "english-words": read_english_words()}
    entries, origins = build(sources, args.min_entries)
    for name, stats in origins.items():
        if name == "case_variants":
            print(f"case variants added (union was below {args.min_entries:,}): {stats['added']:,}")
            continue
        print(f"{name:14s} raw {stats['raw_entries']:>9,}  kept distinct {stats['distinct_kept']:>9,}  "
              f"new in union {stats['new_in_union']:>9,}  dropped {stats['dropped']}")
    print(f"total distinct entries: {len(entries):,}")
    if len(entries) < args.min_entries:
        print(f"error: only {len(entries):,} entries, need {args.min_entries:,}", file=sys.stderr)
        return 1

    gz_path = args.out_dir / CORPUS_NAME
    payload = write_gzip(entries, gz_path)
    gz_bytes = gz_path.read_bytes()
    meta = {
        "file": CORPUS_NAME,
        "entries": len(entries),
        "origins": origins,
        "rules": ["NFC", "strip", "drop empty", "drop whitespace/control characters",
                  "drop characters outside printable ASCII U+0021..U+007E", "exact dedup",
                  "sort by code point", "pad with case variants if below min_entries"],
        "min_entries": args.min_entries,
        "sha256_gz": hashlib.sha256(gz_bytes).hexdigest(),
        "sha256_text": hashlib.sha256(payload).hexdigest(),
        "bytes_gz": len(gz_bytes),
        "builder": "python scripts/build_corpus.py" + (f" --min-entries {args.min_entries}"
                                                       if args.min_entries != DEFAULT_MIN_ENTRIES else ""),
        "python": sys.version.split()[0],
    }
    (args.out_dir / META_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {gz_path} ({len(gz_bytes):,} bytes, sha256 {meta['sha256_gz']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
