"""rebusyn.synth.trdg_compat: trdg 1.8.0 is broken on Pillow >= 10, and the layer fixes it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import PIL
import pytest
from PIL import ImageFont, features

REPO = Path(__file__).resolve().parent.parent
PILLOW_MAJOR = int(PIL.__version__.split(".")[0])

# Render one image through trdg's own generator API, optionally with the layer applied first.
RENDER = textwrap.dedent(
    """
    import sys
    if sys.argv[1] == "with-layer":
        from rebusyn.synth import trdg_compat
        trdg_compat.apply()
    import os, trdg
    from trdg.generators import GeneratorFromStrings
    font = os.path.join(os.path.dirname(trdg.__file__), "fonts", "latin", "Roboto-Regular.ttf")
    image, label = next(iter(GeneratorFromStrings(["Hello"], count=1, fonts=[font], size=32)))
    print("SIZE", image.size, label)
    """
)


def _run(mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", RENDER, mode], capture_output=True, text=True, env=env,
                          timeout=120, cwd=REPO)


@pytest.mark.skipif(PILLOW_MAJOR < 10, reason=f"Pillow {PIL.__version__} still has FreeTypeFont.getsize; "
                    "trdg 1.8.0 works without the layer there")
def test_trdg_fails_without_layer_on_current_pillow() -> None:
    proc = _run("plain")
    assert proc.returncode != 0, proc.stdout
    assert "AttributeError" in proc.stderr and "getsize" in proc.stderr, proc.stderr[-2000:]


def test_trdg_renders_with_layer() -> None:
    proc = _run("with-layer")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("SIZE"))
    assert "Hello" in line and ", 32)" in line


def test_apply_is_idempotent_and_image_is_real() -> None:
    from rebusyn.synth import trdg_compat

    trdg_compat.apply()
    trdg_compat.apply()
    assert trdg_compat.is_applied()
    import trdg.computer_text_generator as ctg
    import trdg.utils
    from trdg.data_generator import FakeTextDataGenerator

    assert trdg.utils.get_text_height is trdg_compat.get_text_height
    assert ctg.get_text_height is trdg_compat.get_text_height
    font = str(Path(trdg.__file__).parent / "fonts" / "latin" / "Roboto-Regular.ttf")
    image = FakeTextDataGenerator.generate(
        0, "Hello", font, None, 32, "jpg", 0, False, 0, False, 1, 0, 0, False, 0, -1, 1, "#000000", 0, 1.0,
        0, (2, 2, 2, 2), False, False, False, str(Path(trdg.__file__).parent / "images"))
    assert image is not None and image.height == 32 and image.width > 40
    grey = np.asarray(image.convert("L"))
    assert grey.min() < 80 and grey.max() > 200  # dark ink on the white background


def test_replacement_matches_old_getsize_semantics() -> None:
    # Pillow 9's getsize(text)[1] was offset_y + height, i.e. getbbox(text)[3]; check the identity against
    # the ink box for a glyph with a descender and one starting below the top.
    from rebusyn.synth import trdg_compat

    font = ImageFont.truetype(str(_latin("Roboto-Regular.ttf")), 32)
    for text in ("g", "Hy", "-", "."):
        left, top, right, bottom = font.getbbox(text)
        assert trdg_compat.get_text_height(font, text) == bottom
        assert bottom > top >= 0


def test_installed_trdg_audit_finds_only_the_patched_call() -> None:
    from rebusyn.synth import trdg_compat

    found = trdg_compat.check_installed()
    assert found == {"utils.py": ["return image_font.getsize(text)[1]"]}


@pytest.mark.skipif(not features.check("raqm"), reason="libraqm absent: Pillow already uses BASIC")
def test_basic_layout_renders_like_raqm() -> None:
    """use_fast_fonts switches trdg to Pillow's BASIC layout; trdg draws one character per call, so glyphs
    must be the same as with Raqm, and advances (hinted vs unhinted) may differ by at most 1 px."""
    import trdg.computer_text_generator as ctg

    from rebusyn.synth import trdg_compat

    trdg_compat.apply()
    was_fast = trdg_compat.fast_fonts_enabled()
    names = ("Roboto-Regular.ttf", "Lato-Italic.ttf", "OpenSans-Bold.ttf", "Pacifico.ttf")
    fonts = [_latin(n) for n in names]
    texts = ["Hello", "quick-brown", "Jumps42", "xylophone"]
    try:
        sizes = {}
        for fast in (False, True):
            trdg_compat.use_fast_fonts(fast)
            for font in fonts:
                for text in texts:
                    img, _ = ctg.generate(text, str(font), "#000000", 32, 0, 1.0, 0, False, False)
                    sizes[fast, font, text] = img.size
        for font in fonts:
            for text in texts:
                (w0, h0), (w1, h1) = sizes[False, font, text], sizes[True, font, text]
                assert h0 == h1, (font.name, text)
                assert abs(w0 - w1) <= len(text), (font.name, text, w0, w1)
            f_raqm = ImageFont.truetype(str(font), 32)
            f_basic = ImageFont.truetype(str(font), 32, layout_engine=ImageFont.Layout.BASIC)
            for ch in "aegkqAGQ7&":
                m0, m1 = f_raqm.getmask(ch), f_basic.getmask(ch)
                assert abs(m0.size[0] - m1.size[0]) <= 1 and abs(m0.size[1] - m1.size[1]) <= 1
    finally:
        trdg_compat.use_fast_fonts(was_fast)


def _latin(name: str) -> Path:
    import trdg

    return Path(trdg.__file__).parent / "fonts" / "latin" / name


def test_cached_backgrounds_match_trdg(tmp_path: Path) -> None:
    """use_cached_backgrounds keeps trdg's random calls and operations: same seed, same pixels."""
    import random
    import shutil

    import trdg.background_generator as bg

    from rebusyn.synth import trdg_compat

    trdg_compat.use_cached_backgrounds(False)
    original = bg.image
    # One picture per folder, so trdg's unsorted os.listdir cannot pick a different file.
    shutil.copy(Path(bg.__file__).parent / "images" / "water.jpg", tmp_path / "water.jpg")
    for seed, (h, w) in enumerate([(32, 100), (32, 960), (40, 1500), (800, 50)]):
        random.seed(seed)
        a = original(h, w, str(tmp_path))
        random.seed(seed)
        b = trdg_compat.image_background(h, w, str(tmp_path))
        assert a.size == b.size == (w, h) and a.mode == b.mode
        assert a.tobytes() == b.tobytes(), (h, w)
    trdg_compat.use_cached_backgrounds(True)
    assert bg.image is trdg_compat.image_background
    trdg_compat.use_cached_backgrounds(False)
    assert bg.image is original
