"""Cutting word images out of scene images.

Mode `warp` (default):
- Axis-aligned boxes (2 points) are sliced.
- Quadrilaterals are warped upright with a perspective transform. The output size comes from the quad's
  edge lengths: width = the longer of top and bottom edges, height = the longer of left and right edges,
  so a slanted word keeps its resolution instead of being squeezed into its bounding box (what PARSeq's
  and MMOCR's axis-aligned crops do).
- Polygons with an even number (> 4) of vertices are curved text as ArT, Total-Text and CTW1500 give it:
  the first half is the top boundary (left to right), the second half the bottom boundary (right to left).
  Both boundaries are resampled by arc length and paired point by point; the word is then unrolled along
  its centre line (each output column samples the straight segment from the top to the bottom boundary),
  so a curved word becomes a straight strip. Width = mean boundary length, height = mean top-bottom
  distance.
- Polygons with an odd number of vertices (no top/bottom pairing) are cut with their minimum-area
  rotated rectangle, started at the corner nearest the polygon's first vertex.

Mode `bbox`: the axis-aligned min/max box of the points, clipped to the image, never rotated: exactly the
region PARSeq's and MMOCR's converters crop (for comparison; source-specific padding such as COCO-Text's
2 px is not added).

Orientation rule (one rule for every source): the annotation's vertex order defines the reading
direction, so rotated and upside-down words whose annotation starts at the word's own top-left come out
upright. After that, a crop whose height is at least `vertical_ratio` times its width and whose label has
two or more characters is rotated 90 degrees counter-clockwise (text written top-to-bottom, i.e. rotated
clockwise, becomes left-to-right). Single characters are never rotated. The sample's meta records
`rotated: true`. Stacked upright vertical text (CJK style) is not detectable from geometry and stays as
annotated.

Coordinates are continuous with pixel edges at integers (an axis-aligned quad copies its pixels exactly).
Annotations are on raw pixels, so images are decoded without applying EXIF orientation.

Hostile images (docs/security.md, "Inputs"): the header is read first (no pixels) and an image of
more than `max_pixels` pixels is refused as `image_too_large` before anything is decoded; empty files,
files that are no image format we read (an HTML login page saved as .jpg) and JPEGs without an end
marker after their last scan (a cut download: OpenCV may fill the missing part with grey) are
`corrupt_image`. 16-bit samples are reduced to 8 bits, grey and palette images become BGR, and an alpha
channel is composited over white (what a viewer shows; dropping it can blank text drawn only in alpha).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from rebusyn.loaders.decode import jpeg_size

CROP_MODES = ("warp", "bbox")
DEFAULT_VERTICAL_RATIO = 1.5
DEFAULT_MIN_SIDE = 2
# Less than this fraction of the box inside the image: the annotation is outside the picture.
MIN_INSIDE_FRACTION = 0.5
# A vertex this far out puts at least half of any box outside an image of the pixel limit (OpenCV sizes
# are 32-bit ints too), so it is `box_outside_image` before any arithmetic could overflow.
MAX_COORDINATE = 2.0**31
# Larger images are refused unread (recipe option `max_image_pixels`): PIL's own warning threshold, about
# 0.25 GiB of 8-bit RGB. A 30000 x 30000 PNG of zeros is 0.9 MB on disk and 2.7 GB decoded.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS by default
# The formats whose header we read; OpenCV decodes all of them. Anything else (PIL's permissive TGA or
# ICO guessers would "identify" random bytes) is not an image here. Cameras' MPO files open as JPEG.
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "JPEG2000")


class CropError(ValueError):
    """A region that cannot become a word image; `.reason` is the report's counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Crop:
    pixels: np.ndarray  # HxWx3 BGR uint8
    rotated: bool
    method: str  # box | quad | polygon | min_area_rect | bbox


def image_size(data: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(width, height) from the image header, without decoding pixels. CropError `corrupt_image` for bytes
    that are no complete image of a known format, `image_too_large` beyond `max_pixels`."""
    if not data:
        raise CropError("corrupt_image", "empty file (0 bytes)")
    header = _jpeg_or_png_size(data)  # 1 us instead of PIL's 25 us: it counts for millions of small crops
    if header is not None:
        fmt, width, height = header
    else:
        try:
            with warnings.catch_warnings():  # our limit decides, not PIL's DecompressionBombWarning
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
                    width, height, fmt = im.width, im.height, im.format
        except Image.DecompressionBombError as exc:  # beyond PIL's hard ceiling (2x its warning threshold)
            raise CropError("image_too_large", str(exc)) from exc
        except Exception as exc:  # PIL's format plugins raise many types on malformed headers
            detail = f"not a readable image ({_describe_start(data)}): {exc}"
            raise CropError("corrupt_image", detail) from exc
    if width < 1 or height < 1:
        raise CropError("corrupt_image", f"header says {width}x{height} pixels")
    if width * height > max_pixels:
        raise CropError(
            "image_too_large", f"{width}x{height} = {width * height:,} pixels, limit {max_pixels:,}"
        )
    if fmt in ("JPEG", "MPO") and not jpeg_is_complete(data):
        raise CropError(
            "corrupt_image", f"truncated JPEG ({len(data):,} bytes): no end marker after its last scan"
        )
    return width, height


def _jpeg_or_png_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a JPEG (its frame header) or PNG (its IHDR chunk); None otherwise, and
    for any JPEG whose markers are not plain (PIL then reads the header)."""
    if data[:2] == b"\xff\xd8":
        size = jpeg_size(data)
        return ("JPEG", *size) if size is not None else None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "PNG", width, height
    return None


def jpeg_is_complete(data: bytes) -> bool:
    """Whether an end-of-image marker follows the last start-of-scan marker. Inside entropy-coded data
    every 0xFF byte is stuffed (FF 00), so neither marker can occur there; an EXIF thumbnail's own end
    marker comes before the main image's scan, so it does not count. Bytes after the end marker are
    allowed (some cameras append data)."""
    return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda") >= 0


def _describe_start(data: bytes) -> str:
    head = data[:64].lstrip()
    if head[:1] == b"<":
        return f"starts with {head[:24]!r}: an HTML or XML page, not an image"
    return f"{len(data):,} bytes starting {data[:8]!r}"


def to_bgr(pixels: np.ndarray | None) -> np.ndarray | None:
    """What `cv2.IMREAD_UNCHANGED` gives -> 8-bit BGR: 16-bit samples keep their high byte (as OpenCV's
    IMREAD_COLOR does), grey is repeated, alpha is composited over white. None for anything else."""
    if pixels is None or pixels.size == 0:
        return None
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 1):
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        return None
    if pixels.shape[2] == 3:
        return pixels
    alpha = pixels[..., 3:4]
    if (alpha == 255).all():
        return np.ascontiguousarray(pixels[..., :3])
    # rgb*a + 255*(255-a) <= 255*255, so uint16 holds it; +127 rounds the division
    a = alpha.astype(np.uint16)
    out = (pixels[..., :3].astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """BGR pixels exactly as stored (EXIF orientation ignored: annotations are on raw pixels), after the
    header checks of `image_size` (so a decompression bomb is refused before it is decoded)."""
    image_size(data, max_pixels)
    array = np.frombuffer(data, dtype=np.uint8)
    try:
        pixels = cv2.imdecode(array, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        raise CropError("corrupt_image", f"image bytes could not be decoded: {exc}") from exc
    if pixels is None:
        raise CropError("corrupt_image", "image bytes could not be decoded")
    image = to_bgr(pixels)
    if image is None:  # float or 32-bit TIFF samples, 2-channel images: no scene photo is stored so
        channels = pixels.shape[2] if pixels.ndim == 3 else 1
        raise CropError("corrupt_image", f"unsupported pixels: {channels} channel(s) of {pixels.dtype}")
    return image


def encode_jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise CropError("encode_failed", "JPEG encoding failed")
    return buf.tobytes()


def _signed_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _check_inside(points: np.ndarray, width: int, height: int) -> None:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    box_area = max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6)
    ix = max(0.0, min(x1, width) - max(x0, 0.0))
    iy = max(0.0, min(y1, height) - max(y0, 0.0))
    if ix * iy < MIN_INSIDE_FRACTION * box_area:
        raise CropError(
            "box_outside_image",
            f"box ({x0:.0f},{y0:.0f})-({x1:.0f},{y1:.0f}) lies mostly outside the {width}x{height} image",
        )


def warp_quad(image: np.ndarray, points: np.ndarray, min_side: int = DEFAULT_MIN_SIDE) -> np.ndarray:
    """Perspective-warp the quadrilateral (TL, TR, BR, BL) to an upright rectangle."""
    quad = np.asarray(points, dtype=np.float32).reshape(4, 2)
    # Image y grows downwards, so a clockwise quad (as ICDAR specifies) has a positive shoelace area.
    # Some annotations run counter-clockwise: mirror the order, keeping the first (top-left) point.
    area = _signed_area(quad)
    if abs(area) < 1.0:
        raise CropError("degenerate_box", f"quadrilateral has area {abs(area):.1f} px")
    if area < 0:
        quad = quad[[0, 3, 2, 1]]
    tl, tr, br, bl = quad
    width = int(round(max(np.linalg.norm(tr - tl), np.linalg.norm(br - bl))))
    height = int(round(max(np.linalg.norm(bl - tl), np.linalg.norm(br - tr))))
    if width < min_side or height < min_side:
        raise CropError("degenerate_box", f"warped size {width}x{height} below {min_side} px")
    # Corners are pixel edges, not pixel centres: an axis-aligned quad then warps as a pure translation,
    # copying its pixels exactly instead of resampling them at a scale of (w-1)/w.
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    # The transform maps continuous coordinates; warpPerspective works on pixel indices (centres at
    # integers), so conjugate it with the half-pixel shift. Then a 180-degree turn is an exact copy too.
    to_continuous = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    to_index = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    matrix = to_index @ cv2.getPerspectiveTransform(quad, target).astype(np.float64) @ to_continuous
    return cv2.warpPerspective(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def crop_box(image: np.ndarray, points: np.ndarray, min_side: int = DEFAULT_MIN_SIDE) -> np.ndarray:
    (x0, y0), (x1, y1) = np.asarray(points, dtype=np.float64).reshape(2, 2)
    h, w = image.shape[:2]
    x0, x1 = sorted((int(np.floor(max(x0, 0))), int(np.ceil(min(x1, w)))))
    y0, y1 = sorted((int(np.floor(max(y0, 0))), int(np.ceil(min(y1, h)))))
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise CropError("degenerate_box", f"box {x1 - x0}x{y1 - y0} below {min_side} px")
    return image[y0:y1, x0:x1].copy()


def _resample(chain: np.ndarray, count: int) -> np.ndarray:
    """`count` points evenly spaced by arc length along the polyline `chain`."""
    seg = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    dist = np.r_[0.0, np.cumsum(seg)]
    if dist[-1] <= 0:
        return np.repeat(chain[:1], count, axis=0)
    t = np.linspace(0.0, dist[-1], count)
    return np.stack([np.interp(t, dist, chain[:, 0]), np.interp(t, dist, chain[:, 1])], axis=1)


def _arc_length(chain: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(chain, axis=0), axis=1).sum())


def rectify_polygon(image: np.ndarray, points: np.ndarray, min_side: int = DEFAULT_MIN_SIDE) -> np.ndarray:
    """Unroll a curved word (even vertex count: top boundary, then bottom boundary reversed) into a strip."""
    pts = np.asarray(points, dtype=np.float64)
    half = len(pts) // 2
    top, bottom = pts[:half], pts[half:][::-1]
    width = int(round((_arc_length(top) + _arc_length(bottom)) / 2))
    if width < min_side:
        raise CropError("degenerate_box", f"curved word {width} px long, below {min_side} px")
    # Sample both boundaries at the output columns' centres, then each column between them.
    columns = width * 4 + 1  # dense enough that linear interpolation between samples is exact to 1/4 px
    top_s, bottom_s = _resample(top, columns), _resample(bottom, columns)
    height = int(round(float(np.linalg.norm(top_s - bottom_s, axis=1).mean())))
    if height < min_side:
        raise CropError("degenerate_box", f"curved word {height} px high, below {min_side} px")
    u = (np.arange(width) + 0.5) / width * (columns - 1)
    t_x, t_y = np.interp(u, np.arange(columns), top_s[:, 0]), np.interp(u, np.arange(columns), top_s[:, 1])
    b_x, b_y = (
        np.interp(u, np.arange(columns), bottom_s[:, 0]),
        np.interp(u, np.arange(columns), bottom_s[:, 1]),
    )
    v = ((np.arange(height) + 0.5) / height)[:, None]
    # continuous coordinates -> pixel-index coordinates (pixel centres at integers): subtract 0.5
    map_x = (t_x[None, :] + (b_x - t_x)[None, :] * v - 0.5).astype(np.float32)
    map_y = (t_y[None, :] + (b_y - t_y)[None, :] * v - 0.5).astype(np.float32)
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def min_area_quad(points: np.ndarray) -> np.ndarray:
    """The minimum-area rotated rectangle of `points`, clockwise, from the corner nearest the first vertex."""
    pts = np.asarray(points, dtype=np.float32)
    box = cv2.boxPoints(cv2.minAreaRect(pts)).astype(np.float64)
    if _signed_area(box) < 0:
        box = box[::-1]
    start = int(np.argmin(np.linalg.norm(box - pts[0], axis=1)))
    return np.roll(box, -start, axis=0)


def crop_bbox(image: np.ndarray, points: np.ndarray, min_side: int = DEFAULT_MIN_SIDE) -> np.ndarray:
    """The axis-aligned min/max box of any polygon, clipped to the image (PARSeq's / MMOCR's crop)."""
    pts = np.asarray(points, dtype=np.float64)
    return crop_box(image, np.array([pts.min(axis=0), pts.max(axis=0)]), min_side)


def crop_word(
    image: np.ndarray,
    points: tuple[tuple[float, float], ...],
    label: str,
    *,
    mode: str = "warp",
    vertical_ratio: float = DEFAULT_VERTICAL_RATIO,
    min_side: int = DEFAULT_MIN_SIDE,
) -> Crop:
    """Cut one word out of a decoded scene image (see the module docstring for the rules)."""
    if mode not in CROP_MODES:
        raise ValueError(f"unknown crop mode {mode!r}; choose one of {', '.join(CROP_MODES)}")
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:  # ragged or non-numeric vertices, ints > 1e308
        raise CropError("bad_geometry", f"points are not (x, y) number pairs: {_short(points)}") from exc
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2 or len(pts) == 3 or not np.isfinite(pts).all():
        raise CropError("bad_geometry", f"points must be 2 or >= 4 finite (x, y) pairs, got {_short(points)}")
    if np.abs(pts).max() > MAX_COORDINATE:  # such a box lies mostly outside any image; no overflow below
        raise CropError("box_outside_image", f"coordinates beyond +-{MAX_COORDINATE:.0e}: {_short(points)}")
    extent = pts.max(axis=0) - pts.min(axis=0)
    if extent.min() < min_side:
        raise CropError("degenerate_box", f"box extent {extent[0]:.0f}x{extent[1]:.0f} below {min_side} px")
    h, w = image.shape[:2]
    _check_inside(pts, w, h)
    if mode == "bbox":
        pixels, method = crop_bbox(image, pts, min_side), "bbox"
    elif len(pts) == 2:
        pixels, method = crop_box(image, pts, min_side), "box"
    elif len(pts) == 4:
        if is_self_intersecting(pts):  # a bow-tie: two vertices swapped; warping it mirrors half the word
            raise CropError("bad_geometry", f"self-intersecting quadrilateral {_short(points)}")
        pixels, method = warp_quad(image, pts, min_side), "quad"
    elif len(pts) % 2 == 0:
        pixels, method = rectify_polygon(image, _clockwise(pts), min_side), "polygon"
    else:
        pixels, method = warp_quad(image, min_area_quad(pts), min_side), "min_area_rect"
    ph, pw = pixels.shape[:2]
    # bbox mode reproduces PARSeq's crop, which never rotates; the orientation rule belongs to warp mode.
    rotated = mode == "warp" and ph >= vertical_ratio * pw and len(label) >= 2
    if rotated:
        pixels = np.ascontiguousarray(np.rot90(pixels, k=1))
    return Crop(pixels, rotated, method)


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _segments_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Whether segments ab and cd cross at a point inside both (touching ends and overlaps do not count:
    those quads have no area and are `degenerate_box`)."""
    return _cross(a, b, c) * _cross(a, b, d) < 0 and _cross(c, d, a) * _cross(c, d, b) < 0


def is_self_intersecting(quad: np.ndarray) -> bool:
    """Whether a quadrilateral's opposite edges cross (a bow-tie, e.g. TL, TR, BL, BR)."""
    p = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return _segments_cross(p[0], p[1], p[2], p[3]) or _segments_cross(p[1], p[2], p[3], p[0])


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _clockwise(pts: np.ndarray) -> np.ndarray:
    """Counter-clockwise polygons are mirrored (keeping the first vertex) so the halves are top/bottom."""
    if _signed_area(pts) < 0:
        return np.concatenate([pts[:1], pts[1:][::-1]])
    return pts
