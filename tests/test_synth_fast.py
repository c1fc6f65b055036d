"""rebusyn synth --engine fast: rebusyn's own word renderer (rebusyn/synth/fast_engine.py, effects.py).

Fixtures are written by code: effect configs (YAML files derived from recipes/synth/fast.yaml), a corpus
file, fonts copied from trdg's folder. An effect is checked by rendering the same text and parameters with
the effect at p=0 and at p=1 (the engine draws every value whether or not the effect applies, so nothing
else changes) and measuring what the effect must do to the pixels or to the ink's geometry.
"""

from __future__ import annotations

import copy
import io
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, ImageDraw
from PIL.JpegImagePlugin import get_sampling

from rebusyn.sample import LabelPolicy
from rebusyn.synth import effects as fx
from rebusyn.synth import fast_engine as fe
from rebusyn.synth import fonts as fontmod
from rebusyn.synth.config import SynthConfigError, default_config_path, load_config
from rebusyn.synth.engine import Dropped, EngineConfig, Rendered
from rebusyn.synth.run import CONFIG_KEY, SynthOptions, synthesize
from rebusyn.synth.text import draw_text
from tests._source_helpers import read_synth_shards

DEFAULT = yaml.safe_load(default_config_path("fast").read_text())
FONTS = ("Roboto-Regular.ttf", "Lato-Italic.ttf", "OpenSans-Bold.ttf")
TALL_WORDS = ("Äpfel", "ÉQUIPÉ", "jumpy", "Ýggdrasil", "fjord", "Quaint", "Çà", "bdfhklgjpqy", "(Wj)",
              "Ångström")
WIDE = "EEEEEEEEEEEE"  # every ink column reaches the cap line and the baseline: easy geometry


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fonts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fonts")
    for name in FONTS:
        shutil.copy(fontmod.trdg_fonts_dir() / name, out / name)
    return out


@pytest.fixture(scope="module")
def fonts(fonts_dir: Path, cache_env: None) -> tuple[tuple[str, frozenset[str]], ...]:
    infos = fontmod.font_infos(fonts_dir, set(fontmod.PRINTABLE_ASCII) | set("".join(TALL_WORDS)))
    assert all(i.usable for i in infos)
    return tuple((str(i.path), i.chars) for i in infos)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "words.txt"
    path.write_text("\n".join(["hello", "world", "signage", "quay", "typography", *TALL_WORDS]) + "\n",
                    encoding="utf-8")
    return path


class Maker:
    """Writes effect configs next to each other and builds engines from them."""

    def __init__(self, root: Path, fonts: tuple, corpus: Path) -> None:
        self.root, self.fonts, self.corpus, self.n = root, fonts, corpus, 0

    def config(self, data: dict) -> object:
        self.n += 1
        path = self.root / f"fast-{self.n}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return load_config(path, "fast", fe.CONFIG_SCHEMA)

    def engine(self, data: dict, *, height: int = 32, charset: str = "94", seed: int = 0) -> fe.FastEngine:
        return fe.FastEngine(EngineConfig(seed=seed, corpus=self.corpus, fonts=self.fonts, charset=charset,
                                          max_len=25, height=height, effects=self.config(data)))


@pytest.fixture(scope="module")
def make(tmp_path_factory: pytest.TempPathFactory, fonts: tuple, corpus: Path) -> Maker:
    return Maker(tmp_path_factory.mktemp("configs"), fonts, corpus)


def neutral(**changes: dict) -> dict:
    """Every gated effect off, a plain light-grey background, near-black grey ink; `changes` update
    effects (name -> fields)."""
    data = copy.deepcopy(DEFAULT)
    for name in fe.EFFECTS:
        data["effects"][name]["p"] = 0.0
    data["effects"]["background_noise"]["p"] = 0.0
    data["effects"]["background_image"]["p"] = 0.0
    data["effects"]["background_plain"] = {"p": 1.0, "value": [235.0, 235.0], "saturation": [0.0, 0.0]}
    data["effects"]["text_color"] = {"p": 0.0, "dark": [20.0, 20.0], "light": [240.0, 240.0],
                                     "saturation": [0.8, 0.8]}
    for name, fields in changes.items():
        data["effects"][name].update(fields)
    return data


def compose(engine: fe.FastEngine, text: str, k: int = 0, font: int | None = None,
            edit: dict | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """compose() with the parameters of draw k (the same k gives the same values in every config), in
    Roboto Regular unless `font` (an index) says otherwise."""
    if font is None:
        font = engine.font_names.index("Roboto-Regular.ttf")
    params = engine.draw_params(np.random.default_rng([99, k]))
    for name, fields in (edit or {}).items():
        params["effects"][name].update(fields)
    image, mask, info = engine.compose(text, font, params)
    return image, mask, {**info, "params": params}


def ink_rows(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ink column: x, the top ink row, the bottom ink row (mask >= 128)."""
    ink = mask >= 128
    cols = np.flatnonzero(ink.any(axis=0))
    top = np.array([np.flatnonzero(ink[:, c])[0] for c in cols], dtype=np.float64)
    bottom = np.array([np.flatnonzero(ink[:, c])[-1] for c in cols], dtype=np.float64)
    return cols.astype(np.float64), top, bottom


def hf_energy(image: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(fx.luminance(image).astype(np.float32), cv2.CV_32F)).mean())


# -- the config file -----------------------------------------------------------------------------------


def test_default_config_is_valid_and_says_everything() -> None:
    cfg = load_config(default_config_path("fast"), "fast", fe.CONFIG_SCHEMA)
    assert cfg.engine == "fast" and cfg.version >= 1
    assert set(cfg.effects) == set(fe.CONFIG_SCHEMA["effects"]) == set(DEFAULT["effects"])
    assert set(fe.EFFECTS) | set(fe.BACKGROUNDS) | {"text_color"} == set(cfg.effects)
    for name in fe.EFFECTS:  # every effect is sometimes on, sometimes off
        assert 0 < cfg.effects[name]["p"] < 1, name
    assert all(cfg.effects[b]["p"] > 0 for b in fe.BACKGROUNDS)
    assert set(cfg.text) == {"upper", "title", "punct", "number"} and 0 < sum(cfg.text.values()) < 1
    assert cfg.stamp().startswith("fast.yaml@v")


def test_background_weights_all_zero_name_file_and_field(make: Maker) -> None:
    data = neutral(background_plain={"p": 0.0})
    with pytest.raises(SynthConfigError, match=r"fast-\d+\.yaml: field 'effects\.background_\*\.p'"):
        make.engine(data)


def test_schema_rejects_unknown_choice_naming_the_field(make: Maker) -> None:
    data = neutral(distortion_sine={"orientation": ["diagonal"]})
    field = r"field 'effects\.distortion_sine\.orientation'"
    with pytest.raises(SynthConfigError, match=r"fast-\d+\.yaml: " + field):
        make.engine(data)


# -- end to end: shards, determinism, stamp ------------------------------------------------------------


def _read_shards(root: Path) -> tuple[list[tuple[bytes, str, dict]], list[bytes]]:
    return read_synth_shards(root, "fast", CONFIG_KEY)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, fonts_dir: Path, cache_env: None) -> dict:
    out = {}
    for name, workers in (("w1", 1), ("w2", 2)):
        root = tmp_path_factory.mktemp(name)
        opts = SynthOptions(n=100, root=root, engine="fast", fonts=fonts_dir, workers=workers, seed=3,
                            progress=False)
        out[name] = (root, synthesize(opts))
    return out


def test_workers_1_and_2_give_identical_shards(runs: dict) -> None:
    (r1, s1), (r2, s2) = runs["w1"], runs["w2"]
    assert s1.kept == s2.kept == 100 and s1.dropped == s2.dropped
    a, b = pq.read_table(s1.index).to_pandas(), pq.read_table(s2.index).to_pandas()
    assert list(a["sha1"]) == list(b["sha1"]) and list(a["label_raw"]) == list(b["label_raw"])
    rows1, _ = _read_shards(r1)
    rows2, _ = _read_shards(r2)
    assert [r[0] for r in rows1] == [r[0] for r in rows2]


def test_shards_hold_the_config_and_every_meta_its_stamp(runs: dict) -> None:
    root, summary = runs["w1"]
    cfg = load_config(default_config_path("fast"), "fast", fe.CONFIG_SCHEMA)
    rows, configs = _read_shards(root)
    assert configs and all(c == cfg.to_json() for c in configs)
    assert json.loads(configs[0])["effects"]["skew"] == cfg.effects["skew"]
    assert summary.config == cfg.stamp()
    policy = LabelPolicy("36", 25)
    applied = set()
    for image, label, meta in rows:
        assert meta["config"] == cfg.stamp() and meta["source"] == "fast" and meta["group"] == "S"
        assert meta["engine"] == fe.engine_version() and meta["font"] in FONTS
        assert meta["key"] == f"fast/3/{meta['index']}" and 0 <= meta["attempt"] < fe.MAX_ATTEMPTS
        assert meta["background"]["kind"] in ("noise", "plain", "image")
        assert label == policy.normalize(meta["label_raw"])[0]
        img = Image.open(io.BytesIO(image))
        img.load()
        assert img.format == "JPEG" and img.mode == "RGB" and get_sampling(img) == 0  # 4:4:4
        assert img.height == 32 and (img.width, img.height) == (meta["w"], meta["h"])
        assert 8 <= img.width <= 32 * (2 + len(meta["label_raw"]))
        applied |= set(meta["effects"])
    # 100 samples exercise most effects of the default config
    assert len(applied) >= 10, applied


# -- the sample: text, label, font, meta ---------------------------------------------------------------


def test_label_is_the_drawn_text_and_font_covers_it(make: Maker) -> None:
    engine = make.engine(copy.deepcopy(DEFAULT), charset="unicode")
    policy = LabelPolicy("unicode", 25)
    kept = 0
    for i in range(40):
        r = engine.render(i)
        text = draw_text(np.random.default_rng([0, i]), engine.corpus, engine.text_variants)
        if isinstance(r, Dropped):
            assert r.reason in ("label_too_long", "low_contrast"), r
            continue
        kept += 1
        assert r.text == text and r.label == policy.normalize(text)[0]
        font = dict(zip(engine.font_names, engine.picker.chars))[r.extra["font"]]
        assert set(text) - {" "} <= font
        assert r.extra["index"] == i and r.extra["engine"] == engine.version
        json.dumps(r.extra)  # the meta is plain JSON
    assert kept >= 30


def test_meta_records_drawn_values(make: Maker) -> None:
    data = neutral(skew={"p": 1.0}, blur={"p": 1.0, "sigma": [0.4, 0.9]}, jpeg={"p": 1.0})
    engine = make.engine(data)
    r = engine.render(5)
    assert isinstance(r, Rendered)
    eff = r.extra["effects"]
    assert set(eff) == {"skew", "blur", "jpeg"}
    lo, hi = DEFAULT["effects"]["skew"]["angle"]
    assert lo <= eff["skew"]["angle"] <= hi and 0.4 <= eff["blur"]["sigma"] <= 0.9
    assert eff["blur"]["kind"] in ("gaussian", "motion") and isinstance(eff["jpeg"]["quality"], int)
    assert r.extra["background"] == {"kind": "plain", "value": 235.0, "saturation": 0.0,
                                     "hue": r.extra["background"]["hue"], "rgb": [235, 235, 235]}
    assert r.extra["colors"]["ink"] == [20, 20, 20] and r.extra["colors"]["dark_ink"] is True


def test_same_index_same_bytes_other_seed_differs(make: Maker) -> None:
    data = copy.deepcopy(DEFAULT)
    a, b = make.engine(data, seed=1), make.engine(data, seed=1)
    c = make.engine(data, seed=2)
    ra = [a.render(i) for i in range(12)]
    assert ra == [b.render(i) for i in reversed(range(12))][::-1]  # order and process state do not matter
    rc = [c.render(i) for i in range(12)]
    assert [getattr(r, "image", None) for r in ra] != [getattr(r, "image", None) for r in rc]


@pytest.mark.parametrize("height", [16, 32, 64])
def test_output_height_and_aspect(make: Maker, height: int) -> None:
    engine = make.engine(copy.deepcopy(DEFAULT), height=height)
    for k in range(6):
        for text in ("i", "typography signage"):
            image, mask, _ = compose(engine, text, k)
            assert image.shape[0] == mask.shape[0] == height and image.shape[2] == 3
            assert image.shape[1] == mask.shape[1] >= fe.MIN_WIDTH_FACTOR * height - 1
            if text == "i":
                assert image.shape[1] <= 2 * height  # a 1-char word is not a banner


def test_text_mask_is_pillows_layout(make: Maker) -> None:
    engine = make.engine(neutral())
    for font_idx in range(len(FONTS)):
        font = engine._font(font_idx)[0]
        for text in ("Typography", "fjord (Wj)", "AVATAR Tokyo"):
            mask, cap_top, baseline, (x0, y0, x1, y1) = engine.text_mask(font_idx, text)
            bx0, by0, bx1, by1 = font.getbbox(text)
            ref = Image.new("L", (bx1 - bx0, by1 - by0))
            ImageDraw.Draw(ref).text((-bx0, -by0), text, fill=255, font=font)
            assert np.array_equal(mask[y0:y1, x0:x1], np.asarray(ref)), (FONTS[font_idx], text)
            assert cap_top < baseline and baseline - cap_top > 0.5 * engine.size
            wide = engine.text_mask(font_idx, text, spacing=6.0)[0]
            assert wide.shape[1] == mask.shape[1] + 6 * (len(text) - 1)


# -- effects: p=0 is a no-op, p=1 does what it says ----------------------------------------------------


@pytest.mark.parametrize("name", fe.EFFECTS)
def test_p0_is_not_applied(make: Maker, name: str) -> None:
    base = make.engine(neutral())
    other = make.engine(neutral(**{name: {"p": 0.0}}))
    for k in range(3):
        a, b = compose(base, "Quaint", k), compose(other, "Quaint", k)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert name not in b[2]["params"]["effects"]


def test_skew_rotates_the_baseline(make: Maker) -> None:
    flat = compose(make.engine(neutral()), WIDE)[1]
    skewed = compose(make.engine(neutral(skew={"p": 1.0, "angle": [8.0, 8.0], "shear": [0.0, 0.0]})), WIDE)[1]
    x, _, bottom = ink_rows(flat)
    assert abs(np.polyfit(x, bottom, 1)[0]) < 0.02
    x, _, bottom = ink_rows(skewed)
    slope = np.polyfit(x, bottom, 1)[0]  # counter-clockwise: the right end rises (y down)
    assert slope == pytest.approx(-math.tan(math.radians(8)), abs=0.03)


def test_shear_leans_the_glyphs(make: Maker) -> None:
    def lean(mask: np.ndarray) -> float:
        # left edge of the first stem at its top and bottom rows: x shift per row up
        ink = mask >= 128
        rows = np.flatnonzero(ink.any(axis=1))
        top, bottom = rows[2], rows[-3]
        return (np.flatnonzero(ink[top])[0] - np.flatnonzero(ink[bottom])[0]) / (bottom - top)

    assert abs(lean(compose(make.engine(neutral()), "IIII")[1])) < 0.05
    engine = make.engine(neutral(skew={"p": 1.0, "angle": [0.0, 0.0], "shear": [0.3, 0.3]}))
    assert lean(compose(engine, "IIII")[1]) == pytest.approx(0.3, abs=0.06)  # tops lean right


def test_curve_bends_the_baseline_into_an_arc(make: Maker) -> None:
    x, _, bottom = ink_rows(compose(make.engine(neutral()), WIDE)[1])
    assert abs(np.polyfit(x, bottom, 2)[0]) < 2e-4
    engine = make.engine(neutral(curve={"p": 1.0, "bend": [0.8, 0.8]}))
    signs = set()
    for k in range(6):
        _, mask, info = compose(engine, WIDE, k)
        bend = info["params"]["effects"]["curve"]["bend"]
        x, _, bottom = ink_rows(mask)
        a = np.polyfit(x, bottom, 2)[0]  # arch (bend > 0): the ends sit lower, y grows away from the middle
        assert np.sign(a) == np.sign(bend) and abs(a) > 3e-4, (bend, a)
        signs.add(np.sign(bend))
    assert signs == {-1.0, 1.0}  # arches and smiles


def test_perspective_shrinks_the_moved_side(make: Maker) -> None:
    corners = {"offsets": [[0.0, 0.3], [0.0, 0.0], [0.0, 0.0], [0.0, -0.3]]}  # left edge 0.6 em shorter
    ratios = []
    for engine, edit in ((make.engine(neutral()), None),
                         (make.engine(neutral(perspective={"p": 1.0})), {"perspective": corners})):
        x, top, bottom = ink_rows(compose(engine, WIDE, edit=edit)[1])
        quarter = len(x) // 4
        ratios.append((bottom - top)[:quarter].mean() / (bottom - top)[-quarter:].mean())
    assert ratios[0] == pytest.approx(1.0, abs=0.05) and ratios[1] < 0.8


@pytest.mark.parametrize("kind", ["sine", "cosine", "random"])
def test_vertical_distortions_move_columns(make: Maker, kind: str) -> None:
    name = f"distortion_{kind}"
    fields = {"p": 1.0, "amplitude": [0.2, 0.2], "orientation": ["vertical"]}
    if kind != "random":
        fields["period"] = [3.0, 3.0]
    x, _, flat = ink_rows(compose(make.engine(neutral()), WIDE)[1])
    assert flat.std() < 0.6
    x, _, bottom = ink_rows(compose(make.engine(neutral(**{name: fields})), WIDE)[1])
    assert bottom.std() > 1.2
    roughness = np.abs(np.diff(bottom)).mean()
    if kind == "random":  # trdg's type 3: independent offsets per column
        assert roughness > 0.5
    else:  # a smooth wave: column to column the edge moves by a fraction of a pixel
        assert roughness < 0.5


def test_sine_and_cosine_differ_in_phase(make: Maker) -> None:
    fields = {"p": 1.0, "amplitude": [0.2, 0.2], "period": [3.0, 3.0], "orientation": ["vertical"]}
    _, _, sine = ink_rows(compose(make.engine(neutral(distortion_sine=fields)), WIDE)[1])
    _, _, cosine = ink_rows(compose(make.engine(neutral(distortion_cosine=fields)), WIDE)[1])
    n = min(len(sine), len(cosine))
    # a quarter period apart: at the start the sine rises from the middle, the cosine from its peak
    assert np.abs((sine - sine.mean())[:n] - (cosine - cosine.mean())[:n]).mean() > 1.0


def test_horizontal_distortion_moves_rows(make: Maker) -> None:
    fields = {"p": 1.0, "amplitude": [0.15, 0.15], "period": [1.0, 1.0], "orientation": ["horizontal"]}

    def left_edges(mask: np.ndarray) -> np.ndarray:
        ink = mask >= 128
        rows = np.flatnonzero(ink.any(axis=1))[3:-3]
        return np.array([np.flatnonzero(ink[r])[0] for r in rows], dtype=np.float64)

    assert left_edges(compose(make.engine(neutral()), "HIH")[1]).std() < 0.6
    assert left_edges(compose(make.engine(neutral(distortion_sine=fields)), "HIH")[1]).std() > 1.0


def _two_tone(**changes: dict) -> dict:
    # mid-grey background: the ink takes one extreme, stroke and shadow the other
    data = neutral(**changes)
    data["effects"]["background_plain"]["value"] = [128.0, 128.0]
    data["effects"]["text_color"].update(dark=[5.0, 5.0], light=[250.0, 250.0])
    return data


def test_stroke_adds_a_second_colour_around_the_glyphs(make: Maker) -> None:
    plain = make.engine(_two_tone())
    stroked = make.engine(_two_tone(stroke={"p": 1.0, "width": [0.1, 0.1]}))
    for k in range(4):
        image, mask, info = compose(plain, "Signage", k)
        grey = fx.luminance(image)
        ink_dark = info["colors"]["dark_ink"]
        second = grey > 220 if ink_dark else grey < 35
        assert second.sum() == 0
        image, mask, info = compose(stroked, "Signage", k)
        grey = fx.luminance(image)
        second = grey > 220 if ink_dark else grey < 35
        near = cv2.dilate((mask >= 128).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        assert second.sum() > 60 and near[second].all()
        assert info["colors"]["stroke"] != info["colors"]["ink"]


def test_shadow_is_an_offset_copy(make: Maker) -> None:
    engine = make.engine(_two_tone(shadow={"p": 1.0, "offset": [0.15, 0.15], "blur": [0.0, 0.0],
                                           "opacity": [1.0, 1.0]}))
    image, mask, info = compose(engine, "Shadow", 2)
    grey = fx.luminance(image)
    second = (grey > 220) if info["colors"]["dark_ink"] else (grey < 35)
    assert second.sum() > 30
    ys, xs = np.nonzero(second)
    iy, ix = np.nonzero(mask >= 128)
    direction = math.radians(info["params"]["effects"]["shadow"]["direction"])
    shift = (xs.mean() - ix.mean()) * math.cos(direction) + (ys.mean() - iy.mean()) * math.sin(direction)
    assert shift > 0.5  # the visible part of the shadow lies on the drawn side of the glyphs


def test_border_draws_a_box(make: Maker) -> None:
    def lines(image: np.ndarray) -> tuple[float, float]:
        """The most inked row of the top quarter and of the bottom quarter (fraction of the width)."""
        rows = (fx.luminance(image) < 100).mean(axis=1)
        quarter = len(rows) // 4
        return float(rows[:quarter].max()), float(rows[-quarter:].max())

    assert max(lines(compose(make.engine(neutral()), "box", 1)[0])) < 0.7
    engine = make.engine(neutral(border={"p": 1.0, "width": [0.06, 0.06], "pad": [0.1, 0.1]}))
    assert min(lines(compose(engine, "box", 1)[0])) > 0.8  # the frame's top and bottom lines


def test_character_spacing_widens_the_word(make: Maker) -> None:
    a = compose(make.engine(neutral()), "spacing", 0)[0]
    b = compose(make.engine(neutral(character_spacing={"p": 1.0, "spacing": [0.3, 0.3]})), "spacing", 0)[0]
    assert b.shape[1] > 1.3 * a.shape[1]


def test_margins(make: Maker) -> None:
    mask = compose(make.engine(neutral()), "Hgy", 0)[1]
    rows, cols = np.flatnonzero((mask > 0).any(axis=1)), np.flatnonzero((mask > 0).any(axis=0))
    assert rows[0] <= 2 and rows[-1] >= mask.shape[0] - 3  # tight without margins
    assert cols[0] <= 2 and cols[-1] >= mask.shape[1] - 3
    margins = {"p": 1.0, "top": [0.2, 0.2], "bottom": [0.1, 0.1], "left": [1.0, 1.0], "right": [0.5, 0.5]}
    mask = compose(make.engine(neutral(margins=margins)), "Hgy", 0)[1]
    rows, cols = np.flatnonzero((mask > 0).any(axis=1)), np.flatnonzero((mask > 0).any(axis=0))
    assert rows[0] >= round(0.2 * 32) - 1 and mask.shape[0] - 1 - rows[-1] >= round(0.1 * 32) - 1
    assert cols[0] >= 31 and mask.shape[1] - 1 - cols[-1] >= 15


def test_text_color_saturation(make: Maker) -> None:
    def spread(image: np.ndarray, mask: np.ndarray) -> float:
        ink = image[mask >= 250].astype(int)
        return float(np.median(ink.max(axis=1) - ink.min(axis=1)))

    assert spread(*compose(make.engine(neutral()), "colour", 3)[:2]) == 0
    engine = make.engine(neutral(text_color={"p": 1.0, "dark": [100.0, 100.0], "saturation": [1.0, 1.0]}))
    image, mask, info = compose(engine, "colour", 3)
    assert spread(image, mask) > 40
    rgb = info["colors"]["ink"]
    assert 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] == pytest.approx(100, abs=1.5)  # luma kept


@pytest.mark.parametrize("kind", ["noise", "plain", "image"])
def test_backgrounds(make: Maker, kind: str) -> None:
    data = neutral()
    data["effects"]["background_plain"]["p"] = 0.0
    data["effects"][f"background_{kind}"]["p"] = 1.0
    if kind == "image":
        data["effects"]["background_image"]["fade"] = [0.0, 0.0]
    image, mask, info = compose(make.engine(data), "back", 4)
    far = cv2.dilate(mask, np.ones((7, 7), np.uint8)) == 0
    pixels = image[far].astype(np.float64)
    assert info["params"]["background"]["kind"] == kind
    if kind == "plain":
        assert pixels.std() == 0 and (pixels == 235).all()
    elif kind == "noise":
        assert 2 < pixels.std() < 40
    else:
        assert info["params"]["background"]["photo"] in {"bricks.jpg", "city.jpg", "containers.jpg",
                                                          "water.jpg"}
        assert pixels.std(axis=0).max() > 3


@pytest.mark.parametrize("kind", ["gaussian", "motion"])
def test_blur_is_the_last_smoothing_and_lowers_detail(make: Maker, kind: str) -> None:
    clean = compose(make.engine(neutral()), "Detail", 1)[0]
    engine = make.engine(neutral(blur={"p": 1.0, "sigma": [1.0, 1.0], "kind": [kind]}))
    image, _, info = compose(engine, "Detail", 1)
    b = info["params"]["effects"]["blur"]
    assert np.array_equal(image, fx.blur(clean, 1.0, kind, b.get("angle", 0.0)))
    assert hf_energy(image) < 0.7 * hf_energy(clean)


@pytest.mark.parametrize("kind", ["grey", "colour"])
def test_noise_has_the_drawn_std(make: Maker, kind: str) -> None:
    clean = compose(make.engine(neutral()), "noise", 2)[0].astype(np.int32)
    engine = make.engine(neutral(noise={"p": 1.0, "sigma": [6.0, 6.0], "kind": [kind]}))
    image = compose(engine, "noise", 2)[0]
    diff = image.astype(np.int32) - clean
    free = (clean > 30).all(axis=2) & (clean < 225).all(axis=2)  # not clipped at either end
    assert diff[free].std() == pytest.approx(6.0, rel=0.2)
    same = (diff[..., 0] == diff[..., 1]).all() and (diff[..., 1] == diff[..., 2]).all()
    assert same == (kind == "grey")


def test_jpeg_artefacts_are_a_low_quality_round_trip(make: Maker) -> None:
    clean = compose(make.engine(neutral()), "artefact", 0)[0]
    image, _, info = compose(make.engine(neutral(jpeg={"p": 1.0, "quality": [15, 15]})), "artefact", 0)
    assert np.array_equal(image, fx.jpeg_artefacts(clean, 15))
    assert np.abs(image.astype(int) - clean).mean() > 0.5


# -- no clipping, legibility, drops --------------------------------------------------------------------


GEOMETRY = {
    "default": ("curve", "distortion_sine", "distortion_cosine", "distortion_random", "stroke",
                "character_spacing", "skew", "perspective"),
    "schema": ("curve", "distortion_sine", "distortion_cosine", "distortion_random", "stroke",
               "character_spacing", "skew", "perspective"),
    "warps": ("curve", "distortion_sine", "distortion_cosine", "distortion_random"),  # exact ink bounds
    "homography": ("skew", "perspective"),  # the box of the warped ink box
    "none": (),
}


def _extreme(limit: str) -> dict:
    """The geometric effects of GEOMETRY[limit] on at their largest value (the schema's bounds for
    "schema", else the default config's), margins of 1 px all round."""
    m = [0.035, 0.035]  # round(0.035 * 32) = 1 px
    data = neutral(margins={"p": 1.0, "top": m, "bottom": m, "left": m, "right": m})
    for name in GEOMETRY[limit]:
        fields = data["effects"][name]
        fields["p"] = 1.0
        for param, spec in fe.CONFIG_SCHEMA["effects"][name].items():
            if spec[0] == "range":
                hi = spec[2] if limit == "schema" else DEFAULT["effects"][name][param][1]
                fields[param] = [hi, hi]
    return data


@pytest.mark.parametrize("limit", list(GEOMETRY))
def test_no_clipping_under_extreme_geometry(make: Maker, limit: str) -> None:
    engine = make.engine(_extreme(limit))
    for word in (*TALL_WORDS, WIDE, "Ålborg"):
        for font in range(len(FONTS)):
            _, mask, _ = compose(engine, word, k=font, font=font)
            assert mask.max() >= (128 if limit != "schema" else 1), word
            # margins of 1 px all round: the whole text mask lies inside, clear of every edge
            edges = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
            assert edges.max() == 0, (word, engine.font_names[font])


def test_low_contrast_is_dropped_after_retries(make: Maker) -> None:
    data = neutral()
    data["effects"]["background_plain"]["value"] = [128.0, 128.0]
    data["effects"]["text_color"].update(dark=[120.0, 120.0], light=[136.0, 136.0])
    engine = make.engine(data)
    results = [engine.render(i) for i in range(5)]
    assert results and all(isinstance(r, Dropped) and r.reason in ("low_contrast", "label_too_long")
                           for r in results)
    assert any(r.reason == "low_contrast" for r in results)


def test_drops_before_rendering(make: Maker, tmp_path: Path) -> None:
    corpus = tmp_path / "bad.txt"
    corpus.write_text("!!!\n中文\n", encoding="utf-8")
    data = neutral()
    data["text"] = dict.fromkeys(data["text"], 0.0)  # no number variants: the corpus entries as they are
    cfg = make.config(data)
    engine = fe.FastEngine(EngineConfig(seed=0, corpus=corpus, fonts=make.fonts, charset="36", max_len=25,
                                        height=32, effects=cfg))
    reasons = {engine.render(i).reason for i in range(20)}
    assert reasons == {"empty_label"}
    engine = fe.FastEngine(EngineConfig(seed=0, corpus=corpus, fonts=make.fonts, charset="unicode",
                                        max_len=25, height=32, effects=cfg))
    results = [engine.render(i) for i in range(20)]
    no_font = [r for r in results if isinstance(r, Dropped)]
    assert no_font and all(r.reason == "no_font_for_text" and "中" in r.detail for r in no_font), no_font
    assert all(set(r.text.split()) == {"!!!"} for r in results if isinstance(r, Rendered))


# -- effects.py building blocks ------------------------------------------------------------------------


def _block(h: int = 40, w: int = 120) -> np.ndarray:
    img = np.zeros((h, w), np.uint8)
    img[5:h - 5, 5:w - 5] = 255
    return img


@pytest.mark.parametrize("warp", ["rotate", "perspective", "curve", "sine", "random"])
def test_geometry_keeps_all_ink(warp: str) -> None:
    img = _block()
    layers = np.dstack([img, img // 2])
    rng = np.random.default_rng(0)
    if warp == "rotate":
        out, mask = fx.skew(layers, img, 30.0, 0.2)
    elif warp == "perspective":
        out, mask, offsets = fx.perspective(layers, img, rng, 0.4)
        assert offsets.shape == (4, 2) and np.abs(offsets).max() <= 0.4 * 40
    elif warp == "curve":
        out, mask = fx.curve(layers, img, -25.0)
    else:
        out, mask = fx.distort(layers, img, warp, "both", 6.0, 50.0, rng)
    assert out.shape[:2] == mask.shape and out.shape[2] == 2
    assert np.array_equal(out[:, :, 0], mask)  # image and mask move together
    for edge in (mask[0], mask[-1], mask[:, 0], mask[:, -1]):
        assert edge.max() < 128  # the canvas grew: nothing was pushed out
    if warp != "perspective":  # area-preserving maps keep the ink mass
        assert mask.sum(dtype=np.int64) == pytest.approx(img.sum(dtype=np.int64), rel=0.06)


def test_legible_and_colour() -> None:
    mask = _block()
    black_on_white = np.where(mask[:, :, None] > 0, 0, 255).astype(np.uint8).repeat(3, axis=2)
    assert fx.legible(black_on_white, mask)
    assert not fx.legible(np.full((40, 120, 3), 128, np.uint8), mask)
    assert not fx.legible(black_on_white, np.zeros_like(mask))
    # black text in a dark halo on white: legible against the whole background, not against its surround
    text = np.zeros((60, 200), np.uint8)
    text[20:40, 50:150] = 255
    halo = cv2.dilate(text, np.ones((9, 9), np.uint8)) > text
    image = np.full((60, 200, 3), 255, np.uint8)
    image[text > 0], image[halo] = 0, 30
    assert fx.legible(image, text) and not fx.legible(image, text, ring=3)
    for lum, hue, sat in ((30, 0.1, 1.0), (128, 0.6, 0.7), (220, 0.9, 1.0)):
        r, g, b = fx.colour(lum, hue, sat)
        assert 0.299 * r + 0.587 * g + 0.114 * b == pytest.approx(lum, abs=1.0)
        assert max(r, g, b) - min(r, g, b) > 20
    assert fx.colour(77, 0.3, 0.0) == (77, 77, 77)


def test_photo_bank_and_crop(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "p.png"), photo)
    bank = fx.PhotoBank([tmp_path / "p.png"], max_height=200)
    assert bank.names == ["p.png"] and bank.photos[0][0].shape[0] == 200
    img, zoom = bank.crop(0, 32, 100, 1.5, 0.5, 0.5)
    assert img.shape == (32, 100, 3) and zoom == 1.5
    _, zoom = bank.crop(0, 32, 400, 5.0, 0.0, 0.0)  # too wide at zoom 5: the zoom shrinks to fit
    assert zoom == pytest.approx(333 / 400, abs=0.01)
    padded = fx.crop(np.ones((4, 4), np.uint8), -2, -1, 3, 5)
    assert padded.shape == (6, 5) and padded.sum() == 4 * 3 and padded[0].sum() == 0


def test_text_variants_follow_their_probabilities_and_zero_is_never_drawn() -> None:
    corpus = ["word"]
    variants = {"upper": 0.5, "title": 0.0, "punct": 0.0, "number": 0.0}
    texts = [draw_text(np.random.default_rng([3, i]), corpus, variants) for i in range(600)]
    words = [w for t in texts for w in t.split(" ")]
    assert set(words) == {"word", "WORD"}  # title (0) never: it would give "Word"
    assert 0.4 < words.count("WORD") / len(words) < 0.6
    counts = [t.count(" ") + 1 for t in texts]
    assert 0.7 < counts.count(1) / len(counts) < 0.9 and max(counts) <= 3


def test_noise_is_gaussian_of_sigma_grey_or_per_channel() -> None:
    img = np.full((32, 200, 3), 128, dtype=np.uint8)
    grey = fx.noise(img, np.random.default_rng(0), 8.0)
    colour = fx.noise(img, np.random.default_rng(0), 8.0, colour=True)
    assert (grey[:, :, 0] == grey[:, :, 2]).all() and not (colour[:, :, 0] == colour[:, :, 2]).all()
    for out in (grey, colour):
        d = out.astype(np.float64) - 128
        assert abs(d.mean()) < 0.6 and 7.5 < d.std() < 8.5
    bg = fx.noise_background(np.random.default_rng(1), 32, 200, 230.0, 10.0)
    assert bg.shape == (32, 200, 3) and abs(bg.mean() - 230) < 1.0 and 9.0 < bg[:, :, 0].std() < 11.0


def test_legible_matches_medians_means_and_stds_of_the_two_classes() -> None:
    rng = np.random.default_rng(5)
    mask = np.zeros((32, 120), dtype=np.uint8)
    cv2.putText(mask, "Abg", (2, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2, cv2.LINE_AA)
    for _ in range(60):
        a, b, spread = (int(v) for v in rng.integers(0, 256, 3))
        img = np.full((32, 120, 3), a, dtype=np.uint8)
        img[mask >= 128] = b
        img = cv2.add(img, rng.integers(0, spread // 2 + 1, img.shape, dtype=np.uint8))
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
        t, k = grey[mask >= 128], grey[mask == 0]
        want = (abs(np.median(t) - np.median(k)) >= 40
                and abs(t.mean() - k.mean()) / math.sqrt((t.var() + k.var()) / 2 + 1) >= 1.5)
        assert fx.legible(img, mask, 40, 1.5) == want
