"""Hostile and broken images and geometry on the real crop path: bytes made here with PIL, OpenCV and zlib,
pushed through `decode_image`, `process_scene_image` / `process_word_crop` and a whole `build` from files on
disk. Each case must end as a sample that shows the right pixels, or as a counted drop with a reason and a
place: never an exception out of the worker, never a silently wrong image."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import rebusyn.crop as crop_module
from rebusyn.build import BuildOptions, build, process_scene_image, process_word_crop
from rebusyn.crop import (
    DEFAULT_MAX_IMAGE_PIXELS,
    IMAGE_FORMATS,
    CropError,
    decode_image,
    image_size,
    is_self_intersecting,
    jpeg_is_complete,
)
from rebusyn.sample import Instance, LabelPolicy
from rebusyn.sources.base import AnnotatedImage, WordCrop
from tests._source_helpers import read_built

POLICY = LabelPolicy("36")


# --- bytes ---------------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(width: int = 300, height: int = 200) -> np.ndarray:
    """RGB with every pixel telling its place: red grows to the right, green downwards."""
    x = np.linspace(0, 255, width)[None, :, None]
    y = np.linspace(0, 255, height)[:, None, None]
    channels = [
        np.broadcast_to(x, (height, width, 1)),
        np.broadcast_to(y, (height, width, 1)),
        np.full((height, width, 1), 90.0),
    ]
    return np.concatenate(channels, axis=2).astype(np.uint8)


def noisy_jpeg(width: int = 300, height: int = 200, **kw) -> bytes:
    """A JPEG whose scan data is long (noise compresses badly), so a cut lands inside the scan."""
    pixels = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), quality=90, **kw)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def zeros_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of zeros, written a row at a time: small on disk, huge decoded."""
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0 + the row
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


LOGIN_PAGE = b"""<!DOCTYPE html>
<html><head><title>Sign in - Robust Reading Competition</title></head>
<body><form action="/login" method="post"><input name="user"><input type="password" name="pass"></form></body>
</html>
"""


def scene_item(path: Path, data: bytes, words: list[tuple[str, tuple]]) -> AnnotatedImage:
    path.write_bytes(data)
    instances = tuple(Instance(text, points) for text, points in words)
    return AnnotatedImage(path, path.stem, instances)


def run_scene(item: AnnotatedImage, **options) -> tuple[list, list]:
    return process_scene_image(item, source="hostile", group="B", policy=POLICY, options=options)


BOX = ((20, 20), (120, 20), (120, 60), (20, 60))


# --- decoding ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.99])
def test_truncated_jpeg_is_refused_from_its_header(fraction: float) -> None:
    data = noisy_jpeg()
    cut = data[: int(len(data) * fraction)]
    assert Image.open(io.BytesIO(cut)).size == (300, 200)  # the header alone looks fine
    with pytest.raises(CropError, match="truncated JPEG") as info:
        image_size(cut)
    assert info.value.reason == "corrupt_image"
    with pytest.raises(CropError):
        decode_image(cut)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_other_formats_cut_in_half_are_corrupt(fmt: str) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), fmt)
    assert decode_image(data).shape == (200, 300, 3)
    with pytest.raises(CropError) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.reason == "corrupt_image"


def test_truncated_jpeg_costs_each_of_its_words_with_its_place(tmp_path: Path) -> None:
    data = noisy_jpeg()
    item = scene_item(tmp_path / "img_6.jpg", data[: len(data) // 2], [("Hello", BOX), ("World", BOX)])
    samples, drops = run_scene(item)
    assert samples == []
    assert [(d.where, d.reason) for d in drops] == [(str(tmp_path / "img_6.jpg"), "corrupt_image")] * 2
    assert "truncated JPEG" in drops[0].detail


def test_end_marker_check_ignores_a_thumbnail_and_allows_trailing_bytes() -> None:
    main, thumbnail = noisy_jpeg(), noisy_jpeg(16, 16)
    assert jpeg_is_complete(main) and not jpeg_is_complete(main[:-2])
    # A comment segment holding a whole JPEG (as an EXIF thumbnail does) puts an end marker before the main
    # image's scan: cutting the main image must still count as truncated.
    comment = b"\xff\xfe" + struct.pack(">H", len(thumbnail) + 2) + thumbnail
    with_thumbnail = main[:2] + comment + main[2:]
    assert decode_image(with_thumbnail).shape == (200, 300, 3)
    cut = with_thumbnail[: len(with_thumbnail) - len(main) // 2]
    assert b"\xff\xd9" in cut and not jpeg_is_complete(cut)
    # bytes after the end marker (cameras append data) are no reason to refuse the picture
    assert decode_image(main + b"\x00" * 64 + b"appended").shape == (200, 300, 3)


def test_cmyk_jpeg_comes_out_as_pil_converts_it() -> None:
    rgb = gradient()
    data = encode(Image.fromarray(rgb).convert("CMYK"), quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    bgr = decode_image(data)
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    diff = np.abs(bgr[..., ::-1].astype(int) - reference.astype(int))
    assert bgr.shape == (200, 300, 3) and diff.max() <= 2  # IDCT rounding only
    assert np.abs(bgr[..., ::-1].astype(int) - rgb.astype(int)).mean() < 3  # and it is the picture


def test_sixteen_bit_pngs_keep_their_high_byte() -> None:
    ramp = np.arange(200 * 300, dtype=np.uint32).reshape(200, 300) * 65535 // (200 * 300 - 1)
    grey = ramp.astype(np.uint16)
    data = encode(Image.fromarray(grey), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    out = decode_image(data)
    assert out.dtype == np.uint8 and (out == (grey >> 8)[..., None]).all()
    # PIL's own convert("RGB") clips 16-bit grey to white: PARSeq-style loading would see a blank crop
    assert (np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[150:] == 255).all()
    colour = (gradient().astype(np.uint16) * 257)[..., ::-1]  # 16-bit BGR, written by OpenCV
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(colour))
    assert ok
    assert (decode_image(buf.tobytes()) == gradient()[..., ::-1]).all()


def test_palette_png_with_a_transparent_background_is_composited_over_white(tmp_path: Path) -> None:
    # index 0 (black) is the transparent background, index 1 (dark blue) the word
    indices = np.zeros((200, 300), np.uint8)
    indices[30:50, 30:110] = 1
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 0, 20, 30, 160] + [0, 0, 0] * 254)
    data = encode(image, "PNG", transparency=0)
    out = decode_image(data)
    assert (out[0, 0] == 255).all()  # over white, not the black under the transparency
    assert out[40, 60].tolist() == [160, 30, 20]  # opaque pixels exactly as PIL reads them
    assert np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[40, 60].tolist() == [20, 30, 160]
    samples, drops = run_scene(scene_item(tmp_path / "p.png", data, [("word", BOX)]))
    assert drops == [] and len(samples) == 1
    crop = cv2.imdecode(np.frombuffer(samples[0].image, np.uint8), cv2.IMREAD_COLOR)
    assert crop.mean() > 150 and crop.min() < 80  # white paper with the blue word on it


def test_text_drawn_only_in_the_alpha_channel_stays_visible() -> None:
    # grey + alpha: every grey value 0, the word is where alpha is 255, half-transparent beside it
    alpha = np.zeros((200, 300), np.uint8)
    alpha[30:50, 30:110] = 255
    alpha[60:80, 30:110] = 128
    data = encode(Image.fromarray(np.dstack([np.zeros_like(alpha), alpha]), "LA"), "PNG")
    out = decode_image(data)
    assert out.shape == (200, 300, 3)
    assert out[0, 0].tolist() == [255, 255, 255] and out[40, 60].tolist() == [0, 0, 0]
    assert out[70, 60].tolist() == [127] * 3  # (0 * 128 + 255 * 127) / 255, rounded
    # what dropping the alpha channel (PIL's convert("RGB")) would have given: no word at all
    assert np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).max() == 0


def test_exif_orientation_is_not_applied(tmp_path: Path) -> None:
    """Annotations are on raw pixels (PIL, PARSeq): a rotate-90 tag must change nothing."""
    rgb = gradient()
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(rgb), quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).getexif()[0x0112] == 6
    out = decode_image(data)
    assert out.shape == (200, 300, 3)
    assert np.abs(out[..., ::-1].astype(int) - rgb.astype(int)).mean() < 3
    # the annotated box picks the raw pixels: red (x) grows along the crop, green (y) is the box's
    box = ((200, 150), (290, 150), (290, 190), (200, 190))
    samples, _ = run_scene(scene_item(tmp_path / "exif.jpg", data, [("word", box)]))
    crop = cv2.imdecode(np.frombuffer(samples[0].image, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape[:2] == (40, 90)
    red, green = float(crop[..., 2].mean()), float(crop[..., 1].mean())
    assert abs(red - 245 * 255 / 299) < 6 and abs(green - 170 * 255 / 199) < 6  # the box's centre, unrotated


def test_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(crop_module.cv2, "imdecode", no_decoding)
    bomb = zeros_png(30000, 30000)  # 900 megapixels, 2.7 GB as BGR
    assert len(bomb) < 1_000_000
    with pytest.raises(CropError) as info:
        decode_image(bomb)
    assert info.value.reason == "image_too_large"
    # below PIL's own hard ceiling, our limit decides, and says so
    with pytest.raises(CropError, match=f"limit {DEFAULT_MAX_IMAGE_PIXELS:,}") as info:
        image_size(zeros_png(12000, 12000))
    assert info.value.reason == "image_too_large"
    samples, drops = run_scene(scene_item(tmp_path / "bomb.png", bomb, [("word", BOX), ("other", BOX)]))
    assert samples == [] and [d.reason for d in drops] == ["image_too_large"] * 2
    # a ready-made word crop is checked the same way before its size is taken
    samples, drops = process_word_crop(
        WordCrop(None, "bomb#1", "word", data=bomb), source="hostile", group="C", policy=POLICY
    )
    assert samples == [] and [(d.where, d.reason) for d in drops] == [("bomb#1", "image_too_large")]


def test_the_pixel_limit_is_an_option(tmp_path: Path) -> None:
    data = encode(Image.fromarray(gradient()), "PNG")  # 60,000 pixels
    item = scene_item(tmp_path / "small.png", data, [("word", BOX)])
    samples, drops = run_scene(item, max_image_pixels=50_000)
    assert samples == [] and [d.reason for d in drops] == ["image_too_large"]
    assert "60,000 pixels, limit 50,000" in drops[0].detail
    samples, drops = run_scene(item, max_image_pixels=60_000)
    assert len(samples) == 1 and drops == []
    crop = WordCrop(None, "small#1", "word", data=data)
    samples, drops = process_word_crop(
        crop, source="h", group="C", policy=POLICY, options={"max_image_pixels": 59_999}
    )
    assert [d.reason for d in drops] == ["image_too_large"]


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "empty file"),
        (LOGIN_PAGE, "HTML"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not a readable image"),  # a JPEG signature and nothing else
        (b"GIF89a" + b"\x00" * 3, "not a readable image"),
        (cv2.imencode(".tiff", np.ones((20, 30), np.float32))[1].tobytes(), "1 channel(s) of float32"),
    ],
)
def test_files_that_are_no_image(tmp_path: Path, data: bytes, detail: str) -> None:
    item = scene_item(tmp_path / "img_9.jpg", data, [("word", BOX)])
    samples, drops = run_scene(item)
    assert samples == [] and [(d.where, d.reason) for d in drops] == [(str(item.image), "corrupt_image")]
    assert detail in drops[0].detail
    samples, drops = process_word_crop(
        WordCrop(item.image, "img_9", "word"), source="hostile", group="C", policy=POLICY
    )
    assert samples == [] and [d.reason for d in drops] == ["corrupt_image"]


def test_an_image_gone_by_crop_time_is_missing_for_each_word(tmp_path: Path) -> None:
    item = AnnotatedImage(tmp_path / "img_7.jpg", "img_7", (Instance("a", BOX), Instance("b", BOX)))
    samples, drops = run_scene(item)
    assert samples == [] and [(d.where, d.reason) for d in drops] == [(str(item.image), "missing_image")] * 2


def test_every_listed_format_opens() -> None:
    """The formats whose header is read are formats PIL can open (a misspelt name would refuse them all)."""
    pixels = Image.fromarray(gradient(40, 20))
    for fmt in IMAGE_FORMATS:
        data = encode(pixels if fmt != "PPM" else pixels.convert("RGB"), fmt)
        assert image_size(data) == (40, 20), fmt


# --- geometry ------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")  # an overflow warning would mean arithmetic on absurd coordinates
@pytest.mark.parametrize(
    ("points", "reason"),
    [
        (((20, 20), (120, 20), (120, 20), (20, 20)), "degenerate_box"),  # zero area
        (((20, 20), (120, 60), (20, 60), (120, 20)), "bad_geometry"),  # bow-tie: TL, BR, BL, TR
        (((20, 20), (120, 20), (20, 60), (120, 60)), "bad_geometry"),  # bow-tie: TL, TR, BL, BR
        (((20, 20), (60, 20), (60, 20), (20, 20), (40, 20), (30, 20)), "degenerate_box"),  # flat polygon
        (((400, 300), (500, 300), (500, 340), (400, 340)), "box_outside_image"),
        (((-1e12, -1e12), (1e12, -1e12), (1e12, 1e12), (-1e12, 1e12)), "box_outside_image"),
        (((1e12, 1e12), (2e12, 1e12), (2e12, 2e12), (1e12, 2e12)), "box_outside_image"),
        (((-1e308, 0), (1e308, 0), (1e308, 50), (-1e308, 50)), "box_outside_image"),  # extent overflows
        (((20, float("nan")), (120, 20), (120, 60), (20, 60)), "bad_geometry"),
        (((20, 20), (float("inf"), 20), (120, 60), (20, 60)), "bad_geometry"),
        (((20, 20),), "bad_geometry"),
        ((), "bad_geometry"),
        (((20, 20), (20, 20)), "degenerate_box"),  # a 2-point box of one point
        (((20, 20), (120, 60), (60, 90)), "bad_geometry"),  # 3 points
        (((20, 20), (120, 20, 5), (120, 60), (20, 60)), "bad_geometry"),  # ragged
        ((("x", 20), (120, 20), (120, 60), (20, 60)), "bad_geometry"),  # not a number
        (((20, 20), (10**309, 20), (120, 60), (20, 60)), "bad_geometry"),  # an int no float can hold
    ],
)
def test_bad_geometry_is_a_counted_drop(tmp_path: Path, points: tuple, reason: str) -> None:
    data = encode(Image.fromarray(gradient()), "PNG")
    item = scene_item(tmp_path / "g.png", data, [("word", points), ("good", BOX)])
    samples, drops = run_scene(item)
    assert [s.label for s in samples] == ["good"]
    assert [(d.where, d.reason) for d in drops] == [("g.png#1", reason)]


def test_bow_tie_detection() -> None:
    square = np.array([(0, 0), (10, 0), (10, 10), (0, 10)], float)
    assert not is_self_intersecting(square) and not is_self_intersecting(square[::-1])
    assert is_self_intersecting(square[[0, 1, 3, 2]]) and is_self_intersecting(square[[0, 2, 1, 3]])
    assert not is_self_intersecting(np.array([(0, 0), (10, 0), (3, 3), (0, 10)], float))  # concave, simple
    assert not is_self_intersecting(np.array([(0, 0), (10, 0), (10, 0), (0, 0)], float))  # flat: no crossing


coordinate = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-50, max_value=350),
    st.integers(min_value=-(2**40), max_value=2**40),
)
# boxes inside the picture (often kept), and arbitrary vertex lists (mostly refused)
inside_quad = st.tuples(st.floats(0, 250), st.floats(0, 150), st.floats(0, 60), st.floats(0, 60)).map(
    lambda t: ((t[0], t[1]), (t[0] + t[2], t[1]), (t[0] + t[2], t[1] + t[3]), (t[0], t[1] + t[3]))
)
instance = st.builds(
    Instance,
    text=st.sampled_from(["word", "ab", "A"]) | st.text(max_size=30),  # mostly labels that pass the policy
    points=inside_quad | st.lists(st.tuples(coordinate, coordinate), max_size=9).map(tuple),
    ignore=st.booleans(),
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(instances=st.lists(instance, max_size=6), mode=st.sampled_from(["warp", "bbox"]))
@example(
    instances=[Instance("word", BOX), Instance("word", ((20, 20), (120, 60), (20, 60), (120, 20)))],
    mode="warp",
)
def test_any_geometry_gives_a_sample_or_a_reason_per_word(tmp_path: Path, instances: list, mode: str) -> None:
    path = tmp_path / "fuzz.jpg"
    if not path.exists():
        path.write_bytes(encode(Image.fromarray(gradient()), quality=90))
    item = AnnotatedImage(path, "fuzz", tuple(instances))
    samples, drops = process_scene_image(item, source="f", group="B", policy=POLICY, options={"crop": mode})
    assert len(samples) + len(drops) == len(instances)  # nothing lost without a count
    event("a word kept" if samples else "no word kept")  # --hypothesis-show-statistics: both happen
    for sample in samples:
        assert sample.width >= 1 and sample.height >= 1
        assert cv2.imdecode(np.frombuffer(sample.image, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (
            sample.height,
            sample.width,
        )
        sample.label.encode("utf-8")  # what the shard writer stores
        json.dumps(sample.meta(), ensure_ascii=False).encode("utf-8")
    known = {
        "dont_care",
        "empty_label",
        "label_too_long",
        "invalid_label",
        "degenerate_box",
        "box_outside_image",
        "bad_geometry",
        "crop_failed",
    }
    assert {d.reason for d in drops} <= known


# --- a whole build ---------------------------------------------------------------------------------------


def _scene_png(seed: int) -> bytes:
    pixels = np.full((200, 300, 3), 235, np.uint8)
    cv2.putText(pixels, f"W{seed}", (25, 55), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 3)
    return encode(Image.fromarray(pixels), "PNG")


@pytest.fixture(scope="module")
def hostile_build(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """ICDAR 2015 archives (the official names, from --from) holding a good scene and every hostile one."""
    tmp = tmp_path_factory.mktemp("hostile_build")
    rgb = gradient()
    good_line = "20,20,120,20,120,60,20,60,{}"
    exif = Image.Exif()
    exif[0x0112] = 6
    geometry = [
        good_line.format("Good"),
        "20,20,120,60,20,60,120,20,BowTie",
        "nan,20,120,20,120,60,20,60,NotANumber",
        "1e12,1e12,2e12,1e12,2e12,2e12,1e12,2e12,Far",
        "20,20,20,20,20,20,20,20,Flat",
        good_line.format("\x00\x1b\u202e"),  # nothing but control and format characters
    ]
    deep = rgb[..., 0].astype(np.uint16) * 257
    images = {
        "img_1.png": (_scene_png(1), geometry),
        "img_2.jpg": (noisy_jpeg()[:20000], [good_line.format("Cut")]),
        "img_3.png": (zeros_png(30000, 30000), [good_line.format("Bomb"), good_line.format("Bomb2")]),
        "img_4.jpg": (LOGIN_PAGE, [good_line.format("Login")]),
        "img_5.jpg": (b"", [good_line.format("Empty")]),
        "img_6.jpg": (encode(Image.fromarray(rgb).convert("CMYK"), quality=95), [good_line.format("Cmyk")]),
        "img_7.jpg": (
            encode(Image.fromarray(rgb), quality=95, exif=exif.tobytes()),
            [good_line.format("Exif")],
        ),
        "img_8.png": (encode(Image.fromarray(deep), "PNG"), [good_line.format("Deep")]),
    }
    manual = tmp / "manual"
    manual.mkdir()
    with zipfile.ZipFile(manual / "ch4_training_images.zip", "w") as zf:
        for name, (data, _) in images.items():
            zf.writestr(name, data)
    with zipfile.ZipFile(manual / "ch4_training_localization_transcription_gt.zip", "w") as zf:
        for name, (_, lines) in images.items():
            zf.writestr(f"gt_{Path(name).stem}.txt", ("\r\n".join(lines) + "\r\n").encode("utf-8"))
    root = tmp / "root"
    opts = BuildOptions(root, sources=("icdar2015",), from_dir=manual, skip_checksum=True, progress=False)
    (summary,) = build(opts).sources
    report = json.loads(summary.report.read_text())
    return summary, report, read_built(root, "icdar2015"), images


def test_build_counts_every_hostile_image_and_keeps_the_good_ones(hostile_build: tuple) -> None:
    summary, report, samples, _ = hostile_build
    assert [s["label"] for s in samples] == ["good", "cmyk", "exif", "deep"]
    assert summary.dropped == {
        "bad_geometry": 1,  # bow-tie
        "malformed_line": 1,  # a NaN coordinate, refused by the parser
        "box_outside_image": 1,
        "degenerate_box": 1,
        "empty_label": 1,  # only control characters
        "corrupt_image": 3,  # truncated JPEG, HTML page, empty file
        "image_too_large": 2,  # one per word of the bomb
    }
    assert summary.kept + sum(summary.dropped.values()) == 14  # one outcome per ground-truth line
    where = sorted((e["reason"], Path(e["where"]).name) for e in report["errors"])
    assert where == [
        ("bad_geometry", "img_1.png#2"),  # bow-tie
        ("box_outside_image", "img_1.png#3"),
        ("corrupt_image", "img_2.jpg"),
        ("corrupt_image", "img_4.jpg"),
        ("corrupt_image", "img_5.jpg"),
        ("degenerate_box", "img_1.png#4"),
        ("empty_label", "img_1.png#5"),  # numbered among the parsed words
        ("image_too_large", "img_3.png"),
        ("image_too_large", "img_3.png"),
        ("malformed_line", "gt_img_1.txt:3"),  # NaN
    ]


def test_built_crops_show_the_annotated_raw_pixels(hostile_build: tuple) -> None:
    _, _, samples, images = hostile_build
    by_label = {s["label"]: s for s in samples}
    for label in ("cmyk", "exif"):
        crop = cv2.imdecode(np.frombuffer(by_label[label]["image"], np.uint8), cv2.IMREAD_COLOR)
        want = gradient()[20:60, 20:120, ::-1]
        assert crop.shape == want.shape and np.abs(crop.astype(int) - want.astype(int)).mean() < 4, label
    deep = cv2.imdecode(np.frombuffer(by_label["deep"]["image"], np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.abs(deep.astype(int) - gradient()[20:60, 20:120, 0].astype(int)).mean() < 3
