"""rebusyn synth --engine scene: words composited onto photos and cut out as word crops.

Fixtures are written by code: background photos (JPEG/PNG with texture, plus broken and tiny files), a
corpus file, fonts copied from trdg's folder. Effects are checked by rendering the same index with the
effect at p=0 and p=1 (the engine draws every effect's values whether or not it applies, so nothing else
changes) and measuring what the effect must do to the pixels.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import logging
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image, ImageFont
from PIL.JpegImagePlugin import get_sampling

from rebusyn.sample import LabelPolicy
from rebusyn.synth import fonts as fontmod
from rebusyn.synth import scene_engine as se
from rebusyn.synth.config import SynthConfigError, default_config_path, load_config
from rebusyn.synth.engine import Dropped, EngineConfig, Rendered
from rebusyn.synth.run import CONFIG_KEY, SynthOptions, synthesize
from tests._source_helpers import read_synth_shards

DEFAULT = yaml.safe_load(default_config_path("scene").read_text())
FONTS = ("Roboto-Regular.ttf", "Pacifico.ttf", "Lato-HairlineItalic.ttf", "OpenSans-Italic.ttf")
TALL_WORDS = "Äpfel\nÉQUIPÉ\njumpy\nÝggdrasil\nfjord\nQuaint\nÇà\nbdfhklgjpqy\n(Wj)\nÅngström"


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fonts_dir(tmp_path_factory: pytest.TempPathFactory, cache_env: None) -> Path:
    # cache_env: every test that analyses fonts keeps the font cache out of the user's ~/.cache
    out = tmp_path_factory.mktemp("fonts")
    for name in FONTS:
        shutil.copy(fontmod.trdg_fonts_dir() / name, out / name)
    return out


def _photo(rng: np.random.Generator, w: int, h: int, base: tuple[int, int, int], amp: float) -> np.ndarray:
    """A textured 'photo': a colour, low-frequency blobs and fine grain (RGB uint8)."""
    blobs = cv2.resize(rng.normal(0, 1, (h // 16 + 2, w // 16 + 2, 3)).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 0.3, (h, w, 3)).astype(np.float32)
    return np.clip(np.float32(base) + amp * (blobs + grain), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    Image.fromarray(_photo(rng, 480, 320, (120, 130, 110), 30)).save(out / "park.jpg", quality=90)
    Image.fromarray(_photo(rng, 400, 300, (200, 180, 150), 25)).save(out / "wall.jpg", quality=90)
    Image.fromarray(_photo(rng, 300, 420, (40, 50, 70), 20)).save(out / "night.png")
    (out / "sub").mkdir()
    Image.fromarray(_photo(rng, 640, 480, (90, 140, 200), 35)).save(out / "sub" / "sky.JPG", quality=90)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "words.txt"
    out.write_text("hello\nWorld\nstreet\nCafé\nsale\n42nd\nparking\nopen\n", encoding="utf-8")
    return out


def _config(tmp_path: Path, neutral: bool = True, **effects: dict) -> Path:
    """A scene config: the default one, or (neutral) every effect off except photo backgrounds and the
    most contrasting grey text; `effects` override fields of effects."""
    data = copy.deepcopy(DEFAULT)
    if neutral:
        for effect in data["effects"].values():
            effect["p"] = 0
        data["effects"]["background"]["p"] = 1
        data["effects"]["colour"].update(p=1, mono=1, vivid=0, tinted=0)
        data["text"] = {k: 0 for k in data["text"]}
    for name, fields in effects.items():
        data["effects"][name].update(fields)
    path = tmp_path / f"scene-{len(list(tmp_path.glob('scene-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _engine(tmp_path: Path, config: Path, backgrounds: Path, words: str | Path, fonts_dir: Path,
            fonts: tuple[str, ...] = ("Roboto-Regular.ttf",), height: int = 32) -> se.SceneEngine:
    if isinstance(words, str):
        corpus = tmp_path / f"corpus-{hashlib.sha1(words.encode()).hexdigest()[:8]}.txt"
        corpus.write_text(words, encoding="utf-8")
    else:
        corpus = words
    text = set(corpus.read_text(encoding="utf-8")) - {"\n"}
    infos = fontmod.analyze_fonts([fonts_dir / f for f in fonts], text | set(fontmod.PRINTABLE_ASCII))
    cfg = EngineConfig(seed=0, corpus=corpus, fonts=tuple((str(f.path), f.chars) for f in infos if f.usable),
                       charset="unicode", max_len=40, height=height,
                       effects=load_config(config, "scene", se.CONFIG_SCHEMA), backgrounds=backgrounds)
    return se.SceneEngine(cfg)


def _pairs(tmp_path: Path, photos: Path, fonts_dir: Path, effect: str, fields: dict, words: str = "EEEEEEEE",
           n: int = 8, backgrounds: Path | None = None, **base: dict
           ) -> list[tuple[se.Composite, se.Composite]]:
    """The same indices with `effect` off and on (both at attempt 0, so with the same parameters)."""
    off = _engine(tmp_path, _config(tmp_path, **base, **{effect: {**fields, "p": 0}}), backgrounds or photos,
                  words, fonts_dir)
    on = _engine(tmp_path, _config(tmp_path, **base, **{effect: {**fields, "p": 1}}), backgrounds or photos,
                 words, fonts_dir)
    out = []
    for i in range(n * 3):
        a, b = off.compose(i), on.compose(i)
        assert not isinstance(a, Dropped) or a.reason == "low_contrast", a
        if isinstance(a, Dropped) or isinstance(b, Dropped) or a.extra["attempt"] or b.extra["attempt"]:
            continue
        if effect not in ("background", "colour"):  # those two are recorded outside "effects"
            assert effect not in a.extra["effects"] and effect in b.extra["effects"]
        out.append((a, b))
        if len(out) == n:
            return out
    raise AssertionError(f"fewer than {n} comparable samples for {effect}")


def _grey(c: se.Composite) -> np.ndarray:
    return cv2.cvtColor(c.image, cv2.COLOR_BGR2GRAY).astype(np.float64)


def _high_freq(c: se.Composite) -> float:
    return float(np.mean(cv2.Laplacian(_grey(c), cv2.CV_64F) ** 2))


def _edges(c: se.Composite) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ink column: x, top row, bottom row of the text mask."""
    m = c.ink > 0.5
    cols = np.flatnonzero(m.any(axis=0))
    top = m[:, cols].argmax(axis=0)
    bottom = m.shape[0] - 1 - m[::-1, cols].argmax(axis=0)
    return cols.astype(np.float64), top.astype(np.float64), bottom.astype(np.float64)


# -- end to end ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, cache_env: None, fonts_dir: Path, photos: Path) -> dict:
    out = {}
    for name, workers, seed in (("w1", 1, 0), ("w2", 2, 0), ("seed1", 1, 1)):
        root = tmp_path_factory.mktemp(name)
        opts = SynthOptions(n=100 if seed == 0 else 30, root=root, engine="scene", seed=seed, workers=workers,
                            fonts=fonts_dir, backgrounds=photos, charset="94", progress=False)
        out[name] = (root, synthesize(opts))
    return out


def _read_shards(root: Path) -> tuple[list[tuple[bytes, str, dict]], list[bytes]]:
    return read_synth_shards(root, "scene", CONFIG_KEY)


def test_end_to_end_shards(runs: dict, photos: Path) -> None:
    root, summary = runs["w1"]
    assert summary.kept == 100 and summary.engine == "scene"
    assert summary.config and summary.config.startswith("scene.yaml@v1:")
    rows, configs = _read_shards(root)
    assert len(rows) == 100
    expected = load_config(default_config_path("scene"), "scene", se.CONFIG_SCHEMA)
    assert all(json.loads(c) == json.loads(expected.to_json()) for c in configs)
    names = {p.relative_to(photos).as_posix() for p in photos.rglob("*") if p.is_file()}
    policy = LabelPolicy("94", 25)
    for image, label, meta in rows:
        img = Image.open(io.BytesIO(image))
        img.load()
        assert img.format == "JPEG" and img.mode == "RGB" and get_sampling(img) == 0  # 4:4:4
        assert img.height == 32 and max(8, 32 // 4) <= img.width == meta["w"]
        assert label == policy.normalize(meta["label_raw"])[0]
        assert meta["config"] == summary.config and meta["engine"].startswith("rebusyn scene")
        assert meta["font"] in FONTS and meta["key"] == f"scene/0/{meta['index']}"
        assert 0 <= meta["attempt"] < se.MAX_ATTEMPTS
        background = meta["background"]
        if background["kind"] == "photo":
            assert background["file"] in names
            x, y, w, h = background["window"]
            with Image.open(photos / background["file"]) as photo:
                assert x >= 0 and y >= 0 and x + w <= photo.width + 1 and y + h <= photo.height + 1
    kinds = {meta["background"]["kind"] for *_, meta in rows}
    assert "photo" in kinds
    applied = {name for *_, meta in rows for name in meta["effects"]}
    assert {"rotation", "perspective", "blur", "margin", "blend_softness"} <= applied


def test_same_bytes_whatever_workers_and_seed_matters(runs: dict) -> None:
    a = pq.read_table(runs["w1"][1].index).to_pandas()
    b = pq.read_table(runs["w2"][1].index).to_pandas()
    c = pq.read_table(runs["seed1"][1].index).to_pandas()
    assert list(a["sha1"]) == list(b["sha1"]) and list(a["label"]) == list(b["label"])
    assert runs["w1"][1].dropped == runs["w2"][1].dropped
    assert not set(a["sha1"]) & set(c["sha1"])


# -- config and inputs ------------------------------------------------------------------------------------


def test_config_errors_name_file_and_field(tmp_path: Path, cache_env: None, fonts_dir: Path) -> None:
    bad = _config(tmp_path, neutral=False, rotation={"angle": [-45, 5]})
    with pytest.raises(SynthConfigError, match=rf"{bad.name}.*effects\.rotation\.angle"):
        synthesize(SynthOptions(n=5, root=tmp_path / "r1", engine="scene", config=bad, fonts=fonts_dir,
                                progress=False))
    data = copy.deepcopy(DEFAULT)
    del data["effects"]["jpeg"]
    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump(data))
    with pytest.raises(SynthConfigError, match=r"missing\.yaml.*effects\.jpeg.*missing"):
        load_config(missing, "scene", se.CONFIG_SCHEMA)
    zero = _config(tmp_path, colour={"mono": 0, "vivid": 0, "tinted": 0})
    with pytest.raises(SynthConfigError, match=rf"{zero.name}.*effects\.colour"):
        se.check_config(load_config(zero, "scene", se.CONFIG_SCHEMA))
    # through synthesize with a pool: the engine's prepare() raises it in the main process, before any fork
    with pytest.raises(SynthConfigError, match=r"effects\.colour"):
        synthesize(SynthOptions(n=5, root=tmp_path / "r2", engine="scene", config=zero, fonts=fonts_dir,
                                workers=2, progress=False))


@pytest.mark.timeout(60)
def test_unusable_backgrounds_fail_clearly(tmp_path: Path, cache_env: None, fonts_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for folder, message in ((empty, "no image file"), (broken, "none readable")):
        with pytest.raises(ValueError, match=rf"{folder.name}.*no usable photo.*{message}"):
            se.load_backgrounds(folder)
        for workers in (1, 2):  # raised by prepare() in the main process, before any worker starts
            with pytest.raises(ValueError, match=rf"{folder.name}.*no usable photo"):
                synthesize(SynthOptions(n=5, root=tmp_path / f"r-{folder.name}-{workers}", engine="scene",
                                        backgrounds=folder, fonts=fonts_dir, workers=workers, progress=False))


def test_backgrounds_budget_order_and_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "bg"
    folder.mkdir()
    rng = np.random.default_rng(1)
    names = [f"p{k}.jpg" for k in range(6)]
    for name in names:
        Image.fromarray(_photo(rng, 200, 150, (100, 100, 100), 30)).save(folder / name, quality=90)
    (folder / "broken.jpg").write_bytes(b"garbage")
    Image.fromarray(_photo(rng, 20, 20, (100, 100, 100), 30)).save(folder / "tiny.png")
    with caplog.at_level(logging.WARNING, logger="rebusyn.synth.scene_engine"):
        everything = se.load_backgrounds(folder, max_side=100)
    assert "broken.jpg" in caplog.text and "tiny.png" in caplog.text
    assert sorted(b.name for b in everything) == names
    for b in everything:
        assert b.image.shape == (75, 100, 3) and b.image.dtype == np.uint8 and b.scale == 0.5
    # the order is the sha1 of the relative path; a budget of 3 copies keeps the first 3 of that order
    order = [b.name for b in everything]
    assert order == sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    three = se.load_backgrounds(folder, max_side=100, budget_bytes=3 * 75 * 100 * 3 + 10)
    assert [b.name for b in three] == order[:3]
    # BGR copies of the RGB file
    rgb = np.asarray(Image.open(folder / order[0]).convert("RGB").resize((100, 75)), dtype=np.float64)
    assert np.abs(everything[0].image[:, :, ::-1] - rgb).mean() < 8


def test_legible() -> None:
    grey = np.full((20, 60), 200, np.uint8)
    text = np.zeros((20, 60), bool)
    text[5:15, 10:50:3] = True
    grey[text] = 30
    assert se.legible(grey, text)
    assert not se.legible(np.full((20, 60), 200, np.uint8), text)  # no contrast
    assert not se.legible(grey, np.zeros_like(text)) and not se.legible(grey, np.ones_like(text))
    noisy = np.random.default_rng(0).integers(0, 256, (20, 60)).astype(np.uint8)
    noisy[text] = 60  # medians differ, but the background's spread swamps the difference
    assert not se.legible(noisy, text)


def _ink(font: ImageFont.FreeTypeFont, text: str) -> int:
    mask = font.getmask(text, "L")
    return int(np.asarray(mask, dtype=np.int64).reshape(mask.size[::-1]).sum())


def test_text_mask_keeps_every_glyph(fonts_dir: Path) -> None:
    for name in ("Pacifico.ttf", "OpenSans-Italic.ttf", "Roboto-Regular.ttf"):
        path = str(fonts_dir / name)
        font = ImageFont.truetype(path, 48, layout_engine=ImageFont.Layout.BASIC)
        for text in ("Jgfy", "Äpfel ÝQ", "f(j)"):
            # glyphs far apart do not overlap: the mask holds exactly the ink of every glyph
            spaced = se.text_mask(path, 48, text, 30.0)
            assert spaced.astype(np.int64).sum() == sum(_ink(font, c) for c in text if c != " "), (name, text)
            assert spaced[0].any() and spaced[-1].any() and spaced[:, 0].any() and spaced[:, -1].any()
            # as Pillow lays out the line (kerning and overlaps aside): the same ink, the same height
            tight = se.text_mask(path, 48, text)
            assert abs(int(tight.astype(np.int64).sum()) - _ink(font, text)) < 0.05 * _ink(font, text)
            assert spaced.shape[1] >= tight.shape[1] + 30 * (len(text) - 1) - 2
            thick = se.text_mask(path, 48, text, stroke=2)
            assert thick.shape[0] == tight.shape[0] + 4 and (thick > 127).sum() > (tight > 127).sum()


# -- geometry: never clip ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sign,height", [(1, 32), (-1, 32), (1, 64), (-1, 16)])
def test_no_clipping_at_maximum_geometry(tmp_path: Path, photos: Path, fonts_dir: Path, sign: int,
                                         height: int) -> None:
    config = _config(tmp_path, perspective={"p": 1, "strength": [0.3, 0.3]},
                     rotation={"p": 1, "angle": [30 * sign, 30 * sign]},
                     shear={"p": 1, "factor": [0.6 * sign, 0.6 * sign]},
                     curve={"p": 1, "amplitude": [1.0, 1.0], "max_chars": 100},
                     distortion={"p": 1, "amplitude": [0.3, 0.3], "kind": ["random", "sine"]},
                     outline={"p": 1, "width": [0.2, 0.2]}, spacing={"p": 1, "em": [0.5, 0.5]},
                     shadow={"p": 1}, blur={"p": 1})
    engine = _engine(tmp_path, config, photos, TALL_WORDS, fonts_dir,
                     fonts=("Roboto-Regular.ttf", "Pacifico.ttf", "Lato-HairlineItalic.ttf"), height=height)
    n = 40 if height == 32 else 15
    kept = 0
    for i in range(n):
        c = engine.compose(i)
        if isinstance(c, Dropped):
            assert c.reason == "low_contrast", c  # never render_error (e.g. ink reaching a border)
            continue
        kept += 1
        assert c.image.shape[0] == height and c.ink.shape == c.image.shape[:2]
        assert (c.ink > 0.5).any() and c.ink.sum() > 3
        border = np.concatenate([c.ink[0], c.ink[-1], c.ink[:, 0], c.ink[:, -1]])
        assert border.max() == 0, (i, c.text)
        assert c.label == c.text  # unicode charset: the label is the drawn text
        assert {"perspective", "rotation", "shear", "outline"} <= set(c.extra["effects"])
    assert kept >= n * 0.7


def test_one_character_crops_have_a_sane_aspect(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    engine = _engine(tmp_path, default_config_path("scene"), photos, "i\nl\nW\n1\n", fonts_dir,
                     fonts=("Roboto-Regular.ttf", "Pacifico.ttf"))
    widths = []
    for i in range(30):
        r = engine.render(i)
        if isinstance(r, Rendered) and len(r.text) == 1:
            widths.append(r.width)
            assert r.height == 32 and max(8, 32 // 4) <= r.width <= 3 * 32, (r.text, r.width)
    assert len(widths) >= 10


def test_hairline_fonts_are_thickened(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    engine = _engine(tmp_path, _config(tmp_path), photos, "minimum\n", fonts_dir,
                     fonts=("Lato-HairlineItalic.ttf",))
    c = engine.compose(0)
    assert isinstance(c, se.Composite) and "thicken" in c.extra
    core = (c.ink > 0.5).sum() / max((c.ink > 0.05).sum(), 1)
    assert core > 0.4  # most of the text is solid ink, not sub-pixel hairlines
    regular = _engine(tmp_path, _config(tmp_path), photos, "minimum\n", fonts_dir).compose(0)
    assert "thicken" not in regular.extra


# -- every effect at p=1 does what it says; at p=0 nothing -------------------------------------------------


def test_rotation_turns_the_baseline(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    for off, on in _pairs(tmp_path, photos, fonts_dir, "rotation", {"angle": [20, 20]}):
        for c, expected in ((off, 0.0), (on, -math.tan(math.radians(20)))):  # y grows downwards
            x, top, bottom = _edges(c)
            slope = np.polyfit(x, bottom, 1)[0]
            assert abs(slope - expected) < 0.08, (c.text, slope, expected)


def test_shear_leans_the_glyphs(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    for off, on in _pairs(tmp_path, photos, fonts_dir, "shear", {"factor": [0.5, 0.5]}):
        slopes = []
        for c in (off, on):
            m = c.ink > 0.5
            rows = np.flatnonzero(m.any(axis=1))
            left = m[rows].argmax(axis=1)  # the first E's stem
            slopes.append(np.polyfit(rows, left, 1)[0])
        assert abs(slopes[0]) < 0.08 and slopes[1] < -0.3, slopes  # top leans right


def test_curve_and_distortion_bend_the_baseline(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    for off, on in _pairs(tmp_path, photos, fonts_dir, "curve",
                          {"amplitude": [0.5, 0.5], "kind": ["arc"], "max_chars": 100}):
        x, _, bottom_off = _edges(off)
        assert np.ptp(bottom_off) <= 1
        x, _, bottom = _edges(on)
        curvature = np.polyfit(x / x.max(), bottom, 2)[0]
        assert abs(curvature) > 0.25 * (bottom.max() - _edges(on)[1].min()) / 2, curvature
    for off, on in _pairs(tmp_path, photos, fonts_dir, "distortion",
                          {"amplitude": [0.25, 0.25], "kind": ["random"]}):
        jagged = [np.abs(np.diff(_edges(c)[2])).mean() for c in (off, on)]
        assert jagged[0] < 0.2 and jagged[1] > 0.6, jagged


def test_perspective_changes_the_word_shape(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    changed = 0
    for off, on in _pairs(tmp_path, photos, fonts_dir, "perspective", {"strength": [0.3, 0.3]}, words="EEE"):
        x, top, bottom = _edges(off)
        assert np.ptp(top) <= 1 and np.ptp(bottom) <= 1
        x, top, bottom = _edges(on)
        height = bottom - top
        measures = (np.polyfit(x, top, 1)[0], np.polyfit(x, bottom, 1)[0],
                    np.polyfit(x, height, 1)[0] * np.ptp(x) / height.mean())
        changed += max(abs(v) for v in measures) > 0.04
        assert len(on.extra["effects"]["perspective"]["corners"]) == 4
    assert changed >= 6


def test_spacing_and_margin_change_the_cut(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    for off, on in _pairs(tmp_path, photos, fonts_dir, "spacing", {"em": [0.4, 0.4]}):
        extra_px = 0.4 * on.extra["font_size"] * (len(on.text) - 1)
        assert on.extra["cut"]["ink"][0] - off.extra["cut"]["ink"][0] == pytest.approx(extra_px, abs=3)
    for off, on in _pairs(tmp_path, photos, fonts_dir, "margin", {"vertical": [0.5, 0.5],
                                                                  "horizontal": [1.0, 1.0]}):
        rows = [np.ptp(np.flatnonzero((c.ink > 0.5).any(axis=1))) + 1 for c in (off, on)]
        assert rows[0] >= 0.75 * 32 and rows[1] <= 0.55 * 32, rows
        bw, bh = on.extra["cut"]["ink"]
        assert on.extra["cut"]["margins"] == [bh, round(0.5 * bh), bh, round(0.5 * bh)]


def test_blur_and_blend_softness_remove_high_frequencies(tmp_path: Path, photos: Path, fonts_dir: Path
                                                         ) -> None:
    plain = {"background": {"p": 0, "synthetic": ["plain"]}}
    for kind in ("gaussian", "motion"):
        for off, on in _pairs(tmp_path, photos, fonts_dir, "blur", {"sigma": [1.5, 1.5], "kind": [kind]}):
            assert _high_freq(on) < 0.6 * _high_freq(off)
            assert on.extra["effects"]["blur"]["kind"] == kind
    for off, on in _pairs(tmp_path, photos, fonts_dir, "blend_softness", {"sigma": [1.5, 1.5]}, **plain):
        assert _high_freq(on) < 0.6 * _high_freq(off)
        far = cv2.dilate((off.ink > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
        assert np.array_equal(on.image[far], off.image[far])  # only the text's edges change


def test_noise_and_jpeg_artefacts(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    mid = {"background": {"p": 0, "synthetic": ["noise"]}}
    for off, on in _pairs(tmp_path, photos, fonts_dir, "noise", {"sigma": [8, 8]}, **mid):
        residual = on.image.astype(np.float64) - off.image
        assert 6.5 < residual.std() < 9.5 and abs(residual.mean()) < 1.5

    def blockiness(c: se.Composite) -> float:
        steps = np.abs(np.diff(_grey(c), axis=1))
        at_edges = steps[:, 7::8].mean()
        return at_edges / steps.mean()

    for off, on in _pairs(tmp_path, photos, fonts_dir, "jpeg", {"quality": [5, 5]}, words="streetlights"):
        assert blockiness(on) > 1.2 * blockiness(off)
        assert on.extra["effects"]["jpeg"] == {"quality": 5}


def test_shadow_darkens_around_the_text(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    plain = {"background": {"p": 0, "synthetic": ["plain"]}}
    for off, on in _pairs(tmp_path, photos, fonts_dir, "shadow",
                          {"offset": [0.12, 0.12], "sigma": [0.5, 0.5], "opacity": [0.8, 0.8]}, **plain):
        outside = off.ink == 0
        before, after = _grey(off)[outside], _grey(on)[outside]
        assert (after <= before + 1).all()
        lit = before > 40
        assert (after[lit] < 0.45 * before[lit]).sum() > 10


def test_outline_adds_a_second_colour_around_the_glyphs(tmp_path: Path, photos: Path, fonts_dir: Path
                                                        ) -> None:
    plain = {"background": {"p": 0, "synthetic": ["plain"]}}
    checked = 0
    for off, on in _pairs(tmp_path, photos, fonts_dir, "outline", {"width": [0.15, 0.15]}, n=12, **plain):
        colour = on.extra["effects"]["outline"]["colour"]
        level = int(colour[1:3], 16)
        rings = [(cv2.dilate((c.ink > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & (c.ink == 0)
                 for c in (off, on)]
        assert rings[1].sum() > 20
        assert abs(np.median(_grey(on)[rings[1]]) - level) < 25  # around the glyphs: the outline colour
        background = np.median(_grey(off)[off.ink == 0])
        if abs(background - level) < 60:
            continue  # outline and background alike (the outline contrasts with the text, as the background)
        checked += 1
        assert abs(np.median(_grey(off)[rings[0]]) - background) < 10  # without: the background
    assert checked >= 2


def test_opacity_and_texture(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    plain = {"background": {"p": 0, "synthetic": ["plain"]}}

    def contrast(c: se.Composite) -> float:
        g = _grey(c)
        return abs(np.median(g[c.ink > 0.95]) - np.median(g[c.ink == 0]))

    for off, on in _pairs(tmp_path, photos, fonts_dir, "opacity", {"alpha": [0.6, 0.6]}, **plain):
        assert contrast(on) == pytest.approx(0.6 * contrast(off), abs=6)
    dark = tmp_path / "dark"
    dark.mkdir()
    Image.fromarray(_photo(np.random.default_rng(3), 400, 300, (50, 50, 50), 35)).save(dark / "d.png")
    for off, on in _pairs(tmp_path, photos, fonts_dir, "texture", {"strength": [1.0, 1.0]}, backgrounds=dark):
        spread = [_grey(c)[c.ink > 0.99].std() for c in (off, on)]
        assert spread[0] < 2 and spread[1] > 8, spread  # light text takes the photo's texture


def test_background_kinds(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    for kind, low, high in (("plain", 0.0, 0.5), ("noise", 7.0, 13.0)):
        # background off (p=0): a synthetic background; on: a window of a photo
        for synthetic, photo in _pairs(tmp_path, photos, fonts_dir, "background", {"synthetic": [kind]},
                                       n=4):
            assert synthetic.extra["background"]["kind"] == kind
            assert photo.extra["background"]["kind"] == "photo"
            away = cv2.dilate((synthetic.ink > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) == 0
            assert low <= _grey(synthetic)[away].std() <= high
            assert _grey(photo)[away].std() > 3


def test_colour_strategies_and_pick(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    import colorsys

    for strategy in ("mono", "vivid"):
        weights = {s: float(s == strategy) for s in se.STRATEGIES}
        config = _config(tmp_path, colour={**weights, "p": 1})
        engine = _engine(tmp_path, config, photos, "hello\n", fonts_dir)
        for i in range(12):
            c = engine.compose(i)
            if isinstance(c, Dropped):
                continue
            assert c.extra["colour"]["strategy"] == strategy and c.extra["colour"]["pick"] == "max"
            rgb = [int(c.extra["text_colour"][k:k + 2], 16) for k in (1, 3, 5)]
            if strategy == "mono":
                assert max(rgb) - min(rgb) <= 17, rgb  # a grey, give or take the jitter
            elif max(rgb) > 40:
                assert colorsys.rgb_to_hsv(*(v / 255 for v in rgb))[1] > 0.35, rgb
    config = _config(tmp_path, colour={"p": 0, "min_delta": 60})
    engine = _engine(tmp_path, config, photos, "hello\n", fonts_dir)
    picks = [c.extra["colour"] for c in map(engine.compose, range(20)) if not isinstance(c, Dropped)]
    assert {p["pick"] for p in picks} <= {"random", "max"} and any(p["pick"] == "random" for p in picks)
    assert all(p["delta"] >= 60 for p in picks if p["pick"] == "random")


def test_low_contrast_is_dropped(tmp_path: Path, fonts_dir: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (300, 400, 3)).astype(np.uint8)).save(
        static / "tv.png")
    config = _config(tmp_path, opacity={"p": 1, "alpha": [0.3, 0.3]}, background={"scale": [0.5, 0.5]})
    engine = _engine(tmp_path, config, static, "hello\n", fonts_dir)
    results = [engine.render(i) for i in range(5)]
    assert all(isinstance(r, Dropped) and r.reason == "low_contrast" for r in results)


def test_prepare_checks_and_caches_in_the_parent(tmp_path: Path, photos: Path, fonts_dir: Path) -> None:
    zero = _config(tmp_path, colour={"mono": 0, "vivid": 0, "tinted": 0})
    base = EngineConfig(seed=0, corpus=None, fonts=(), charset="36", max_len=25, height=32)
    with pytest.raises(SynthConfigError, match=r"effects\.colour"):
        se.prepare(dataclasses.replace(base, effects=load_config(zero, "scene", se.CONFIG_SCHEMA)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no usable photo"):
        se.prepare(dataclasses.replace(base, backgrounds=empty))
    se.prepare(dataclasses.replace(base, backgrounds=photos))
    hits = se._cached_backgrounds.cache_info().hits
    engine = _engine(tmp_path, _config(tmp_path), photos, "hello\n", fonts_dir)
    assert se._cached_backgrounds.cache_info().hits == hits + 1  # decoded once, by prepare
    assert sorted(b.name for b in engine.backgrounds) == ["night.png", "park.jpg", "sub/sky.JPG", "wall.jpg"]
