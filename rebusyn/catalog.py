"""`rebusyn sources`: every source at a glance (group, licence, login, download size, REBU-Syn's count) and,
for a dataset root, how far each one got: missing, downloaded, verified or built (with samples kept and
dropped). It reads recipes, the download folder and the reports; it never opens an archive or a shard."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebusyn.fetch import known_digests
from rebusyn.recipes import Recipe, load_all
from rebusyn.report import report_path

STATES = ("missing", "partial", "downloaded", "verified", "checksum differs", "built", "failed")


@dataclass(frozen=True)
class SourceRow:
    name: str
    group: str
    title: str
    licence: str
    login_required: bool
    official_bytes: int | None  # sum of the default input's archive sizes, when the recipe knows them all
    reference_count: int | None  # REBU-Syn Data.md's instance count, when the recipe records it
    # the default input's published approximate download size (recipe `download_size`), when there is one
    approx_bytes: int | None = None
    state: str | None = None  # with a root: one of STATES
    kept: int | None = None
    dropped: int | None = None


def catalog(root: Path | None = None, groups: tuple[str, ...] = ()) -> list[SourceRow]:
    """One row per recipe (sorted by group, then name); with `root`, each source's state there."""
    rows = []
    for recipe in load_all().values():
        if groups and recipe.group not in groups:
            continue
        default = recipe.input(None)
        sizes = [a.size for a in default.archives]
        row = SourceRow(
            name=recipe.name, group=recipe.group, title=recipe.title, licence=recipe.licence,
            login_required=recipe.login_required,
            official_bytes=sum(sizes) if sizes and all(s is not None for s in sizes) else None,  # type: ignore[misc]
            reference_count=recipe.counts.get("rebu_syn_instances"),
            approx_bytes=default.download_size,
        )  # fmt: skip
        if root is not None:
            row = _with_state(row, Path(root), recipe)
        rows.append(row)
    order = "REBUSTC"
    return sorted(rows, key=lambda r: (order.index(r.group) if r.group in order else len(order), r.name))


def _with_state(row: SourceRow, root: Path, recipe: Recipe) -> SourceRow:
    report = _read_report(report_path(root, recipe.name))
    if report is not None and report.get("status") == "complete":
        index = root / (report.get("output") or {}).get("index", f"index/{recipe.name}.parquet")
        if index.is_file():
            return _replace(row, state="built", kept=report.get("kept"), dropped=report.get("dropped_total"))
    if report is not None and report.get("status") == "failed":
        return _replace(row, state="failed", kept=report.get("kept"), dropped=report.get("dropped_total"))
    folder = root / "downloads" / recipe.name
    archives = recipe.input(None).archives
    found = [(a, folder / a.name) for a in archives if (folder / a.name).is_file()]
    if not found:
        return _replace(row, state="missing")
    if len(found) < len(archives):
        return _replace(row, state="partial")
    # Verified = every file's remembered digests (rebusyn.fetch's sidecar, written when it was hashed)
    # match the recipe. A file put there by hand, or changed since, is only "downloaded" until a build
    # hashes it; a recipe without checksums cannot verify anything.
    verdicts = []
    for archive, path in found:
        digests = known_digests(path)
        expected = [(archive.md5, 0), (archive.sha256, 1)]
        checks = [digests[i] == value.lower() for value, i in expected if value and digests]
        verdicts.append(None if not checks else all(checks))
    if any(v is False for v in verdicts):
        return _replace(row, state="checksum differs")  # a damaged file, or a mirror's repack
    return _replace(row, state="verified" if all(verdicts) else "downloaded")


def _read_report(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _replace(row: SourceRow, **changes: Any) -> SourceRow:
    from dataclasses import replace

    return replace(row, **changes)


def download_size(row: SourceRow) -> str:
    """The exact size when the recipe has every archive's byte count, else "≈" and the published figure,
    else "?"."""
    if row.official_bytes is not None:
        return human_size(row.official_bytes)
    if row.approx_bytes is not None:
        return "≈" + human_size(row.approx_bytes)
    return "?"


def human_size(n: float) -> str:
    """Decimal units, as download pages write them: "6.9 GB", "441 MB", "138 GB"."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale * 0.9995:  # 999.6 KB reads "1.0 MB", not "1000 KB"
            value = n / scale
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
    return f"{n:.0f} B"


def _total_download(rows: list[SourceRow]) -> str:
    known = [r.official_bytes if r.official_bytes is not None else r.approx_bytes for r in rows]
    sizes = [n for n in known if n is not None]
    exact = all(r.official_bytes is not None for r in rows)
    total = (human_size(sum(sizes)) if exact else "≈" + human_size(sum(sizes))) if sizes else "?"
    unknown = len(rows) - len(sizes)
    return f"download size {total}" + (f" (unknown for {unknown})" if unknown else "")


def format_table(rows: list[SourceRow], root: Path | None = None) -> str:
    """The terminal table; a state column only with a root."""
    header = ["source", "group", "login", "download size", "REBU-Syn count", "licence"]
    if root is not None:
        header[3:3] = ["state", "kept", "dropped"]
    lines = []
    for r in rows:
        count = f"{r.reference_count:,}" if r.reference_count is not None else "?"
        cells = [r.name, r.group, "yes" if r.login_required else "no", download_size(r), count,
                 _short(r.licence)]  # fmt: skip
        if root is not None:
            cells[3:3] = [r.state or "", f"{r.kept:,}" if r.kept is not None else "",
                          f"{r.dropped:,}" if r.dropped is not None else ""]  # fmt: skip
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in lines]
    total = sum(r.reference_count or 0 for r in rows)
    out.append(f"{len(rows)} source(s); REBU-Syn count of those listed: {total:,}; {_total_download(rows)}. "
               "Licences in full: docs/sources.md")  # fmt: skip
    if root is not None:
        counts = {s: sum(1 for r in rows if r.state == s) for s in STATES}
        out.append(f"under {root}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    return "\n".join(out)


def _short(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
