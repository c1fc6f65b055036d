"""ordered_map: input order kept on a process pool, and reading the input waits for the consumer."""

import os

import pytest

from rebusyn.executors import ordered_map


def _square_and_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _fail_on_seven(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x


@pytest.mark.parametrize("workers", [1, 2])
def test_results_in_input_order(workers):
    out = list(ordered_map(_square_and_pid, range(200), workers, chunksize=3))
    assert [r for r, _ in out] == [x * x for x in range(200)]
    assert all((pid == os.getpid()) == (workers == 1) for _, pid in out)  # 2 workers: never in this process


def test_input_is_read_only_as_fast_as_results_are_consumed():
    pulled = []

    def items():
        for i in range(10_000):
            pulled.append(i)
            yield i

    results = ordered_map(_square_and_pid, items(), workers=2, chunksize=4, max_chunks_in_flight=5)
    assert next(results)[0] == 0
    # one chunk consumed: at most 5 chunks in flight plus the one being refilled were read, not 10,000
    assert len(pulled) <= 6 * 4
    rest = [r for r, _ in results]
    assert len(rest) == 9_999 and len(pulled) == 10_000


def test_worker_errors_reach_the_caller():
    with pytest.raises(ValueError, match="seven"):
        list(ordered_map(_fail_on_seven, range(20), workers=2, chunksize=2))
