"""A sample of SVT (Street View Text) in its native layout: `svt.zip` with `svt1/train.xml`,
`svt1/test.xml` and `svt1/img/*.jpg`, plus the Jyouhou case-sensitive relabel zip
(`_case_sensitive_pinned.py`).

The XML follows the excerpt in MMOCR's `dataset_zoo/svt/sample_anno.md`: `<tagset>` of `<image>` elements
with `imageName`, `address`, `lex` (the lexicon on its own indented line, with a duplicate word),
`Resolution x= y=` and `taggedRectangles` of `taggedRectangle height= width= x= y=` with an upper-case
`<tag>`. Traps: boxes starting at negative x or y and boxes reaching past the right or bottom edge (clipped
by the parser), an `&amp;` entity in an address, an apostrophe and mixed case only in the case-sensitive
relabels, image names that are not in XML order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from rebusyn.samplegen._benchmark_scene import bounding_box
from rebusyn.samplegen._rrc_scene import jpeg
from rebusyn.samplegen.archive import write_zip
from rebusyn.samplegen.scene import render_scene

ARCHIVE = "svt.zip"
TOP = "svt1"
SEED = 2011


@dataclass(frozen=True)
class Tag:
    """An annotated word: the upper-case tag, Long & Yao's relabel, and a planted box error."""

    text: str
    case_sensitive: str
    trap: str = ""  # neg_x | neg_y | over_x | over_y


@dataclass(frozen=True)
class SceneSpec:
    name: str
    address: str
    size: tuple[int, int]  # the canvas it is rendered on
    tags: tuple[Tag, ...]


SPLITS: dict[str, tuple[SceneSpec, ...]] = {
    "train": (
        SceneSpec(
            "img/14_03.jpg",
            "341 Southwest 10th Avenue Portland OR",
            (560, 400),
            (Tag("LIVING", "Living", "neg_x"), Tag("ROOM", "Room"), Tag("THEATERS", "Theaters")),
        ),
        SceneSpec(
            "img/00_12.jpg",
            "1 Market St & Spear St San Francisco CA",
            (520, 380),
            (Tag("SAFEWAY", "SAFEWAY"), Tag("PHARMACY", "Pharmacy", "over_x")),
        ),
        SceneSpec(
            "img/08_07.jpg",
            "1528 NW Glisan St Portland OR",
            (560, 400),
            (Tag("MARTINOTTIS", "Martinotti's", "neg_y"), Tag("CAFE", "Cafe")),
        ),
    ),
    "test": (
        SceneSpec(
            "img/19_20.jpg",
            "2930 Ocean Ave Brooklyn NY",
            (560, 400),
            (Tag("HOTEL", "Hotel"), Tag("BOOKS", "BOOKS", "over_y"), Tag("CITY", "City")),
        ),
        SceneSpec(
            "img/03_05.jpg",
            "77 Broadway & 4th St New York NY",
            (600, 420),
            (Tag("PIZZA", "Pizza"), Tag("PASTA", "Pasta", "neg_x"), Tag("DELI", "Deli")),
        ),
        SceneSpec(
            "img/12_01.jpg",
            "500 Main St Houston TX",
            (520, 380),
            (Tag("BANK", "Bank", "neg_y"), Tag("AMERICA", "America")),
        ),
        SceneSpec(
            "img/05_14.jpg",
            "10 Rue Street Montreal QC",
            (560, 400),
            (Tag("GARAGE", "Garage", "over_x"), Tag("RED", "Red"), Tag("CAP", "Cap")),
        ),
    ),
}
_LEX_EXTRA = ("COMMON", "ACE", "PORTLAND", "ROSE", "COFFEE", "RESTAURANT", "LOUNGE", "RESTAURANT")


@dataclass(frozen=True)
class Scene:
    spec: SceneSpec
    pixels: np.ndarray
    size: tuple[int, int]  # width, height (a trap scene is cut smaller than the spec's canvas)
    boxes: tuple[tuple[int, int, int, int], ...]  # annotated x, y, width, height (traps applied)
    words: tuple[tuple[int, int, int, int], ...]  # where the word's pixels really are: x0, y0, x1, y1


def clipped(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The annotated box (x, y, w, h) clipped to the image: x0, y0, x1, y1 (what the crop must cover)."""
    x, y, w, h = box
    return max(x, 0), max(y, 0), min(x + w, size[0]), min(y + h, size[1])


def _annotate(trap: str, word: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = word
    if trap == "neg_x":
        x0 = -4
    elif trap == "neg_y":
        y0 = -5
    elif trap == "over_x":
        x1 = size[0] + 6
    elif trap == "over_y":
        y1 = size[1] + 4
    return x0, y0, x1 - x0, y1 - y0


def _touch_edge(
    pixels: np.ndarray, words: list[tuple[int, int, int, int]], traps: list[str]
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]] | None:
    """Cut the scene so each trap word ends 3 px from its edge (where real SVT boxes overshoot the image);
    None when another word lies beyond the trap word (the cut would cut into it)."""
    for i, trap in enumerate(traps):
        if not trap:
            continue
        x0, y0, x1, y1 = words[i]
        if trap == "neg_x" and x0 == min(w[0] for w in words):
            cut = x0 - 3
            pixels, words = pixels[:, cut:], [(a - cut, b, c - cut, d) for a, b, c, d in words]
        elif trap == "neg_y" and y0 == min(w[1] for w in words):
            cut = y0 - 3
            pixels, words = pixels[cut:], [(a, b - cut, c, d - cut) for a, b, c, d in words]
        elif trap == "over_x" and x1 == max(w[2] for w in words):
            pixels = pixels[:, : x1 + 3]
        elif trap == "over_y" and y1 == max(w[3] for w in words):
            pixels = pixels[: y1 + 3]
        else:
            return None
    return np.ascontiguousarray(pixels), words


@lru_cache(maxsize=2)
def scenes(seed: int = SEED) -> dict[str, tuple[Scene, ...]]:
    """Render every scene until all of its words fit, then cut it so that trap words touch the border
    (deterministic for the seed)."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[Scene, ...]] = {}
    for split, specs in SPLITS.items():
        done = []
        for spec in specs:
            for _ in range(100):
                pixels, placed = render_scene(rng, [(t.text, True) for t in spec.tags], *spec.size)
                if [p.text for p in placed] != [t.text for t in spec.tags]:
                    continue
                cut = _touch_edge(pixels, [bounding_box(p.quad) for p in placed], [t.trap for t in spec.tags])
                if cut is not None:
                    break
            else:
                raise RuntimeError(f"could not place the words of {spec.name}")
            pixels, words = cut
            size = (pixels.shape[1], pixels.shape[0])
            boxes = tuple(_annotate(t.trap, w, size) for t, w in zip(spec.tags, words))
            done.append(Scene(spec, pixels, size, boxes, tuple(words)))
        out[split] = tuple(done)
    return out


def case_sensitive_crops(split: str, seed: int = SEED) -> list[tuple[str, np.ndarray]]:
    """(relabel, crop pixels) of every word of the split in XML order: the clipped annotated box."""
    out = []
    for sc in scenes(seed)[split]:
        for tag, box in zip(sc.spec.tags, sc.boxes):
            x0, y0, x1, y1 = clipped(box, sc.size)
            out.append((tag.case_sensitive, sc.pixels[y0:y1, x0:x1].copy()))
    return out


def xml_text(split: str, seed: int = SEED) -> str:
    lines = ["<tagset>"]
    for sc in scenes(seed)[split]:
        spec = sc.spec
        lex = ",".join([t.text for t in spec.tags] + list(_LEX_EXTRA))
        lines += [
            "  <image>",
            f"    <imageName>{spec.name}</imageName>",
            f"    <address>{escape(spec.address)}</address>",
            "    <lex>",
            f"    {lex}",
            "    </lex>",
            f'    <Resolution x="{sc.size[0]}" y="{sc.size[1]}"/>',
            "    <taggedRectangles>",
        ]
        for tag, (x, y, w, h) in zip(spec.tags, sc.boxes):
            lines += [
                f'      <taggedRectangle height="{h}" width="{w}" x="{x}" y="{y}">',
                f"        <tag>{escape(tag.text)}</tag>",
                "      </taggedRectangle>",
            ]
        lines += ["    </taggedRectangles>", "  </image>"]
    lines.append("</tagset>")
    return "\n".join(lines) + "\n"


def members(seed: int = SEED) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for split, split_scenes in scenes(seed).items():
        files[f"{TOP}/{split}.xml"] = xml_text(split, seed).encode("utf-8")
        for sc in split_scenes:
            files[f"{TOP}/{sc.spec.name}"] = jpeg(sc.pixels, 88)
    return files


def write(out_dir: Path, *, seed: int = SEED) -> list[Path]:
    """svt.zip and the Jyouhou case-sensitive relabel zip."""
    from rebusyn.samplegen import _case_sensitive_pinned

    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_zip(out_dir / ARCHIVE, members(seed)), *_case_sensitive_pinned.write(out_dir)]
