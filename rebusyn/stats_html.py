"""The `rebusyn stats --html FILE` page: one self-contained HTML file (inline CSS, plots as inline SVG drawn
with matplotlib, the preview sheet as an embedded PNG; no script, no external request), so it can be
mailed, attached to an experiment log or opened from a cluster's shared disk as it is."""

from __future__ import annotations

import base64
import html
import io
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rebusyn import __version__
from rebusyn.stats import KINDS, Histogram, SourceStats, Stats

GROUP_COLOURS = {"R": "#1f77b4", "E": "#2ca02c", "B": "#9467bd", "U": "#8c564b", "S": "#ff7f0e",
                 "T": "#7f7f7f", "C": "#17becf"}  # fmt: skip
KIND_COLOURS = {"real": "#1f77b4", "synthetic": "#ff7f0e"}
TOP_CHARS_PLOTTED = 60


class PlotsUnavailable(RuntimeError):
    """matplotlib (the `plots` extra) is not installed."""


def require_matplotlib() -> None:
    """Fail before any work is done when the page could not be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise PlotsUnavailable(
            "the HTML report draws its plots with matplotlib, which is not installed: "
            "pip install 'rebusyn[plots]' (or pip install matplotlib)"
        ) from err


def write_html(stats: Stats, out: str | Path, *, preview_png: bytes | None = None) -> Path:
    """Write the report page to `out` (through a temporary name, so a reader never sees half a page)."""
    require_matplotlib()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render(stats, preview_png=preview_png), encoding="utf-8")
    tmp.replace(out)
    return out


def report_page(
    stats: Stats, path: str | Path, out: str | Path, *, preview: bool = True, root: str | Path | None = None
) -> Path:
    """The page for `stats` of `path`, with a sheet of up to 4 random crops per source unless `preview` is
    False (the sheet is the one part that reads images)."""
    sheet = None
    if preview and stats.rows:
        from rebusyn.preview import preview as write_sheet

        with tempfile.TemporaryDirectory() as tmp:
            made = write_sheet(path, Path(tmp) / "sheet.png", n=96, per_source=4, split=stats.split,
                               root=root)  # fmt: skip
            sheet = made.out.read_bytes()
    return write_html(stats, out, preview_png=sheet)


def render(stats: Stats, *, preview_png: bytes | None = None) -> str:
    parts = [_head(stats), _cards(stats), "<h2>Sources</h2>", _source_table(stats)]
    if stats.rows:
        bars_height = max(2.2, 0.28 * len(stats.sources) + 1)  # one bar per source
        parts += ["<h2>Rows per source</h2>", _figure(_plot_sources, stats, bars_height)]
        parts += ["<h2>Label length</h2>",
                  "<p>Normalized labels, % of the real and of the synthetic rows.</p>",
                  _figure(_plot_lengths, stats)]  # fmt: skip
        parts += ["<h2>Characters</h2>", _chars_text(stats), _figure(_plot_chars, stats)]
        if stats.removed_chars:
            parts += ["<h3>Raw characters the charset policy removed</h3>",
                      f"<p>Characters of the kept rows' raw labels that the charset policy removes "
                      f"({_charset_phrase(stats)}); accented and upper-case letters it maps onto its "
                      "alphabet are not among them.</p>",
                      _char_table(stats.removed_chars[:TOP_CHARS_PLOTTED], None)]  # fmt: skip
        parts += ["<h2>Image size</h2>", _sizes_text(stats), _figure(_plot_sizes, stats, 3.2)]
    if preview_png is not None:
        encoded = base64.b64encode(preview_png).decode("ascii")
        parts += [
            "<h2>Random crops</h2>",
            f'<img class="sheet" alt="preview sheet of random crops" src="data:image/png;base64,{encoded}">',
        ]
    parts.append(f"<footer>rebusyn {html.escape(__version__)} · computed in {stats.elapsed_s:.2f} s · "
                 f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC</footer></body></html>")  # fmt: skip
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------- page parts

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;
max-width:1200px;padding:0 16px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px} .sub{color:#666;margin:0 0 16px} .cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:20px} .card span{color:#666;font-size:12px}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 8px;border-bottom:1px solid #eee}
th{text-align:left;background:#f6f6f6} td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#fafafa} .group{display:inline-block;width:10px;height:10px;
margin-right:6px;border-radius:2px} figure{margin:8px 0} figure svg{max-width:100%;height:auto}
img.sheet{max-width:100%;border:1px solid #ddd} .note{color:#a60} footer{margin-top:32px;color:#888;
font-size:12px} code{background:#f3f3f3;padding:0 3px}
"""


def _head(stats: Stats) -> str:
    what = "dataset root" if stats.kind == "root" else "manifest"
    split = f", split {stats.split}" if stats.kind == "root" else ""
    title = f"rebusyn stats: {stats.path}"
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in stats.notes)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="sub">{what}{split}: {stats.rows:,} rows from {len(stats.sources)} sources</p>'
            f"{notes}")  # fmt: skip


def _cards(stats: Stats) -> str:
    ratio = f"{stats.ratio:.2f} : 1" if stats.ratio is not None and stats.real else "-"
    cards = [(f"{stats.rows:,}", "rows"), (f"{stats.real:,}", "real"), (f"{stats.synthetic:,}", "synthetic"),
             (ratio, "real : synthetic"), (str(len(stats.sources)), "sources"),
             (f"{len(stats.chars)}", "distinct characters")]  # fmt: skip
    if stats.epochs > 1:
        cards.append((str(stats.epochs), "epochs"))
    body = "".join(
        f'<div class="card"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>' for v, k in cards
    )
    return f'<div class="cards">{body}</div>'


def _source_table(stats: Stats) -> str:
    with_report = any(s.kept is not None for s in stats.sources)
    head = ["group", "source", "rows", "share", "label length", "height p5 / p50 / p95", "width p50",
            "aspect p5 / p50 / p95"]  # fmt: skip
    head += ["kept", "dropped", "top reasons"] if with_report else []
    lines = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for group, total in stats.groups().items():
        members = [s for s in stats.sources if s.group == group]
        for s in members:
            lines.append(_source_row(s, stats.rows, with_report))
        if len(members) > 1:
            cells = [_group_cell(group), "all", _n(total), _pct(total, stats.rows)]
            lines.append('<tr class="total">' + "".join(
                f'<td class="n">{c}</td>' if i in (2, 3) else f"<td>{c}</td>" for i, c in enumerate(cells)
            ) + "<td></td>" * (len(head) - len(cells)) + "</tr>")  # fmt: skip
    lines.append("</table>")
    return "\n".join(lines)


def _source_row(s: SourceStats, rows: int, with_report: bool) -> str:
    def three(spread: Any, digits: int) -> str:
        return " / ".join(
            "-" if v is None else f"{v:.{digits}f}" for v in (spread.p5, spread.p50, spread.p95)
        )

    cells = [(_group_cell(s.group), ""), (html.escape(s.name), ""), (_n(s.rows), "n"),
             (_pct(s.rows, rows), "n"),
             (f"{s.label_length_mean:.1f}", "n"), (three(s.height, 0), "n"),
             ("-" if s.width.p50 is None else f"{s.width.p50:.0f}", "n"),
             (three(s.aspect, 1), "n")]  # fmt: skip
    if with_report:
        reasons = ", ".join(
            f"{html.escape(k)} {v:,}" for k, v in list((s.dropped_by_reason or {}).items())[:4]
        )
        cells += [(_n(s.kept), "n"), (_n(s.dropped), "n"), (reasons, "")]
    return "<tr>" + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>" for v, c in cells) + "</tr>"


def _group_cell(group: str) -> str:
    colour = GROUP_COLOURS.get(group, "#333")
    return f'<span class="group" style="background:{colour}"></span>{html.escape(group)}'


def _chars_text(stats: Stats) -> str:
    shown = min(len(stats.chars), TOP_CHARS_PLOTTED)
    return (f"<p>{len(stats.chars)} distinct characters, {stats.chars_total:,} in all"
            + (f"; the {shown} most frequent are plotted" if shown < len(stats.chars) else "")
            + ". % of all characters of the normalized labels.</p>"
            + _char_table(stats.chars[:TOP_CHARS_PLOTTED], stats.chars_total))  # fmt: skip


def _char_table(pairs: list[tuple[str, int]], total: int | None) -> str:
    cells = "".join(
        f'<tr><td><code>{html.escape(_visible(c))}</code></td><td class="n">{n:,}</td>'
        + (f'<td class="n">{100 * n / total:.2f}%</td>' if total else "")
        + "</tr>"
        for c, n in pairs
    )
    head = "<tr><th>char</th><th>count</th>" + ("<th>share</th>" if total else "") + "</tr>"
    return f"<details><summary>table</summary><table>{head}{cells}</table></details>"


def _sizes_text(stats: Stats) -> str:
    rows = []
    for kind, spread in stats.spreads.items():
        cells = [kind] + [" / ".join("-" if v is None else f"{v:.{1 if k == 'aspect' else 0}f}"
                                      for v in (spread[k].p5, spread[k].p50, spread[k].p95))
                          for k in ("height", "width", "aspect")]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    rows_have = "1 row has" if stats.unknown_size == 1 else f"{stats.unknown_size:,} rows have"
    unknown = (f'<p class="note">{rows_have} no recorded size and are left out.</p>'
               if stats.unknown_size else "")  # fmt: skip
    return ("<p>Stored crop size in pixels (5th / 50th / 95th percentile); histograms in quarter octaves.</p>"
            "<table><tr><th></th><th>height</th><th>width</th><th>aspect w/h</th></tr>"
            + "".join(rows) + "</table>" + unknown)  # fmt: skip


def _charset_phrase(stats: Stats) -> str:
    where = "from the build reports" if stats.charset_from == "reports" else "inferred from the labels"
    return f"charset {html.escape(stats.charset)}, {where}"


def _n(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _visible(char: str) -> str:
    if char == " ":
        return "␠ (space)"
    return char if char.isprintable() else f"U+{ord(char):04X}"


# ------------------------------------------------------------------------------------------------ plots


def _figure(plot: Callable[[Any, Stats], None], stats: Stats, height: float = 3.6) -> str:
    """One plot, 10 inches wide, as inline SVG; text stays text (svg.fonttype none) so the page is small
    and searchable."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "rebusyn", "font.size": 9}):
        fig = Figure(figsize=(10, height), layout="constrained")
        plot(fig, stats)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE: not allowed inside HTML
    return f"<figure>{svg}</figure>"


def _plot_sources(fig: Any, stats: Stats) -> None:
    ax = fig.subplots()
    sources = list(reversed(stats.sources))
    ax.barh([s.name for s in sources], [s.rows for s in sources],
            color=[GROUP_COLOURS.get(s.group, "#333") for s in sources])  # fmt: skip
    for y, s in enumerate(sources):
        ax.annotate(f" {s.rows:,} ({100 * s.rows / stats.rows:.1f}%)", (s.rows, y), va="center", fontsize=8)
    ax.set_xlabel("rows")
    ax.margins(x=0.15)
    handles = [_patch(GROUP_COLOURS.get(g, "#333"), g) for g in stats.groups()]
    ax.legend(handles=handles, title="group", loc="lower right")


def _plot_lengths(fig: Any, stats: Stats) -> None:
    ax = fig.subplots()
    kinds = [k for k in KINDS if k in stats.label_length]
    longest = max(i for k in kinds for i, n in enumerate(stats.label_length[k]) if n)
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        counts = stats.label_length[kind][: longest + 1]
        total = sum(counts) or 1
        xs = [x + (i - (len(kinds) - 1) / 2) * width for x in range(len(counts))]
        ax.bar(xs, [100 * n / total for n in counts], width=width, label=kind, color=KIND_COLOURS[kind])
    ax.set_xlabel("characters in the label (the last bar holds longer labels)")
    ax.set_ylabel("% of rows")
    ax.legend()


def _plot_chars(fig: Any, stats: Stats) -> None:
    ax = fig.subplots()
    pairs = stats.chars[:TOP_CHARS_PLOTTED]
    total = stats.chars_total or 1
    ax.bar(range(len(pairs)), [100 * n / total for _, n in pairs], color="#1f77b4")
    ax.set_xticks(range(len(pairs)), [_visible(c)[:1] for c, _ in pairs])
    ax.set_xlim(-0.6, len(pairs) - 0.4)
    ax.set_ylabel("% of characters")


def _plot_sizes(fig: Any, stats: Stats) -> None:
    axes = fig.subplots(1, 3)
    for ax, (title, hists) in zip(axes, (("height, px", stats.height), ("width, px", stats.width),
                                         ("aspect (width / height)", stats.aspect))):  # fmt: skip
        for kind, hist in hists.items():
            _step(ax, hist, kind)
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(_plain_numbers())
        ax.set_xlabel(title)
        ax.set_ylabel("% of rows")
        _trim(ax, hists)
        ax.legend(fontsize=8)


def _step(ax: Any, hist: Histogram, kind: str) -> None:
    total = sum(hist.counts) or 1
    ax.stairs([100 * n / total for n in hist.counts], hist.edges, label=kind, color=KIND_COLOURS[kind],
              fill=kind == "real", alpha=0.45 if kind == "real" else 1.0, linewidth=1.4)  # fmt: skip


def _trim(ax: Any, hists: dict[str, Histogram]) -> None:
    """Show only the span of the edges that holds rows (with one empty bin either side)."""
    spans = []
    for hist in hists.values():
        used = [i for i, n in enumerate(hist.counts) if n]
        if used:
            spans.append(
                (hist.edges[max(used[0] - 1, 0)], hist.edges[min(used[-1] + 2, len(hist.edges) - 1)])
            )
    if spans:
        ax.set_xlim(min(a for a, _ in spans), max(b for _, b in spans))


def _plain_numbers() -> Any:
    """Log-2 axes labelled 8, 16, 32 ... and 0.25, 0.5, 1, 2 rather than 2^3 or 2^-2."""
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:g}")


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)
