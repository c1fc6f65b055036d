"""`rebusyn samples DIR`: a sample mirror with each source's archives in its exact native layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rebusyn.samplegen import icdar2015
from rebusyn.samplegen.archive import write_sha256sums

GENERATORS: dict[str, Callable[[Path], list[Path]]] = {
    "icdar2015": icdar2015.write,
}


@dataclass
class SamplesSummary:
    directory: Path
    files: list[Path]
    sources: list[str]


def write_samples(directory: Path, sources: list[str] | None = None) -> SamplesSummary:
    """Write every requested source's sample archives flat into `directory` (a mirror answers
    `<mirror>/<archive name>`), then SHA256SUMS over all files there."""
    names = sources or sorted(GENERATORS)
    unknown = [s for s in names if s not in GENERATORS]
    if unknown:
        raise ValueError(
            f"no sample generator for {', '.join(unknown)}; available: {', '.join(sorted(GENERATORS))}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for name in names:
        files += GENERATORS[name](directory)
    files.append(write_sha256sums(directory))
    return SamplesSummary(directory, files, names)
