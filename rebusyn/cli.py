"""Command line: arguments in, one pipeline call, a summary out. No logic lives here."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rebusyn import __version__
from rebusyn.executors import DEFAULT_RETRIES, EXECUTORS
from rebusyn.sample import CHARSETS, DEFAULT_CHARSET, DEFAULT_MAX_LEN
from rebusyn.storage import disk_full, is_remote
from rebusyn.synth.engine import ENGINES


def parse_count(text: str) -> int:
    """`1e6`, `1_000_000`, `1000000` -> 1000000; anything not a positive whole number is rejected."""
    cleaned = text.replace("_", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return int(value)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def default_root() -> Path:
    return Path(os.environ.get("REBUSYN_ROOT", "data"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rebusyn", description="Build the REBU-Syn STR training corpus.")
    parser.add_argument("--version", action="version", version=f"rebusyn {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    _add = sub.add_parser

    def add_command(name: str, **kw: str) -> argparse.ArgumentParser:
        return _add(name, parents=[common], **kw)

    def with_root(p: argparse.ArgumentParser, remote: bool = False) -> None:
        p.add_argument(
            "--root", type=_root_arg if remote else Path, default=None,
            help="dataset root (default ./data or $REBUSYN_ROOT)"
            + ("; also an fsspec URL such as s3://bucket/data" if remote else ""),
        )  # fmt: skip

    def with_executor(p: argparse.ArgumentParser) -> None:
        p.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: a process pool of --workers (default); ray: a Ray cluster")  # fmt: skip
        p.add_argument("--ray-address", default=None,
                       help="with --executor ray: auto or ray://host:10001 (default: start Ray here)")
        p.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                       help=f"attempts per work unit after the first (default {DEFAULT_RETRIES})")

    b = add_command("build", help="download, verify, parse, crop and shard real and public synthetic sources")
    b.add_argument(
        "--groups",
        type=_csv,
        default=("R", "E", "B", "U"),
        help="comma-separated groups: R,E,B,U (real), S (public synthetic sets)",
    )
    b.add_argument(
        "--sources", type=_csv, default=(), help="comma-separated source names (overrides --groups)"
    )
    with_root(b, remote=True)
    with_executor(b)
    b.add_argument("--force", action="store_true",
                   help="rebuild sources that are up to date, and ignore an interrupted build's checkpoint")
    b.add_argument("--max-shard-bytes", type=int, default=None, help="roll over to a new shard at this size")
    b.add_argument("--work-dir", type=Path, default=None,
                   help="with a remote --root (s3://...): local folder for downloads and staging")
    b.add_argument(
        "--from", dest="from_dir", type=Path, default=None, help="folder with archives downloaded by hand"
    )
    b.add_argument("--mirror", default=None, help="base URL or folder that serves every archive by its name")
    b.add_argument("--skip-checksum", action="store_true", help="accept files whose checksum differs (warns)")
    b.add_argument("--charset", choices=CHARSETS, default=DEFAULT_CHARSET)
    b.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN)
    b.add_argument("--workers", type=int, default=1)
    b.add_argument(
        "--dedup",
        choices=["report", "drop-from-train"],
        default=None,
        help="then run `rebusyn dedup --policy POLICY` over the root",
    )
    b.add_argument(
        "--test", action="store_true", help="build the test benchmarks (group T) under <root>/test/"
    )
    b.add_argument(
        "--custom",
        metavar="NAME",
        default=None,
        help="build your own data given by --from (label list, crops + label files, or STR LMDB) "
        "as train/real/custom/NAME",
    )
    b.add_argument(
        "--crop",
        choices=["warp", "bbox"],
        default="warp",
        help="warp: quads warped upright, curved words unrolled (default); bbox: PARSeq's axis-aligned crop",
    )
    b.add_argument(
        "--input",
        default=None,
        help="recipe input to build from (icdar2015: detection | word_crops; mjsynth: tar | dtrb_lmdb | ...)",
    )

    s = add_command("synth", help="render synthetic word images into shards")
    s.add_argument(
        "--n", type=parse_count, required=True, help="number of samples: 1e6, 1_000_000 or 1000000"
    )
    with_root(s, remote=True)
    with_executor(s)
    s.add_argument("--unit-size", type=int, default=None,
                   help="samples per work unit and shard (default: from --n, 250 to 10,000)")  # fmt: skip
    s.add_argument(
        "--engine",
        default="fast",
        choices=ENGINES,
        help="fast (rebusyn's renderer, default), scene (words on background photos), trdg (trdg 1.8.0)",
    )
    s.add_argument(
        "--config", type=Path, default=None, help="effect config YAML (default recipes/synth/<engine>.yaml)"
    )
    s.add_argument(
        "--backgrounds", type=Path, default=None, help="folder of photos for --engine scene (default trdg's)"
    )
    s.add_argument("--height", type=int, default=32, help="image height in pixels (16-256)")
    s.add_argument(
        "--corpus", type=Path, default=None, help="one text per line (default: embedded English corpus)"
    )
    s.add_argument(
        "--fonts", type=Path, default=None, help="folder of .ttf/.otf fonts (default: trdg's Latin fonts)"
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--charset", choices=CHARSETS, default=DEFAULT_CHARSET)
    s.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN)

    m = add_command("mix", help="write a real:synthetic manifest from the indexes")
    m.add_argument("--ratio", default=None, help="real:synthetic, e.g. 3:1 (default 3:1)")
    m.add_argument("--sweep", default=None, help="one manifest per ratio: 1:0.5,1:1,1:2 (named by ratio)")
    m.add_argument("--weights", default=None, help="per-source weights: coco_text=2,mjsynth=0.5")
    m.add_argument("--spec", default=None, help="a mix spec YAML, or a name in manifests/specs/")
    with_root(m)
    m.add_argument("--name", default=None)
    m.add_argument("--out", type=Path, default=Path("manifests"))
    m.add_argument("--seed", type=int, default=None)
    m.add_argument("--total", type=parse_count, default=None)
    m.add_argument("--epochs", type=int, default=None, help="rows for K epochs, each its own draw and order")
    m.add_argument(
        "--materialize",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="also write the mix as PARSeq-layout LMDB shards (default DIR: <manifest>/lmdb)",
    )

    e = add_command("export", help="export a manifest or a root to another format")
    e.add_argument("path", type=Path, help="manifest directory or dataset root")
    e.add_argument("--format", choices=["parquet"], default="parquet")
    e.add_argument("--out", type=Path, required=True)

    so = add_command("sources", help="every source: group, licence, login, REBU-Syn count; state in a root")
    so.add_argument("--root", type=Path, default=None, help="show each source's state under this root")
    so.add_argument("--groups", type=_csv, default=(), help="only these groups, e.g. R,E")

    st = add_command("stats", help="counts, label lengths, characters, image sizes, real:synthetic ratio")
    st.add_argument("path", type=Path, nargs="?", default=None,
                    help="dataset root or manifest (default ./data or $REBUSYN_ROOT)")  # fmt: skip
    st.add_argument("--split", choices=["train", "test"], default="train",
                    help="of a root: train (groups R,E,B,U,S, custom) or test (the benchmarks)")  # fmt: skip
    st.add_argument("--html", type=Path, default=None, help="also write a self-contained page with plots")
    st.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    st.add_argument("--no-preview", action="store_true", help="no sheet of random crops in --html")
    st.add_argument("--root", type=Path, default=None, help="with a manifest: its dataset root, if it moved")

    pv = add_command("preview", help="a contact sheet PNG of random crops with their labels")
    pv.add_argument("path", type=Path, nargs="?", default=None,
                    help="dataset root or manifest (default ./data or $REBUSYN_ROOT)")  # fmt: skip
    pv.add_argument("--source", type=_csv, default=(), help="only these sources (comma-separated)")
    pv.add_argument("--group", type=_csv, default=(), help="only these groups, e.g. R,E")
    pv.add_argument("--n", type=parse_count, default=64, help="crops on the sheet (default 64)")
    pv.add_argument("--per-source", type=parse_count, default=None,
                    help="at most this many crops of each source, shown source by source")  # fmt: skip
    pv.add_argument("--seed", type=int, default=0)
    pv.add_argument("--columns", type=parse_count, default=8)
    pv.add_argument("--split", choices=["train", "test"], default="train")
    pv.add_argument("--out", type=Path, default=Path("preview.png"), help="PNG to write (./preview.png)")

    sa = add_command("samples", help="write a sample mirror: native-layout archives + SHA256SUMS")
    sa.add_argument("dir", type=Path)
    sa.add_argument("--sources", type=_csv, default=())

    dd = add_command("dedup", help="find duplicate crops across sources and train-vs-test leakage")
    with_root(dd)
    dd.add_argument(
        "--policy",
        choices=["report", "drop-from-train"],
        default="report",
        help="report only (default), or also write dedup/drop.parquet: training crops mix should skip",
    )
    dd.add_argument(
        "--threshold", type=int, default=None, help="near-duplicate radius, bits of 64 (default 8)"
    )
    dd.add_argument(
        "--sources", type=_csv, default=(), help="comma-separated sources (test benchmarks always included)"
    )
    dd.add_argument("--workers", type=int, default=1)
    dd.add_argument("--sheet", type=Path, default=None, help="write a PNG of sample pairs side by side")
    with_executor(dd)

    v = add_command("verify", help="check shards, indexes, manifests and download checksums")
    v.add_argument("path", type=Path, help="dataset root, manifest (dir or .json), LMDB folder, or a tree")
    v.add_argument("--charset", choices=CHARSETS, default=None,
                   help="check every label against this policy (default: a root's report policy, else none)")
    v.add_argument("--max-len", type=int, default=None, help=f"with --charset (default {DEFAULT_MAX_LEN})")
    v.add_argument("--skip-archives", action="store_true", help="do not re-hash the downloads reports name")
    v.add_argument("--workers", type=int, default=1, help="shards checked in parallel")
    v.add_argument("--report", type=Path, default=None,
                   help="JSON report path (default <root>/reports/verify.json for a root, none otherwise)")
    v.add_argument("--root", type=Path, default=None, help="with a manifest: its dataset root, if it moved")

    d = add_command("demo", help="sample mirror -> build -> synth -> mix 3:1 -> HF dataset, offline")
    d.add_argument("--root", type=Path, default=Path("demo-data"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="rebusyn: %(levelname)s: %(message)s")
    progress = not args.quiet and sys.stderr.isatty()
    try:
        return _run(args, progress)
    except KeyboardInterrupt:
        print("rebusyn: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's contract: one line, non-zero exit
        from rebusyn.fetch import ManualDownloadRequired

        if isinstance(exc, ManualDownloadRequired):
            print(str(exc), file=sys.stderr)
            print(
                f"rebusyn: error: {len(exc.missing)} file(s) must be downloaded by hand (see above)",
                file=sys.stderr,
            )
            return 2
        from rebusyn.build import SourcesFailed

        if isinstance(exc, SourcesFailed):
            # the sources that did build get their summary; each failure its full message
            if exc.built:
                from rebusyn.build import BuildResult, format_summary

                where = getattr(args, "root", None) or default_root()
                print(format_summary(BuildResult(exc.built, []), where))
            for name, error in exc.errors.items():
                print(f"rebusyn: {name}: {error}", file=sys.stderr)
        if os.environ.get("REBUSYN_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"rebusyn: error: {type(exc).__name__}: {message}", file=sys.stderr)
        if disk_full(exc):
            where = getattr(args, "root", None) or default_root()
            print(f"rebusyn: the disk holding {where} (or its downloads/work folder) is full. Nothing "
                  "half-written is visible to readers; free some space and run the same command again: "
                  "finished sources and shards are kept and the run resumes.", file=sys.stderr)  # fmt: skip
        return 1


def _root_arg(text: str) -> Path | str:
    """A local root as a Path; an fsspec URL (s3://...) as it is (Path would fold its '//')."""
    return text if is_remote(text) else Path(text)


def _run(args: argparse.Namespace, progress: bool) -> int:
    root = getattr(args, "root", None) or default_root()
    if args.command == "build":
        from rebusyn.build import BuildOptions, build, format_summary

        result = build(
            BuildOptions(
                root=root,
                groups=args.groups,
                sources=args.sources,
                from_dir=args.from_dir,
                mirror=args.mirror,
                skip_checksum=args.skip_checksum,
                charset=args.charset,
                max_len=args.max_len,
                workers=args.workers,
                input=args.input,
                crop=args.crop,
                test=args.test,
                custom=args.custom,
                dedup=args.dedup,
                progress=progress,
                executor=args.executor,
                ray_address=args.ray_address,
                retries=args.retries,
                work_dir=args.work_dir,
                force=args.force,
                **({"max_shard_bytes": args.max_shard_bytes} if args.max_shard_bytes else {}),
            )
        )
        print(format_summary(result, root))
    elif args.command == "synth":
        from rebusyn.synth.run import SynthOptions, format_summary, synthesize

        summary = synthesize(
            SynthOptions(
                n=args.n,
                root=root,
                engine=args.engine,
                corpus=args.corpus,
                fonts=args.fonts,
                seed=args.seed,
                workers=args.workers,
                charset=args.charset,
                max_len=args.max_len,
                height=args.height,
                config=args.config,
                backgrounds=args.backgrounds,
                progress=progress,
                executor=args.executor,
                ray_address=args.ray_address,
                retries=args.retries,
                unit_size=args.unit_size,
            )
        )
        print(format_summary(summary))
    elif args.command == "mix":
        from rebusyn.mix import format_summary, mix, mix_sweep, resolve_options

        opts, sweep = resolve_options(
            root, args.out, spec=args.spec, ratio=args.ratio, sweep=args.sweep, weights=args.weights,
            name=args.name, seed=args.seed, total=args.total, epochs=args.epochs,
        )  # fmt: skip
        for summary in mix_sweep(opts, sweep) if sweep else [mix(opts)]:
            print(format_summary(summary))
            if args.materialize is not None:
                from rebusyn.materialize import format_summary as materialized
                from rebusyn.materialize import materialize

                manifest_dir = summary.manifest_path.parent
                target = Path(args.materialize) / summary.name if args.materialize else manifest_dir / "lmdb"
                print(materialized(materialize(manifest_dir, target, progress=progress)))
    elif args.command == "export":
        from rebusyn.export import export_parquet, format_summary

        print(format_summary(export_parquet(args.path, args.out)))
    elif args.command == "sources":
        from rebusyn.catalog import catalog, format_table

        groups = tuple(g.upper() for g in args.groups)
        print(format_table(catalog(args.root, groups), args.root))
    elif args.command == "stats":
        from rebusyn.stats import compute, format_text, write_json

        if args.html is not None:
            from rebusyn.stats_html import require_matplotlib

            require_matplotlib()  # before the work, not after it
        path = args.path or default_root()
        stats = compute(path, split=args.split, root=args.root, progress=progress)
        print(format_text(stats))
        if args.json is not None:
            print(f"JSON: {write_json(stats, args.json)}")
        if args.html is not None:
            from rebusyn.stats_html import report_page

            print(f"HTML: {report_page(stats, path, args.html, preview=not args.no_preview, root=args.root)}")
    elif args.command == "preview":
        from rebusyn.preview import format_summary, preview

        print(format_summary(preview(
            args.path or default_root(), args.out, n=args.n, seed=args.seed, sources=args.source,
            groups=tuple(g.upper() for g in args.group), split=args.split, columns=args.columns,
            per_source=args.per_source,
        )))  # fmt: skip
    elif args.command == "samples":
        from rebusyn.samplegen import write_samples

        summary = write_samples(args.dir, list(args.sources) or None)
        print(f"wrote sample archives for {', '.join(summary.sources)} into {summary.directory}; build from "
              "it with\n" + "\n".join(f"  {command}" for command in summary.build_commands()))  # fmt: skip
    elif args.command == "dedup":
        from rebusyn.dedup import DEFAULT_THRESHOLD, DedupOptions, dedup, format_summary

        summary = dedup(
            DedupOptions(
                root=root,
                policy=args.policy,
                threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
                sources=args.sources,
                workers=args.workers,
                sheet=args.sheet,
                progress=progress,
                executor=args.executor,
                ray_address=args.ray_address,
                retries=args.retries,
            )
        )
        print(format_summary(summary))
    elif args.command == "verify":
        from rebusyn.verify import NotVerifiable, OptionError, VerifyOptions, format_summary, verify

        try:  # a bad value (--workers 0) or a PATH verify does not know is a usage error: exit 2
            result = verify(VerifyOptions(
                path=args.path, charset=args.charset, max_len=args.max_len, skip_archives=args.skip_archives,
                workers=args.workers, report=args.report, root=args.root, progress=progress,
            ))  # fmt: skip
        except (NotVerifiable, OptionError) as exc:
            print(f"rebusyn: error: {exc}", file=sys.stderr)
            return 2
        print(format_summary(result))
        return result.exit_code
    elif args.command == "demo":
        from rebusyn.demo import run_demo

        print(run_demo(args.root, progress=progress).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
