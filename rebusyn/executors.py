"""How work units run: inline, or on a local process pool. Results always come back in input order, so
outputs do not depend on the number of workers."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int = 1, chunksize: int = 4
) -> Iterator[R]:
    """`map(fn, items)` on `workers` processes (1 = in this process), results in input order.

    `fn` must be picklable (a module-level function or a functools.partial of one). Workers are forked
    where available: LMDB readers close their environments before fork (see rebusyn.store.shards).
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers) as pool:
        yield from pool.imap(fn, items, chunksize=chunksize)
