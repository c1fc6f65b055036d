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


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        (((10, 10), (50, 10), (50, 10), (10, 10)), "degenerate_box"),
        (((10, 10), (11, 10), (11, 40), (10, 40)), "degenerate_box"),
        (((300, 300), (350, 300), (350, 320), (300, 320)), "box_outside_image"),
        (((0, 0), (1, 1), (2, 0), (3, 3), (4, 1)), "unsupported_polygon"),
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
