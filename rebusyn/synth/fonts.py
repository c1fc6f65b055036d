"""Font discovery and quality filtering for synthetic rendering.

A font is usable when it
  1. draws every character of `REQUIRED_CHARS` (a-z, A-Z, 0-9): a character counts as drawn when its glyph
     has ink and is not the font's .notdef glyph, and
  2. has a real lower case. Two failure modes are detected, both produce case-wrong labels in
     case-sensitive training (the reference notes found BEBAS, Capture_it and AmaticSC in trdg's folder):
     - lower-case letters reuse the capital glyphs (identical bitmaps for most of a-z / A-Z), or
     - lower case is drawn as small capitals: the ascender letters b d h k l are no taller than 'x'.

Every other character (punctuation, accents of a user corpus) is checked per font, and `FontInfo.chars`
records the ones a font can draw, so the renderer picks, for each text, a font that can draw all of it.

Detection of missing glyphs uses fontTools' cmap when fontTools is installed, and in any case renders with
Pillow: the mask of a missing character equals the mask of an unmapped code point (U+FFFF, U+10FFFD), i.e.
the .notdef box, or is empty. Results are cached in-process and on disk under
`$REBUSYN_CACHE_DIR` (default `$XDG_CACHE_HOME/rebusyn` or `~/.cache/rebusyn`), keyed by the font file's
sha1 and the Pillow/FreeType versions, so a second run costs one hash per font file.
"""

from __future__ import annotations

import hashlib
import json
import os
import string
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ImageFont, features

REQUIRED_CHARS = string.ascii_lowercase + string.ascii_uppercase + string.digits
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))
FONT_SUFFIXES = (".ttf", ".otf")

_ANALYSIS_VERSION = 1
_ANALYSIS_SIZE = 48  # px; large enough that small caps and notdef boxes are unambiguous
_UNMAPPED = ("\uffff", "\U0010fffd")  # noncharacter / private-use plane 16: never in a Latin font's cmap
_SAME_GLYPH_LIMIT = 13  # >= half of a-z bit-identical to A-Z: lower case is the capitals
_ASCENDERS = "bdhkl"
_SMALL_CAPS_RATIO = 1.15  # normal fonts measure 1.3-1.9 (ascender height / x height), small caps ~1.0


@dataclass(frozen=True)
class FontInfo:
    """Analysis of one font file. `chars` = the analysed characters it can draw (space is never listed:
    trdg does not draw it). `problem` is None for a usable font, else why it was excluded."""

    path: Path
    sha1: str
    chars: frozenset[str]
    missing: frozenset[str]
    problem: str | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def usable(self) -> bool:
        return self.problem is None

    def can_draw(self, text: str) -> bool:
        return all(c in self.chars for c in text if c != " ")


def trdg_fonts_dir() -> Path:
    """trdg's bundled Latin fonts (100 TTFs in trdg 1.8.0), found without importing trdg's modules."""
    import importlib.util

    spec = importlib.util.find_spec("trdg")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("trdg is not installed (pip install --no-deps trdg==1.8.0)")
    return Path(list(spec.submodule_search_locations)[0]) / "fonts" / "latin"


def list_fonts(directory: Path) -> list[Path]:
    """The .ttf/.otf files directly in `directory`, sorted by name (the order fonts are drawn from)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"font directory not found: {directory}")
    return sorted((p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in FONT_SUFFIXES),
                  key=lambda p: p.name)


def default_fonts(chars: Iterable[str] = PRINTABLE_ASCII) -> list[Path]:
    """trdg's bundled Latin fonts minus the ones that fail the checks of this module."""
    return [f.path for f in analyze_fonts(list_fonts(trdg_fonts_dir()), chars) if f.usable]


def fonts_from_dir(directory: Path, chars: Iterable[str] = PRINTABLE_ASCII) -> list[Path]:
    """The usable .ttf/.otf fonts of a user directory (`--fonts DIR`), same checks as `default_fonts`."""
    return [f.path for f in analyze_fonts(list_fonts(directory), chars) if f.usable]


def font_infos(directory: Path | None = None, chars: Iterable[str] = PRINTABLE_ASCII) -> list[FontInfo]:
    """Analysis of every font of `directory` (None = trdg's), usable or not, with its drawable chars."""
    return analyze_fonts(list_fonts(trdg_fonts_dir() if directory is None else directory), chars)


def analyze_fonts(paths: Iterable[Path], chars: Iterable[str] = PRINTABLE_ASCII) -> list[FontInfo]:
    chars = frozenset(chars)
    infos = [analyze_font(p, chars, save=False) for p in paths]
    _save_cache()
    return infos


def analyze_font(path: Path, chars: Iterable[str] = PRINTABLE_ASCII, *, save: bool = True) -> FontInfo:
    """Check `path` for REQUIRED_CHARS, lower case, and which of `chars` it can draw (cached)."""
    global _DIRTY
    path = Path(path)
    data = path.read_bytes()
    sha1 = hashlib.sha1(data).hexdigest()
    wanted = sorted((set(chars) | set(REQUIRED_CHARS)) - {" "})
    with _LOCK:
        entry = _cache().setdefault(sha1, {"name": path.name, "chars": {}})
        todo = [c for c in wanted if c not in entry["chars"]]
        if todo or "problem" not in entry:
            try:
                font = ImageFont.truetype(str(path), _ANALYSIS_SIZE, layout_engine=ImageFont.Layout.BASIC)
            except OSError as exc:
                entry["problem"] = f"cannot be opened by Pillow/FreeType: {exc}"
                entry["chars"].update(dict.fromkeys(todo, False))
            else:
                cmap = _fonttools_cmap(path)
                notdef = {_mask_key(font, u) for u in _UNMAPPED}
                for c in todo:
                    entry["chars"][c] = _can_draw(font, c, notdef, cmap)
                if "problem" not in entry:
                    entry["problem"] = _problem(font, entry["chars"])
            _DIRTY = True
        ok = frozenset(c for c in wanted if entry["chars"][c])
        problem = entry["problem"]
    if save:
        _save_cache()
    return FontInfo(path=path, sha1=sha1, chars=ok, missing=frozenset(wanted) - ok, problem=problem)


# -- checks ------------------------------------------------------------------------------------------


def _mask_key(font: ImageFont.FreeTypeFont, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(ch)
    return mask.size, bytes(mask)


def _can_draw(font: ImageFont.FreeTypeFont, ch: str, notdef: set, cmap: set[int] | None) -> bool:
    if cmap is not None and ord(ch) not in cmap:
        return False
    left, top, right, bottom = font.getbbox(ch)
    if right <= left or bottom <= top:
        return False  # no ink: an empty glyph (or an empty .notdef)
    return _mask_key(font, ch) not in notdef


def _problem(font: ImageFont.FreeTypeFont, drawn: dict[str, bool]) -> str | None:
    missing = [c for c in REQUIRED_CHARS if not drawn.get(c, False)]
    if missing:
        return "cannot draw " + "".join(missing)
    same = sum(_mask_key(font, lo) == _mask_key(font, up)
               for lo, up in zip(string.ascii_lowercase, string.ascii_uppercase))
    if same >= _SAME_GLYPH_LIMIT:
        return f"lower case reuses the capital glyphs ({same}/26 identical)"
    x_height = _ink_height(font, "x")
    ascender = sorted(_ink_height(font, c) for c in _ASCENDERS)[len(_ASCENDERS) // 2]
    if x_height > 0 and ascender / x_height < _SMALL_CAPS_RATIO:
        return f"lower case drawn as small capitals (ascender/x-height {ascender / x_height:.2f})"
    return None


def _ink_height(font: ImageFont.FreeTypeFont, ch: str) -> int:
    _, top, _, bottom = font.getbbox(ch)
    return bottom - top


def _fonttools_cmap(path: Path) -> set[int] | None:
    try:
        from fontTools.ttLib import TTFont
    except ImportError:
        return None
    try:
        with TTFont(str(path), lazy=True, fontNumber=0) as tt:
            cmap = tt.getBestCmap()
        return set(cmap) if cmap else None
    except Exception:  # noqa: BLE001 - fontTools is only a second opinion; Pillow's checks still run
        return None


# -- cache -------------------------------------------------------------------------------------------

_LOCK = threading.Lock()
_CACHE: dict[str, Any] | None = None
_DIRTY = False


def cache_file() -> Path:
    base = os.environ.get("REBUSYN_CACHE_DIR")
    if base:
        root = Path(base)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rebusyn"
    return root / f"fonts-v{_ANALYSIS_VERSION}.json"


def _cache_stamp() -> dict[str, Any]:
    # Rendering-based checks depend on the rasterizer: a new Pillow/FreeType invalidates the cache.
    import PIL

    return {"version": _ANALYSIS_VERSION, "pillow": PIL.__version__,
            "freetype": features.version("freetype2"), "fonttools": _fonttools_available()}


def _fonttools_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("fontTools") is not None


def _cache() -> dict[str, Any]:
    global _CACHE
    if _CACHE is None:
        _CACHE = {}
        try:
            stored = json.loads(cache_file().read_text(encoding="utf-8"))
            if stored.get("stamp") == _cache_stamp():
                _CACHE = stored.get("fonts", {})
        except (OSError, ValueError, AttributeError):
            pass
    return _CACHE


def _save_cache() -> None:
    global _DIRTY
    with _LOCK:
        if not _DIRTY or _CACHE is None:
            return
        _DIRTY = False
        data = json.dumps({"stamp": _cache_stamp(), "fonts": _CACHE}, sort_keys=True)
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs re-analysis next time


def clear_cache(on_disk: bool = False) -> None:
    """Forget analyses (tests use it to prove detection runs without the cache)."""
    global _CACHE
    with _LOCK:
        _CACHE = None
        if on_disk:
            cache_file().unlink(missing_ok=True)
