"""The `rebusyn stats --html` page in a real browser: Debian's chromium renders it headless, offline, and
the screenshot is checked: not blank, the plots' colours drawn, the crop sheet shown.

Skipped when no chromium is installed, unless REBUSYN_REQUIRE_CHROMIUM=1 (set by .ci/run, which installs
it), so CI cannot pass by skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rebusyn.cli import main
from rebusyn.stats_html import KIND_COLOURS
from tests.test_stats import write_root

pytest.importorskip("matplotlib")

WINDOW = (1280, 4200)


def chromium() -> str:
    for name in (os.environ.get("REBUSYN_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    if os.environ.get("REBUSYN_REQUIRE_CHROMIUM") == "1":
        pytest.fail("REBUSYN_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)")
    pytest.skip("no chromium on PATH (apt-get install chromium, or set REBUSYN_CHROMIUM)")


def screenshot(page: Path, out: Path) -> np.ndarray:
    """The page rendered by headless chromium, as an RGB array of WINDOW size."""
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
        "--no-first-run", "--disable-extensions", "--force-device-scale-factor=1",
        f"--user-data-dir={out.parent / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={out}", page.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]
    return np.asarray(Image.open(out).convert("RGB"))


def near(pixels: np.ndarray, hex_colour: str, tolerance: int = 12) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels.astype(int) - rgb).max(axis=2) <= tolerance).sum())


def chromatic_colours(pixels: np.ndarray) -> int:
    """Distinct colours that are not greys (text anti-aliasing and table rules are grey)."""
    flat = pixels.reshape(-1, 3).astype(int)
    coloured = flat[(flat.max(axis=1) - flat.min(axis=1)) > 40]
    return len(np.unique(coloured[:, 0] << 16 | coloured[:, 1] << 8 | coloured[:, 2]))


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    base = tmp_path_factory.mktemp("browser")
    root = write_root(base / "root")
    shots = {}
    for name, extra in (("full", []), ("bare", ["--no-preview"])):
        page = base / f"{name}.html"
        assert main(["stats", str(root), "--html", str(page), *extra]) == 0
        shots[name] = screenshot(page, base / f"{name}.png")
    return shots


def test_page_renders_and_is_not_blank(pages: dict[str, np.ndarray]) -> None:
    shot = pages["full"]
    assert shot.shape == (WINDOW[1], WINDOW[0], 3)
    not_white = (shot < 245).any(axis=2)
    assert not_white.mean() > 0.02  # text, tables, plots: a blank or error page is almost all white
    rows_used = np.flatnonzero(not_white.any(axis=1))
    assert rows_used[-1] - rows_used[0] > 1500  # the page runs well down the window, not one line


def test_plots_are_drawn(pages: dict[str, np.ndarray]) -> None:
    shot = pages["bare"]
    # bars and histograms in the real (blue) and synthetic (orange) colours: only the SVG plots draw
    # these in any quantity (the group swatches in the table are 10 x 10)
    assert near(shot, KIND_COLOURS["real"]) > 5000
    assert near(shot, KIND_COLOURS["synthetic"]) > 2000


def test_crop_sheet_is_shown(pages: dict[str, np.ndarray]) -> None:
    # the crops are solid colours of many shades: with the sheet the page holds far more distinct colours
    with_sheet, without = chromatic_colours(pages["full"]), chromatic_colours(pages["bare"])
    assert with_sheet > without + 50
