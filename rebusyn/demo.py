"""`rebusyn demo`: the whole path on bundled sample data, with no network.

sample mirror -> served by a local HTTP server on 127.0.0.1 -> `build --mirror` through the real fetch
path (checksums from the mirror's SHA256SUMS) -> `synth` 2,000 trdg words -> `mix --ratio 3:1` ->
HuggingFace dataset -> stats (stats.html) -> preview sheet of every source.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rebusyn.build import BuildOptions, build
from rebusyn.build import format_summary as build_summary
from rebusyn.mix import MixOptions, mix
from rebusyn.mix import format_summary as mix_summary
from rebusyn.preview import format_summary as format_preview
from rebusyn.preview import preview
from rebusyn.sample import REAL_GROUPS, SYNTH_GROUP
from rebusyn.samplegen import write_samples
from rebusyn.stats import compute as compute_stats
from rebusyn.stats import format_text as format_stats
from rebusyn.stats_html import PlotsUnavailable, report_page
from rebusyn.synth.run import SynthOptions, synthesize
from rebusyn.synth.run import format_summary as synth_summary

DEMO_SYNTH_N = 2000


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 (an ephemeral port) for the duration of the block."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class DemoSummary:
    sections: list[tuple[str, str]] = field(default_factory=list)

    def add(self, title: str, body: str) -> None:
        self.sections.append((title, body))

    def text(self) -> str:
        return "\n".join(f"== {title}\n{body}" for title, body in self.sections)


def run_demo(
    root: Path, *, progress: bool = True, synth_n: int = DEMO_SYNTH_N, workers: int = 2
) -> DemoSummary:
    root = Path(root)
    dataset_root = root / "dataset"
    summary = DemoSummary()
    started = time.perf_counter()

    samples = write_samples(root / "mirror")
    summary.add("samples", f"sample mirror with {len(samples.files)} files in {samples.directory}")

    with serve_directory(samples.directory) as url:
        groups = (*REAL_GROUPS, SYNTH_GROUP)  # the real sources and the four public synthetic sets
        built = build(
            BuildOptions(root=dataset_root, groups=groups, mirror=url, workers=workers, progress=progress)
        )
        summary.add(f"build --groups {','.join(groups)} (mirror {url})", build_summary(built, dataset_root))
        tests = build(
            BuildOptions(root=dataset_root, mirror=url, workers=workers, progress=progress, test=True)
        )
        if tests.sources:
            summary.add("build --test", build_summary(tests, dataset_root))

    synth = synthesize(SynthOptions(n=synth_n, root=dataset_root, workers=workers, progress=progress))
    summary.add("synth", synth_summary(synth))

    mixed = mix(MixOptions(root=dataset_root, ratio=(3.0, 1.0), out=root / "manifests"))
    summary.add("mix", mix_summary(mixed))

    from rebusyn.loaders.hf import load_dataset

    ds = load_dataset(mixed.manifest_path.parent)
    first = ds[0]  # decoded through datasets' Image feature: the load path really reads the shards
    counts = {
        "real": sum(1 for s in ds["synthetic"] if not s),
        "synthetic": sum(1 for s in ds["synthetic"] if s),
    }
    summary.add(
        "load",
        f"datasets.Dataset with {len(ds)} rows, features {sorted(ds.features)}; row 0: "
        f"{first['image'].width}x{first['image'].height} image, label {first['label']!r}; "
        f"real {counts['real']}, synthetic {counts['synthetic']}",
    )

    manifest_dir = mixed.manifest_path.parent
    stats = compute_stats(manifest_dir)
    lines = format_stats(stats).splitlines()[:2]
    try:
        lines.append(f"HTML report: {report_page(stats, manifest_dir, root / 'stats.html')}")
    except PlotsUnavailable as exc:  # matplotlib is an optional extra
        lines.append(f"(no HTML report: {exc})")
    summary.add("stats", "\n".join(lines))

    sheet = preview(manifest_dir, root / "preview.png", n=64, per_source=3, seed=0)
    summary.add("preview", format_preview(sheet))
    summary.add("done", f"demo finished in {time.perf_counter() - started:.1f} s; everything is under {root}")
    return summary
