import cv2
import numpy as np
import pytest

from rebusyn.crop import CropError, crop_word, decode_image, encode_jpeg


def scene():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(120, 200, 3), dtype=np.uint8)


def test_axis_aligned_quad_copies_pixels_exactly():
    img = scene()
    crop = crop_word(img, ((10, 20), (60, 20), (60, 35), (10, 35)), "word")
    assert not crop.rotated
    assert np.array_equal(crop.pixels, img[20:35, 10:60])


def test_counter_clockwise_quad_is_reordered():
    img = scene()
    ccw = crop_word(img, ((10, 20), (10, 35), (60, 35), (60, 20)), "word")
    assert np.array_equal(ccw.pixels, img[20:35, 10:60])


def test_two_point_box():
    img = scene()
    crop = crop_word(img, ((10, 20), (60, 35)), "word")
    assert np.array_equal(crop.pixels, img[20:35, 10:60])


def test_rotated_quad_gets_edge_length_size():
    img = np.zeros((200, 200, 3), np.uint8)
    # a 60x10 rectangle rotated by 30 degrees
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    corners = np.array([[0, 0], [60, 0], [60, 10], [0, 10]]) @ np.array([[c, s], [-s, c]]) + [70, 50]
    crop = crop_word(img, tuple(map(tuple, corners)), "word")
    assert crop.pixels.shape[:2] == (10, 60)


def test_vertical_rule():
    img = scene()
    tall = ((100, 10), (115, 10), (115, 70), (100, 70))
    multi = crop_word(img, tall, "EXIT")
    assert multi.rotated and multi.pixels.shape[:2] == (15, 60)
    # rotated counter-clockwise: the crop's top-right column becomes its first row
    assert np.array_equal(multi.pixels[0], img[10:70, 114][::-1]) or np.array_equal(
        multi.pixels, np.rot90(img[10:70, 100:115])
    )
    single = crop_word(img, tall, "I")
    assert not single.rotated and single.pixels.shape[:2] == (60, 15)
    boxed = crop_word(img, tall, "EXIT", mode="bbox")  # PARSeq keeps tall crops as they are
    assert not boxed.rotated and boxed.pixels.shape[:2] == (60, 15)


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        (((10, 10), (50, 10), (50, 10), (10, 10)), "degenerate_box"),
        (((10, 10), (11, 10), (11, 40), (10, 40)), "degenerate_box"),
        (((300, 300), (350, 300), (350, 320), (300, 320)), "box_outside_image"),
        (((0, 0), (10, 10), (20, 0)), "bad_geometry"),
        (((0, 0), (float("nan"), 1), (2, 0), (3, 3)), "bad_geometry"),
    ],
)
def test_bad_regions_name_their_reason(points, reason):
    with pytest.raises(CropError) as info:
        crop_word(scene(), points, "word")
    assert info.value.reason == reason


def test_decode_refuses_garbage_and_roundtrips_jpeg():
    with pytest.raises(CropError) as info:
        decode_image(b"not an image")
    assert info.value.reason == "corrupt_image"
    img = scene()
    assert decode_image(encode_jpeg(img)).shape == img.shape


def _curved_word(text="Curved", sag=30.0, angle_deg=10.0, points=7):
    """A word bent along an arc with the sample renderer's own geometry, plus its flat rendering."""
    from rebusyn.samplegen.scene import _curve_map, _text_patch, _warp_curved

    mask, (bx0, by0, bx1, by1) = _text_patch(text, 40)
    ph, pw = mask.shape
    f = _curve_map(pw, ph, (200.0, 150.0), np.radians(angle_deg), sag)
    ink = _warp_curved(mask, f, 400, 300)
    image = (255 - 255 * ink[..., None]).repeat(3, axis=2).astype(np.uint8)
    us = np.linspace(bx0, bx1, points)
    polygon = np.vstack([f(us, np.full(points, by0)), f(us[::-1], np.full(points, by1))])
    flat = 255 - mask[int(by0) : int(by1), int(bx0) : int(bx1)]
    return image, polygon, flat


def _similarity(crop, flat):
    """Correlation of the two images at the flat word's size, blurred so that a pixel of drift in the
    strokes does not count (what matters: the same letters at the same places)."""
    size = (flat.shape[1], flat.shape[0])
    a = cv2.resize(crop[..., 0].astype(np.float32), size, interpolation=cv2.INTER_AREA)
    a, b = (cv2.GaussianBlur(x, (0, 0), 2.0) for x in (a, flat.astype(np.float32)))
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("sag", [25.0, -35.0])
def test_curved_word_is_unrolled_into_a_straight_strip(sag):
    image, polygon, flat = _curved_word(sag=sag)
    crop = crop_word(image, tuple(map(tuple, polygon)), "Curved")
    assert crop.method == "polygon" and not crop.rotated
    h, w = crop.pixels.shape[:2]
    assert abs(w / h - flat.shape[1] / flat.shape[0]) / (flat.shape[1] / flat.shape[0]) < 0.15
    rectified = _similarity(crop.pixels, flat)
    boxed = _similarity(crop_word(image, tuple(map(tuple, polygon)), "Curved", mode="bbox").pixels, flat)
    assert rectified > 0.8 and rectified > boxed + 0.3


def test_counter_clockwise_polygon_gives_the_same_strip():
    image, polygon, _ = _curved_word()
    cw = crop_word(image, tuple(map(tuple, polygon)), "Curved").pixels
    ccw_points = np.concatenate([polygon[:1], polygon[1:][::-1]])
    ccw = crop_word(image, tuple(map(tuple, ccw_points)), "Curved").pixels
    assert np.array_equal(cw, ccw)


def test_odd_polygon_uses_the_min_area_rectangle():
    img = scene()
    pentagon = ((20, 30), (60, 28), (100, 30), (100, 50), (20, 50))
    crop = crop_word(img, pentagon, "word")
    assert crop.method == "min_area_rect"
    assert abs(crop.pixels.shape[1] - 80) <= 1 and abs(crop.pixels.shape[0] - 22) <= 1


def test_bbox_mode_is_the_parseq_crop():
    img = scene()
    quad = ((10, 20), (60, 25), (58, 40), (12, 35))
    crop = crop_word(img, quad, "word", mode="bbox")
    assert crop.method == "bbox" and np.array_equal(crop.pixels, img[20:40, 10:60])
    with pytest.raises(ValueError, match="unknown crop mode"):
        crop_word(img, quad, "word", mode="fancy")


def test_upside_down_word_annotated_from_its_own_top_left_comes_out_upright():
    img = scene()
    upright = crop_word(img, ((10, 20), (60, 20), (60, 35), (10, 35)), "word").pixels
    flipped_img = np.ascontiguousarray(img[::-1, ::-1])
    h, w = img.shape[:2]
    # the same word rotated by 180 degrees: its top-left corner is now at the bottom right
    quad = ((w - 10, h - 20), (w - 60, h - 20), (w - 60, h - 35), (w - 10, h - 35))
    assert np.array_equal(crop_word(flipped_img, quad, "word").pixels, upright)
