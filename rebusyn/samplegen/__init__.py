"""`rebusyn samples DIR`: a sample mirror with each source's archives in its exact native layout.

A source's generator is the module `rebusyn.samplegen.<source>` with `write(out_dir) -> list[Path]`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from rebusyn.samplegen.archive import write_sha256sums

_HELPERS = {"archive", "scene"}  # modules of this package that are not source generators


def available() -> list[str]:
    """Sources that have a sample generator (helper modules and `_private` ones are not sources)."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(__path__)
        if m.name not in _HELPERS and not m.name.startswith("_")
    )


@dataclass
class SamplesSummary:
    directory: Path
    files: list[Path]
    sources: list[str]
    chosen: bool = False  # the sources were named (not every available one)

    def build_commands(self) -> list[str]:
        """How to build from this mirror: the named sources, or every group and the test sets."""
        if self.chosen:
            return [f"rebusyn build --sources {','.join(self.sources)} --mirror {self.directory}"]
        return [f"rebusyn build --groups R,E,B,U --mirror {self.directory}",
                f"rebusyn build --test --mirror {self.directory}"]  # fmt: skip


def write_samples(directory: Path, sources: list[str] | None = None) -> SamplesSummary:
    """Write every requested source's sample archives flat into `directory` (a mirror answers
    `<mirror>/<archive name>`), then SHA256SUMS over all files there."""
    known = available()
    names = sources or known
    unknown = [s for s in names if s not in known]
    if unknown:
        raise ValueError(f"no sample generator for {', '.join(unknown)}; available: {', '.join(known)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for name in names:
        files += importlib.import_module(f"rebusyn.samplegen.{name}").write(directory)
    files.append(write_sha256sums(directory))
    return SamplesSummary(directory, files, names, chosen=bool(sources))
