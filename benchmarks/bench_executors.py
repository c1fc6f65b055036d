"""`rebusyn synth --engine fast` on the local process pool against Ray, side by side in one run.

    python benchmarks/bench_executors.py [--n 20000] [--unit-sizes 250,1000,5000] [--repeats 3]

The same `synthesize(...)` call (engine fast, seed 0, the same n and unit size) runs with
`--executor local --workers 2` and with `--executor ray` on a Ray instance started once here with
num_cpus=2 and reused by every Ray run (RayExecutor keeps an already-initialized Ray). Runs alternate
local / ray for each unit size, `--repeats` times (the order of the pair flips every repeat); the best
time of each is kept. Printed:

- `ray.init(num_cpus=2)` on its own (Ray's start-up, paid once per machine or cluster);
- a local run before Ray is started (does a Ray instance in the driver slow the forked pool? a drift check);
- what each executor costs per unit by itself: `--empty-units` units that do nothing, through
  LocalExecutor(2) (a fresh pool included) and RayExecutor;
- the first synth run on Ray in this job (its worker processes, already running since ray.init and the
  empty units, import rebusyn, unpickle the run's context and load the engine) against a local run of the
  same size;
- for each unit size: samples/s of both, ray/local time ratio, work units, and the overhead per unit
  (t_ray - t_local) / units; plus the per-unit cost of each executor from its own runs, the slope of time
  against the number of units between the smallest and the largest unit size;
- peak memory of one worker process (the largest /proc/<pid>/status VmHWM among the pool's forked workers or
  the Ray workers; the peaks of Ray's long-lived workers are reset through /proc/<pid>/clear_refs before
  each run), and whether the two executors wrote identical data.mdb files and index.

Ray's workers stay alive between runs of one job, so warm Ray runs skip the engine start (fonts, glyph
caches) that every local run pays in its freshly forked pool (~0.2 s of wall time): the first-run row shows
what a new job pays instead.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from rebusyn.executors import Executor, LocalExecutor, RayExecutor
from rebusyn.synth.run import SynthOptions, synthesize

OWN_CMDLINE = Path("/proc/self/cmdline").read_bytes()


def worker_pids(executor: str) -> list[int]:
    """This process's pool workers (forked: the same command line as this one) or the workers of the Ray
    instance started here (descendants named ray::IDLE, ray::_call_unit; not Ray's agents, nor the
    processes of any other Ray instance on the machine)."""
    me = os.getpid()
    parents: dict[int, int] = {}
    cmdlines: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdlines[int(entry.name)] = (entry / "cmdline").read_bytes()
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue

    def descends(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == me:
                return True
        return False

    if executor == "local":
        return [pid for pid, ppid in parents.items() if ppid == me and cmdlines[pid] == OWN_CMDLINE]
    return [pid for pid, cmd in cmdlines.items()
            if cmd.startswith(b"ray::") and b"Agent" not in cmd and descends(pid)]  # fmt: skip


def vm_hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakSampler:
    """The largest VmHWM of any worker process of `executor` while the block runs (polled: a pool worker's
    peak is read shortly before it exits)."""

    def __init__(self, executor: str) -> None:
        self.executor = executor
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def _sample(self) -> None:
        for pid in worker_pids(self.executor):
            self.peak = max(self.peak, vm_hwm_mib(pid))

    def __enter__(self) -> PeakSampler:
        for pid in worker_pids(self.executor):  # Ray's workers outlive runs: start their peaks afresh
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()


def digest(root: Path) -> str:
    """sha256 over every data.mdb (by relative path) and the index: what must match byte for byte."""
    h = hashlib.sha256()
    files = sorted((root / "train" / "synth" / "fast").rglob("data.mdb")) + [root / "index" / "fast.parquet"]
    for path in files:
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def run(base: Path, executor: str, n: int, unit_size: int, workers: int, keep: bool = False) -> dict:
    root = base / f"{executor}-{n}-{unit_size}"
    shutil.rmtree(root, ignore_errors=True)
    opts = SynthOptions(n=n, root=root, engine="fast", workers=workers, progress=False, executor=executor,
                        unit_size=unit_size)  # fmt: skip
    with PeakSampler(executor) as peak:
        start = time.perf_counter()
        summary = synthesize(opts)
        seconds = time.perf_counter() - start
    result = {"seconds": seconds, "kept": summary.kept, "units": summary.units, "peak_mib": peak.peak,
              "digest": digest(root) if keep else None}  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    return result


def echo(x: int) -> int:
    return x


def round_trip_ms(executor: Executor, units: int) -> float:
    """Wall time per unit of `units` units that do nothing: what the executor itself costs per unit."""
    start = time.perf_counter()
    assert sorted(position for position, _ in executor.run(echo, list(range(units)))) == list(range(units))
    return (time.perf_counter() - start) / units * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--n", type=int, default=20_000, help="samples per run (default 20,000)")
    parser.add_argument("--unit-sizes", default="250,1000,5000", help="comma-separated --unit-size values")
    parser.add_argument("--repeats", type=int, default=3, help="runs per executor and unit size")
    parser.add_argument("--warmup-n", type=int, default=2_000, help="samples of the first-Ray-run comparison")
    parser.add_argument("--num-cpus", type=int, default=2, help="Ray's num_cpus and the local --workers")
    parser.add_argument("--empty-units", type=int, default=2_000, help="units of the per-unit round trip")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a new temp dir)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.unit_sizes.split(",") if s]

    import ray

    base = Path(tempfile.mkdtemp(prefix="bench-executors-", dir=args.dir))
    try:
        # Fills the font-analysis cache so no timed run pays for it; not reported.
        synthesize(SynthOptions(n=300, root=base / "prime", engine="fast", progress=False))
        shutil.rmtree(base / "prime", ignore_errors=True)

        before = run(base, "local", args.n, sizes[len(sizes) // 2], args.num_cpus)

        start = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - start

        empty_units = args.empty_units
        empty_local = round_trip_ms(LocalExecutor(args.num_cpus), empty_units)
        empty_ray = round_trip_ms(RayExecutor(), empty_units)  # reuses the Ray started above
        first_local = run(base, "local", args.warmup_n, 250, args.num_cpus)
        first_ray = run(base, "ray", args.warmup_n, 250, args.num_cpus)

        runs: dict[tuple[str, int], list[dict]] = {}
        for repeat in range(args.repeats):
            for size in sizes:
                for executor in ("local", "ray") if repeat % 2 == 0 else ("ray", "local"):
                    r = run(base, executor, args.n, size, args.num_cpus, keep=repeat == args.repeats - 1)
                    runs.setdefault((executor, size), []).append(r)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(base, ignore_errors=True)

    best = {key: {**min(rs, key=lambda r: r["seconds"]), "digest": rs[-1]["digest"],
                  "peak_mib": max(r["peak_mib"] for r in rs)} for key, rs in runs.items()}  # fmt: skip
    mid = sizes[len(sizes) // 2]
    print(f"rebusyn synth --engine fast, --workers {args.num_cpus} / Ray num_cpus={args.num_cpus}, "
          f"n={args.n:,}, best of {args.repeats}")  # fmt: skip
    print(f"ray.init(num_cpus={args.num_cpus}): {init_s:.2f} s")
    print(f"local, unit size {mid:,}: {rate(before):,.0f} samples/s before ray.init, "
          f"{rate(best[('local', mid)]):,.0f} samples/s with Ray running in this process")  # fmt: skip
    print(f"first Ray run of the job (n={args.warmup_n:,}, unit size 250, {first_ray['units']} units): "
          f"{first_ray['seconds']:.2f} s, local {first_local['seconds']:.2f} s "
          f"(+{first_ray['seconds'] - first_local['seconds']:.2f} s)")  # fmt: skip
    print(f"{empty_units:,} units that do nothing: local pool {empty_local:.2f} ms per unit, "
          f"Ray {empty_ray:.2f} ms per unit")  # fmt: skip
    print()
    print(f"{'unit size':>9} {'units':>5} {'local s':>7} {'local/s':>7} {'ray s':>6} {'ray/s':>6} "
          f"{'ray/local':>9} {'overhead/unit':>13} {'peak MiB local':>14} {'peak MiB ray':>12} "
          f"{'same bytes':>10}")  # fmt: skip
    for size in sizes:
        loc, ray_ = best[("local", size)], best[("ray", size)]
        overhead_ms = (ray_["seconds"] - loc["seconds"]) / ray_["units"] * 1000
        same = "yes" if loc["digest"] == ray_["digest"] else "NO"
        print(f"{size:9,} {ray_['units']:5d} {loc['seconds']:7.2f} {rate(loc):7,.0f} {ray_['seconds']:6.2f} "
              f"{rate(ray_):6,.0f} {ray_['seconds'] / loc['seconds']:8.2f}x {overhead_ms:10.1f} ms "
              f"{loc['peak_mib']:14.0f} {ray_['peak_mib']:12.0f} {same:>10}")  # fmt: skip
    print()
    print("every run, in order (s): " + "; ".join(
        f"{size:,} {executor} " + "/".join(f"{r['seconds']:.2f}" for r in runs[(executor, size)])
        for size in sizes for executor in ("local", "ray")))  # fmt: skip
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        print()
        for executor in ("local", "ray"):
            a, b = best[(executor, small)], best[(executor, large)]
            slope = (a["seconds"] - b["seconds"]) / max(a["units"] - b["units"], 1) * 1000
            print(f"{executor}: time per extra unit, unit size {small:,} against {large:,}: {slope:.1f} ms")


def rate(result: dict) -> float:
    return result["kept"] / result["seconds"]


if __name__ == "__main__":
    main()
