"""Print the per-source tables of docs/faq.md from the recipes, so the FAQ says exactly what they say.

    python scripts/faq_tables.py --measure ROOT      # bytes per crop measured on a built root
    python scripts/faq_tables.py --bytes-per-crop N  # or given

Tables: disk space (download size as `rebusyn sources` shows it, REBU-Syn's count, and count x bytes per
crop for the shards), sources that need a login, and every licence as its recipe states it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rebusyn.catalog import SourceRow, catalog, download_size, human_size  # noqa: E402
from rebusyn.recipes import Archive, Recipe, load_all  # noqa: E402

TRAIN_GROUPS = ("R", "E", "B", "U", "S")


def measure(root: Path) -> tuple[int, int, int]:
    """(crops kept, image bytes, data.mdb bytes) over the complete builds under `root`."""
    kept = image_bytes = shard_bytes = 0
    for report_file in sorted((root / "reports").glob("*.json")):
        report = json.loads(report_file.read_text(encoding="utf-8"))
        output = report.get("output") or {}
        if report.get("status") != "complete" or "directory" not in output:
            continue  # dedup.json, failed builds
        kept += report["kept"]
        image_bytes += output.get("image_bytes", 0)
        shard_bytes += sum(p.stat().st_size for p in (root / output["directory"]).glob("shard-*/data.mdb"))
    if not kept:
        raise SystemExit(f"no complete build with crops under {root}")
    return kept, image_bytes, shard_bytes


def _total(label: str, rows: list[SourceRow], bytes_per_crop: float) -> str:
    known = [r.official_bytes or r.approx_bytes for r in rows if r.official_bytes or r.approx_bytes]
    unknown = len(rows) - len(known)
    crops = sum(r.reference_count or 0 for r in rows)
    download = f"≈{human_size(sum(known))}" + (f" + {unknown} unknown" if unknown else "")
    return f"| **{label}** | | {download} | {crops:,} | ≈{human_size(crops * bytes_per_crop)} |"


def disk_table(rows: list[SourceRow], bytes_per_crop: float) -> str:
    lines = ["| source | group | download (`rebusyn sources`) | REBU-Syn count | shards at "
             f"{bytes_per_crop:,.0f} B/crop |", "|---|---|---|---:|---:|"]  # fmt: skip
    for r in rows:
        count = f"{r.reference_count:,}" if r.reference_count is not None else "?"
        shards = "?" if r.reference_count is None else "≈" + human_size(r.reference_count * bytes_per_crop)
        lines.append(f"| {r.name} | {r.group} | {download_size(r)} | {count} | {shards} |")
    real = [r for r in rows if r.group != "S"]
    lines.append(_total("real (R, E, B, U)", real, bytes_per_crop))
    lines.append(_total("public synthetic (S)", [r for r in rows if r.group == "S"], bytes_per_crop))
    lines.append(_total("all", rows, bytes_per_crop))
    return "\n".join(lines)


def _needs_login(archive: Archive, recipe: Recipe) -> bool:
    return archive.login_required if archive.login_required is not None else recipe.login_required


def login_table(rows: list[SourceRow]) -> str:
    recipes = load_all()
    lines = ["| source | group | where to get the files | files (default input) |", "|---|---|---|---|"]
    for r in rows:
        recipe = recipes[r.name]
        gated = [a.name for a in recipe.input().archives if _needs_login(a, recipe)]
        if gated:
            files = ", ".join(f"`{name}`" for name in gated)
            lines.append(f"| {r.name} | {r.group} | {recipe.download_page} | {files} |")
    return "\n".join(lines)


def licence_table(rows: list[SourceRow]) -> str:
    lines = ["| source | group | licence (recipe `licence`) |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.group} | {' '.join(r.licence.split())} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--measure", type=Path, help="a dataset root with complete builds")
    how.add_argument("--bytes-per-crop", type=float)
    args = parser.parse_args(argv)
    if args.measure is not None:
        kept, image_bytes, shard_bytes = measure(args.measure)
        bytes_per_crop = shard_bytes / kept
        print(f"measured under {args.measure}: {kept:,} crops, {image_bytes:,} B of images "
              f"({image_bytes / kept:,.0f} B/crop), {shard_bytes:,} B of data.mdb "
              f"({bytes_per_crop:,.0f} B/crop, {shard_bytes / image_bytes:.2f}x the images)\n")  # fmt: skip
    else:
        bytes_per_crop = args.bytes_per_crop
    rows = catalog()
    train = [r for r in rows if r.group in TRAIN_GROUPS]
    print("## disk space\n\n" + disk_table(train, bytes_per_crop))
    print("\n## login\n\n" + login_table(rows))
    print("\n## licences\n\n" + licence_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
