"""Decode an encoded crop and bring it to a fixed height x width, as uint8 pixels (no torch needed).

OpenCV's decoder (libjpeg-turbo in the opencv-python wheels) and its resize are faster than the PIL path STR
trainers use (`Image.open(...).convert("RGB").resize(...)`): through a DataLoader, rebusyn's datasets
deliver 2.3-2.5x the samples per CPU-second of a PARSeq-style reader (benchmarks/bench_loader.py).
Large JPEGs are decoded at 1/2, 1/4 or 1/8 scale straight from the DCT when the
target is that much smaller, which skips most of the decode work.

Two ways to reach the target size:
- `stretch` (PARSeq, CLIP4STR, DTRB): resize to exactly height x width, ignoring the aspect ratio;
- `pad`: keep the aspect ratio, scale to the target height (or less if the crop is too wide), place the
  result at the left and fill the rest with `pad_value` (DTRB's `--PAD`).

Interpolation `auto` uses area averaging when shrinking (no aliasing on large crops) and bicubic when
enlarging (what PARSeq's `T.Resize(..., BICUBIC)` does).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

RESIZE_MODES = ("stretch", "pad")
INTERPOLATIONS = {
    "auto": None,
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
}
_REDUCED_COLOR = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
_REDUCED_GRAY = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}  # fmt: skip
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


class DecodeError(ValueError):
    """The bytes are not an image OpenCV can decode."""


@dataclass(frozen=True)
class ImageSpec:
    """Target pixels: `height` x `width`, 3 (RGB) or 1 (grey) channels, and how to get there."""

    height: int = 32
    width: int = 128
    channels: int = 3
    resize: str = "stretch"
    interpolation: str = "auto"
    pad_value: int = 0

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"image size must be positive, got {self.height}x{self.width}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value must be in 0..255, got {self.pad_value}")


def jpeg_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None if `data` is not a JPEG or has no frame header.

    Reads markers only (a few dozen bytes for a typical crop), so the decode can pick a reduced scale."""
    view = memoryview(data)
    n = len(view)
    if n < 4 or view[0] != 0xFF or view[1] != 0xD8:
        return None
    pos = 2
    while pos + 4 <= n:
        if view[pos] != 0xFF:
            return None
        marker = view[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7):  # no length field
            pos += 2
            continue
        length = (view[pos + 2] << 8) | view[pos + 3]
        if marker in _SOF_MARKERS:
            if pos + 9 > n:
                return None
            height = (view[pos + 5] << 8) | view[pos + 6]
            width = (view[pos + 7] << 8) | view[pos + 8]
            return (width, height) if width and height else None
        if marker == 0xDA or length < 2:  # start of scan before a frame header: malformed
            return None
        pos += 2 + length
    return None


def _reduction(size: tuple[int, int] | None, spec: ImageSpec) -> int:
    """The largest DCT scale 1/k (k in 8, 4, 2) that still leaves at least the target's pixels."""
    if size is None:
        return 1
    width, height = size
    if spec.resize == "stretch":
        room = min(width / spec.width, height / spec.height)
    else:  # pad keeps the aspect ratio: what counts is the scale factor actually applied
        room = 1 / min(spec.height / height, spec.width / width)
    for k in (8, 4, 2):
        if room >= k:
            return k
    return 1


def decode(data: bytes | memoryview, spec: ImageSpec) -> np.ndarray:
    """Decoded pixels (H x W x C uint8, RGB or grey) at full size or at a JPEG DCT reduction that still
    leaves at least the target's pixels. Raises DecodeError on bytes OpenCV cannot decode."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    k = _reduction(jpeg_size(data), spec)
    if spec.channels == 3:
        flag = _REDUCED_COLOR[k] if k > 1 else cv2.IMREAD_COLOR
    else:
        flag = _REDUCED_GRAY[k] if k > 1 else cv2.IMREAD_GRAYSCALE
    # Like PIL (and so PARSeq), never apply EXIF orientation: crops and annotations are on raw pixels.
    try:
        pixels = cv2.imdecode(buffer, flag | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:  # e.g. an empty buffer is an assertion inside OpenCV, not a None result
        pixels = None
    if pixels is None or pixels.size == 0:
        raise DecodeError(f"undecodable image ({len(buffer)} bytes, starts {bytes(buffer[:4]).hex()})")
    if spec.channels == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return pixels


def _interpolation(spec: ImageSpec, src: tuple[int, int], dst: tuple[int, int]) -> int:
    chosen = INTERPOLATIONS[spec.interpolation]
    if chosen is not None:
        return chosen
    shrinking = dst[0] <= src[0] and dst[1] <= src[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC


def fit(pixels: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """`pixels` (H x W [x C] uint8) brought to spec.height x spec.width x spec.channels."""
    height, width = pixels.shape[:2]
    if spec.resize == "stretch":
        target = (spec.width, spec.height)
        out = cv2.resize(pixels, target, interpolation=_interpolation(spec, (width, height), target))
    else:
        scale = min(spec.height / height, spec.width / width)
        new_width = max(1, min(spec.width, round(width * scale)))
        target = (new_width, max(1, min(spec.height, round(height * scale))))
        scaled = cv2.resize(pixels, target, interpolation=_interpolation(spec, (width, height), target))
        shape = (spec.height, spec.width) if scaled.ndim == 2 else (spec.height, spec.width, scaled.shape[2])
        out = np.full(shape, spec.pad_value, dtype=np.uint8)
        out[: scaled.shape[0], : scaled.shape[1]] = scaled
    if out.ndim == 2:
        out = out[:, :, None]
    return out


def decode_fit(data: bytes | memoryview, spec: ImageSpec) -> np.ndarray:
    """Encoded bytes -> spec.height x spec.width x spec.channels uint8 (HWC)."""
    return fit(decode(data, spec), spec)
