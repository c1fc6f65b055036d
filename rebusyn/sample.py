"""The data contracts every stage shares: an annotated word (Instance), a finished Sample, and label policy.

Parsers produce Instances, the builder turns them into Samples, the shard writer stores Samples.
Nothing here knows about files, LMDB or HTTP.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field
from typing import Any

# Groups of REBU-Syn: real (R, E, B, U), synthetic (S), test benchmarks (T), and a user's own data (C,
# built with `rebusyn build --custom NAME`; trained on as real data).
REAL_GROUPS = ("R", "E", "B", "U")
SYNTH_GROUP = "S"
TEST_GROUP = "T"
CUSTOM_GROUP = "C"
GROUPS = (*REAL_GROUPS, SYNTH_GROUP, TEST_GROUP, CUSTOM_GROUP)

CHARSETS = ("36", "94", "unicode")
DEFAULT_CHARSET = "36"
DEFAULT_MAX_LEN = 25

_CHARS_36 = frozenset(string.ascii_lowercase + string.digits)
# printable ASCII without space: what PARSeq calls 94_full.
_CHARS_94 = frozenset(chr(c) for c in range(0x21, 0x7F))
# Format characters the `unicode` charset keeps: ZWNJ and ZWJ are part of how a word is written.
_KEPT_FORMAT = frozenset("\u200c\u200d")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Instance:
    """One annotated word as a source gives it: geometry on raw pixels plus the raw transcription.

    `points` are (x, y) vertices in reading order, clockwise from the top-left corner; 2 points mean an
    axis-aligned box (x0, y0), (x1, y1). `ignore` marks don't-care regions (`###` and friends).
    """

    text: str
    points: tuple[tuple[float, float], ...]
    ignore: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    """A finished training sample: encoded image bytes plus labels and provenance."""

    image: bytes
    label: str
    label_raw: str
    source: str
    group: str
    key: str
    width: int
    height: int
    extra: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        """The JSON stored under `meta-%09d` (ignored by PARSeq/DTRB readers)."""
        return {
            "label_raw": self.label_raw,
            "source": self.source,
            "group": self.group,
            "key": self.key,
            "w": self.width,
            "h": self.height,
            **self.extra,
        }


def _drop_control_and_format(text: str) -> str:
    """`text` without Cc and Cf characters, except ZWNJ, ZWJ and white space (tab, line breaks: the
    caller turns them into single spaces)."""
    if text.isprintable():  # the common case: printable text has no Cc or Cf character
        return text
    return "".join(
        c for c in text if c in _KEPT_FORMAT or c.isspace() or unicodedata.category(c) not in ("Cc", "Cf")
    )


class LabelPolicy:
    """Charset normalization and length filter. `normalize` returns (label, None) or (None, drop_reason).

    - `36`: NFKD, diacritics and every non-ASCII character dropped, case-folded, only a-z 0-9 kept
      (the paper's evaluation charset; the same effect as PARSeq's NFKD + CharsetAdapter).
    - `94`: NFKD to ASCII, then only printable ASCII minus space kept (PARSeq's 94_full), case kept.
    - `unicode`: NFKC; control (Cc) and format (Cf) characters removed, except ZERO WIDTH JOINER and
      NON-JOINER (they change how Arabic, Indic and emoji sequences are drawn); white space runs (tabs and
      line breaks included) collapsed to one space and trimmed. So NUL, ESC, zero-width spaces, soft
      hyphens, BOMs and bidi overrides (U+202E) never reach a label: nothing in the image shows them.
      (`36` and `94` keep only printable ASCII, so they drop all of these by construction.)

    A transcription holding a lone surrogate (a JSON `\\ud83d` escape without its pair, a file name that was
    not UTF-8) cannot be written as UTF-8 and names a character nobody knows: `invalid_label`, whatever
    the charset. The length filter runs after normalization (PARSeq runs it before charset filtering,
    which drops words that would fit once punctuation is removed).
    """

    def __init__(self, charset: str = DEFAULT_CHARSET, max_len: int = DEFAULT_MAX_LEN) -> None:
        if charset not in CHARSETS:
            raise ValueError(f"unknown charset {charset!r}; choose one of {', '.join(CHARSETS)}")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.charset = charset
        self.max_len = max_len

    def clean(self, raw: str) -> str:
        if self.charset == "unicode":
            return " ".join(_drop_control_and_format(unicodedata.normalize("NFKC", raw)).split())
        ascii_text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
        if self.charset == "36":
            return "".join(c for c in ascii_text.casefold() if c in _CHARS_36)
        return "".join(c for c in ascii_text if c in _CHARS_94)

    def normalize(self, raw: str) -> tuple[str | None, str | None]:
        if _SURROGATE.search(raw):
            return None, "invalid_label"
        label = self.clean(raw)
        if not label:
            return None, "empty_label"
        if len(label) > self.max_len:
            return None, "label_too_long"
        return label, None

    def describe(self) -> dict[str, Any]:
        return {"charset": self.charset, "max_len": self.max_len}
