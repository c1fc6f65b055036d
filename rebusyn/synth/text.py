"""What the fast and scene engines write: corpus entries and their case, punctuation and number variants.

The embedded corpus is lower case and letters only, but scene text is not: shop signs are upper case,
titles capitalised, words carry punctuation, and numbers (prices, years, phone numbers, house numbers) are
everywhere. A config's `text` section gives each variant's probability (the rest: the entry as it is):

  upper    SALE          title   Sale          punct   sale!  "sale"  (sale)  sale-free
  number   a number instead of the word: 42, 1998, 3.50, 12:30, 555-0142, 75%, $19, No.7, 4th

`draw_text` is deterministic in its generator. A line holds 1 word mostly, sometimes 2-3 (as trdg's
multi-word lines); variants apply per word.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

import numpy as np

VARIANTS = ("upper", "title", "punct", "number")
TEXT_SCHEMA = {name: None for name in VARIANTS}  # for rebusyn.synth.config: the `text` section
WORD_COUNT_P = (0.8, 0.14, 0.06)  # 1, 2 or 3 words per line
_TRAILING = ".,!?:;"
_WRAPS = ('""', "''", "()", "[]")
# Cumulative probabilities: one `rng.random()` and a bisection pick an outcome (`rng.choice(..., p=...)`
# validates and normalizes `p` on every call, which costs more than drawing the rest of the text).
_VARIANT_CDFS: dict[tuple[tuple[str, float], ...], tuple[float, ...]] = {}


def draw_text(rng: np.random.Generator, corpus: list[str] | tuple[str, ...], variants: dict[str, float]
              ) -> str:
    """One line of 1-3 corpus entries, each turned into a variant with the configured probabilities."""
    n_words = _pick(_WORD_COUNT_CDF, rng.random()) + 1
    picks = rng.integers(len(corpus), size=n_words).tolist()
    return " ".join([variant(rng, corpus[k], variants) for k in picks])


def variant(rng: np.random.Generator, word: str, variants: dict[str, float]) -> str:
    """`word` as it is, or one of VARIANTS drawn with the probabilities in `variants` (missing = 0)."""
    pick = _pick(_variant_cdf(variants), rng.random())
    if pick == len(VARIANTS):
        return word
    kind = VARIANTS[pick]
    if kind == "upper":
        return word.upper()
    if kind == "title":
        return word[:1].upper() + word[1:]
    if kind == "punct":
        return punctuate(rng, word)
    return number(rng)


def _variant_cdf(variants: dict[str, float]) -> tuple[float, ...]:
    """Cumulative probabilities of VARIANTS then "as it is" (the rest; when the variants sum to 1 or
    more, they are normalized and "as it is" gets 0), cached per distinct `variants`."""
    key = tuple(variants.items())
    cdf = _VARIANT_CDFS.get(key)
    if cdf is None:
        probs = [float(variants.get(v, 0.0)) for v in VARIANTS]
        rest = 1.0 - sum(probs)
        cdf = _VARIANT_CDFS[key] = _cdf([*probs, rest] if rest > 0 else _norm(probs))
    return cdf


def _cdf(weights: list[float] | tuple[float, ...]) -> tuple[float, ...]:
    """Cumulative probabilities of non-negative `weights`, exactly 1.0 from the last positive weight on
    (so rounding never leaves room for a zero-weight outcome at the end)."""
    total = sum(weights)
    last = max(k for k, w in enumerate(weights) if w > 0)
    return tuple(1.0 if k >= last else c / total for k, c in enumerate(accumulate(weights)))


_WORD_COUNT_CDF = _cdf(WORD_COUNT_P)


def _pick(cdf: tuple[float, ...], u: float) -> int:
    """The outcome whose cumulative-probability interval holds u in [0, 1); zero-probability outcomes
    (empty intervals) are never picked."""
    return min(bisect_right(cdf, u), len(cdf) - 1)


def punctuate(rng: np.random.Generator, word: str) -> str:
    style = int(rng.integers(4))
    if style == 0:
        return word + _TRAILING[int(rng.integers(len(_TRAILING)))]
    if style == 1:
        left, right = _WRAPS[int(rng.integers(len(_WRAPS)))]
        return left + word + right
    if style == 2:
        return word + "-" + ("free", "based", "like", "off", "up")[int(rng.integers(5))]
    return word + "'s"


def number(rng: np.random.Generator) -> str:
    style = int(rng.integers(9))
    if style == 0:
        return str(int(rng.integers(0, 100)))
    if style == 1:
        return str(int(rng.integers(1900, 2031)))
    if style == 2:
        return f"{int(rng.integers(0, 100))}.{int(rng.integers(0, 100)):02d}"
    if style == 3:
        return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"
    if style == 4:
        return f"{int(rng.integers(200, 1000))}-{int(rng.integers(0, 10000)):04d}"
    if style == 5:
        return f"{int(rng.integers(1, 101))}%"
    if style == 6:
        return f"${int(rng.integers(1, 1000))}"
    if style == 7:
        return f"No.{int(rng.integers(1, 100))}"
    n = int(rng.integers(1, 40))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _norm(probs: list[float]) -> list[float]:
    total = sum(probs)
    return [p / total for p in probs] + [0.0]
