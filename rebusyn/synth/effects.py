"""Image effects for word renderers: geometry that never clips, backgrounds, colours, degradations.

Every function works on numpy arrays: an image is uint8 (H, W) or (H, W, C) with any channel count that
OpenCV's warps accept (1-4; the fast engine warps a stack of text layers through them), and a `mask` is an
optional uint8 (H, W) text mask (0 = background, 255 = ink) that a geometric effect transforms exactly as
the image, so it stays the ground truth of where the ink is. Geometric effects grow the canvas to hold the
whole transformed input: nothing drawn ever leaves the array. Nothing here uses a hidden RNG: randomness
comes from the numpy Generator passed in, or from explicit drawn values, so a caller that seeds its
Generator per sample gets the same pixels in any process.

The distortions follow trdg 1.8.0's `distorsion_generator` (reference: /work/shared/reference/
synth_generators.md §1.2, "Distort: none / sin / cos / random, vertical, horizontal or both"): trdg shifts
each pixel column vertically (and/or each row horizontally) by `sin(radians(x)) * sqrt(h)` (type 1),
`cos(...)` (type 2) or `randint(0, h ** 0.4)` (type 3). Here the amplitude and the period are parameters
(trdg's fixed values: amplitude `sqrt(h)`, i.e. 0.18 h at h = 32 px; period 360 px), offsets are
fractional (bilinear resampling instead of trdg's whole-pixel copies) and the canvas grows by the largest
offset on both sides, as trdg's does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

# Luma weights of ITU-R BT.601, as cv2.COLOR_RGB2GRAY and PIL's convert("L") use.
LUMA = (0.299, 0.587, 0.114)
MIN_CONTRAST = 40  # grey levels between text and background medians (trdg_engine.legible's threshold)
MIN_SEPARATION = 1.5  # pooled standard deviations between the means (same)
_NOISE_TABLE_SIZE = 1 << 18

Image = np.ndarray
Mask = np.ndarray | None


# -- geometry ------------------------------------------------------------------------------------------


def warp(img: Image, mask: Mask, matrix: np.ndarray, interpolation: int = cv2.INTER_LINEAR
         ) -> tuple[Image, Mask, np.ndarray]:
    """Apply the 3x3 homography `matrix` to `img` (and `mask`) on a canvas just large enough for the whole
    transformed input. Returns (img, mask, the matrix actually applied, i.e. including the translation
    into the new canvas)."""
    h, w = img.shape[:2]
    corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], dtype=np.float64)
    moved = cv2.perspectiveTransform(corners, matrix)[0]
    x0, y0 = np.floor(moved.min(axis=0))
    x1, y1 = np.ceil(moved.max(axis=0))
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
    full = shift @ matrix
    size = (int(x1 - x0) + 1, int(y1 - y0) + 1)
    out, out_mask = _together(img, mask, lambda a: cv2.warpPerspective(
        a, full, size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT))
    return out, out_mask, full


def skew_matrix(width: int, height: int, angle: float, shear: float) -> np.ndarray:
    """Rotation by `angle` degrees (counter-clockwise, as trdg's `image.rotate`) after a horizontal shear
    `shear` (x += shear * (cy - y): positive leans the tops of the glyphs right, like italics), both about
    the centre of a width x height canvas."""
    cx, cy = width / 2, height / 2
    to_centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], dtype=np.float64)
    sh = np.array([[1, -shear, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], dtype=np.float64)
    return back @ rot @ sh @ to_centre


def perspective_offsets(rng: np.random.Generator, strength: float, height: float) -> np.ndarray:
    """Displacements (4 x 2, px) of the corners TL, TR, BR, BL: uniform in +-strength * height."""
    return rng.uniform(-strength, strength, size=(4, 2)) * height


def perspective_matrix(width: int, height: int, offsets: np.ndarray) -> np.ndarray:
    """The homography that moves the corners of a width x height canvas by `offsets` (TL, TR, BR, BL)."""
    src = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    return cv2.getPerspectiveTransform(src, (src + np.asarray(offsets, dtype=np.float32)).astype(np.float32))


def skew(img: Image, mask: Mask, angle: float, shear: float = 0.0) -> tuple[Image, Mask]:
    """Rotate (degrees) and shear without clipping."""
    h, w = img.shape[:2]
    out, out_mask, _ = warp(img, mask, skew_matrix(w, h, angle, shear))
    return out, out_mask


def perspective(img: Image, mask: Mask, rng: np.random.Generator, strength: float
                ) -> tuple[Image, Mask, np.ndarray]:
    """Random perspective: each corner moves by up to `strength` x the image height. Returns the offsets."""
    h, w = img.shape[:2]
    offsets = perspective_offsets(rng, strength, h)
    out, out_mask, _ = warp(img, mask, perspective_matrix(w, h, offsets))
    return out, out_mask, offsets


def wave_offsets(length: int, amplitude: float, period: float, phase: float = 0.0) -> np.ndarray:
    """amplitude * sin(2 pi x / period + phase) for x = 0..length-1 (trdg's sine: phase 0; cosine: pi/2)."""
    x = np.arange(length, dtype=np.float32)
    return (amplitude * np.sin(2 * np.pi * x / period + phase)).astype(np.float32)


def random_offsets(rng: np.random.Generator, length: int, amplitude: float) -> np.ndarray:
    """Independent offsets in [0, amplitude] per column/row, as trdg's random distortion (type 3)."""
    return rng.uniform(0.0, amplitude, size=length).astype(np.float32)


def displace(img: Image, mask: Mask, column_offsets: np.ndarray | None = None,
             row_offsets: np.ndarray | None = None) -> tuple[Image, Mask]:
    """Move column x down by column_offsets[x], then row y right by row_offsets[y] (of the vertically
    displaced canvas), as trdg's `_apply_func_distorsion`. The canvas grows by the largest offset on each
    side of the axis it moves; offsets may be fractional. row_offsets must have one value per row of the
    grown canvas (img height + 2 * ceil(max |column offset|) when column offsets are given)."""
    h, w = img.shape[:2]
    pad_y = int(math.ceil(float(np.abs(column_offsets).max()))) if column_offsets is not None else 0
    out_h = h + 2 * pad_y
    if row_offsets is not None and len(row_offsets) != out_h:
        raise ValueError(f"row_offsets needs {out_h} values, got {len(row_offsets)}")
    pad_x = int(math.ceil(float(np.abs(row_offsets).max()))) if row_offsets is not None else 0
    out_w = w + 2 * pad_x
    # Inverse map: output (u, v) reads the grown-by-pad_y canvas at x = u - pad_x - row(v), then the source
    # at y = v - pad_y - column(x).
    v = np.arange(out_h, dtype=np.float32)[:, None]
    u = np.arange(out_w, dtype=np.float32)[None, :]
    if row_offsets is None:
        map_x = np.broadcast_to(u, (out_h, out_w))
        col = column_offsets.astype(np.float32)[None, :] if column_offsets is not None else np.float32(0)
        map_y = v - pad_y - col
    else:
        map_x = u - pad_x - row_offsets.astype(np.float32)[:, None]
        if column_offsets is not None:
            cols = np.interp(map_x.ravel(), np.arange(w, dtype=np.float32), column_offsets)
            map_y = v - pad_y - cols.astype(np.float32).reshape(out_h, out_w)
        else:
            map_y = np.broadcast_to(v, (out_h, out_w))
    map_x = np.ascontiguousarray(map_x, dtype=np.float32)
    map_y = np.ascontiguousarray(map_y, dtype=np.float32)
    return _together(img, mask, lambda a: cv2.remap(a, map_x, map_y, cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_CONSTANT))


def distort(img: Image, mask: Mask, kind: str, orientation: str, amplitude: float, period: float = 360.0,
            rng: np.random.Generator | None = None) -> tuple[Image, Mask]:
    """trdg's distortions: kind sine | cosine | random, orientation vertical | horizontal | both;
    amplitude (and period) in px. `random` needs `rng`."""
    h, w = img.shape[:2]

    def offsets(length: int) -> np.ndarray:
        if kind == "random":
            if rng is None:
                raise ValueError("the random distortion needs a Generator")
            return random_offsets(rng, length, amplitude)
        if kind not in ("sine", "cosine"):
            raise ValueError(f"unknown distortion {kind!r}")
        return wave_offsets(length, amplitude, period, 0.0 if kind == "sine" else math.pi / 2)

    if orientation not in ("vertical", "horizontal", "both"):
        raise ValueError(f"unknown distortion orientation {orientation!r}")
    cols = offsets(w) if orientation in ("vertical", "both") else None
    pad_y = int(math.ceil(float(np.abs(cols).max()))) if cols is not None else 0
    rows = offsets(h + 2 * pad_y) if orientation in ("horizontal", "both") else None
    return displace(img, mask, cols, rows)


def curve(img: Image, mask: Mask, bend: float) -> tuple[Image, Mask]:
    """Lay the canvas along a circular arc whose ends sit `bend` px below (bend > 0: an arch) or above
    (bend < 0: a smile) its middle, measured on the canvas' middle row. Glyphs turn with the arc (not a
    per-column shear); the canvas grows to hold the whole arc."""
    h, w = img.shape[:2]
    if abs(bend) < 0.05 or w < 2:
        return img, mask
    half = w / 2
    s = abs(bend)
    radius = (half * half + s * s) / (2 * s)
    sign = 1.0 if bend > 0 else -1.0  # arch: centre below the text; smile: above
    yc = h / 2
    # Forward-map the canvas outline to size the output.
    edge = np.linspace(0.0, 1.0, 33)
    xs = np.concatenate([edge * w, edge * w, np.zeros_like(edge), np.full_like(edge, w)])
    ys = np.concatenate([np.zeros_like(edge), np.full_like(edge, h), edge * h, edge * h])
    theta = (xs - half) / radius
    r = radius + sign * (yc - ys)
    fx = half + r * np.sin(theta)
    fy = yc + sign * radius - sign * r * np.cos(theta)
    x0, y0 = math.floor(fx.min()) - 1, math.floor(fy.min()) - 1
    x1, y1 = math.ceil(fx.max()) + 1, math.ceil(fy.max()) + 1
    u = np.arange(x0, x1 + 1, dtype=np.float32)[None, :] - np.float32(half)
    v = np.arange(y0, y1 + 1, dtype=np.float32)[:, None]
    dy = sign * (np.float32(yc + sign * radius) - v)
    rr = np.sqrt(u * u + dy * dy)
    map_x = (np.float32(half) + np.float32(radius) * np.arctan2(u, dy)).astype(np.float32)
    map_y = (np.float32(yc) - sign * (rr - np.float32(radius))).astype(np.float32)
    return _together(img, mask, lambda a: cv2.remap(a, map_x, map_y, cv2.INTER_LINEAR,
                                                     borderMode=cv2.BORDER_CONSTANT))


def ink_bounds(layers: Image) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive ends, of the non-zero pixels of any channel; None when empty."""
    h, w = layers.shape[:2]
    channels = layers.shape[2] if layers.ndim == 3 else 1
    flat = np.ascontiguousarray(layers).reshape(h, w * channels)  # a reduction over contiguous rows
    rows = np.flatnonzero(flat.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(flat.any(axis=0))
    return int(cols[0]) // channels, int(rows[0]), int(cols[-1]) // channels + 1, int(rows[-1]) + 1


def crop(img: Image, x0: int, y0: int, x1: int, y1: int) -> Image:
    """img[y0:y1, x0:x1] where the window may extend past the array: outside pixels are 0."""
    h, w = img.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return img[y0:y1, x0:x1]
    out = np.zeros((y1 - y0, x1 - x0, *img.shape[2:]), dtype=img.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out


def _together(img: Image, mask: Mask, op: Callable[[np.ndarray], np.ndarray]) -> tuple[Image, Mask]:
    """Apply the warp `op` to img and mask as one array when OpenCV allows (<= 4 channels): its
    interpolation rounds differently per channel count, and the mask must match the image exactly."""
    if mask is None:
        return as_layers(op(img), img), None
    channels = img.shape[2] if img.ndim == 3 else 1
    if channels < 4:
        out = op(cv2.merge([*cv2.split(img), mask]))
        return as_layers(out[:, :, :channels], img), np.ascontiguousarray(out[:, :, channels])
    return as_layers(op(img), img), op(mask)


def as_layers(out: Image, like: Image) -> Image:
    """`out` with the channel axis of `like` (OpenCV drops a trailing channel axis of size 1)."""
    return out[:, :, None] if like.ndim == 3 and out.ndim == 2 else out


# -- degradations ---------------------------------------------------------------------------------------


def blur(img: Image, sigma: float, kind: str = "gaussian", angle: float = 0.0) -> Image:
    """Gaussian blur of std `sigma` px, or a motion blur: a line kernel of length 4 * sigma + 1 px (the
    span of the gaussian's +-2 sigma) at `angle` degrees."""
    if sigma <= 0:
        return img
    if kind == "gaussian":
        return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    if kind != "motion":
        raise ValueError(f"unknown blur kind {kind!r}")
    length = max(2, int(round(4 * sigma)) + 1)
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), dtype=np.float32)
    c = size // 2
    a = math.radians(angle)
    dx, dy = math.cos(a) * (length - 1) / 2, -math.sin(a) * (length - 1) / 2
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    kernel /= kernel.sum()
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


@functools.lru_cache(maxsize=1)
def _noise_tables() -> tuple[np.ndarray, np.ndarray]:
    # Standard normals from a fixed seed, drawn once per process (float32), and the same values each
    # repeated 3 times (grey noise on RGB pixels): a sample's noise is a window of them at an offset drawn
    # from the caller's Generator, scaled and added in one saturating OpenCV call (= clip(rint(img +
    # sigma z))). Drawing fresh normals costs more than the rest of a render.
    z = np.random.default_rng(20240601).standard_normal(_NOISE_TABLE_SIZE).astype(np.float32)
    return z, np.repeat(z, 3)


def noise_field(rng: np.random.Generator, shape: Sequence[int], repeat: int = 1) -> np.ndarray:
    """Standard normal noise of `shape` (float32); with `repeat` > 1, each value repeated that many times
    along a new last axis (grey noise for a `repeat`-channel image). A window of the process's fixed
    tables (at most 2**18 values) at an offset drawn from `rng`; fresh normals from `rng` beyond that."""
    shape = tuple(shape)
    n = int(math.prod(shape))
    z, z3 = _noise_tables()
    if n > z.size:
        field = rng.standard_normal(shape, dtype=np.float32)
    else:
        start = int(rng.integers(0, z.size - n + 1))
        if repeat == 3:
            return z3[3 * start:3 * (start + n)].reshape(*shape, 3)
        field = z[start:start + n].reshape(shape)
    return np.repeat(field[..., None], repeat, axis=-1) if repeat > 1 else field


def noise(img: Image, rng: np.random.Generator, sigma: float, colour: bool = False) -> Image:
    """Additive gaussian noise of std `sigma` grey levels (uint8 image); the same on all channels unless
    `colour`."""
    if sigma <= 0:
        return img
    grey = img.ndim == 3 and not colour
    field = noise_field(rng, img.shape[:2] if grey else img.shape, img.shape[2] if grey else 1)
    return cv2.addWeighted(img, 1.0, field, float(sigma), 0.0, dtype=cv2.CV_8U)


def jpeg_artefacts(img: Image, quality: int) -> Image:
    """Encode an RGB (or grey) image as JPEG at `quality` (4:2:0, the common camera/web setting) and decode
    it: blocking and ringing as in re-compressed web images."""
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img  # OpenCV's codec takes BGR
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    flags = cv2.IMREAD_COLOR if img.ndim == 3 else cv2.IMREAD_GRAYSCALE
    out = cv2.imdecode(buf, flags)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if img.ndim == 3 else out


def encode_jpeg(img: Image, quality: int) -> bytes:
    """RGB uint8 -> JPEG bytes with 4:4:4 chroma (thin coloured strokes keep their colour)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality),
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


# -- colours, compositing, legibility -------------------------------------------------------------------


def luminance(img: Image) -> np.ndarray:
    """uint8 luma (BT.601) of an RGB image."""
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def colour(lum: float, hue: float = 0.0, saturation: float = 0.0) -> tuple[int, int, int]:
    """An RGB colour of luma `lum` (0-255) and hue `hue` (0-1), `saturation` (0-1) being the fraction of
    the largest chroma that keeps every channel in 0-255 at that luma."""
    lum = min(max(float(lum), 0.0), 255.0)
    if saturation <= 0:  # grey (most inks): no chroma to fit
        v = round(lum)
        return v, v, v
    sector = int(hue * 6) % 6
    f = hue * 6 - math.floor(hue * 6)
    base = ((1, f, 0), (1 - f, 1, 0), (0, 1, f), (0, 1 - f, 1), (f, 0, 1), (1, 0, 1 - f))[sector]
    base_luma = LUMA[0] * base[0] + LUMA[1] * base[1] + LUMA[2] * base[2]
    direction = [(b - base_luma) * 255.0 for b in base]  # zero luma: moving along it keeps the luma
    room = [((255 - lum) / d if d > 0 else lum / -d) for d in direction if abs(d) > 1e-9]
    k = min([1.0, *room]) * min(max(float(saturation), 0.0), 1.0)
    r, g, b = (min(max(round(lum + k * d), 0), 255) for d in direction)
    return r, g, b


def blend(dst: Image, rgb: Sequence[float], alpha: np.ndarray, opacity: float = 1.0) -> Image:
    """dst (uint8 H x W x 3) painted with the colour `rgb` through `alpha` (uint8 H x W, 255 = opaque)
    times `opacity`: dst + (rgb - dst) * alpha / 255, rounded (within 1 grey level of the float result)."""
    if opacity < 1.0:
        alpha = cv2.convertScaleAbs(alpha, alpha=float(opacity))
    a3 = cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB)
    kept = cv2.multiply(dst, cv2.bitwise_not(a3), scale=1 / 255)
    paint = cv2.multiply(a3, (float(rgb[0]), float(rgb[1]), float(rgb[2]), 0.0), scale=1 / 255)
    return cv2.add(kept, paint)


def legible(img: Image, mask: np.ndarray, min_contrast: float = MIN_CONTRAST,
            min_separation: float = MIN_SEPARATION, ring: int = 0) -> bool:
    """trdg_engine.legible on arrays: text pixels (mask >= 128) against the background pixels (mask 0;
    with `ring` > 0 only those within `ring` px of the ink: what the eye compares the glyphs with), on
    luma: the medians differ by `min_contrast` grey levels and the means by `min_separation` pooled
    standard deviations (population standard deviations, as cv2.meanStdDev's)."""
    grey = luminance(img)
    # One 2-D histogram of (luma, class) gives both classes' medians, means and variances: cheaper than
    # a masked histogram and a masked meanStdDev per class on these small images.
    classes = cv2.LUT(mask, _CLASS_LUT)  # 0 text, 1 background, 2 antialiased edge (neither)
    if ring > 0:
        is_text = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)[1]
        near = cv2.dilate(is_text, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1)))
        classes = cv2.max(classes, cv2.bitwise_not(near) & 2)  # background far from the ink: neither
    hist = cv2.calcHist([grey, classes], [0, 1], None, [256, 2], [0, 256, 0, 2]).astype(np.float64)
    n_text, n_back = hist.sum(axis=0).tolist()
    if n_text == 0 or n_back == 0:
        return False
    if abs(_hist_median(hist[:, 0]) - _hist_median(hist[:, 1])) < min_contrast:
        return False
    (sum_t, sum_b), (sq_t, sq_b) = (_LEVELS @ hist).tolist(), (_LEVELS_SQ @ hist).tolist()
    mean_t, mean_b = sum_t / n_text, sum_b / n_back
    var_t, var_b = max(sq_t / n_text - mean_t * mean_t, 0.0), max(sq_b / n_back - mean_b * mean_b, 0.0)
    spread = math.sqrt((var_t + var_b) / 2 + 1.0)
    return abs(mean_t - mean_b) / spread >= min_separation


_CLASS_LUT = np.array([1] + [2] * 127 + [0] * 128, dtype=np.uint8)  # mask value -> class (see legible)
_LEVELS = np.arange(256, dtype=np.float64)
_LEVELS_SQ = _LEVELS * _LEVELS


def _hist_median(hist: np.ndarray) -> float:
    # np.median's definition (mean of the two middle values) from a 256-bin histogram.
    cum = np.cumsum(hist)
    n = int(cum[-1])
    lo, hi = np.searchsorted(cum, ((n - 1) // 2 + 1, n // 2 + 1)).tolist()
    return (lo + hi) / 2


# -- backgrounds -----------------------------------------------------------------------------------------


def noise_background(rng: np.random.Generator, height: int, width: int, level: float, sigma: float
                     ) -> Image:
    """trdg's background 0 (`cv2.randn(image, 235, 10)`, grey) with a drawn mean and std."""
    field = noise_field(rng, (height, width))
    grey = cv2.addWeighted(field, float(sigma), field, 0.0, float(level), dtype=cv2.CV_8U)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def fade(img: Image, amount: float) -> Image:
    """Pull an RGB image towards its mean colour by `amount` (0 = unchanged, 1 = flat): a textured photo
    becomes a calmer surface, as the backgrounds of most signs are."""
    if amount <= 0:
        return img
    mean = cv2.mean(img)[:3]
    # OpenCV's per-channel scalars: numpy broadcasting over a 3-wide last axis is 5x slower here.
    return cv2.add(cv2.addWeighted(img, 1.0 - amount, img, 0.0, 0.0), (*(v * amount for v in mean), 0.0))


def plain_background(height: int, width: int, rgb: Sequence[int]) -> Image:
    """trdg's background 1 (plain white) in any colour."""
    return cv2.add(np.zeros((height, width, 3), dtype=np.uint8), (*(float(v) for v in rgb), 0.0))


class PhotoBank:
    """Background photos decoded once and downscaled to at most `max_height` px, with half and quarter
    size copies; `crop` cuts a window and scales it to the requested size (trdg's background 3 decodes a
    photo per sample)."""

    LEVELS = 3  # full, 1/2, 1/4: a window is read from the level where it shrinks by less than 2x

    def __init__(self, paths: Sequence[Path], max_height: int) -> None:
        self.names: list[str] = []
        self.photos: list[list[np.ndarray]] = []
        for path in paths:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"background photo {path}: cannot be decoded")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if rgb.shape[0] > max_height:
                scale = max_height / rgb.shape[0]
                size = (max(1, round(rgb.shape[1] * scale)), max_height)
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            levels = [rgb]
            for _ in range(self.LEVELS - 1):
                h, w = levels[-1].shape[:2]
                levels.append(cv2.resize(levels[-1][: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2),
                                         interpolation=cv2.INTER_AREA))
            self.names.append(Path(path).name)
            self.photos.append(levels)

    def __len__(self) -> int:
        return len(self.photos)

    def crop(self, index: int, height: int, width: int, zoom: float, fx: float, fy: float
             ) -> tuple[Image, float]:
        """A height x width crop of photo `index`: a window of (height, width) * zoom photo pixels (zoom =
        photo pixels per output pixel, at the photo's stored size) at the relative position (fx, fy) in
        [0, 1], resized. The zoom shrinks when the window would not fit; returns (crop, zoom used)."""
        levels = self.photos[index]
        ph, pw = levels[0].shape[:2]
        zoom = min(zoom, ph / height, pw / width)
        level = 0
        while level + 1 < len(levels) and zoom / 2 ** (level + 1) >= 1.0:
            level += 1
        photo, z = levels[level], zoom / 2**level
        lh, lw = photo.shape[:2]
        wh, ww = min(lh, max(1, round(height * z))), min(lw, max(1, round(width * z)))
        y, x = int(fy * (lh - wh)), int(fx * (lw - ww))
        window = photo[y:y + wh, x:x + ww]
        if (wh, ww) == (height, width):
            return window.copy(), zoom
        # The window is at most 2x the output here: bilinear reads (and averages) all its pixels.
        return cv2.resize(window, (width, height), interpolation=cv2.INTER_LINEAR), zoom
