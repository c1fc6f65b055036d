"""rebusyn: build the REBU-Syn scene-text-recognition training corpus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_dataset"]

if TYPE_CHECKING:
    from pathlib import Path

    import datasets


def load_dataset(path: str | Path, **kwargs: Any) -> datasets.Dataset | datasets.IterableDataset:
    """A manifest or a dataset root as a HuggingFace dataset; see `rebusyn.loaders.hf.load_dataset`
    (`streaming`, `split`, `cache_dir`, `num_proc`, `root`). Imported lazily: `import rebusyn` stays fast."""
    from rebusyn.loaders.hf import load_dataset as _load

    return _load(path, **kwargs)
