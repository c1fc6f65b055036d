"""Preview sheets: a grid of word crops with their labels (and raw labels where they differ).

`rebusyn preview ROOT|MANIFEST` draws random rows (optionally of some sources only) with a seed, reads their
stored bytes from the LMDB shards and lays them out; `preview_sheet` only lays out what it is given."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, ImageDraw, ImageFont

from rebusyn.loaders.hf import LmdbImages, resolve
from rebusyn.samplegen.scene import load_font

CELL_W, CELL_H, CAPTION_H = 200, 48, 33
DEFAULT_N = 64
# What PIL raises on bytes it cannot read (truncated, not an image, a decompression bomb).
_UNDECODABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


@dataclass(frozen=True)
class PreviewSummary:
    out: Path
    shown: int
    rows: int  # rows the sample was drawn from (after --source/--group)
    sources: dict[str, int]  # shown per source
    undecodable: int
    elapsed_s: float


def pick_rows(
    path: str | Path,
    *,
    n: int = DEFAULT_N,
    seed: int = 0,
    sources: Sequence[str] = (),
    groups: Sequence[str] = (),
    split: str = "train",
    per_source: int | None = None,
    root: str | Path | None = None,
) -> tuple[Path, pa.Table, int]:
    """(dataset root, `n` rows drawn without replacement in a seeded random order, rows drawn from).

    `path` is a root or a manifest; `sources`/`groups` keep only those (an unknown name is an error that
    lists the names there are). With `per_source`, at most that many rows of each source are drawn (then
    at most `n` in all), so small sources show up beside a synthetic set a hundred times their size."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    plan = resolve(path, split=split, root=root)
    rows = plan.rows
    for column, wanted in (("source", sources), ("group", groups)):
        if not wanted:
            continue
        present = set(pc.unique(rows.column(column)).to_pylist())
        unknown = sorted(set(wanted) - present)
        if unknown:
            raise ValueError(
                f"no {column} {', '.join(map(repr, unknown))} in {path}; it has: {', '.join(sorted(present))}"
            )
        rows = rows.filter(pc.is_in(rows.column(column), value_set=pa.array(list(wanted))))
    order = np.random.default_rng(seed).permutation(rows.num_rows)
    if per_source is not None:
        if per_source < 1:
            raise ValueError(f"per_source must be at least 1, got {per_source}")
        encoded = pc.dictionary_encode(rows.column("source")).combine_chunks()
        # sources side by side in name order, each source's rows in draw order (a stable sort)
        name_rank = np.argsort(np.argsort(encoded.dictionary.to_pylist()))
        codes = name_rank[encoded.indices.to_numpy()[order]] if len(order) else np.zeros(0, dtype=np.int64)
        by_source = np.argsort(codes, kind="stable")
        grouped = codes[by_source]
        rank = np.arange(grouped.size) - np.searchsorted(grouped, grouped, side="left")
        order = order[by_source[rank < per_source]]
    picked = order[:n]
    return plan.root, rows.take(pa.array(picked)), rows.num_rows


def preview(
    path: str | Path,
    out: str | Path,
    *,
    n: int = DEFAULT_N,
    seed: int = 0,
    sources: Sequence[str] = (),
    groups: Sequence[str] = (),
    split: str = "train",
    columns: int = 8,
    per_source: int | None = None,
    root: str | Path | None = None,
) -> PreviewSummary:
    """Write a contact sheet of `n` random crops from a root or a manifest to `out` (PNG)."""
    started = time.perf_counter()
    root, rows, drawn_from = pick_rows(path, n=n, seed=seed, sources=sources, groups=groups, split=split,
                                       per_source=per_source, root=root)  # fmt: skip
    items = read_items(root, rows)
    what = f"{', '.join(sources or groups)} in " if sources or groups else ""
    each = f", at most {per_source} per source" if per_source else ""
    title = f"{rows.num_rows} random crops (seed {seed}{each}) of {drawn_from:,} rows: {what}{path}"
    sheet = preview_sheet(items, Path(out), columns=columns, title=title,
                          tags=rows.column("source").to_pylist())  # fmt: skip
    per_source: dict[str, int] = {}
    for name in rows.column("source").to_pylist():
        per_source[name] = per_source.get(name, 0) + 1
    undecodable = sum(1 for data, _, _ in items if not _decodes(data))
    return PreviewSummary(sheet, rows.num_rows, drawn_from, per_source, undecodable,
                          time.perf_counter() - started)  # fmt: skip


def read_items(root: Path, rows: pa.Table) -> list[tuple[bytes, str, str]]:
    """(stored image bytes, label, label_raw) for each row, in order."""
    with LmdbImages() as images:
        return [
            (images.read(f"{root}/{shard}", idx), label, raw)
            for shard, idx, label, raw in zip(
                *(rows.column(c).to_pylist() for c in ("shard", "idx", "label", "label_raw"))
            )
        ]


def format_summary(summary: PreviewSummary) -> str:
    by_source = ", ".join(f"{name} {count}" for name, count in sorted(summary.sources.items()))
    lines = [
        f"preview: {summary.shown} crops of {summary.rows:,} rows ({by_source}) in {summary.elapsed_s:.1f} s",
        f"  written to {summary.out}",
    ]
    if summary.undecodable:
        lines.append(f"  {summary.undecodable} crop(s) could not be decoded: drawn as red cells "
                     "(run `rebusyn verify` to locate them)")  # fmt: skip
    return "\n".join(lines)


def _decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        return True
    except _UNDECODABLE:
        return False


def preview_sheet(
    items: Sequence[tuple[bytes, str, str]],
    out: Path,
    *,
    columns: int = 6,
    title: str | None = None,
    tags: Sequence[str] | None = None,
) -> Path:
    """`items` are (encoded image, label, label_raw); `tags` (e.g. source names) are drawn small at the
    right of each caption. Writes a PNG to `out` and returns its path."""
    if not items:
        raise ValueError("nothing to preview: no samples")
    rows = (len(items) + columns - 1) // columns
    head = 28 if title else 0
    sheet = Image.new("RGB", (columns * CELL_W, head + rows * (CELL_H + CAPTION_H)), "white")
    draw = ImageDraw.Draw(sheet)
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont = load_font(13)
    small = load_font(11)
    if title:
        draw.text((6, 6), _fit(title, columns * CELL_W // 8), fill="black", font=load_font(15))
    for i, (data, label, raw) in enumerate(items):
        x, y = (i % columns) * CELL_W, head + (i // columns) * (CELL_H + CAPTION_H)
        try:
            crop = Image.open(io.BytesIO(data)).convert("RGB")
        except _UNDECODABLE:
            crop = Image.new("RGB", (CELL_W - 8, CELL_H - 8), "red")
        # scale to the cell (up or down) so small crops stay legible on the sheet
        scale = min((CELL_W - 8) / crop.width, (CELL_H - 8) / crop.height)
        crop = crop.resize(
            (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BICUBIC
        )
        sheet.paste(crop, (x + (CELL_W - crop.width) // 2, y + 4 + (CELL_H - 8 - crop.height) // 2))
        draw.text((x + 4, y + CELL_H), _fit(label, 26 if tags is None else 16), fill="black", font=font)
        if tags is not None:
            tag = _fit(tags[i], 12)
            draw.text((x + CELL_W - 4 - draw.textlength(tag, font=small), y + CELL_H + 1), tag,
                      fill=(60, 110, 170), font=small)  # fmt: skip
        if raw.strip() != label:
            draw.text((x + 4, y + CELL_H + 14), _fit(f"raw: {raw}", 28), fill=(110, 110, 110), font=font)
        draw.rectangle((x, y, x + CELL_W - 1, y + CELL_H + CAPTION_H - 1), outline=(220, 220, 220))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out


def _fit(text: str, limit: int) -> str:
    """One line of at most `limit` characters (newlines in a raw label would break the grid)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
