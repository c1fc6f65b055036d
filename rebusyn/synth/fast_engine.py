"""The fast engine: rebusyn's own word renderer on Pillow + OpenCV + NumPy (`rebusyn synth --engine fast`).

It covers trdg's augmentations (reference: /work/shared/reference/synth_generators.md §1.2: skew, blur,
sin/cos/random distortion vertical/horizontal/both, backgrounds gaussian-noise / plain / photo crop, text
colour range, character spacing, stroke, margins) plus curved baselines, perspective, shadows, border
boxes, JPEG artefacts, sensor noise and the case/punctuation/number text variants of
`rebusyn.synth.text`, at a fraction of trdg's cost: the text is drawn once, as a grey mask, and every
effect works on small NumPy arrays.

One sample, index i, from `numpy.random.default_rng([seed, i])`:
  1. text: `rebusyn.synth.text.draw_text` (the config's `text:` section); label = LabelPolicy(charset,
     max_len) normalization of it, or Dropped(i, reason) before any rendering;
  2. font: uniform among the usable fonts whose characters cover the text, else Dropped "no_font_for_text";
  3. parameters (`draw_params`): one block of uniforms, read in a fixed order: per effect of EFFECTS a
     gate (applied when below its `p`) and its values (uniform in each [lo, hi]; one element of a list of
     names; a list may repeat a name to weight it), drawn whether or not the effect applies, so changing
     one effect's `p` changes nothing else; the background kind (the `p` of background_noise /
     background_plain / background_image are weights) and its values; the ink; a seed for pixel noise;
  4. render (`FastEngine.compose`), from the parameters alone. The text mask is assembled from glyph
     bitmaps that Pillow draws once per process (BASIC layout, font size = output height; the same pixels
     as Pillow drawing the string, plus trdg's per-character spacing when drawn). Layers that the
     geometric effects warp together: fill, the "extent" band from cap height to baseline (so a
     lower-case word keeps the room above its x-height that a mixed-case line has, and `o` stays smaller
     than `O`), stroke (the fill dilated), border box. Distortions (sine, cosine, random) and the curve
     grow their canvas to hold everything; skew and perspective are one homography, applied in the same
     warp as the crop and the scaling to the output height. The crop is the box of the layers' ink (for
     skew/perspective: the box of the warped ink box, as an axis-aligned crop of a rotated word is) plus
     the drawn margins, so no ink is ever cut. At the output size: background (gaussian noise, plain
     colour, or a window of a photo decoded once at init), shadow (fill+stroke shifted and blurred),
     border, stroke, fill; then blur, noise, JPEG artefacts;
  5. legibility (`effects.legible`: trdg_engine.legible's test with the stricter MIN_CONTRAST and
     MIN_SEPARATION below) on the final pixels against the warped fill mask; a failure re-draws the
     parameters (same text and font) from `default_rng([seed, i, attempt])`, up to MAX_ATTEMPTS times,
     then Dropped "low_contrast";
  6. JPEG, quality JPEG_QUALITY, 4:4:4 chroma.
A sample is a function of (config, index) alone, in any worker. The ink's polarity follows the
background's luma (dark ink on light backgrounds, light on dark, either in the 96-160 band, switched when
the drawn ink would sit within POLARITY_SWITCH of the background), so most first attempts pass step 5.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageFont

from rebusyn.sample import LabelPolicy
from rebusyn.synth import effects as fx
from rebusyn.synth.config import SynthConfigError
from rebusyn.synth.engine import Dropped, EngineConfig, FontPicker, Rendered, attempts, begin_sample
from rebusyn.synth.text import TEXT_SCHEMA, draw_text

__all__ = [
    "CONFIG_SCHEMA", "EFFECTS", "JPEG_QUALITY", "FastEngine", "engine_version", "init_worker", "render_chunk",
]  # fmt: skip

ENGINE_VERSION = "2"  # bump when the same config and index would give different pixels
MAX_ATTEMPTS = 5
JPEG_QUALITY = 95
ORIENTATIONS = ("vertical", "horizontal", "both")
BACKGROUNDS = ("background_noise", "background_plain", "background_image")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
PHOTO_HEIGHT_FACTOR = 10  # photos are kept at <= 10 x the font size: enough for zoomed-out crops
# Legibility thresholds (effects.legible), stricter than trdg_engine's 40 / 1.5: those were set on trdg's
# renders; at the same values, coloured ink on the faded photos (red on bricks, cyan on water) passed
# while hard to read on the preview sheets.
MIN_CONTRAST = 55
MIN_SEPARATION = 2.0
POLARITY_SWITCH = 80  # grey levels between the ink's and the background's mean luma worth keeping
MIN_WIDTH_FACTOR = 0.25  # no image narrower than a quarter of its height (a lone "i" gets side margins)
# Lengths below are in units of the font size (= the output height), angles in degrees, colours in luma.
CONFIG_SCHEMA: dict[str, Any] = {
    "effects": {
        "character_spacing": {"spacing": ("range", 0.0, 2.0)},
        "stroke": {"width": ("range", 0.0, 0.3)},
        "border": {"width": ("range", 0.0, 0.3), "pad": ("range", 0.0, 1.0)},
        "distortion_sine": {"amplitude": ("range", 0.0, 1.0), "period": ("range", 0.5, 100.0),
                            "orientation": ("choice", ORIENTATIONS)},
        "distortion_cosine": {"amplitude": ("range", 0.0, 1.0), "period": ("range", 0.5, 100.0),
                              "orientation": ("choice", ORIENTATIONS)},
        "distortion_random": {"amplitude": ("range", 0.0, 0.5), "orientation": ("choice", ORIENTATIONS)},
        "curve": {"bend": ("range", 0.0, 3.0)},
        "skew": {"angle": ("range", -45.0, 45.0), "shear": ("range", -1.0, 1.0)},
        "perspective": {"strength": ("range", 0.0, 0.6)},
        "margins": {"top": ("range", 0.0, 0.4), "bottom": ("range", 0.0, 0.4), "left": ("range", 0.0, 2.0),
                    "right": ("range", 0.0, 2.0)},
        "text_color": {"dark": ("range", 0.0, 255.0), "light": ("range", 0.0, 255.0),
                       "saturation": ("range", 0.0, 1.0)},
        "shadow": {"offset": ("range", 0.0, 0.5), "blur": ("range", 0.0, 0.5),
                   "opacity": ("range", 0.0, 1.0)},
        "background_noise": {"level": ("range", 0.0, 255.0), "sigma": ("range", 0.0, 100.0)},
        "background_plain": {"value": ("range", 0.0, 255.0), "saturation": ("range", 0.0, 1.0)},
        "background_image": {"zoom": ("range", 0.1, 10.0), "fade": ("range", 0.0, 1.0)},
        "blur": {"sigma": ("range", 0.0, 5.0), "kind": ("choice", ("gaussian", "motion"))},
        "noise": {"sigma": ("range", 0.0, 64.0), "kind": ("choice", ("grey", "colour"))},
        "jpeg": {"quality": ("int_range", 1, 100)},
    },
    "text": TEXT_SCHEMA,
}
# Effects whose `p` gates them per sample, in drawing order (the backgrounds' `p` are weights instead and
# text_color's `p` is the probability of a coloured, not grey, ink).
EFFECTS = ("character_spacing", "stroke", "border", "distortion_sine", "distortion_cosine",
           "distortion_random", "curve", "skew", "perspective", "margins", "shadow", "blur", "noise", "jpeg")


def engine_version() -> str:
    import PIL

    return (f"rebusyn fast {ENGINE_VERSION} (Pillow {PIL.__version__} BASIC layout, "
            f"OpenCV {cv2.__version__}, NumPy {np.__version__})")


def photo_paths(folder: Path | None) -> list[Path]:
    """Background photos: `folder`'s images, or trdg's 4 bundled ones (found without importing trdg)."""
    if folder is None:
        from rebusyn.synth.fonts import trdg_fonts_dir

        folder = trdg_fonts_dir().parent.parent / "images"  # <trdg>/fonts/latin -> <trdg>/images
    return sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES),
                  key=lambda p: p.name)


class FastEngine:
    """Renders indices; one instance per process (fonts, glyphs and photos are loaded once)."""

    def __init__(self, config: EngineConfig) -> None:
        from rebusyn.synth.corpus import load_corpus

        if config.effects is None:
            raise ValueError("the fast engine needs its effect config (recipes/synth/fast.yaml)")
        self.config = config
        self.effects: dict[str, dict[str, Any]] = config.effects.effects
        self.text_variants: dict[str, float] = config.effects.text
        weights = np.array([self.effects[name]["p"] for name in BACKGROUNDS], dtype=np.float64)
        if weights.sum() <= 0:
            raise SynthConfigError(f"{config.effects.path}: field 'effects.background_*.p' must not all be 0 "
                                   f"(they are the weights of the background kinds)")
        self.background_cdf = np.cumsum(weights / weights.sum()).tolist()
        # Parameter plans: (effect, p, [(parameter, kind, a, b)]) in drawing order (see `_compile`).
        self._plan = [(name, self.effects[name]["p"],
                       [(k, *_compile(v)) for k, v in self.effects[name].items() if k != "p"])
                      for name in EFFECTS]
        self._background_plans = [(name, 0.0, [(k, *_compile(v)) for k, v in self.effects[name].items()
                                                if k != "p"]) for name in BACKGROUNDS]
        self._n_uniforms = (sum(1 + len(plan) for _, _, plan in self._plan) + 13
                            + sum(len(plan) for _, _, plan in self._background_plans) + 4 + 7)
        self.corpus = load_corpus(config.corpus)
        self.policy = LabelPolicy(config.charset, config.max_len)
        self.picker = FontPicker(config.fonts)
        self.fonts = self.picker.paths
        self.font_names = [Path(f).name for f in self.fonts]
        self.size = config.height  # font size in px: the text band is about 0.9 of it
        self._fonts: dict[int, tuple[ImageFont.FreeTypeFont, int, int]] = {}
        self._glyphs: dict[int, dict[str, tuple[np.ndarray, int, int, float]]] = {}
        self.photos: fx.PhotoBank | None = None
        if weights[2] > 0:
            paths = photo_paths(config.backgrounds)
            if not paths:
                raise ValueError(f"no background photos (.jpg, .jpeg, .png) in {config.backgrounds}")
            self.photos = fx.PhotoBank(paths, PHOTO_HEIGHT_FACTOR * self.size)
        self.version = engine_version()

    # -- drawing ---------------------------------------------------------------------------------------
    def draw_text(self, rng: np.random.Generator) -> str:
        return draw_text(rng, self.corpus, self.text_variants)

    def draw_params(self, rng: np.random.Generator) -> dict[str, Any]:
        """Every random value of one rendering attempt (what `compose` needs, what the meta records).
        One Generator call draws the uniforms that every parameter is made from, in a fixed order."""
        u = iter(rng.random(self._n_uniforms).tolist())
        applied: dict[str, dict[str, Any]] = {}
        for name, p, plan in self._plan:
            if next(u) < p:
                applied[name] = {key: _value(next(u), kind, a, b) for key, kind, a, b in plan}
            else:
                for _ in plan:  # keep every later value at the same position of the sequence
                    next(u)
        extras = [next(u) for _ in range(13)]
        if "curve" in applied and extras[0] < 0.5:
            applied["curve"]["bend"] = -applied["curve"]["bend"]  # a smile instead of an arch
        if "perspective" in applied:
            strength = applied["perspective"]["strength"]
            moves = [round(strength * (2 * v - 1), 4) for v in extras[1:9]]  # corners TL, TR, BR, BL
            applied["perspective"]["offsets"] = [moves[0:2], moves[2:4], moves[4:6], moves[6:8]]
        if "shadow" in applied:
            applied["shadow"]["direction"] = round(360 * extras[9], 1)
        if "blur" in applied and applied["blur"]["kind"] == "motion":
            applied["blur"]["angle"] = round(180 * extras[10], 1)
        kind = BACKGROUNDS[min(bisect_right(self.background_cdf, extras[11]), 2)]
        background: dict[str, Any] = {"kind": kind.removeprefix("background_")}
        for bg_kind, _, plan in self._background_plans:
            values = {key: _value(next(u), k, a, b) for key, k, a, b in plan}
            if bg_kind == kind:
                background |= values
        hue, photo, x, y = (next(u) for _ in range(4))
        if kind == "background_plain":
            background["hue"] = round(hue, 3)
        elif kind == "background_image":
            assert self.photos is not None
            background["photo"] = self.photos.names[min(int(photo * len(self.photos)), len(self.photos) - 1)]
            background["x"], background["y"] = round(x, 4), round(y, 4)
        tc = self.effects["text_color"]
        coloured = next(u) < tc["p"]
        ink = {"polarity": round(next(u), 4), "dark": _value(next(u), *_compile(tc["dark"])),
               "light": _value(next(u), *_compile(tc["light"])), "hue": round(next(u), 3),
               "second_hue": round(next(u), 3)}
        saturation = _value(next(u), *_compile(tc["saturation"]))
        ink["saturation"] = saturation if coloured else 0.0
        return {"effects": applied, "background": background, "ink": ink,
                "pixel_seed": int(extras[12] * (2**31 - 1))}

    # -- rendering -------------------------------------------------------------------------------------
    def render(self, index: int) -> Rendered | Dropped:
        seed = self.config.seed
        begun = begin_sample(seed, index, self.draw_text, self.policy, self.picker)
        if isinstance(begun, Dropped):
            return begun
        rng, text, label, font_idx = begun
        for attempt, prng in attempts(rng, seed, index, MAX_ATTEMPTS):  # noqa: B007 - kept in the meta
            params = self.draw_params(prng)
            try:
                image, mask, info = self.compose(text, font_idx, params)
            except Exception as exc:  # noqa: BLE001 - counted and reported, not fatal for one sample
                return Dropped(index, "render_error", f"{type(exc).__name__}: {exc}")
            if fx.legible(image, mask, MIN_CONTRAST, MIN_SEPARATION):
                break
        else:
            return Dropped(index, "low_contrast")
        extra = {
            "font": self.font_names[font_idx],
            "font_size": self.size,
            "effects": params["effects"],
            "background": params["background"] | info["background"],
            "colors": info["colors"],
            "scale": info["scale"],
            "attempt": attempt,
            "index": index,
            "engine": self.version,
        }
        data = fx.encode_jpeg(image, JPEG_QUALITY)
        return Rendered(index, data, label, text, image.shape[1], image.shape[0], extra)

    def compose(self, text: str, font_idx: int, params: dict[str, Any]
                ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Render `text` with the font and drawn `params`: (RGB uint8 image of height config.height, the
        text mask (uint8, 255 = fill ink) of the same size, resolved values: colours, background, scale)."""
        eff = params["effects"]
        size = self.size
        pixel = _LazyRng(params["pixel_seed"])  # noise and random offsets; built only when needed
        stroke_px = max(1, round(eff["stroke"]["width"] * size)) if "stroke" in eff else 0
        border = eff.get("border")
        border_w = max(1, round(border["width"] * size)) if border else 0
        border_pad = round(border["pad"] * size) if border else 0
        pad = stroke_px + border_w + border_pad + 2
        spacing = eff["character_spacing"]["spacing"] * size if "character_spacing" in eff else 0.0
        fill, band_top, baseline, (x0, y0, x1, y1) = self.text_mask(font_idx, text, spacing, pad)

        # Layers warped together: fill, then the extent band (only when the ink does not already cover
        # it), the stroke (fill dilated) and the border box when drawn.
        layers = [fill]
        if y0 > band_top or y1 < baseline:
            extent = np.zeros_like(fill)
            extent[band_top:baseline, x0:x1] = 255
            layers.append(extent)
        if stroke_px:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * stroke_px + 1, 2 * stroke_px + 1))
            layers.append(cv2.dilate(fill, kernel))
        if border:
            box = np.zeros_like(fill)
            top, bottom = min(y0, band_top), max(y1, baseline)
            e = border_pad + border_w // 2 + stroke_px
            cv2.rectangle(box, (x0 - e, top - e), (x1 - 1 + e, bottom - 1 + e), 255, border_w, cv2.LINE_AA)
            layers.append(box)
        stack = cv2.merge(layers) if len(layers) > 1 else fill[:, :, None]
        stroke_ch, border_ch = len(layers) - 1 - bool(border), len(layers) - 1

        # Non-linear warps (on canvases that grow to hold them).
        for name in ("distortion_sine", "distortion_cosine", "distortion_random"):
            if name in eff:
                d = eff[name]
                kind = name.removeprefix("distortion_")
                stack, _ = fx.distort(stack, None, kind, d["orientation"], d["amplitude"] * size,
                                      d.get("period", 1.0) * size, pixel.get() if kind == "random" else None)
        if "curve" in eff:
            stack, _ = fx.curve(stack, None, eff["curve"]["bend"] * size)
        if stack.shape[:2] == fill.shape:  # not warped yet: the layers' box is known
            # The stroke reaches stroke_px beyond the ink; the border's antialiased line, of width
            # border_w centred e px outside the ink box, one more pixel beyond its half width.
            grow = (border_pad + border_w // 2 + stroke_px + (border_w + 1) // 2 + 1) if border else stroke_px
            bx0, bx1 = x0 - grow, x1 + grow
            by0, by1 = min(y0, band_top) - grow, max(y1, baseline) + grow
            bx0, by0 = max(bx0, 0), max(by0, 0)
            bx1, by1 = min(bx1, fill.shape[1]), min(by1, fill.shape[0])
        else:
            bounds = fx.ink_bounds(stack)
            if bounds is None:
                raise ValueError("nothing drawn")
            bx0, by0, bx1, by1 = bounds

        # Skew and perspective: one homography, applied together with the crop and the scaling to the
        # output. The crop holds the homography's image of the ink box (all ink inside it: the box is
        # convex), i.e. the axis-aligned box of the warped word, as real crops of rotated words are.
        h, w = stack.shape[:2]
        matrix = np.eye(3)
        if "skew" in eff:
            matrix = fx.skew_matrix(w, h, eff["skew"]["angle"], eff["skew"]["shear"])
        if "perspective" in eff:
            # Corner moves in font sizes, at most a fifth of the canvas side: the quadrilateral stays
            # convex, so the homography maps the whole canvas to finite points.
            offsets = np.asarray(eff["perspective"]["offsets"], dtype=np.float64) * size
            offsets = np.clip(offsets, -0.2 * np.array([w, h]), 0.2 * np.array([w, h]))
            matrix = fx.perspective_matrix(w, h, offsets) @ matrix
        affine = "perspective" not in eff
        if "skew" in eff or "perspective" in eff:
            box = np.array([[[bx0, by0], [bx1 - 1, by0], [bx1 - 1, by1 - 1], [bx0, by1 - 1]]], np.float64)
            moved = cv2.perspectiveTransform(box, matrix)[0]
            qx0, qy0 = np.floor(moved.min(axis=0)).astype(int).tolist()
            qx1, qy1 = (np.ceil(moved.max(axis=0)).astype(int) + 1).tolist()
        else:
            qx0, qy0, qx1, qy1 = bx0, by0, bx1, by1

        # The window: that box plus the margins, at the scale that gives the output height.
        out_h = self.config.height
        m = eff.get("margins", {})
        mt, mb = (round(m.get(k, 0.0) * out_h) for k in ("top", "bottom"))
        ml, mr = (round(m.get(k, 0.0) * out_h) for k in ("left", "right"))
        scale = (out_h - mt - mb) / (qy1 - qy0)
        cy0, cy1 = math.floor(qy0 - mt / scale), math.ceil(qy1 + mb / scale)
        cx0, cx1 = math.floor(qx0 - ml / scale), math.ceil(qx1 + mr / scale)
        scale = out_h / (cy1 - cy0)
        min_w = math.ceil(MIN_WIDTH_FACTOR * out_h / scale)
        if cx1 - cx0 < min_w:
            grow = min_w - (cx1 - cx0)
            cx0, cx1 = cx0 - grow // 2, cx1 + (grow - grow // 2)
        out_w = max(1, round((cx1 - cx0) * scale))
        sx, sy = out_w / (cx1 - cx0), out_h / (cy1 - cy0)
        # Window pixel centres cx0..cx1-1 -> output centres 0..out_w-1, as cv2.resize maps them.
        to_out = np.array([[sx, 0, sx * (0.5 - cx0) - 0.5], [0, sy, sy * (0.5 - cy0) - 0.5], [0, 0, 1]])
        matrix = to_out @ matrix
        while min(sx, sy) < 0.5:
            # Bilinear sampling reads 2 x 2 pixels: below half size, first halve by pixel averaging (an exact
            # 1/2 is fast; padded to even sizes, so no ink is lost). Halved pixel i covers pixels 2i, 2i+1.
            sh, sw = stack.shape[:2]
            stack = cv2.copyMakeBorder(stack, 0, sh % 2, 0, sw % 2, cv2.BORDER_CONSTANT, value=0)
            stack = fx.as_layers(cv2.resize(stack, ((sw + 1) // 2, (sh + 1) // 2),
                                            interpolation=cv2.INTER_AREA), fill[:, :, None])
            matrix = matrix @ np.array([[2, 0, 0.5], [0, 2, 0.5], [0, 0, 1]])
            sx, sy = 2 * sx, 2 * sy
        if affine:
            layers_out = cv2.warpAffine(stack, matrix[:2], (out_w, out_h), flags=cv2.INTER_LINEAR)
        else:
            layers_out = cv2.warpPerspective(stack, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR)
        layers_out = fx.as_layers(layers_out, fill[:, :, None])
        mask = np.ascontiguousarray(layers_out[:, :, 0])

        # Colours and compositing at the output size.
        canvas, bg_info = self._background(params["background"], out_h, out_w, pixel)
        colors = self._colors(params["ink"], canvas)
        image = canvas
        outer = np.ascontiguousarray(layers_out[:, :, stroke_ch]) if stroke_px else mask
        if "shadow" in eff:
            s = eff["shadow"]
            a = math.radians(s["direction"])
            dist = s["offset"] * size * scale
            shift = np.float32([[1, 0, dist * math.cos(a)], [0, 1, dist * math.sin(a)]])
            shadow = cv2.warpAffine(outer, shift, (out_w, out_h), flags=cv2.INTER_LINEAR)
            if s["blur"] > 0:
                shadow = cv2.GaussianBlur(shadow, (0, 0), s["blur"] * size * scale)
            image = fx.blend(image, colors["shadow"], shadow, s["opacity"])
        if border:
            box = np.ascontiguousarray(layers_out[:, :, border_ch])
            image = fx.blend(image, colors["border"], box)
        if stroke_px:
            image = fx.blend(image, colors["stroke"], outer)
        rgb = fx.blend(image, colors["ink"], mask)

        if "blur" in eff:
            b = eff["blur"]
            rgb = fx.blur(rgb, b["sigma"], b["kind"], b.get("angle", 0.0))
        if "noise" in eff:
            rgb = fx.noise(rgb, pixel.get(), eff["noise"]["sigma"], eff["noise"]["kind"] == "colour")
        if "jpeg" in eff:
            rgb = fx.jpeg_artefacts(rgb, eff["jpeg"]["quality"])
        return rgb, mask, {"colors": colors, "background": bg_info, "scale": round(scale, 4)}

    # -- pieces ----------------------------------------------------------------------------------------
    def _font(self, font_idx: int) -> tuple[ImageFont.FreeTypeFont, int, int]:
        """(font, cap top, baseline) in px below the drawing origin (Pillow's 'la' anchor); cached."""
        got = self._fonts.get(font_idx)
        if got is None:
            font = ImageFont.truetype(self.fonts[font_idx], self.size, layout_engine=ImageFont.Layout.BASIC)
            ascent, _ = font.getmetrics()
            # Every usable font draws A-Z (fonts.REQUIRED_CHARS): its "H" gives the cap height.
            got = (font, int(font.getbbox("H")[1]), int(ascent))
            self._fonts[font_idx] = got
        return got

    def glyph(self, font_idx: int, ch: str) -> tuple[np.ndarray, int, int, float]:
        """(mask, x offset, y offset of the mask from the 'la' origin, advance) of one character, drawn by
        Pillow once per process and font."""
        table = self._glyphs.get(font_idx)
        if table is None:
            table = self._glyphs[font_idx] = {}
        got = table.get(ch)
        if got is None:
            font = self._font(font_idx)[0]
            # What ImageDraw.text draws (it pastes this bitmap at the origin + offset), without the Image
            # and Draw objects around it: a third less time per glyph, the first-use cost of a process.
            bitmap, (gx0, gy0) = font.getmask2(ch, mode="L")
            width, height = bitmap.size
            mask = np.asarray(Image.Image()._new(bitmap)) if width and height else np.zeros((1, 1), np.uint8)
            got = table[ch] = (mask, gx0, gy0, font.getlength(ch))
        return got

    def text_mask(self, font_idx: int, text: str, spacing: float = 0.0, pad: int = 0
                  ) -> tuple[np.ndarray, int, int, tuple[int, int, int, int]]:
        """The text's fill mask with `pad` px of room on each side: (mask, cap-top row, baseline row, ink
        box (x0, y0, x1, y1)). Glyphs are Pillow's (BASIC layout), each placed at the pen position rounded
        to a pixel as Pillow's BASIC layout does, the pen advancing by Pillow's advance (+ `spacing` px,
        trdg's character_spacing); BASIC applies no GPOS kerning, so without spacing this is Pillow's
        own layout of the string."""
        _, cap_top, ascent = self._font(font_idx)
        table = self._glyphs.get(font_idx) or {}
        placed = []
        pen = 0.0
        for ch in text:
            g = table.get(ch) or self.glyph(font_idx, ch)
            if ch != " ":
                placed.append((g[0], round(pen) + g[1], g[2]))
            pen += g[3] + spacing
        left = min(x for _, x, _ in placed)
        right = max(x + m.shape[1] for m, x, _ in placed)
        ink_top = min(y for _, _, y in placed)
        ink_bottom = max(y + m.shape[0] for m, _, y in placed)
        top, bottom = min(ink_top, cap_top), max(ink_bottom, ascent)
        canvas = np.zeros((bottom - top + 2 * pad, right - left + 2 * pad), dtype=np.uint8)
        dx, dy = pad - left, pad - top
        for m, x, y in placed:
            region = canvas[y + dy:y + dy + m.shape[0], x + dx:x + dx + m.shape[1]]
            np.maximum(region, m, out=region)
        box = (pad, ink_top + dy, right + dx, ink_bottom + dy)
        return canvas, cap_top + dy, ascent + dy, box

    def _background(self, bg: dict[str, Any], height: int, width: int, pixel: _LazyRng
                    ) -> tuple[np.ndarray, dict[str, Any]]:
        kind = bg["kind"]
        if kind == "noise":
            return fx.noise_background(pixel.get(), height, width, bg["level"], bg["sigma"]), {}
        if kind == "plain":
            rgb = fx.colour(bg["value"], bg["hue"], bg["saturation"])
            return fx.plain_background(height, width, rgb), {"rgb": list(rgb)}
        assert self.photos is not None
        index = self.photos.names.index(bg["photo"])
        img, zoom = self.photos.crop(index, height, width, bg["zoom"], bg["x"], bg["y"])
        return fx.fade(img, bg["fade"]), {"zoom_used": round(zoom, 3)}

    def _colors(self, ink: dict[str, Any], background: np.ndarray) -> dict[str, Any]:
        """Ink, stroke, shadow and border colours for this background: dark ink on light backgrounds,
        light ink on dark ones, either in the 96-160 luma band, switched to the other polarity when the
        drawn one lands within POLARITY_SWITCH grey levels of the background's mean and the other is
        farther; stroke and shadow take the other polarity."""
        r, g, b, _ = cv2.mean(background)
        lum = fx.LUMA[0] * r + fx.LUMA[1] * g + fx.LUMA[2] * b
        dark = ink["polarity"] < min(max((lum - 96.0) / 64.0, 0.0), 1.0)
        gap_dark, gap_light = lum - ink["dark"], ink["light"] - lum
        if (gap_dark if dark else gap_light) < POLARITY_SWITCH and (gap_light if dark else gap_dark) > (
                gap_dark if dark else gap_light):
            dark = not dark
        main, other = (ink["dark"], ink["light"]) if dark else (ink["light"], ink["dark"])
        fill = fx.colour(main, ink["hue"], ink["saturation"])
        second = fx.colour(other, ink["second_hue"], ink["saturation"])
        return {"ink": list(fill), "stroke": list(second), "shadow": list(second), "border": list(fill),
                "dark_ink": dark, "background_luma": round(lum)}


class _LazyRng:
    """numpy.random.default_rng(seed), created on first use (most samples need none)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng: np.random.Generator | None = None

    def get(self) -> np.random.Generator:
        if self.rng is None:
            self.rng = np.random.default_rng(self.seed)
        return self.rng


def _compile(spec: Any) -> tuple[int, Any, Any]:
    """A config parameter as (kind, a, b) for `_value`: 0 = float range (lo, width), 1 = integer range
    (lo, count), 2 = names (list, count)."""
    if isinstance(spec[0], str):
        return 2, list(spec), len(spec)
    lo, hi = spec
    if isinstance(lo, int) and isinstance(hi, int):
        return 1, lo, hi - lo + 1
    return 0, float(lo), float(hi) - float(lo)


def _value(u: float, kind: int, a: Any, b: Any) -> Any:
    """The parameter value of a uniform u in [0, 1): uniform in the range, or one of the names."""
    if kind == 0:
        return round(a + u * b, 4)
    if kind == 1:
        return a + min(int(u * b), b - 1)
    return a[min(int(u * b), b - 1)]


# -- worker-process plumbing -------------------------------------------------------------------------

_ENGINE: FastEngine | None = None


def init_worker(config: EngineConfig) -> None:
    """Pool initializer: build this process's engine once."""
    global _ENGINE
    if _ENGINE is None or _ENGINE.config != config:
        _ENGINE = FastEngine(config)


def render_chunk(bounds: tuple[int, int]) -> list[Rendered | Dropped]:
    """Render indices [start, stop) in order (the unit of work the pool maps over)."""
    assert _ENGINE is not None, "init_worker was not called in this process"
    start, stop = bounds
    return [_ENGINE.render(i) for i in range(start, stop)]
