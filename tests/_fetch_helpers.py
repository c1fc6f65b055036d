"""Shared by the download tests (test_fetch.py, test_fetch_faults.py): options with short back-offs. Their
fixtures (no proxy, `dest`) are in tests/conftest.py."""

from __future__ import annotations

import hashlib

from rebusyn.fetch import FetchOptions


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def opts(**kw: object) -> FetchOptions:
    base: dict[str, object] = {"retries": 3, "backoff": 0.01, "timeout": 5.0, "progress": False}
    base.update(kw)
    return FetchOptions(**base)  # type: ignore[arg-type]
