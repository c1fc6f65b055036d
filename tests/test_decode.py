"""rebusyn.loaders.decode on real bytes: the genuine ICDAR 2015 JPEGs (tests/data/icdar2015, CC BY 4.0) and
images encoded here by PIL, compared with PIL's own decode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rebusyn.loaders.decode import DecodeError, ImageSpec, _reduction, decode, decode_fit, fit, jpeg_size

SCENES = sorted((Path(__file__).parent / "data" / "icdar2015").glob("*.jpg"))


def encode(pixels: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(width: int, height: int) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    return np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                           np.full((height, width, 1), 90, np.float32)], axis=2).astype(np.uint8)  # fmt: skip


def test_jpeg_size_reads_the_frame_header() -> None:
    assert SCENES, "genuine ICDAR 2015 images missing from tests/data"
    for path in SCENES:
        data = path.read_bytes()
        assert jpeg_size(data) == Image.open(io.BytesIO(data)).size
    progressive = encode(gradient(301, 77), progressive=True)
    assert jpeg_size(progressive) == (301, 77)
    assert jpeg_size(encode(gradient(40, 20), "PNG")) is None
    assert jpeg_size(b"\xff\xd8\xff") is None  # truncated before any segment
    assert jpeg_size(SCENES[0].read_bytes()[:100]) is None  # cut inside the EXIF/JFIF segments


def test_decode_matches_pil_on_genuine_images() -> None:
    spec = ImageSpec(height=720, width=1280)
    for path in SCENES:
        data = path.read_bytes()
        ours = decode(data, spec)
        pil = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert ours.shape == pil.shape
        # libjpeg-turbo builds differ in IDCT rounding by a level or two, never more
        assert np.abs(ours.astype(int) - pil.astype(int)).mean() < 1.0


def test_large_jpegs_are_decoded_reduced() -> None:
    data = SCENES[0].read_bytes()  # 1280 x 720
    spec = ImageSpec()  # 32 x 128: 1280/128 = 10, 720/32 = 22 -> 1/8 still leaves 160 x 90
    assert _reduction(jpeg_size(data), spec) == 8
    assert decode(data, spec).shape == (90, 160, 3)
    assert _reduction((250, 70), spec) == 1  # 250/128 < 2
    assert _reduction((520, 140), spec) == 4
    # pad keeps the aspect: a wide crop is limited by width, a tall one by height
    assert _reduction((1024, 40), ImageSpec(resize="pad")) == 8
    assert _reduction((140, 130), ImageSpec(resize="pad")) == 4
    out = decode_fit(data, spec)
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((128, 32), Image.BOX))
    assert out.shape == (32, 128, 3)
    assert np.abs(out.astype(int) - reference.astype(int)).mean() < 4.0


def test_stretch_and_pad() -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :, 0] = 200
    data = encode(pixels, "PNG")
    stretched = decode_fit(data, ImageSpec(height=32, width=128))
    assert stretched.shape == (32, 128, 3) and (stretched[:, :, 0] == 200).all()
    padded = decode_fit(data, ImageSpec(height=32, width=128, resize="pad", pad_value=7))
    # 40x20 scaled to height 32 is 64 wide: the content fills the left 64 columns, the rest is padding
    assert (padded[:, :64, 0] == 200).all()
    assert (padded[:, 64:] == 7).all()
    wide = decode_fit(encode(np.full((10, 400, 3), 255, np.uint8), "PNG"), ImageSpec(resize="pad"))
    # too wide for the aspect: width-limited, 128 x 3 (3.2 rounded), padding below
    assert (wide[:3] == 255).all() and (wide[3:] == 0).all()


def test_grey_and_odd_pngs() -> None:
    grey = decode_fit(encode(gradient(64, 16)), ImageSpec(channels=1))
    assert grey.shape == (32, 128, 1)
    rgba = np.dstack([gradient(50, 20), np.full((20, 50), 128, np.uint8)])
    assert decode_fit(encode(rgba, "PNG"), ImageSpec()).shape == (32, 128, 3)
    palette = Image.fromarray(gradient(50, 20)).convert("P")
    buf = io.BytesIO()
    palette.save(buf, "PNG")
    assert decode_fit(buf.getvalue(), ImageSpec()).shape == (32, 128, 3)
    sixteen = Image.fromarray(np.arange(20 * 50, dtype=np.uint16).reshape(20, 50) * 60)
    buf = io.BytesIO()
    sixteen.save(buf, "PNG")
    out = decode(buf.getvalue(), ImageSpec(height=20, width=50))
    assert out.dtype == np.uint8 and out.shape == (20, 50, 3)


def test_rgb_channel_order() -> None:
    pixels = np.zeros((16, 16, 3), np.uint8)
    pixels[..., 0] = 250  # pure red
    out = decode(encode(pixels, "PNG"), ImageSpec())
    assert out[0, 0].tolist() == [250, 0, 0]


def test_exif_orientation_is_ignored() -> None:
    # Annotations are on raw pixels (what PIL and so PARSeq see): a rotate-90 EXIF tag must not turn the crop.
    img = Image.fromarray(gradient(60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    assert decode(buf.getvalue(), ImageSpec(height=20, width=60)).shape == (20, 60, 3)


def test_undecodable_bytes() -> None:
    with pytest.raises(DecodeError, match="undecodable image"):
        decode(b"not an image at all", ImageSpec())
    with pytest.raises(DecodeError):
        decode(b"", ImageSpec())


def test_fit_interpolation_choice_and_spec_errors() -> None:
    pixels = gradient(300, 90)
    area = fit(pixels, ImageSpec(interpolation="area"))
    auto = fit(pixels, ImageSpec())
    assert np.array_equal(area, auto)  # shrinking: auto means area
    with pytest.raises(ValueError, match="channels"):
        ImageSpec(channels=2)
    with pytest.raises(ValueError, match="resize"):
        ImageSpec(resize="crop")
    with pytest.raises(ValueError, match="interpolation"):
        ImageSpec(interpolation="lanczos9")
    with pytest.raises(ValueError, match="size"):
        ImageSpec(height=0)
