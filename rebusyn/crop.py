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
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_MODES = ("warp", "bbox")
DEFAULT_VERTICAL_RATIO = 1.5
DEFAULT_MIN_SIDE = 2
# Less than this fraction of the box inside the image: the annotation is outside the picture.
MIN_INSIDE_FRACTION = 0.5


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


def decode_image(data: bytes) -> np.ndarray:
    """BGR pixels exactly as stored (EXIF orientation ignored: annotations are on raw pixels)."""
    array = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(array, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise CropError("corrupt_image", "image bytes could not be decoded")
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
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2 or len(pts) == 3 or not np.isfinite(pts).all():
        raise CropError("bad_geometry", f"points must be 2 or >= 4 finite (x, y) pairs, got {points!r}")
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


def _clockwise(pts: np.ndarray) -> np.ndarray:
    """Counter-clockwise polygons are mirrored (keeping the first vertex) so the halves are top/bottom."""
    if _signed_area(pts) < 0:
        return np.concatenate([pts[:1], pts[1:][::-1]])
    return pts
