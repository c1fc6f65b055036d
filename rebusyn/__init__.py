"""rebusyn: build the REBU-Syn scene-text-recognition training corpus."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_dataset"]


def load_dataset(path, *, streaming: bool = False, split: str = "train"):  # noqa: ANN001, ANN201
    """Load a manifest or a dataset root as a HuggingFace dataset (see rebusyn.loaders.hf)."""
    from rebusyn.loaders.hf import load_dataset as _load

    return _load(path, streaming=streaming, split=split)
