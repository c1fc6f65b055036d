"""The trdg rendering engine: one sample per index, fully determined by (seed, index).

For index i, `numpy.random.default_rng([seed, i])` draws, in this order: the number of words (1 mostly,
2-3 joined by a space as trdg's multi-word lines are), the words, then (after the label check, so dropped
texts cost no rendering) the font among those that can draw every character of the text, then trdg's
parameters (background, skew, blur, distortion, colour, margins, spacing) and a seed for the global
`random` and OpenCV RNGs that trdg uses internally (text colour jitter, random distortion offsets, gaussian
background noise, background-image crop). When trdg's contrast check returns None, or our stricter
`legible` check rejects the image, the same text and font are retried with parameters from
`default_rng([seed, i, attempt])`, up to `MAX_ATTEMPTS`; then the index is dropped as `low_contrast`.
Nothing depends on process state, so any worker count gives byte-identical samples.
"""

from __future__ import annotations

import contextlib
import io
import random
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from rebusyn.sample import LabelPolicy
from rebusyn.synth import trdg_compat
from rebusyn.synth.engine import Dropped, EngineConfig, FontPicker, Rendered, attempts, begin_sample

__all__ = [
    "Dropped", "EngineConfig", "Rendered", "TrdgEngine", "engine_version", "init_worker", "render_chunk",
]  # fmt: skip

MAX_ATTEMPTS = 5
JPEG_QUALITY = 95
WORD_COUNT_P = (0.8, 0.14, 0.06)  # 1, 2 or 3 words per line
BACKGROUNDS = (0, 1, 3)  # gaussian noise, plain white, crop of a bundled photo (2 = quasicrystal: 3x slower)
BACKGROUND_P = (0.4, 0.2, 0.4)
# Thresholds of `legible`, set by looking at a few hundred renderings on trdg's photos (below them, text on
# bricks and city views is often unreadable at 32 px).
MIN_CONTRAST = 40
MIN_SEPARATION = 1.5


def engine_version() -> str:
    import PIL

    return (f"trdg {version('trdg')} + rebusyn.trdg_compat (BASIC layout, cached backgrounds), "
            f"Pillow {PIL.__version__}")


def trdg_images_dir() -> Path:
    # Pass trdg/images explicitly: the generators' default resolves to trdg/generators/images, which does
    # not exist (background 3 then raises FileNotFoundError).
    trdg = trdg_compat.import_trdg()
    return Path(trdg.__file__).parent / "images"


class TrdgEngine:
    """Renders indices; one instance per process (it loads the corpus and patches trdg once)."""

    def __init__(self, config: EngineConfig) -> None:
        from rebusyn.synth.corpus import load_corpus

        trdg_compat.apply()
        trdg_compat.use_fast_fonts()
        trdg_compat.use_cached_backgrounds()
        import cv2
        from trdg.data_generator import FakeTextDataGenerator

        self._cv2 = cv2
        self._generate = FakeTextDataGenerator.generate
        self.config = config
        self.corpus = load_corpus(config.corpus)
        self.policy = LabelPolicy(config.charset, config.max_len)
        self.picker = FontPicker(config.fonts)
        self.fonts = self.picker.paths
        self.image_dir = str(trdg_images_dir())
        self.version = engine_version()

    # -- drawing --------------------------------------------------------------------------------
    def draw_text(self, rng: np.random.Generator) -> str:
        n_words = int(rng.choice(3, p=WORD_COUNT_P)) + 1
        picks = rng.integers(len(self.corpus), size=n_words)
        return " ".join(self.corpus[int(k)] for k in picks)

    def draw_params(self, rng: np.random.Generator, n_words: int) -> dict[str, Any]:
        """trdg parameters (drawn here, not by trdg's `random_*` flags, so the meta records exact values)."""
        background = int(rng.choice(BACKGROUNDS, p=BACKGROUND_P))
        tone = rng.random()
        if background == 3 and tone < 0.35:  # light ink on a photo (the photos are mid-dark)
            rgb = np.clip(int(rng.integers(190, 256)) + rng.integers(-15, 16, size=3), 0, 255)
        elif tone < 0.8:  # near-black/grey ink, as trdg's default '#282828'
            rgb = np.clip(int(rng.integers(0, 100)) + rng.integers(-20, 21, size=3), 0, 255)
        else:  # coloured ink
            rgb = rng.integers(0, 160, size=3)
        distortion = int(rng.choice(4, p=(0.75, 0.08, 0.08, 0.09)))
        return {
            "background_type": background,
            # trdg draws the angle in [-k, k] with its (seeded) `random` when random_skew is on; a fixed
            # negative angle is impossible (it calls randint(-k, k) even when random_skew is off).
            "skewing_angle": int(rng.integers(1, 5)) if rng.random() < 0.4 else 0,
            "blur": round(float(rng.uniform(0.0, 1.2)), 2) if rng.random() < 0.4 else 0.0,
            "distorsion_type": distortion,
            "distorsion_orientation": int(rng.integers(0, 3)) if distortion else 0,
            "text_color": "#" + "".join(f"{int(v):02x}" for v in rgb),
            "margins": (int(rng.integers(1, 6)), int(rng.integers(1, 9)), int(rng.integers(1, 6)),
                        int(rng.integers(1, 9))),
            "character_spacing": int(rng.integers(1, 4)) if rng.random() < 0.15 else 0,
            "space_width": round(float(rng.uniform(0.8, 1.6)), 2) if n_words > 1 else 1.0,
            "rng_seed": int(rng.integers(2**31 - 1)),
        }

    # -- rendering ------------------------------------------------------------------------------
    def render(self, index: int) -> Rendered | Dropped:
        seed = self.config.seed
        begun = begin_sample(seed, index, self.draw_text, self.policy, self.picker)
        if isinstance(begun, Dropped):
            return begun
        rng, text, label, font_idx = begun
        n_words = text.count(" ") + 1
        clipped_attempts = 0
        for attempt, prng in attempts(rng, seed, index, MAX_ATTEMPTS):  # noqa: B007 - kept in the meta
            params = self.draw_params(prng, n_words)
            try:
                out = self._trdg(text, self.fonts[font_idx], params)
            except Exception as exc:  # noqa: BLE001 - counted and reported, not fatal for one sample
                return Dropped(index, "render_error", f"{type(exc).__name__}: {exc}")
            if out is not None and legible(*out):
                if not clipped(out[1]):
                    image = out[0]
                    break
                clipped_attempts += 1
        else:
            # trdg cuts descenders and the ends of skewed or distorted words at the image edge (a cut "y"
            # reads as "u"): such an image does not show its label
            return Dropped(index, "clipped" if clipped_attempts == MAX_ATTEMPTS else "low_contrast")
        buf = io.BytesIO()
        # 4:4:4 chroma: thin strokes of coloured text survive; quality 95 as the brief asks.
        image.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        extra = {
            "font": Path(self.fonts[font_idx]).name,
            "trdg": {k: v for k, v in params.items() if k != "rng_seed"}
            | {"size": self.config.height, "random_skew": params["skewing_angle"] > 0},
            "rng_seed": params["rng_seed"],
            "attempt": attempt,
            "index": index,
            "engine": self.version,
        }
        return Rendered(index, buf.getvalue(), label, text, image.width, image.height, extra)

    def _trdg(self, text: str, font: str, p: dict[str, Any]) -> Any:
        # trdg draws from the global `random` and OpenCV RNGs: seed both right before the call.
        random.seed(p["rng_seed"])
        self._cv2.setRNGSeed(p["rng_seed"])
        with contextlib.redirect_stdout(io.StringIO()):  # trdg prints on every contrast rejection
            return self._generate(
                0, text, font, None, self.config.height, "jpg",
                p["skewing_angle"], p["skewing_angle"] > 0,  # skewing_angle, random_skew
                p["blur"], False,  # blur, random_blur
                p["background_type"], p["distorsion_type"], p["distorsion_orientation"],
                False, 0, -1, 1,  # is_handwritten, name_format, width, alignment
                p["text_color"], 0, p["space_width"], p["character_spacing"], p["margins"],
                False, True, False,  # fit, output_mask (for `legible`), word_split
                self.image_dir, 0, "#282828", "RGB", 0,  # image_dir, stroke_width/fill, image_mode, bboxes
            )


def clipped(mask: Any) -> bool:
    """Whether trdg's character mask has ink on the outermost rows or columns: the text ran into the
    image edge (trdg draws a margin of at least 1 px around text that fits)."""
    ink = np.asarray(mask.convert("RGB")).any(axis=2)
    return bool(ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any())


def legible(image: Any, mask: Any) -> bool:
    """Our own contrast check, on top of trdg's (which averages only two channels, trdg issue #297, and
    lets e.g. dark ink on the dark photos through). On luminance, with text pixels taken from trdg's
    character mask: the text and background medians must differ by MIN_CONTRAST grey levels, and the means
    by MIN_SEPARATION pooled standard deviations (textured photo backgrounds need both)."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    # Character k is painted as colour (0, k // 255, k % 255): any non-zero channel is text.
    is_text = np.asarray(mask.convert("RGB")).any(axis=2)
    if not is_text.any() or is_text.all():
        return False
    text, background = grey[is_text], grey[~is_text]
    if abs(float(np.median(text)) - float(np.median(background))) < MIN_CONTRAST:
        return False
    spread = np.sqrt((text.var() + background.var()) / 2 + 1.0)
    return abs(float(text.mean()) - float(background.mean())) / spread >= MIN_SEPARATION


# -- worker-process plumbing -------------------------------------------------------------------------

_ENGINE: TrdgEngine | None = None


def init_worker(config: EngineConfig) -> None:
    """Pool initializer: build this process's engine once."""
    global _ENGINE
    if _ENGINE is None or _ENGINE.config != config:
        _ENGINE = TrdgEngine(config)
    # Cheap and idempotent; re-asserted in case something in this process switched trdg back to Raqm.
    trdg_compat.apply()
    trdg_compat.use_fast_fonts()
    trdg_compat.use_cached_backgrounds()


def render_chunk(bounds: tuple[int, int]) -> list[Rendered | Dropped]:
    """Render indices [start, stop) in order (the unit of work the pool maps over)."""
    assert _ENGINE is not None, "init_worker was not called in this process"
    start, stop = bounds
    return [_ENGINE.render(i) for i in range(start, stop)]
