"""Cutting word images out of scene images.

- Axis-aligned boxes (2 points) are sliced.
- Quadrilaterals are warped upright with a perspective transform. The output size comes from the quad's
  edge lengths: width = the longer of top and bottom edges, height = the longer of left and right edges,
  so a slanted word keeps its resolution instead of being squeezed into its bounding box (what PARSeq's
  and MMOCR's axis-aligned crops do).
- Vertical text rule: a warped crop whose height is at least `vertical_ratio` times its width and whose
  label has two or more characters is rotated 90 degrees counter-clockwise (text written top-to-bottom,
  rotated clockwise, becomes left-to-right). Single characters are never rotated. The sample's meta records
  `rotated: true`. Stacked upright vertical text (CJK style) is not detectable from geometry and stays
  as annotated.

Annotations are on raw pixels, so images are decoded without applying EXIF orientation.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

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
    matrix = cv2.getPerspectiveTransform(quad, target)
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


def crop_word(
    image: np.ndarray,
    points: tuple[tuple[float, float], ...],
    label: str,
    *,
    vertical_ratio: float = DEFAULT_VERTICAL_RATIO,
    min_side: int = DEFAULT_MIN_SIDE,
) -> Crop:
    """Cut one word out of a decoded scene image (see the module docstring for the rules)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise CropError("bad_geometry", f"points must be finite (x, y) pairs, got {points!r}")
    extent = pts.max(axis=0) - pts.min(axis=0)
    if extent.min() < min_side:
        raise CropError("degenerate_box", f"box extent {extent[0]:.0f}x{extent[1]:.0f} below {min_side} px")
    h, w = image.shape[:2]
    _check_inside(pts, w, h)
    if len(pts) == 2:
        pixels = crop_box(image, pts, min_side)
    elif len(pts) == 4:
        pixels = warp_quad(image, pts, min_side)
    else:
        raise CropError("unsupported_polygon", f"{len(pts)}-point polygons are not supported by this cropper")
    ph, pw = pixels.shape[:2]
    rotated = ph >= vertical_ratio * pw and len(label) >= 2
    if rotated:
        pixels = np.ascontiguousarray(np.rot90(pixels, k=1))
    return Crop(pixels, rotated)
