"""Synthetic word images (group S): trdg rendering with a Pillow >= 10 compatibility layer, an embedded
English corpus, and font quality filtering. Entry point: `rebusyn.synth.run.synthesize`."""

from __future__ import annotations

__all__ = ["SynthOptions", "SynthSummary", "synthesize"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: importing the package must not import trdg/cv2
    if name in __all__:
        from rebusyn.synth import run

        return getattr(run, name)
    raise AttributeError(name)
