"""The scene engine: words composited onto natural background photos, then cut out as real word crops are.

What it imitates. SynthText (Gupta et al., CVPR 2016) renders text into photos and blends it in; the
recognition crops people train on are then cut from those scenes by the word boxes (reference
synth_generators.md §3.1 "Pipeline" steps 5-7, §5.2 "Recognition crops"). SynthText places text on
regions found with a depth map and a gPb-UCM segmentation (§3.1 steps 1-4); new backgrounds need MATLAB
scripts (§3.2). This engine keeps the parts that shape a word crop and drops the scene geometry: no depth,
no segmentation, no homography fitted to a surface. A word is rendered flat, warped by a random
perspective / rotation / shear / curve, blended into a window of a photo with a colour chosen against the
local background, and the crop is the axis-aligned box of the warped text plus a random margin. SynthText
colours text from a model learned on IIIT5K (`colors_new.cp`, §3.1 step 5); that model is not
installable offline, so colours are chosen for contrast instead (below).

Backgrounds (`EngineConfig.backgrounds`, `rebusyn synth --backgrounds DIR`; default trdg's 4 bundled
photos, synth_generators.md §1.3 "images/"). Any folder of photos works, e.g. SynthText's `bg_img`
(~8,000 photos, §3.2; "We do not own the copyright to these images"; whether every one of them is free of
text is [?]: SynthText itself renders only into the names listed in `imnames.cp`). Every worker reads the
folder once at start: files are taken in the order of the sha1 of their path relative to the folder (a
deterministic, machine-independent shuffle, so a budget-limited subset is a fair sample of the folder and
the same on every machine), decoded (JPEG with libjpeg's DCT downscaling), downscaled to at most
`MAX_SIDE` px on the long side, and kept while their pixels fit in `BUDGET_BYTES` (256 MiB); the first
photo that does not fit ends the list. Unreadable files are skipped with a warning; a folder without any
usable photo is an error. Each sample records the photo (path relative to the folder) and the window in
the original photo's pixels. `prepare(config)`, called in a parent process before it forks its workers,
decodes the photos once there so that the workers share them (copy-on-write) instead of each decoding a
copy, and raises input errors in the parent. Without it, a worker's init error (no usable photo) is kept
and reported by every render as a render_error drop: an exception in a pool initializer would make
multiprocessing restart the worker forever.

One sample, from `default_rng([seed, index])` (retries: `default_rng([seed, index, attempt])`):
  1. text: `rebusyn.synth.text.draw_text` (corpus entry + case/punctuation/number variants), normalized by
     `LabelPolicy` before anything is rendered; font: among those that draw every character of the text.
  2. parameters: one block of uniforms per effect, in a fixed order, drawn whether or not the effect is
     applied: toggling one effect's `p` changes nothing else in a sample (the per-column and per-pixel
     draws of random distortion and noise come from the same generator afterwards, in that order).
  3. mask: glyphs rendered once per (font, size, character) with Pillow (BASIC layout) and placed one by
     one at whole-pixel pen positions, as trdg draws characters (no kerning), at a font size picked from
     a short ladder so that the ink is about the output height or taller (crops are downscaled, rarely
     upscaled); optional character spacing; optional outline (the dilated mask). Hairline fonts, whose
     strokes would end up thinner than MIN_STROKE output px, are drawn again with a Pillow stroke.
  4. geometry: curve / distortion as a vertical displacement per column, then perspective (in the word's
     own frame), shear and rotation composed into one homography; one cv2 warp (`warpPerspective`, or
     `remap` when columns move). The canvas is the box of the mapped corners of the rectangle that holds
     the displaced ink, so no ink falls outside it (checked: a sample whose ink reaches the canvas border
     is a render_error, never a clipped word).
  5. cut box: the box of the warped ink (outline included) plus random margins (at least ~1.5 output px of
     clear border, so no text touches the image border after resizing), resized to `config.height`.
  6. background: a window of a photo (or a plain / gaussian-noise background, as trdg's types 0 and 1),
     resized to the crop; the text colour is chosen against the median luma of the background under the
     text; shadow, outline and text are blended with soft alpha and optional texture modulation.
  7. blur (gaussian or motion), gaussian noise, JPEG artefacts; `legible` (trdg_engine's test, stricter
     thresholds, on the final image against the text mask) or retry; after `MAX_ATTEMPTS` the index is
     Dropped("low_contrast").
  8. JPEG, quality `JPEG_QUALITY`, 4:4:4 chroma.

Colour (effect `colour`): candidate colours of three strategies, chosen with the configured weights:
`mono` (greys), `vivid` (saturated colours of any hue), `tinted` (the background's own hue, other
lightness); lightness levels are stratified so dark and light candidates both exist. With probability `p`
the candidate whose luma differs most from the local background's median luma is taken, else one at
random among those that differ by at least `min_delta` (hue variety); luma (Rec. 601) is used, not Lab
L*, because it is what `legible` measures.

Everything drawn is recorded in `Rendered.extra`. Work is on small arrays (the word's canvas, the crop)
with OpenCV and numpy; nothing depends on process state, so any worker count gives the same bytes.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import importlib.util
import logging
import math
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rebusyn.sample import LabelPolicy
from rebusyn.synth.config import SynthConfig, SynthConfigError, default_config_path, load_config
from rebusyn.synth.engine import Dropped, EngineConfig, FontPicker, Rendered, attempts, begin_sample
from rebusyn.synth.text import TEXT_SCHEMA, draw_text

__all__ = [
    "BUDGET_BYTES", "CONFIG_SCHEMA", "JPEG_QUALITY", "MAX_SIDE", "Background", "Composite", "SceneEngine",
    "check_config", "default_backgrounds_dir", "engine_version", "glyph", "grey_stats", "init_worker",
    "legible", "load_backgrounds", "prepare", "render_chunk", "stroke_width", "text_mask", "warp",
]  # fmt: skip

log = logging.getLogger(__name__)

ENGINE_REVISION = 2  # 2: text drawn by the faster text.draw_text (different texts per index)
JPEG_QUALITY = 95
MAX_ATTEMPTS = 5
# `legible` thresholds: trdg_engine's test (medians MIN_CONTRAST grey levels apart, means MIN_SEPARATION
# pooled standard deviations apart), stricter than trdg_engine's 40 / 1.5 because every background here is a
# textured photo: among 400 samples, most crops between 1.5 and 2.0 were hard to read (text on the city
# and brick photos), most above 2.0 were not.
MIN_CONTRAST = 50
MIN_SEPARATION = 2.0
MAX_SIDE = 512  # px, long side of a kept background copy: a 32 px crop rarely needs more photo than that
BUDGET_BYTES = 256 * 2**20  # decoded background pixels kept per worker
MIN_BACKGROUND_SIDE = 32  # px (after downscaling); smaller photos are skipped
BACKGROUND_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Font sizes, in multiples of the output height: the smallest one at which the ink is at least INK_TARGET
# x the output height is used (x-height-only words need the larger sizes), so crops are rarely upscaled
# much. A short ladder bounds the (font, size) cache.
SIZE_LADDER = (1.1, 1.4, 1.8, 2.4)
INK_TARGET = 0.8
GLYPH_CACHE = 20_000  # rendered (font, size, stroke, character) bitmaps kept per process (~30 MB at most)
STRATEGIES = ("mono", "vivid", "tinted")
N_CANDIDATES = 6  # colours per strategy
MIN_STROKE = 1.2  # output px: thinner strokes (hairline fonts at small heights) are thickened to this
BLOCK = 12  # uniforms per effect (slot 0: applied or not)
COLOUR_BLOCK = 2 + 3 * N_CANDIDATES + 2

# Effect order = order of the uniform blocks (append new effects at the end, bump ENGINE_REVISION).
EFFECTS = ("background", "colour", "perspective", "rotation", "shear", "curve", "distortion", "spacing",
           "blend_softness", "opacity", "texture", "shadow", "outline", "margin", "blur", "noise", "jpeg")

CONFIG_SCHEMA: dict[str, Any] = {
    "effects": {
        # p: a photo window (else a plain or gaussian-noise background); scale: photo px per output px
        "background": {"scale": ("range", 0.25, 8.0), "synthetic": ("choice", ("plain", "noise"))},
        # p: take the most contrasting candidate (else a random one above min_delta); weights of strategies
        "colour": {"mono": ("value", 0, 1), "vivid": ("value", 0, 1), "tinted": ("value", 0, 1),
                   "min_delta": ("value", 0, 255)},
        "perspective": {"strength": ("range", 0.0, 0.3)},  # corner moves, fraction of the side (+-1/2)
        "rotation": {"angle": ("range", -30, 30)},  # degrees, counter-clockwise
        "shear": {"factor": ("range", -0.6, 0.6)},  # horizontal shift per px of height (italic > 0)
        "curve": {"amplitude": ("range", 0.0, 1.0), "kind": ("choice", ("arc", "sine")),
                  "max_chars": ("value", 1, 100)},  # amplitude: fraction of the ink height
        "distortion": {"amplitude": ("range", 0.0, 0.3), "kind": ("choice", ("sine", "cosine", "random"))},
        "spacing": {"em": ("range", 0.0, 0.5)},  # extra space between characters, fraction of font size
        "blend_softness": {"sigma": ("range", 0.0, 3.0)},  # alpha blur, output px
        "opacity": {"alpha": ("range", 0.3, 1.0)},
        "texture": {"strength": ("range", 0.0, 1.0)},  # text colour modulated by the background's luma
        "shadow": {"offset": ("range", 0.0, 0.3), "sigma": ("range", 0.0, 4.0),
                   "opacity": ("range", 0.0, 1.0)},  # offset: fraction of the output height
        "outline": {"width": ("range", 0.01, 0.2)},  # fraction of the font size (at least 1 px)
        "margin": {"vertical": ("range", 0.0, 1.0), "horizontal": ("range", 0.0, 2.0)},  # x ink height
        "blur": {"sigma": ("range", 0.0, 3.0), "kind": ("choice", ("gaussian", "motion"))},
        "noise": {"sigma": ("range", 0.0, 40.0)},  # grey levels
        "jpeg": {"quality": ("int_range", 5, 95)},  # artefacts of an earlier, lossier encoding
    },
    "text": TEXT_SCHEMA,
}


def engine_version() -> str:
    import PIL

    return (f"rebusyn scene r{ENGINE_REVISION} (backgrounds <= {MAX_SIDE} px, {BUDGET_BYTES >> 20} MiB), "
            f"Pillow {PIL.__version__}, OpenCV {cv2.__version__}, numpy {version('numpy')}")


def default_backgrounds_dir() -> Path:
    """trdg's bundled photos (`trdg/images`, the folder trdg_engine.trdg_images_dir() returns), found
    without importing trdg."""
    spec = importlib.util.find_spec("trdg")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("trdg is not installed (pip install --no-deps trdg==1.8.0); or pass --backgrounds")
    return Path(list(spec.submodule_search_locations)[0]) / "images"


def check_config(config: SynthConfig) -> None:
    """What the schema cannot say: the colour strategy weights must not all be 0."""
    colour = config.effects["colour"]
    if sum(colour[s] for s in STRATEGIES) <= 0:
        raise SynthConfigError(f"{config.path}: field 'effects.colour' needs a strategy weight above 0 "
                               f"({', '.join(STRATEGIES)})")


# -- backgrounds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Background:
    name: str  # path relative to the folder (posix)
    image: np.ndarray  # BGR uint8, the downscaled copy
    scale: float  # copy px per original px (<= 1)


def load_backgrounds(folder: Path, max_side: int = MAX_SIDE, budget_bytes: int = BUDGET_BYTES
                     ) -> list[Background]:
    """Decoded, downscaled copies of the photos in `folder` (recursively), in sha1(relative path) order,
    while they fit in `budget_bytes`; see the module doc."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"backgrounds {folder}: not a folder")
    files = [p for p in folder.rglob("*")
             if p.suffix.lower() in BACKGROUND_SUFFIXES and p.is_file() and not p.name.startswith(".")]
    names = sorted((p.relative_to(folder).as_posix() for p in files),
                   key=lambda n: (hashlib.sha1(n.encode()).hexdigest(), n))
    kept: list[Background] = []
    used = 0
    skipped: list[str] = []
    for name in names:
        try:
            image, scale = _decode(folder / name, max_side)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # broken files
            log.warning("backgrounds: skipping %s: %s", folder / name, exc)
            skipped.append(name)
            continue
        if min(image.shape[:2]) < MIN_BACKGROUND_SIDE:
            log.warning("backgrounds: skipping %s: smaller than %d px", folder / name, MIN_BACKGROUND_SIDE)
            skipped.append(name)
            continue
        if used + image.nbytes > budget_bytes:
            log.info("backgrounds: %d of %d photos kept (budget %d MiB)", len(kept), len(names),
                     budget_bytes >> 20)
            break
        used += image.nbytes
        kept.append(Background(name, image, scale))
    if not kept:
        what = f"{len(names)} image file(s), none readable" if names else "no image file"
        raise ValueError(f"backgrounds {folder}: no usable photo ({what}; suffixes "
                         f"{', '.join(BACKGROUND_SUFFIXES)})" + (f"; skipped {', '.join(skipped[:5])}"
                                                                  if skipped else ""))
    return kept


def _decode(path: Path, max_side: int) -> tuple[np.ndarray, float]:
    with Image.open(path) as im:
        w, h = im.size
        scale = min(1.0, max_side / max(w, h))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if im.format == "JPEG":
            im.draft("RGB", size)  # libjpeg DCT scaling: decodes at >= size, much faster than full size
        rgb = np.asarray(im.convert("RGB"))
    if (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb[:, :, ::-1]), scale


@functools.lru_cache(maxsize=1)
def _cached_backgrounds(folder: str, mtime_ns: int) -> tuple[Background, ...]:
    # One folder per process (the engine is rebuilt when the config changes, the photos need not be).
    return tuple(load_backgrounds(Path(folder)))


# -- rendering -----------------------------------------------------------------------------------------


@dataclass
class Composite:
    """A sample before JPEG encoding (also what tests and previews inspect)."""

    index: int
    text: str
    label: str
    image: np.ndarray  # BGR uint8, height = config.height
    ink: np.ndarray  # float32 coverage of the text (outline excluded) in the output, 0..1
    extra: dict[str, Any]

    def rgb(self) -> np.ndarray:
        return np.ascontiguousarray(self.image[:, :, ::-1])


class _Uniforms:
    """One block of uniforms per effect, in EFFECTS order (fixed layout: see module doc, step 2)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.u: list[float] = rng.random(BLOCK * len(EFFECTS) + COLOUR_BLOCK).tolist()  # floats: fast

    def block(self, effect: str) -> list[float]:
        start, stop = _BLOCKS[effect]
        return self.u[start:stop]


_BLOCKS = {name: (BLOCK * k, BLOCK * (k + 1)) for k, name in enumerate(EFFECTS)}
_BLOCKS["colour"] = (BLOCK * len(EFFECTS), BLOCK * len(EFFECTS) + COLOUR_BLOCK)  # a longer block, at the end


def _between(lo_hi: list[float], u: float) -> float:
    return float(lo_hi[0] + (lo_hi[1] - lo_hi[0]) * u)


def _pick(options: list[str], u: float) -> str:
    return options[min(int(u * len(options)), len(options) - 1)]


class SceneEngine:
    """Renders indices; one instance per process (loads the corpus, fonts and backgrounds once)."""

    def __init__(self, config: EngineConfig) -> None:
        from rebusyn.synth.corpus import load_corpus

        effects = config.effects
        if effects is None:
            effects = load_config(default_config_path("scene"), "scene", CONFIG_SCHEMA)
        check_config(effects)
        self.config = config
        self.fx: dict[str, dict[str, Any]] = effects.effects
        self.text_variants = effects.text
        self.corpus = load_corpus(config.corpus)
        self.policy = LabelPolicy(config.charset, config.max_len)
        self.fonts = [f for f, _ in config.fonts]
        self.font_names = [Path(f).name for f in self.fonts]
        if not self.fonts:
            raise ValueError("scene engine: no font")
        self.picker = FontPicker(config.fonts)
        folder = Path(config.backgrounds) if config.backgrounds else default_backgrounds_dir()
        self.backgrounds = _cached_backgrounds(str(folder.resolve()), folder.stat().st_mtime_ns)
        self.version = engine_version()

    # -- drawing ----------------------------------------------------------------------------------
    def draw_text(self, rng: np.random.Generator) -> str:
        return draw_text(rng, self.corpus, self.text_variants)

    def applied(self, effect: str, block: list[float]) -> bool:
        return block[0] < self.fx[effect]["p"]

    # -- one sample -------------------------------------------------------------------------------
    def render(self, index: int) -> Rendered | Dropped:
        out = self.compose(index)
        if isinstance(out, Dropped):
            return out
        ok, buf = cv2.imencode(".jpg", out.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                                                   cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                                   cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
        if not ok:
            return Dropped(index, "render_error", "JPEG encoding failed")
        h, w = out.image.shape[:2]
        return Rendered(index, buf.tobytes(), out.label, out.text, w, h, out.extra)

    def compose(self, index: int) -> Composite | Dropped:
        seed = self.config.seed
        begun = begin_sample(seed, index, self.draw_text, self.policy, self.picker)
        if isinstance(begun, Dropped):
            return begun
        rng, text, label, font_idx = begun
        for attempt, prng in attempts(rng, seed, index, MAX_ATTEMPTS):  # noqa: B007 - kept in the meta
            try:
                image, ink, extra = self._attempt(text, font_idx, prng)
            except Exception as exc:  # noqa: BLE001 - counted and reported, not fatal for one sample
                return Dropped(index, "render_error", f"{type(exc).__name__}: {exc}")
            if legible(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), ink > 0.5):
                break
        else:
            return Dropped(index, "low_contrast")
        extra.update({"attempt": attempt, "index": index, "engine": self.version})
        return Composite(index, text, label, image, ink, extra)

    def _attempt(self, text: str, font_idx: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        u = _Uniforms(rng)
        fx = self.fx
        height = self.config.height
        record: dict[str, Any] = {}

        # 1. the mask, at a font size from the ladder
        path = self.fonts[font_idx]
        size = self._font_size(path, text)
        b = u.block("spacing")
        spacing = 0.0
        if self.applied("spacing", b) and len(text) > 1:
            spacing = round(_between(fx["spacing"]["em"], b[1]) * size, 2)
            record["spacing"] = {"px": spacing}
        b = u.block("outline")
        radius = 0
        if self.applied("outline", b):
            radius = max(1, round(_between(fx["outline"]["width"], b[1]) * size))
            record["outline"] = {"px": radius}
        b = u.block("margin")
        margin_u = b[1:5] if self.applied("margin", b) else None

        stroke = 0  # px of Pillow stroke added around the glyphs of hairline fonts
        while True:
            mask = text_mask(path, size, text, spacing, stroke)
            pad = radius + 2
            layers = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            if radius:  # layers: the text, and the outlined text
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
                layers = np.dstack([layers, cv2.dilate(layers, kernel)])

            # 2. geometry
            matrix, canvas_size, dy = self._geometry(u, layers.shape[1], layers.shape[0], mask.shape[0],
                                                     len(text), rng, record)
            warped = warp(layers, matrix, canvas_size, dy)
            x, y, bw, bh = cv2.boundingRect(_layer(warped, 1))
            if x == 0 or y == 0 or x + bw == warped.shape[1] or y + bh == warped.shape[0]:
                raise RuntimeError("warped ink reaches the canvas border")  # a bound is wrong: never clip

            # 3. cut box: ink box + margins (at least ~1.5 output px clear) -> output size
            x, y, bw, bh, margins = self._cut(warped, margin_u)
            cut_h = bh + margins[1] + margins[3]
            if stroke:
                break
            # Hairline fonts (Lato-Hairline, Raleway-Thin, ...) vanish at 32 px: draw them again with a
            # stroke that makes them MIN_STROKE output px thick (recorded).
            width = stroke_width(mask)
            need = MIN_STROKE * cut_h / height
            if width >= need:
                break
            stroke = math.ceil((need - width) / 2)
            record["thicken"] = {"stroke_px": stroke, "measured_px": round(width, 2)}
        if margin_u is not None:
            record["margin"] = {"px": list(margins)}
        text_layer, union = _layer(warped, 0), _layer(warped, 1)  # the outline layer contains the text
        cut_w = bw + margins[0] + margins[2]
        out_w = max(1, round(cut_w * height / cut_h))
        interp = cv2.INTER_AREA if cut_h > height else cv2.INTER_LINEAR

        def to_output(layer: np.ndarray) -> np.ndarray:
            box = cv2.copyMakeBorder(layer[y:y + bh, x:x + bw], margins[1], margins[3], margins[0],
                                     margins[2], cv2.BORDER_CONSTANT, value=0)
            return cv2.resize(box, (out_w, height), interpolation=interp).astype(np.float32) * (1 / 255)

        ink = to_output(text_layer)
        ring = to_output(union) if radius else None

        # 4. background and colour
        bg, record["background"] = self._background(u, out_w, height, rng)
        grey_bg = cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY)
        under = cv2.dilate((ink > 0.05).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        local = grey_stats(grey_bg[under] if under.any() else grey_bg)[0]
        colour, record["colour"] = self._colour(u, bg, under, local)

        # 5. blend: shadow, outline, text
        canvas = bg.astype(np.float32)
        b = u.block("blend_softness")
        sigma = _between(fx["blend_softness"]["sigma"], b[1]) if self.applied("blend_softness", b) else 0.0
        if sigma > 0:
            record["blend_softness"] = {"sigma": round(sigma, 3)}
        b = u.block("opacity")
        alpha = _between(fx["opacity"]["alpha"], b[1]) if self.applied("opacity", b) else 1.0
        if alpha < 1:
            record["opacity"] = {"alpha": round(alpha, 3)}
        b = u.block("shadow")
        if self.applied("shadow", b):
            s = fx["shadow"]
            offset = _between(s["offset"], b[1]) * height
            angle = 2 * math.pi * b[2]
            dx, dyy = offset * math.cos(angle), offset * math.sin(angle)
            s_sigma, s_opacity = _between(s["sigma"], b[3]), _between(s["opacity"], b[4])
            shifted = cv2.warpAffine(ring if ring is not None else ink, np.float32([[1, 0, dx], [0, 1, dyy]]),
                                     (out_w, height), flags=cv2.INTER_LINEAR, borderValue=0)
            if s_sigma > 0:
                shifted = cv2.GaussianBlur(shifted, (0, 0), s_sigma)
            canvas *= (1 - s_opacity * shifted)[:, :, None]
            record["shadow"] = {"dx": round(dx, 2), "dy": round(dyy, 2), "sigma": round(s_sigma, 3),
                                "opacity": round(s_opacity, 3)}
        if ring is not None:
            grey_text = _luma(colour)
            level = 20 + 50 * u.block("outline")[2] if grey_text > 127 else 200 + 55 * u.block("outline")[2]
            outline_colour = np.full(3, level, np.float32)
            a_ring = _soften(ring, sigma) * alpha
            canvas += (outline_colour - canvas) * a_ring[:, :, None]
            record["outline"]["colour"] = _hex(outline_colour)
        fg: Any = np.asarray(colour, np.float32)
        b = u.block("texture")
        if self.applied("texture", b):
            k = _between(fx["texture"]["strength"], b[1])
            modulation = 1 - k + k * grey_bg.astype(np.float32) / max(local, 16.0)
            fg = np.clip(fg[None, None, :] * modulation[:, :, None], 0, 255)
            record["texture"] = {"strength": round(k, 3)}
        a_text = _soften(ink, sigma) * alpha
        canvas += (fg - canvas) * a_text[:, :, None]

        # 6. camera: blur, noise, JPEG artefacts
        b = u.block("blur")
        if self.applied("blur", b):
            kind = _pick(fx["blur"]["kind"], b[2])
            blur_sigma = _between(fx["blur"]["sigma"], b[1])
            if blur_sigma > 0:
                canvas = _blur(canvas, kind, blur_sigma, 180 * b[3])
            record["blur"] = {"kind": kind, "sigma": round(blur_sigma, 3)}
            if kind == "motion":
                record["blur"]["angle"] = round(180 * float(b[3]), 1)
        b = u.block("noise")
        if self.applied("noise", b):
            noise_sigma = _between(fx["noise"]["sigma"], b[1])
            canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(noise_sigma)
            record["noise"] = {"sigma": round(noise_sigma, 3)}
        image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
        b = u.block("jpeg")
        if self.applied("jpeg", b):
            lo, hi = fx["jpeg"]["quality"]
            quality = min(hi, lo + int(b[1] * (hi - lo + 1)))
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if ok:
                image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            record["jpeg"] = {"quality": quality}

        extra = {
            "font": self.font_names[font_idx], "font_size": size, "text_colour": _hex(colour),
            "cut": {"ink": [bw, bh], "margins": margins, "render_px": [cut_w, cut_h]},
            "effects": {k: record[k] for k in EFFECTS if k in record and k not in ("background", "colour")},
            "background": record["background"], "colour": record["colour"],
        }
        if "thicken" in record:
            extra["thicken"] = record["thicken"]
        return image, ink, extra

    def _cut(self, warped: np.ndarray, margin_u: list[float] | None) -> tuple[int, int, int, int, list[int]]:
        """The box of all ink (outline included) and the margins (left, top, right, bottom; render px)
        around it: drawn (x its height) when the margin effect applies, at least ~1.5 output px, and
        widened so that the crop is at least max(8, height / 4) px wide."""
        height = self.config.height
        x, y, bw, bh = cv2.boundingRect(_layer(warped, 1))
        margins = [0, 0, 0, 0]
        if margin_u is not None:
            vert, horiz = self.fx["margin"]["vertical"], self.fx["margin"]["horizontal"]
            margins = [round(_between(horiz, margin_u[0]) * bh), round(_between(vert, margin_u[1]) * bh),
                       round(_between(horiz, margin_u[2]) * bh), round(_between(vert, margin_u[3]) * bh)]
        # 1.5 output px of clear border: resizing (INTER_AREA averages over ~cut_h / height px) then
        # keeps every ink pixel off the image border
        min_pad = math.ceil(1.5 * (bh + margins[1] + margins[3]) / height) + 1
        margins = [max(m, min_pad) for m in margins]
        cut_h = bh + margins[1] + margins[3]
        min_w = math.ceil(max(8, height // 4) * cut_h / height)
        if bw + margins[0] + margins[2] < min_w:  # a 1-char word still gets a crop of sane aspect
            more = min_w - (bw + margins[0] + margins[2])
            margins[0] += more // 2
            margins[2] += more - more // 2
        return x, y, bw, bh, margins

    def _font_size(self, path: str, text: str) -> int:
        """The first size of SIZE_LADDER at which the text's ink is at least INK_TARGET x the output
        height. The vertical extent of a line is the union of its glyphs' (all sit on the baseline), so it
        comes from the glyph cache."""
        height = self.config.height
        base = round(height * SIZE_LADDER[0])
        top, bottom = 0, -1
        for c in set(text):
            bitmap, _, t, _ = glyph(path, base, 0, c)
            if bitmap.size:
                b = t + bitmap.shape[0]
                top, bottom = (t, b) if bottom < top else (min(top, t), max(bottom, b))
        ratio = max(bottom - top, 1) / base  # ink height per px of font size
        for step in SIZE_LADDER:
            if ratio * step >= INK_TARGET:
                return round(height * step)
        return round(height * SIZE_LADDER[-1])

    def _geometry(self, u: _Uniforms, w: int, h: int, ink_h: int, n_chars: int, rng: np.random.Generator,
                  record: dict[str, Any]) -> tuple[np.ndarray, tuple[int, int], np.ndarray | None]:
        """Where the w x h canvas goes: first a vertical displacement per column (curve, distortion), then
        a homography (perspective in the word's own frame, shear, rotation), translated so that the
        result lies inside the returned canvas size. Returns (homography, size, displacement or None)."""
        fx = self.fx
        dy = np.zeros(w, np.float64)
        cols = np.arange(w, dtype=np.float64)
        cx, cy = w / 2, h / 2
        b = u.block("curve")
        if self.applied("curve", b) and n_chars <= fx["curve"]["max_chars"]:
            kind = _pick(fx["curve"]["kind"], b[2])
            amplitude = _between(fx["curve"]["amplitude"], b[1]) * ink_h * (1 if b[3] < 0.5 else -1)
            t = (cols - cx) / max(cx, 1.0)
            if kind == "arc":
                dy += amplitude * (1 - t * t)
            else:  # half to one and a half waves across the word
                dy += amplitude * np.sin(math.pi * (0.5 + b[4]) * t + 2 * math.pi * b[5])
            record["curve"] = {"kind": kind, "amplitude_px": round(amplitude, 2)}
        b = u.block("distortion")
        if self.applied("distortion", b):
            kind = _pick(fx["distortion"]["kind"], b[2])
            amplitude = _between(fx["distortion"]["amplitude"], b[1]) * ink_h
            # trdg's column distortions (synth_generators.md §1.2 step 3; trdg/distorsion_generator.py):
            # sin / cos of the column index in degrees (a 360 px period at trdg's 32 px), or a random
            # offset per column; amplitudes here are a fraction of the ink height.
            period = 360 * self.config.height / 32
            if kind == "sine":
                dy += amplitude * np.sin(2 * math.pi * cols / period)
            elif kind == "cosine":
                dy += amplitude * np.cos(2 * math.pi * cols / period)
            else:
                dy += amplitude * rng.random(w)
            record["distortion"] = {"kind": kind, "amplitude_px": round(amplitude, 2)}
        lo, hi = min(float(dy.min()), 0.0), max(float(dy.max()), 0.0)
        # All displaced ink lies in this rectangle; every map below keeps it a convex quadrilateral (the
        # perspective moves its corners by at most 15 % of its sides), so the ink stays inside the box of
        # the mapped corners.
        rect = np.array([[0, lo], [w, lo], [w, h + hi], [0, h + hi]], np.float64)
        m = np.eye(3)
        b = u.block("perspective")
        if self.applied("perspective", b):
            strength = _between(fx["perspective"]["strength"], b[1])
            moves = (np.array(b[2:10]).reshape(4, 2) - 0.5) * strength  # x (width), y (height) fractions
            target = rect + moves * np.array([w, h + hi - lo])
            m = cv2.getPerspectiveTransform(rect.astype(np.float32), target.astype(np.float32))
            record["perspective"] = {"strength": round(strength, 4), "corners": np.round(moves, 4).tolist()}
        b = u.block("shear")
        if self.applied("shear", b):
            k = _between(fx["shear"]["factor"], b[1])
            m = np.array([[1, -k, k * cy], [0, 1, 0], [0, 0, 1]]) @ m
            record["shear"] = {"factor": round(k, 4)}
        b = u.block("rotation")
        if self.applied("rotation", b):
            angle = _between(fx["rotation"]["angle"], b[1])
            m = np.vstack([cv2.getRotationMatrix2D((cx, cy), angle, 1.0), [0, 0, 1]]) @ m
            record["rotation"] = {"angle": round(angle, 3)}
        box = _apply(m, rect)
        x0, y0 = np.floor(box.min(axis=0)) - 2
        x1, y1 = np.ceil(box.max(axis=0)) + 2
        m = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ m
        return m, (int(x1 - x0), int(y1 - y0)), (dy if lo < 0 or hi > 0 else None)

    def _background(self, u: _Uniforms, w: int, h: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, dict[str, Any]]:
        """A w x h BGR background: a window of a photo, resized, or a plain / gaussian-noise one."""
        fx = self.fx["background"]
        b = u.block("background")
        if not self.applied("background", b):
            kind = _pick(fx["synthetic"], b[1])
            if kind == "plain":
                colour = 255 * np.array(b[2:5], np.float32)
                plain = np.full((h, w, 3), np.round(colour), np.uint8)
                return plain, {"kind": "plain", "colour": _hex(colour)}
            # trdg's gaussian-noise background is cv2.randn(image, 235, 10) (synth_generators.md §1.2 step
            # 5); here the mean varies so that light text has a background too
            mean = 120 + 135 * float(b[2])
            noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(10) + np.float32(mean)
            grey = np.clip(noise + 0.5, 0, 255).astype(np.uint8)
            return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), {"kind": "noise", "mean": round(mean, 1)}
        photo = self.backgrounds[min(int(b[1] * len(self.backgrounds)), len(self.backgrounds) - 1)]
        ph, pw = photo.image.shape[:2]
        scale = min(_between(fx["scale"], b[2]), pw / w, ph / h)  # the window must fit in the photo
        ww, wh = max(1, min(pw, round(w * scale))), max(1, min(ph, round(h * scale)))
        x0 = min(int(b[3] * (pw - ww + 1)), pw - ww)
        y0 = min(int(b[4] * (ph - wh + 1)), ph - wh)
        window = photo.image[y0:y0 + wh, x0:x0 + ww]
        interp = cv2.INTER_AREA if wh > h else cv2.INTER_LINEAR
        out = cv2.resize(window, (w, h), interpolation=interp)
        f = photo.scale
        return out, {"kind": "photo", "file": photo.name, "scale": round(scale, 4),
                     "window": [round(x0 / f), round(y0 / f), round(ww / f), round(wh / f)]}

    def _colour(self, u: _Uniforms, bg: np.ndarray, under: np.ndarray, local: float
                ) -> tuple[np.ndarray, dict[str, Any]]:
        """The text colour (BGR float32) against the background's median luma `local` under the text."""
        fx = self.fx["colour"]
        b = np.array(u.block("colour"))
        weights = np.array([fx[s] for s in STRATEGIES], np.float64)
        cumulative = np.cumsum(weights / weights.sum())
        strategy = STRATEGIES[min(int(np.searchsorted(cumulative, b[1], side="right")), len(STRATEGIES) - 1)]
        levels = (np.arange(N_CANDIDATES) + b[2:2 + N_CANDIDATES]) / N_CANDIDATES  # stratified lightness
        c1 = b[2 + N_CANDIDATES:2 + 2 * N_CANDIDATES]
        c2 = b[2 + 2 * N_CANDIDATES:2 + 3 * N_CANDIDATES]
        if strategy == "mono":
            grey = 255 * levels
            rgb = np.stack([grey + 16 * (c1 - 0.5), grey, grey + 16 * (c2 - 0.5)], axis=1)
        else:
            if strategy == "vivid":
                hues, sats = c1, 0.45 + 0.55 * c2
            else:
                mean = bg[under].mean(axis=0) if under.any() else bg.reshape(-1, 3).mean(axis=0)
                hue, sat, _ = colorsys.rgb_to_hsv(*(mean[::-1] / 255))
                hues = (hue + 0.08 * (c1 - 0.5)) % 1.0
                sats = np.clip(sat + 0.2 + 0.5 * c2, 0, 1)
            rgb = 255 * np.array([colorsys.hsv_to_rgb(hh, ss, 0.08 + 0.92 * vv)
                                  for hh, ss, vv in zip(hues, sats, levels)])
        rgb = np.clip(rgb, 0, 255)
        deltas = np.abs(rgb @ np.array([0.299, 0.587, 0.114]) - local)
        best = int(np.argmax(deltas))
        if b[0] < self.fx["colour"]["p"]:
            pick, how = best, "max"
        else:
            over = np.flatnonzero(deltas >= fx["min_delta"])
            pick = int(over[min(int(b[-1] * len(over)), len(over) - 1)]) if len(over) else best
            how = "random" if len(over) else "max"
        bgr = rgb[pick][::-1].astype(np.float32)
        return bgr, {"strategy": strategy, "pick": how, "local_luma": round(local, 1),
                     "delta": round(float(deltas[pick]), 1)}


# -- pieces ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: Latin needs no shaping here and it is several times faster than Raqm.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=GLYPH_CACHE)
def glyph(path: str, size: int, stroke: int, char: str) -> tuple[np.ndarray, int, int, float]:
    """One character, rendered once per (font, size, stroke): (ink bitmap uint8, left, top, advance), the
    bitmap's top-left corner relative to the pen position on the baseline."""
    font = _font(path, size)
    advance = font.getlength(char)
    left, top, right, bottom = font.getbbox(char, anchor="ls", stroke_width=stroke)
    if right <= left or bottom <= top:
        return np.zeros((0, 0), np.uint8), 0, 0, advance
    pad = size // 4 + stroke + 2  # room in case the box misses a pixel of anti-aliasing
    canvas = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), char, fill=255, font=font, anchor="ls",
                                stroke_width=stroke, stroke_fill=255)
    bitmap = np.asarray(canvas)
    x, y, w, h = cv2.boundingRect(bitmap)
    if w == 0:
        return np.zeros((0, 0), np.uint8), 0, 0, advance
    if x == 0 or y == 0 or x + w == bitmap.shape[1] or y + h == bitmap.shape[0]:
        raise ValueError(f"{Path(path).name} {size}px: the ink of {char!r} overflows its bounding box")
    ink = np.ascontiguousarray(bitmap[y:y + h, x:x + w])
    ink.setflags(write=False)  # shared by every text that uses this glyph
    return ink, left - pad + x, top - pad + y, advance


def text_mask(path: str, size: int, text: str, spacing: float = 0.0, stroke: int = 0) -> np.ndarray:
    """The ink of `text` (uint8, 255 = ink), cropped to its bounding box. Characters are placed one by one
    at whole-pixel pen positions (as trdg draws them, so no kerning) `spacing` px apart, from cached
    glyphs (`glyph`); `stroke` px of Pillow stroke thickens every glyph."""
    placed = []
    x = 0.0
    for c in text:
        bitmap, left, top, advance = glyph(path, size, stroke, c)
        if bitmap.size:
            placed.append((bitmap, round(x) + left, top))
        x += advance + spacing
    if not placed:
        raise ValueError(f"no ink for {text!r}")
    x0 = min(p[1] for p in placed)
    y0 = min(p[2] for p in placed)
    x1 = max(p[1] + p[0].shape[1] for p in placed)
    y1 = max(p[2] + p[0].shape[0] for p in placed)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for bitmap, left, top in placed:
        region = mask[top - y0:top - y0 + bitmap.shape[0], left - x0:left - x0 + bitmap.shape[1]]
        np.maximum(region, bitmap, out=region)  # overlapping glyphs (italics, swashes) keep both inks
    return mask


def warp(layers: np.ndarray, matrix: np.ndarray, size: tuple[int, int], dy: np.ndarray | None
         ) -> np.ndarray:
    """`layers` (h x w [x c] uint8) moved by dy(x) per column, then by the homography, into `size`."""
    if dy is None:
        linear = matrix[:2, :2].tolist() + matrix[2].tolist()
        if linear == [[1, 0], [0, 1], 0, 0, 1] and float(matrix[0, 2]).is_integer() and float(
                matrix[1, 2]).is_integer():  # a whole-pixel shift (no geometric effect): no resampling
            tx, ty = int(matrix[0, 2]), int(matrix[1, 2])
            w, h = size
            return cv2.copyMakeBorder(layers, ty, h - ty - layers.shape[0], tx, w - tx - layers.shape[1],
                                      cv2.BORDER_CONSTANT, value=0)
        return cv2.warpPerspective(layers, matrix, size, flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    w, h = size
    inv = np.linalg.inv(matrix)
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
    sx = ((inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den).astype(np.float32)
    sy = ((inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den).astype(np.float32)
    sy -= np.interp(sx, np.arange(len(dy)), dy).astype(np.float32)
    return cv2.remap(layers, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width (px) of a uint8 text mask: a stroke w px wide has inner distances up to about
    w / 2, so 2 x the 90th percentile of the distance transform - 1 (0 without ink)."""
    ink = mask > 127
    if not ink.any():
        return 0.0
    dist = cv2.distanceTransform(ink.astype(np.uint8), cv2.DIST_L2, 3)[ink]
    k = int(0.9 * (dist.size - 1))
    return max(2 * float(np.partition(dist, k)[k]) - 1, 0.0)


def _layer(layers: np.ndarray, k: int) -> np.ndarray:
    return layers if layers.ndim == 2 else layers[:, :, min(k, layers.shape[2] - 1)]


def _apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.hstack([points, np.ones((len(points), 1))]) @ m.T
    return p[:, :2] / p[:, 2:3]


def _soften(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), sigma) if sigma > 0 else a


def _blur(image: np.ndarray, kind: str, sigma: float, angle: float) -> np.ndarray:
    if kind == "gaussian":
        return cv2.GaussianBlur(image, (0, 0), sigma)
    # motion: a line of length ~3 sigma at `angle` degrees
    length = max(2, round(3 * sigma))
    size = length + (1 - length % 2)
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, (size - length) // 2:(size - length) // 2 + length] = 1
    rotation = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size), flags=cv2.INTER_LINEAR)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def _luma(bgr: np.ndarray) -> float:
    return float(0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2])


def _hex(bgr: np.ndarray) -> str:
    b, g, r = (int(round(float(v))) for v in bgr)
    return f"#{r:02x}{g:02x}{b:02x}"


def legible(grey: np.ndarray, is_text: np.ndarray) -> bool:
    """trdg_engine.legible's test on arrays (luma, text mask): text and background medians differ by
    MIN_CONTRAST grey levels and their means by MIN_SEPARATION pooled standard deviations."""
    if not is_text.any() or is_text.all():
        return False
    t_median, t_mean, t_var = grey_stats(grey[is_text])
    b_median, b_mean, b_var = grey_stats(grey[~is_text])
    if abs(t_median - b_median) < MIN_CONTRAST:
        return False
    return abs(t_mean - b_mean) / math.sqrt((t_var + b_var) / 2 + 1.0) >= MIN_SEPARATION


def grey_stats(values: np.ndarray) -> tuple[float, float, float]:
    """Median (as numpy's: the mean of the two middle values of an even count), mean and variance of
    uint8 values, from their histogram (several times faster than sorting)."""
    hist = np.bincount(values.ravel(), minlength=256)
    n = values.size
    cumulative = np.cumsum(hist)
    lo = int(np.searchsorted(cumulative, (n - 1) // 2, side="right"))
    hi = int(np.searchsorted(cumulative, n // 2, side="right"))
    mean = float(hist @ _LEVELS) / n
    return (lo + hi) / 2, mean, max(float(hist @ _SQUARES) / n - mean * mean, 0.0)


_LEVELS = np.arange(256, dtype=np.float64)
_SQUARES = _LEVELS * _LEVELS


# -- worker-process plumbing -------------------------------------------------------------------------

_ENGINE: SceneEngine | None = None
_INIT_ERROR: str | None = None


def prepare(config: EngineConfig) -> None:
    """For the parent process, before a fork pool starts: check the config and decode the backgrounds
    into this process's cache, so that errors are raised here (not as render errors of every worker) and
    forked workers share the decoded photos (copy-on-write) instead of decoding a copy each."""
    if config.effects is not None:
        check_config(config.effects)
    folder = Path(config.backgrounds) if config.backgrounds else default_backgrounds_dir()
    _cached_backgrounds(str(folder.resolve()), folder.stat().st_mtime_ns)


def init_worker(config: EngineConfig) -> None:
    """Pool initializer: build this process's engine once. An error (no usable background, bad config) is
    kept and reported by every render as a render_error drop, which `synthesize` turns into a clear
    failure: an exception here would make multiprocessing.Pool restart the worker forever."""
    global _ENGINE, _INIT_ERROR
    if _ENGINE is not None and _ENGINE.config == config:
        return
    try:
        _ENGINE, _INIT_ERROR = SceneEngine(config), None
    except (ValueError, OSError, RuntimeError) as exc:
        _ENGINE, _INIT_ERROR = None, f"{type(exc).__name__}: {exc}"


def render_chunk(bounds: tuple[int, int]) -> list[Rendered | Dropped]:
    """Render indices [start, stop) in order (the unit of work the pool maps over)."""
    start, stop = bounds
    if _ENGINE is None:
        detail = _INIT_ERROR or "init_worker was not called in this process"
        return [Dropped(i, "render_error", detail) for i in range(start, stop)]
    return [_ENGINE.render(i) for i in range(start, stop)]
