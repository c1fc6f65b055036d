"""How work runs: inline, on a local process pool, or on a Ray cluster.

- `ordered_map` / `pool_map`: fine-grained items whose results come back in input order (build's crops).
- `Executor` (`LocalExecutor`, `RayExecutor`): coarse, deterministic work units that each write and publish
  their own shard (synth) or source (build), with bounded retries; results come back as units finish and
  the caller puts them in unit order, so outputs depend on neither the executor nor the worker count."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int = 1,
    chunksize: int = 4,
    max_chunks_in_flight: int | None = None,
) -> Iterator[R]:
    """`map(fn, items)` on `workers` processes (1 = in this process), results in input order.

    At most `max_chunks_in_flight` chunks (default 8 per worker) are submitted and not yet consumed:
    `Pool.imap` has no such bound, and when the consumer is the slow side (LMDB writes in the main process)
    its finished results pile up in memory. Here reading the input waits for the consumer, so memory stays
    flat however long the input is (MJSynth: 8.9M images from a tar read 7x faster than they are stored).

    `fn` must be picklable (a module-level function or a functools.partial of one). Workers are forked
    where available: LMDB readers close their environments before fork (see rebusyn.store.shards).
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    source = iter(items)
    chunks = iter(lambda: list(islice(source, chunksize)), [])
    with mp.get_context(method).Pool(workers) as pool:
        for results in pool_map(pool, functools.partial(_run_chunk, fn), chunks,
                                max_chunks_in_flight or 8 * workers):  # fmt: skip
            yield from results


def pool_map(pool: Any, fn: Callable[[T], R], items: Iterable[T], limit: int) -> Iterator[R]:
    """`fn` over `items` on an existing pool, results in input order, at most `limit` submitted and not yet
    consumed (reading `items` waits for the consumer)."""
    source = iter(items)
    in_flight: deque = deque()
    while True:
        while len(in_flight) < limit and (item := next(source, _END)) is not _END:
            in_flight.append(pool.apply_async(fn, (item,)))
        if not in_flight:
            return
        yield in_flight.popleft().get()


_END = object()


def _run_chunk(fn: Callable[[T], R], chunk: list[T]) -> list[R]:
    return [fn(item) for item in chunk]


# ---------------------------------------------------------------------------------------------------
# Work units: `local` (a process pool) or `ray` (a Ray cluster), with bounded retries

EXECUTORS = ("local", "ray")
DEFAULT_RETRIES = 2
FAULT_KILL_ENV = "REBUSYN_FAULT_KILL_UNIT"  # testing hook, see maybe_inject_fault
FAULT_DIR_ENV = "REBUSYN_FAULT_DIR"
FAULT_KILL_AT_ENV = "REBUSYN_FAULT_KILL_AT"  # testing hook, see maybe_kill_at
FAULT_TIMES_ENV = "REBUSYN_FAULT_TIMES"  # how many times the hooks kill (default 1)


@dataclass(frozen=True)
class UnitFailure:
    """A unit that failed on every attempt: `attempts` tries, the last error."""

    position: int
    attempts: int
    error: str


class Executor(Protocol):
    """Runs work units. Units are deterministic: the same unit gives the same result wherever it runs, so
    outputs depend on neither the executor nor the number of workers."""

    name: str
    retries: int

    def run(self, fn: Callable[[T], R], units: Sequence[T]) -> Iterator[tuple[int, R | UnitFailure]]:
        """(position in `units`, result or UnitFailure) as units finish, in any order."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """Units on a local process pool (`workers` processes; 1 = in this process).

    A unit that raises is retried up to `retries` times. A worker that dies (killed, out of memory) breaks
    a `concurrent.futures` pool, which does not say whose worker it was: the units that were on it are run
    again one at a time, each in a process of its own, and only a unit whose own process dies (or that
    raises) spends an attempt. So a neighbour's crash never costs a unit its retries; the price is that a
    crash that does not happen again (a one-off OOM kill) is forgiven even with `retries=0`."""

    name = "local"

    def __init__(
        self, workers: int = 1, retries: int = DEFAULT_RETRIES, in_flight_per_worker: int = 2
    ) -> None:
        if workers < 1 or retries < 0:
            raise ValueError(f"workers must be >= 1 and retries >= 0, got {workers} and {retries}")
        self.workers = workers
        self.retries = retries
        self.in_flight = max(1, workers * in_flight_per_worker)

    def run(self, fn: Callable[[T], R], units: Sequence[T]) -> Iterator[tuple[int, R | UnitFailure]]:
        if self.workers == 1:
            for position, unit in enumerate(units):
                yield position, self._inline(fn, unit, position)
            return
        yield from self._pooled(fn, units)

    def _inline(self, fn: Callable[[T], R], unit: T, position: int) -> R | UnitFailure:
        for attempt in range(1, self.retries + 2):
            try:
                return fn(unit)
            except Exception as exc:  # noqa: BLE001 - any unit error is retried, then reported
                error = f"{type(exc).__name__}: {exc}"
                if attempt > self.retries:
                    return UnitFailure(position, attempt, error)
        raise AssertionError("unreachable")

    def _pooled(self, fn: Callable[[T], R], units: Sequence[T]) -> Iterator[tuple[int, R | UnitFailure]]:
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        context = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        todo: deque[int] = deque(range(len(units)))
        attempts = [0] * len(units)
        pool = ProcessPoolExecutor(self.workers, mp_context=context)
        running: dict[Any, int] = {}

        def failed(position: int, error: str) -> Iterator[tuple[int, UnitFailure]]:
            if attempts[position] > self.retries:
                yield position, UnitFailure(position, attempts[position], error)
            else:
                todo.appendleft(position)

        try:
            while todo or running:
                while todo and len(running) < self.in_flight:
                    position = todo.popleft()
                    attempts[position] += 1
                    running[pool.submit(fn, units[position])] = position
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    position = running.pop(future)
                    try:
                        yield position, future.result()
                    except BrokenProcessPool:
                        broken = True
                        running[future] = position  # settled with the others below
                    except Exception as exc:  # noqa: BLE001
                        yield from failed(position, f"{type(exc).__name__}: {exc}")
                if broken:
                    # A dead worker takes the whole pool and every unit on it down, and the pool does not
                    # say whose worker died. Run those units again one at a time, each in a process of its
                    # own: the one that dies again is the culprit and spends its attempt; the others are
                    # innocent bystanders and finish without spending any.
                    lost = sorted(running.values())
                    running.clear()
                    pool.shutdown(wait=True, cancel_futures=True)
                    for position in lost:
                        with ProcessPoolExecutor(1, mp_context=context) as alone:
                            try:
                                yield position, alone.submit(fn, units[position]).result()
                            except BrokenProcessPool:
                                attempts[position] += 1
                                yield from failed(position, "worker process died (killed or out of memory)")
                            except Exception as exc:  # noqa: BLE001
                                attempts[position] += 1
                                yield from failed(position, f"{type(exc).__name__}: {exc}")
                    pool = ProcessPoolExecutor(self.workers, mp_context=context)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pass


class RayExecutor:
    """Units as Ray tasks on an existing cluster (`address="auto"` or `ray://host:10001`), or on a Ray
    instance started here when `address` is None. Each task asks for `cpus_per_unit` CPUs. Ray retries a
    task whose worker died and, with retry_exceptions, one that raised, up to `retries` times."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        cpus_per_unit: float = 1,
        retries: int = DEFAULT_RETRIES,
        max_in_flight: int | None = None,
        num_cpus: int | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise RuntimeError("--executor ray needs Ray: pip install 'rebusyn[ray]'") from exc
        self.retries = retries
        self.cpus_per_unit = cpus_per_unit
        self._started_here = not ray.is_initialized()
        if self._started_here:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
            ray.init(address=address, **kwargs)
        self._max_in_flight = max_in_flight

    def _in_flight_limit(self) -> int:
        """Two units per slot the cluster has now: asked again as units finish, so nodes that join
        a running job (autoscaling, a SLURM job still starting workers) get work too."""
        import ray

        if self._max_in_flight:
            return self._max_in_flight
        cluster_cpus = ray.cluster_resources().get("CPU", 1)
        return max(2, 2 * int(cluster_cpus // max(self.cpus_per_unit, 1)))

    def run(self, fn: Callable[[T], R], units: Sequence[T]) -> Iterator[tuple[int, R | UnitFailure]]:
        import ray

        options: dict[str, Any] = {"num_cpus": self.cpus_per_unit, "max_retries": self.retries,
                                   "retry_exceptions": True}  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k.startswith("REBUSYN_")}
        if env:  # e.g. REBUSYN_CACHE_DIR: workers of an existing cluster did not start with our environment
            options["runtime_env"] = {"env_vars": env}
        task = ray.remote(_call_unit).options(**options)
        fn_ref = ray.put(fn)  # the unit function (with its shared context) is shipped once, not per task
        todo = deque(range(len(units)))
        running: dict[Any, int] = {}
        while todo or running:
            limit = self._in_flight_limit() if todo else 0
            while todo and len(running) < limit:
                position = todo.popleft()
                running[task.remote(fn_ref, units[position])] = position
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                position = running.pop(ref)
                try:
                    yield position, ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - retries are exhausted: report the unit
                    # RayTaskError's text is the remote traceback; the user wants the error itself
                    cause = getattr(exc, "cause", None) or exc
                    error = f"{type(cause).__name__}: {cause}"
                    yield position, UnitFailure(position, self.retries + 1, error)

    def close(self) -> None:
        import ray

        if self._started_here and ray.is_initialized():
            ray.shutdown()


def _call_unit(fn: Callable[[T], R], unit: T) -> R:
    # Ray tasks must be plain functions; `fn` may be a functools.partial carrying the run's context.
    return fn(unit)


def make_executor(
    name: str, *, workers: int = 1, retries: int = DEFAULT_RETRIES, ray_address: str | None = None,
    cpus_per_unit: float = 1,
) -> Executor:  # fmt: skip
    """The executor called `name` (local | ray)."""
    if name == "local":
        return LocalExecutor(workers, retries)
    if name == "ray":
        return RayExecutor(ray_address, cpus_per_unit=cpus_per_unit, retries=retries,
                           num_cpus=workers if ray_address is None and workers > 1 else None)  # fmt: skip
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")


def maybe_kill_at(tag: str) -> None:
    """Testing hook: SIGKILL this process the first time it passes the point called `tag` (e.g.
    `build:icdar2015:shards:2`) when REBUSYN_FAULT_KILL_AT names it (once: a marker in REBUSYN_FAULT_DIR)."""
    if os.environ.get(FAULT_KILL_AT_ENV) == tag:
        _kill_once(f"killed-at-{tag.replace(':', '-')}")


def _kill_once(marker_name: str) -> None:
    """SIGKILL this process unless it already happened REBUSYN_FAULT_TIMES times (markers count them)."""
    folder = Path(os.environ.get(FAULT_DIR_ENV, "."))
    for k in range(int(os.environ.get(FAULT_TIMES_ENV, "1"))):
        try:
            fd = os.open(folder / (marker_name if k == 0 else f"{marker_name}.{k}"),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fmt: skip
        except FileExistsError:
            continue
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def maybe_inject_fault(unit_number: int) -> None:
    """Testing hook: SIGKILL this process the first time unit `unit_number` reaches this call, when
    REBUSYN_FAULT_KILL_UNIT names that unit (a marker file in REBUSYN_FAULT_DIR makes it happen once)."""
    target = os.environ.get(FAULT_KILL_ENV)
    if target is not None and int(target) == unit_number:
        _kill_once(f"killed-unit-{unit_number}")
