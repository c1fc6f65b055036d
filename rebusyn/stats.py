"""`rebusyn stats ROOT|MANIFEST`: what a dataset holds before GPU days are spent on it.

Per group and source: rows, share, label length, image width/height/aspect; over everything: the label
length histogram, character frequencies, the raw characters the charset policy left out, the real:synthetic
ratio and (for a root) what each source dropped and why. Everything comes from the Parquet indexes, the
manifest and the build reports: no image is decoded. `format_text` prints it; rebusyn.stats_html draws it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from rebusyn.loaders.hf import resolve
from rebusyn.report import report_path
from rebusyn.sample import CHARSETS, SYNTH_GROUP, TEST_GROUP, LabelPolicy

GROUP_ORDER = "REBUSTC"  # real groups, synthetic, test, custom
KINDS = ("real", "synthetic")
# Histogram edges for sizes (pixels) and aspect (width / height), in quarter octaves: crops span 8 px
# to thousands, and aspect 1/16 to 64, so linear bins would put everything in one or two of them.
SIZE_EDGES = tuple(float(2 ** (q / 4)) for q in range(0, 13 * 4 + 1))  # 1 .. 8192 px
ASPECT_EDGES = tuple(float(2 ** (q / 4)) for q in range(-4 * 4, 6 * 4 + 1))  # 1/16 .. 64
MAX_LENGTH_BIN = 40  # longer labels are counted in the last bin
TOP_CHARS_SHOWN = 60


@dataclass(frozen=True)
class Spread:
    """5th, 50th and 95th percentiles (None when no row has a known size)."""

    p5: float | None
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class SourceStats:
    name: str
    group: str
    synthetic: bool
    rows: int
    label_length_mean: float
    width: Spread
    height: Spread
    aspect: Spread
    # a root's build report: samples kept, dropped in total and by reason (None for a manifest)
    kept: int | None = None
    dropped: int | None = None
    dropped_by_reason: dict[str, int] | None = None


@dataclass(frozen=True)
class Histogram:
    edges: list[float]  # len(counts) + 1
    counts: list[int]


@dataclass
class Stats:
    path: str
    kind: str  # "root" or "manifest"
    split: str
    rows: int
    real: int
    synthetic: int
    epochs: int  # distinct `epoch` values of a manifest drawn with --epochs; 1 otherwise
    sources: list[SourceStats]
    # "real"/"synthetic" -> rows by normalized label length (index = length; the last bin holds longer ones)
    label_length: dict[str, list[int]]
    charset: str  # the label policy: from the build reports, else the smallest that holds every label
    charset_from: str  # "reports" or "labels"
    chars: list[tuple[str, int]]  # characters of the normalized labels, most frequent first
    chars_total: int
    # characters of the kept rows' raw labels that the charset policy removes outright (spaces,
    # punctuation, scripts outside it; 'É' is not among them under 36: it becomes 'e'), most frequent first
    removed_chars: list[tuple[str, int]]
    width: dict[str, Histogram]
    height: dict[str, Histogram]
    aspect: dict[str, Histogram]
    spreads: dict[str, dict[str, Spread]]  # "real"/"synthetic" -> "width"/"height"/"aspect" -> percentiles
    unknown_size: int  # rows whose index has no width/height (w or h = 0)
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        """real / synthetic (None without synthetic rows)."""
        return self.real / self.synthetic if self.synthetic else None

    def groups(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for source in self.sources:
            totals[source.group] = totals.get(source.group, 0) + source.rows
        return dict(sorted(totals.items(), key=lambda kv: _group_rank(kv[0])))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio_real_to_synthetic"] = self.ratio
        data["groups"] = self.groups()
        data["chars"] = [list(pair) for pair in self.chars]
        data["removed_chars"] = [list(pair) for pair in self.removed_chars]
        return data


def compute(
    path: str | Path, *, split: str = "train", root: str | Path | None = None, progress: bool = False
) -> Stats:
    """Statistics of a dataset root (`split` train: groups R/E/B/U/S/C, or test: group T) or of a manifest
    (every row as drawn, repeats included; `root` overrides the manifest's recorded dataset root)."""
    started = time.perf_counter()
    path = Path(path)
    if path.is_dir() and (path / "index").is_dir() and not (path / "manifest.json").is_file():
        kind, data_root, table = "root", path, _root_rows(path, split, progress)
        epochs = 1
    else:  # a manifest: resolve checks it against its indexes, as the loaders do
        plan = resolve(path, split=split, root=root, with_epoch=True)
        kind, data_root, rows = plan.kind, plan.root, plan.rows
        width, height = _sizes(plan.root, rows)
        table = rows.select(["source", "group", "synthetic", "label", "label_raw"])
        table = table.append_column("w", pa.array(width)).append_column("h", pa.array(height))
        epochs = len(pc.unique(rows.column("epoch"))) if rows.num_rows else 1
    sources = pc.unique(table.column("source")).to_pylist()
    charset = _report_charset(data_root, sources) if sources else None
    stats = _summarize(table, str(path), kind, split, charset if charset in CHARSETS else None)
    stats.epochs = epochs
    if kind == "root":
        stats.sources = [_with_report(s, data_root) for s in stats.sources]
    elif epochs > 1:
        stats.notes.append(f"the manifest holds {epochs} epochs: counts are over all of them")
    stats.elapsed_s = time.perf_counter() - started
    return stats


def write_json(stats: Stats, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(stats.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out


# ------------------------------------------------------------------------------------------------ reading


def _root_rows(root: Path, split: str, progress: bool = False) -> pa.Table:
    """The columns stats needs, straight from a root's indexes (train: every group but T; test: T)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' (groups R/E/B/U/S/C) or 'test' (group T), got {split!r}")
    parts = []
    indexes = sorted((root / "index").glob("*.parquet"))
    for index in tqdm(indexes, desc="stats: read indexes", unit="index", disable=not progress):
        part = pq.read_table(index, columns=["source", "group", "label", "label_raw", "w", "h"])
        is_test = pc.equal(part.column("group"), TEST_GROUP)
        part = part.filter(is_test if split == "test" else pc.invert(is_test))
        if part.num_rows:
            parts.append(part)
    if not parts:
        raise FileNotFoundError(f"no {split} rows in the indexes under {root / 'index'}")
    table = pa.concat_tables(parts)
    return table.add_column(2, "synthetic", pc.equal(table.column("group"), SYNTH_GROUP))


def _sizes(root: Path, rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Stored width and height of every manifest row, looked up in the indexes by (shard, idx): shard names
    become integer codes, (code << 32 | idx) a sortable key."""
    n = rows.num_rows
    width, height = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    if n == 0:
        return width, height
    wanted = set(pc.unique(rows.column("source")).to_pylist())
    parts = []
    for index in sorted((root / "index").glob("*.parquet")):
        if index.stem in wanted:
            parts.append(pq.read_table(index, columns=["shard", "idx", "w", "h"]))
    if not parts:
        return width, height
    index_rows = pa.concat_tables(parts)
    shards = pc.unique(index_rows.column("shard"))
    index_keys = _keys(index_rows, shards)
    order = np.argsort(index_keys, kind="stable")
    sorted_keys = index_keys[order]
    row_keys = _keys(rows, shards)
    at = np.minimum(np.searchsorted(sorted_keys, row_keys), len(sorted_keys) - 1)
    found = (sorted_keys[at] == row_keys) & (row_keys >= 0)
    hit = order[at[found]]
    width[found] = index_rows.column("w").to_numpy()[hit]
    height[found] = index_rows.column("h").to_numpy()[hit]
    return width, height


def _keys(table: pa.Table, shards: pa.Array) -> np.ndarray:
    codes = pc.index_in(table.column("shard"), value_set=shards).fill_null(-1)
    codes = codes.to_numpy().astype(np.int64)
    idx = table.column("idx").to_numpy().astype(np.int64)
    return np.where(codes >= 0, (codes << 32) | idx, -1)


# -------------------------------------------------------------------------------------------- computing


def _summarize(table: pa.Table, path: str, kind: str, split: str, charset: str | None) -> Stats:
    synthetic = table.column("synthetic").to_numpy(zero_copy_only=False).astype(bool)
    lengths = pc.utf8_length(table.column("label")).to_numpy(zero_copy_only=False).astype(np.int64)
    width = np.asarray(table.column("w"), dtype=np.int64)
    height = np.asarray(table.column("h"), dtype=np.int64)
    known = (width > 0) & (height > 0)
    aspect = np.divide(width, height, out=np.zeros(len(width)), where=known)

    sources: list[SourceStats] = []
    source_codes = pc.dictionary_encode(table.column("source")).combine_chunks()
    names = source_codes.dictionary.to_pylist()
    codes = source_codes.indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)  # every code occurs: the dictionary holds only seen values
    groups = table.column("group").take(pa.array(first)).to_pylist()
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    for code, name in enumerate(names):
        members = order[bounds[code] : bounds[code + 1]]
        sized = members[known[members]]
        sources.append(SourceStats(
            name=name, group=groups[code], synthetic=bool(synthetic[members[0]]), rows=len(members),
            label_length_mean=round(float(lengths[members].mean()), 2),
            width=_spread(width[sized]), height=_spread(height[sized]), aspect=_spread(aspect[sized]),
        ))  # fmt: skip
    sources.sort(key=lambda s: (_group_rank(s.group), s.name))

    label_length: dict[str, list[int]] = {}
    size_hists: dict[str, dict[str, Histogram]] = {"w": {}, "h": {}, "aspect": {}}
    spreads: dict[str, dict[str, Spread]] = {}
    for kind_name, mask in (("real", ~synthetic), ("synthetic", synthetic)):
        if not mask.any():
            continue
        label_length[kind_name] = np.bincount(
            np.minimum(lengths[mask], MAX_LENGTH_BIN), minlength=MAX_LENGTH_BIN + 1
        ).tolist()
        sized = mask & known
        size_hists["w"][kind_name] = _histogram(width[sized], SIZE_EDGES)
        size_hists["h"][kind_name] = _histogram(height[sized], SIZE_EDGES)
        size_hists["aspect"][kind_name] = _histogram(aspect[sized], ASPECT_EDGES)
        spreads[kind_name] = {"width": _spread(width[sized]), "height": _spread(height[sized]),
                              "aspect": _spread(aspect[sized])}  # fmt: skip

    chars = char_counts(table.column("label"))
    policy = LabelPolicy(charset or infer_charset(chars))
    raw = char_counts(table.column("label_raw"))
    removed = {c: n for c, n in raw.items() if not policy.clean(c)}
    return Stats(
        path=path, kind=kind, split=split, rows=table.num_rows, real=int((~synthetic).sum()),
        synthetic=int(synthetic.sum()), epochs=1, sources=sources, label_length=label_length,
        charset=policy.charset, charset_from="reports" if charset else "labels",
        chars=_most_frequent(chars), chars_total=int(sum(chars.values())),
        removed_chars=_most_frequent(removed),
        width=size_hists["w"], height=size_hists["h"], aspect=size_hists["aspect"],
        spreads=spreads, unknown_size=int((~known).sum()),
    )  # fmt: skip


def char_counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """How often each character occurs in a string column, without a Python loop over rows: the UTF-8
    bytes of all values are taken from the Arrow buffer at once; ASCII is counted byte-wise, anything
    else is decoded once to UTF-32 and counted by code point."""
    counts: dict[int, int] = {}
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        data = _utf8_bytes(chunk)
        if data.size == 0:
            continue
        if int(data.max()) < 128:
            values = np.bincount(data, minlength=128)
            points = np.flatnonzero(values)
            found = values[points]
        else:
            utf32 = data.tobytes().decode("utf-8").encode("utf-32-le")
            points, found = np.unique(np.frombuffer(utf32, dtype="<u4"), return_counts=True)
        for point, n in zip(points.tolist(), found.tolist()):
            counts[point] = counts.get(point, 0) + n
    return {chr(point): n for point, n in counts.items()}


def _utf8_bytes(array: pa.Array) -> np.ndarray:
    """The concatenated UTF-8 bytes of a string array's non-null values (nulls take no bytes)."""
    array = array.cast(pa.large_string())
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint8)
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    if data_buf is None:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]


def infer_charset(chars: dict[str, int]) -> str:
    """The smallest charset policy whose alphabet holds every label character (for a manifest, or a root
    whose reports do not say)."""
    for charset in ("36", "94"):
        if all(LabelPolicy(charset).clean(c) == c for c in chars):
            return charset
    return "unicode"


def _report_charset(root: Path, sources: list[str]) -> str | None:
    """The charset the build reports of `sources` name, when they all name the same one."""
    seen = set()
    for source in sources:
        try:
            options = json.loads(report_path(root, source).read_text(encoding="utf-8")).get("options") or {}
        except (OSError, ValueError, AttributeError):
            return None
        seen.add(options.get("charset"))
    return seen.pop() if len(seen) == 1 and None not in seen else None


def _spread(values: np.ndarray) -> Spread:
    if values.size == 0:
        return Spread(None, None, None)
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return Spread(round(float(p5), 2), round(float(p50), 2), round(float(p95), 2))


def _histogram(values: np.ndarray, edges: tuple[float, ...]) -> Histogram:
    # values outside the edges count in the end bins, so every row is in some bin
    clipped = np.clip(values, edges[0], np.nextafter(edges[-1], 0))
    counts, _ = np.histogram(clipped, bins=np.asarray(edges))
    return Histogram(list(edges), counts.tolist())


def _most_frequent(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _group_rank(group: str) -> int:
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


def _with_report(source: SourceStats, root: Path) -> SourceStats:
    path = report_path(root, source.name)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return source
    dropped = report.get("dropped") if isinstance(report.get("dropped"), dict) else {}
    total = report.get("dropped_total")
    return replace(
        source, kept=report.get("kept"),
        dropped=total if isinstance(total, int) else sum(dropped.values()),
        dropped_by_reason=dict(sorted(dropped.items(), key=lambda kv: -kv[1])),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------- printing


def format_text(stats: Stats, *, width: int = 100) -> str:
    """The terminal report: per-source table, label lengths, characters, sizes, ratio."""
    out: list[str] = []
    what = "dataset root" if stats.kind == "root" else "manifest"
    split = f", split {stats.split}" if stats.kind == "root" else ""
    out.append(f"rebusyn stats: {stats.path} ({what}{split}): {stats.rows:,} rows from "
               f"{len(stats.sources)} sources")  # fmt: skip
    if stats.synthetic and stats.real:
        out.append(f"real : synthetic = {stats.real:,} : {stats.synthetic:,} = {stats.ratio:.2f} : 1 "
                   f"({100 * stats.real / stats.rows:.1f}% real)")  # fmt: skip
    else:
        out.append(f"real {stats.real:,}, synthetic {stats.synthetic:,}")
    out.extend(f"note: {note}" for note in stats.notes)
    if not stats.rows:
        return "\n".join(out)
    out.append("")
    out.extend(_source_table(stats))
    out.append("")
    kinds = " | ".join(k for k in KINDS if k in stats.label_length)
    out.append(f"label length (normalized label; {kinds}, % of rows)")
    out.extend(_length_bars(stats))
    out.append("")
    shown = stats.chars[:TOP_CHARS_SHOWN]
    more = f" (+{len(stats.chars) - len(shown)} more)" if len(stats.chars) > len(shown) else ""
    out.append(f"characters: {len(stats.chars)} distinct, {stats.chars_total:,} in all{more}; "
               "% of characters")  # fmt: skip
    out.extend(_wrap([f"{_show(c)} {100 * n / stats.chars_total:.1f}" for c, n in shown], width))
    if stats.removed_chars:
        how = "" if stats.charset_from == "reports" else ", inferred from the labels"
        out.append(f"raw characters the charset policy ({stats.charset}{how}) removed, count:")
        out.extend(_wrap([f"{_show(c)} {n:,}" for c, n in stats.removed_chars[:TOP_CHARS_SHOWN]], width))
    out.append("")
    out.append("image size, pixels (5th / median / 95th percentile)")
    for kind_name, spread in stats.spreads.items():
        h, w, a = (_three(spread[k], 1 if k == "aspect" else 0) for k in ("height", "width", "aspect"))
        out.append(f"  {kind_name:<9}  height {h}   width {w}   aspect w/h {a}")
    if stats.unknown_size:
        rows_have = "1 row has" if stats.unknown_size == 1 else f"{stats.unknown_size:,} rows have"
        out.append(f"  {rows_have} no recorded size and are left out of the sizes")
    read = "indexes and reports" if stats.kind == "root" else "the manifest and its indexes"
    out.append(f"\n{stats.rows:,} rows in {stats.elapsed_s:.1f} s, from {read} (no image decoded)")
    return "\n".join(out)


def _source_table(stats: Stats) -> list[str]:
    with_report = any(s.kept is not None for s in stats.sources)
    head = ["group", "source", "rows", "share", "len", "h p50", "w p50", "aspect p5-p50-p95"]
    if with_report:
        head += ["dropped (top reasons)"]
    table = [head]
    for group, total in stats.groups().items():
        for s in (s for s in stats.sources if s.group == group):
            row = [s.group, s.name, f"{s.rows:,}", f"{100 * s.rows / stats.rows:.1f}%",
                   f"{s.label_length_mean:.1f}", _num(s.height.p50), _num(s.width.p50),
                   _three(s.aspect, 1).replace(" / ", "-")]  # fmt: skip
            if with_report:
                row.append(_dropped(s))
            table.append(row)
        if len([s for s in stats.sources if s.group == group]) > 1:
            table.append([group, "(all)", f"{total:,}", f"{100 * total / stats.rows:.1f}%", "", "", "", ""]
                         + ([""] if with_report else []))  # fmt: skip
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    right = {2, 3, 4, 5, 6}
    lines = []
    for r in table:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _dropped(s: SourceStats) -> str:
    if s.dropped is None:
        return ""
    if not s.dropped:
        return "0"
    considered = (s.kept or 0) + s.dropped
    top = ", ".join(f"{reason} {n:,}" for reason, n in list((s.dropped_by_reason or {}).items())[:3])
    return f"{s.dropped:,} ({100 * s.dropped / considered:.0f}%): {top}" if considered else f"{s.dropped:,}"


def _length_bars(stats: Stats, bar: int = 30) -> list[str]:
    real = stats.label_length.get("real", [])
    synth = stats.label_length.get("synthetic", [])
    n_real, n_synth = sum(real) or 1, sum(synth) or 1
    longest = max((i for h in (real, synth) for i, n in enumerate(h) if n), default=0)
    peak = max([n / n_real for n in real] + [n / n_synth for n in synth] + [1e-9])
    lines = []
    shortest = min((i for h in (real, synth) for i, n in enumerate(h) if n), default=0)
    for length in range(shortest, longest + 1):
        r = real[length] / n_real if real else 0.0
        s = synth[length] / n_synth if synth else 0.0
        label = f">={length}" if length == MAX_LENGTH_BIN else f"{length}"
        left, right = "█" * round(bar * r / peak), "█" * round(bar * s / peak)
        if real and synth:
            lines.append(f"  {label:>4} {100 * r:5.1f}% {left:>{bar}}|{right} {100 * s:.1f}%")
        else:
            lines.append(f"  {label:>4} {100 * (r or s):5.1f}% {left or right}")
    return lines


def _three(spread: Spread, digits: int) -> str:
    return " / ".join(_num(v, digits) for v in (spread.p5, spread.p50, spread.p95))


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def _show(char: str) -> str:
    """A character as it can be read in a terminal or a table: a visible space, code points for controls."""
    if char == " ":
        return "␠"
    return char if char.isprintable() else f"U+{ord(char):04X}"


def _wrap(cells: list[str], width: int) -> list[str]:
    lines, line = [], " "
    for cell in cells:
        if len(line) + len(cell) + 2 > width:
            lines.append(line)
            line = " "
        line += "  " + cell
    if line.strip():
        lines.append(line)
    return lines
