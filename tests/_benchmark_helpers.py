"""Shared by the IIIT5K, SVT, ICDAR 2013 and benchmark (group T) tests: a sample mirror that also serves this
project's variant of PARSeq's relabel fork, and a one-source build from it read back with plain lmdb."""

from __future__ import annotations

from pathlib import Path

from rebusyn.build import BuildOptions, SourceSummary, build
from rebusyn.samplegen import _case_sensitive_pinned, write_samples
from rebusyn.samplegen.archive import write_sha256sums
from tests._source_helpers import read_built, serve


def sample_mirror(directory: Path, *generators: str) -> Path:
    """`rebusyn samples` for the generators, plus baudm's fork (`-master.zip`) holding the IIIT5K/SVT sample
    folders: the mirror's own copy comes from the SVTP/CUTE80 generator, which has SVTP/CUTE80 only."""
    write_samples(directory, list(generators))
    _case_sensitive_pinned.write_parseq_fork(directory)
    write_sha256sums(directory)
    return directory


def build_one(tmp_path: Path, mirror: Path, source: str, **kw) -> tuple[SourceSummary, list[dict]]:
    """Build one recipe from the mirror over HTTP; its summary and every sample (label, image, meta)."""
    with serve(mirror, tmp_path / "www") as server:
        (summary,) = build(
            BuildOptions(tmp_path / "out", sources=(source,), mirror=server.base_url, progress=False, **kw)
        ).sources
    return summary, read_built(tmp_path / "out", source)
