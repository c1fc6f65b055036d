"""Fixtures shared by several test files (pytest finds this file itself)."""

from __future__ import annotations

import pytest

from rebusyn.synth import fonts as fontmod


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Keep the font-analysis cache of a test module out of the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REBUSYN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        fontmod.clear_cache()
        yield
    fontmod.clear_cache()
