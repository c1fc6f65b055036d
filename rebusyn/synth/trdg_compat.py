"""Make trdg 1.8.0 (the last PyPI release) run on current Pillow, without pinning Pillow.

Why: trdg 1.8.0 calls ``FreeTypeFont.getsize``, which Pillow 10 removed, so a fresh install fails on the
first image with ``AttributeError: 'FreeTypeFont' object has no attribute 'getsize'`` (trdg issue #315).
The fix is on trdg's master (commit dd9d7d3, Feb 2024) but was never released (issue #338).

What ``apply()`` patches (nothing else; Pillow itself is left untouched):

* ``trdg.utils.get_text_height`` and the copy that ``trdg.computer_text_generator`` imported by name
  (``from trdg.utils import get_text_height`` binds the function at import time, so both names must be
  replaced). The replacement is the upstream fix of dd9d7d3: ``image_font.getbbox(text)[3]``. On
  Pillow < 10, ``getsize(text)[1]`` was ``offset_y + height`` and ``getbbox(text)`` is
  ``(offset_x, offset_y, offset_x + width, offset_y + height)``, so ``getbbox(text)[3] == getsize(text)[1]``:
  image sizes are the same as trdg 1.8.0 gave on Pillow 9.

The audit of the installed trdg 1.8.0 for other APIs that Pillow 10 removed found nothing else:
``getsize`` appears only in ``utils.get_text_height``; there is no ``getoffset``, ``textsize``,
``multiline_textsize``, ``Image.ANTIALIAS`` or other removed constant (1.8.0 already uses
``Image.Resampling.*``, and widths come from ``getlength``). So no global ``FreeTypeFont.getsize`` shim is
installed: patching trdg's own function keeps the fix local to trdg. `check_installed()` repeats that
audit on whatever trdg is installed and names any leftover use.

``use_fast_fonts()`` (optional, separate because it is a speed change, not a fix): trdg opens the font
file with ``ImageFont.truetype(font, size)`` for every image, which uses Pillow's Raqm layout engine when
libraqm is present. trdg draws one character per ``ImageDraw.text`` call (``word_split=False``), so Raqm's
shaping (kerning, ligatures, bidi) never applies across characters, and BASIC gives the same glyphs; it is
much faster per call (the reference notes measured 4.7x). The patch replaces the ``ImageFont`` name inside
``trdg.computer_text_generator`` only with a proxy whose ``truetype`` returns a cached
``FreeTypeFont(..., layout_engine=Layout.BASIC)``; a cached font object is safe to share because drawing
never mutates it. The glyph bitmaps are the same; BASIC uses hinted (whole-pixel) advances where Raqm uses
fractional ones, so a character's advance may differ by 1 px (trdg rounds widths to whole pixels anyway).
``tests/test_trdg_compat.py`` checks that; ``benchmarks/bench_synth.py`` measures the gain.

``use_cached_backgrounds()`` (optional, speed): trdg's ``background_generator.image`` lists the image
folder and decodes a whole background photo for every sample that uses background type 3 (a third of our
render time). The replacement keeps trdg's code path and its ``random`` calls in the same order
(``randint`` for the picture, then for the crop's x and y, LANCZOS upscaling when the picture is too small),
but decodes each picture once per process and lists the folder sorted (``os.listdir`` order depends on the
file system, which would make the chosen picture machine-dependent).

All functions are idempotent and cheap to call in every worker process.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import random
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from PIL import Image, ImageFont

# Pillow APIs removed in Pillow 10 (or deprecated for removal) that old trdg releases used.
REMOVED_PILLOW_APIS = ("getsize", "getoffset", "textsize", "multiline_textsize", "ANTIALIAS", "LINEAR",
                       "CUBIC", "getsize_multiline")

_APPLIED = False
_FAST_FONTS = False
_CACHED_BACKGROUNDS = False
_ORIGINAL_IMAGE_BACKGROUND: Any = None


def import_trdg() -> ModuleType:
    """Import trdg's generator modules quietly (trdg prints "Missing modules for handwritten text
    generation." on import when TensorFlow is absent, which we never need)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import trdg.background_generator
        import trdg.computer_text_generator
        import trdg.data_generator
        import trdg.utils
    return trdg


def get_text_height(image_font: ImageFont.FreeTypeFont, text: str) -> int:
    """trdg master's fix (dd9d7d3): the bottom of the ink box from the drawing origin, == old getsize()[1]."""
    return image_font.getbbox(text)[3]


def apply() -> None:
    """Patch trdg so it renders on Pillow >= 10. Idempotent; a no-op cost after the first call."""
    global _APPLIED
    if _APPLIED:
        return
    trdg = import_trdg()
    trdg.utils.get_text_height = get_text_height
    # computer_text_generator did `from trdg.utils import get_text_height`: rebind its copy too.
    trdg.computer_text_generator.get_text_height = get_text_height
    _APPLIED = True


def is_applied() -> bool:
    return _APPLIED


class _BasicLayoutImageFont:
    """Stands in for the `PIL.ImageFont` module inside trdg.computer_text_generator: `truetype` returns a
    cached BASIC-layout font, every other attribute is the real module's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(ImageFont, name)

    @staticmethod
    def truetype(font: Any = None, size: float = 10, index: int = 0, encoding: str = "",
                 layout_engine: Any = None) -> ImageFont.FreeTypeFont:
        if isinstance(font, (str, Path)) and layout_engine is None:
            return _cached_basic_font(str(font), size, index, encoding)
        return ImageFont.truetype(font=font, size=size, index=index, encoding=encoding,
                                  layout_engine=layout_engine)


@functools.lru_cache(maxsize=512)
def _cached_basic_font(path: str, size: float, index: int, encoding: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font=path, size=size, index=index, encoding=encoding,
                              layout_engine=ImageFont.Layout.BASIC)


def use_fast_fonts(enabled: bool = True) -> None:
    """Make trdg load fonts once per (file, size) with Pillow's BASIC layout engine (see module doc)."""
    global _FAST_FONTS
    trdg = import_trdg()
    module = trdg.computer_text_generator
    if enabled and not _FAST_FONTS:
        module.ImageFont = _BasicLayoutImageFont()
    elif not enabled and _FAST_FONTS:
        module.ImageFont = ImageFont
    _FAST_FONTS = enabled


def fast_fonts_enabled() -> bool:
    return _FAST_FONTS


@functools.lru_cache(maxsize=16)
def _list_images(image_dir: str) -> tuple[str, ...]:
    return tuple(sorted(os.listdir(image_dir)))


@functools.lru_cache(maxsize=64)
def _load_picture(path: str) -> Image.Image:
    with Image.open(path) as pic:
        pic.load()
        return pic.copy()


def image_background(height: int, width: int, image_dir: str) -> Image.Image:
    """trdg 1.8.0's `background_generator.image`, with decoded pictures cached (see module doc)."""
    images = _list_images(str(image_dir))
    if not images:
        raise Exception("No images where found in the images folder!")  # trdg's exception and message
    pic = _load_picture(os.path.join(image_dir, images[random.randint(0, len(images) - 1)]))
    if pic.size[0] < width:
        pic = pic.resize([width, int(pic.size[1] * (width / pic.size[0]))], Image.Resampling.LANCZOS)
    if pic.size[1] < height:
        pic = pic.resize([int(pic.size[0] * (height / pic.size[1])), height], Image.Resampling.LANCZOS)
    x = 0 if pic.size[0] == width else random.randint(0, pic.size[0] - width)
    y = 0 if pic.size[1] == height else random.randint(0, pic.size[1] - height)
    return pic.crop((x, y, x + width, y + height))  # a new image: the cached picture is never modified


def use_cached_backgrounds(enabled: bool = True) -> None:
    """Make trdg decode each background photo once per process (see module doc)."""
    global _CACHED_BACKGROUNDS, _ORIGINAL_IMAGE_BACKGROUND
    trdg = import_trdg()
    module = trdg.background_generator
    if enabled and not _CACHED_BACKGROUNDS:
        _ORIGINAL_IMAGE_BACKGROUND = module.image
        module.image = image_background
    elif not enabled and _CACHED_BACKGROUNDS:
        module.image = _ORIGINAL_IMAGE_BACKGROUND
    _CACHED_BACKGROUNDS = enabled


def check_installed() -> dict[str, list[str]]:
    """Grep the installed trdg for Pillow APIs that no longer exist; {file: [matching lines]}.

    Lines inside functions that `apply()` replaces are reported too (the source is still there), so the
    expected result for trdg 1.8.0 is exactly `utils.py: image_font.getsize(text)[1]`."""
    trdg = import_trdg()
    pattern = re.compile(r"\.(" + "|".join(REMOVED_PILLOW_APIS) + r")\b")
    found: dict[str, list[str]] = {}
    for path in sorted(Path(trdg.__file__).parent.rglob("*.py")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if pattern.search(line) and not line.lstrip().startswith("#"):
                found.setdefault(path.name, []).append(line.strip())
    return found
