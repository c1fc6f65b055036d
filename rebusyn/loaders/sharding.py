"""Who reads what in an epoch: the epoch's order, ratio-balanced batches, and the split across ranks and
DataLoader workers. NumPy only; rebusyn.loaders.torch builds its datasets and sampler on these.

- `epoch_order`: the manifest's rows of one epoch, in the order mix drew them. A manifest drawn with
  `--epochs K` has K orders; epoch e >= K reuses order e mod K, permuted by a generator seeded with
  (seed, e), so every epoch gets its own order even from a 1-epoch manifest.
- `ratio_batches`: consecutive batches that each hold real and synthetic rows in the epoch's proportion
  (deep-text-recognition-benchmark's batch balancing, but exact: the cumulative count of real rows after k
  batches is floor(k * B * real / total), so every batch holds floor or ceil of B * real / total real rows,
  and exactly that many when it is an integer, e.g. 192 + 64 for B = 256 at 3:1).
- `deal`: units (rows or whole batches) dealt to consumers. Ranks take units round-robin, the way
  `torch.utils.data.DistributedSampler` does; inside a rank, DataLoader workers take the rank's units
  round-robin again. With `uneven="keep"` every unit goes to exactly one (rank, worker), so the job sees each
  row of the epoch exactly once, and ranks differ by at most one unit. DistributedDataParallel needs the
  same number of batches on every rank: `"pad"` repeats units from the start of the epoch until every rank
  has ceil(n / world) (DistributedSampler's default), `"drop"` leaves out the last n mod world units.
"""

from __future__ import annotations

import numpy as np

UNEVEN = ("keep", "pad", "drop")


def epoch_order(per_epoch: int, epochs: int, epoch: int, seed: int = 0) -> np.ndarray:
    """Row positions (int64) of `epoch` in a table that holds `epochs` consecutive blocks of `per_epoch`."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if epochs < 1:
        raise ValueError(f"a manifest has at least one epoch, got {epochs}")
    block = epoch % epochs
    order = np.arange(block * per_epoch, (block + 1) * per_epoch, dtype=np.int64)
    if epoch >= epochs:
        order = order[np.random.default_rng([seed, epoch]).permutation(per_epoch)]
    return order


def ratio_batches(synthetic: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Positions into `synthetic` (a bool array in epoch order) grouped into batches of `batch_size`, each
    holding real and synthetic rows in the proportion of the whole array; rows keep their relative order
    within each kind. The remainder (fewer than `batch_size` rows) is a last, smaller batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    synthetic = np.asarray(synthetic, dtype=bool)
    total = len(synthetic)
    real_pos = np.flatnonzero(~synthetic)
    synth_pos = np.flatnonzero(synthetic)
    n_full = total // batch_size
    real_cum = cumulative_real(n_full, batch_size, len(real_pos), total)
    synth_cum = np.arange(n_full + 1, dtype=np.int64) * batch_size - real_cum
    batches = [
        np.concatenate([real_pos[real_cum[i] : real_cum[i + 1]], synth_pos[synth_cum[i] : synth_cum[i + 1]]])
        for i in range(n_full)
    ]
    rest = np.concatenate([real_pos[real_cum[-1] :], synth_pos[synth_cum[-1] :]])
    if len(rest):
        batches.append(rest)
    return batches


def cumulative_real(n_batches: int, batch_size: int, real: int, total: int) -> np.ndarray:
    """Real rows in the first k full batches, k = 0..n_batches: floor(k * B * real / total), exactly."""
    wide = n_batches * batch_size * real >= 2**62  # would overflow int64: use Python integers
    k = np.arange(n_batches + 1, dtype=object if wide else np.int64)
    return (k * batch_size * real // max(total, 1)).astype(np.int64)


def deal(n_units: int, consumer: int, n_consumers: int, uneven: str = "keep") -> np.ndarray:
    """Which of `n_units` units (0..n_units-1, int64) consumer `consumer` of `n_consumers` takes."""
    if uneven not in UNEVEN:
        raise ValueError(f"uneven must be one of {', '.join(UNEVEN)}, got {uneven!r}")
    if not 0 <= consumer < n_consumers:
        raise ValueError(f"consumer {consumer} outside 0..{n_consumers - 1}")
    units = np.arange(n_units, dtype=np.int64)
    if uneven == "pad" and n_units % n_consumers:
        padded = -(-n_units // n_consumers) * n_consumers
        units = np.resize(units, padded)  # repeats from the start, as often as needed
    elif uneven == "drop":
        units = units[: n_units - n_units % n_consumers]
    return units[consumer::n_consumers]


def rank_then_worker(
    n_units: int, rank: int, world_size: int, worker: int, num_workers: int, uneven: str = "keep"
) -> np.ndarray:
    """Units of (rank, worker): dealt to ranks first (with the `uneven` policy), then to its workers."""
    mine = deal(n_units, rank, world_size, uneven)
    return mine[deal(len(mine), worker, num_workers)]
