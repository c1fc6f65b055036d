"""rebusyn.loaders.sharding: epoch orders, exact ratio batches, and the rank/worker split, checked against
torch's own DistributedSampler where they should agree."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from torch.utils.data import DistributedSampler

from rebusyn.loaders.sharding import cumulative_real, deal, epoch_order, rank_then_worker, ratio_batches


def test_epoch_order_blocks_and_reshuffles() -> None:
    assert epoch_order(5, 3, 0).tolist() == [0, 1, 2, 3, 4]
    assert epoch_order(5, 3, 2).tolist() == [10, 11, 12, 13, 14]
    # Past the manifest's epochs: the block e mod K, in a new order that depends on (seed, epoch) only.
    late = epoch_order(1000, 3, 4, seed=7)
    assert sorted(late.tolist()) == list(range(1000, 2000))
    assert late.tolist() != list(range(1000, 2000))
    assert np.array_equal(late, epoch_order(1000, 3, 4, seed=7))
    assert not np.array_equal(late, epoch_order(1000, 3, 7, seed=7))  # epoch 7 is block 1 too
    assert not np.array_equal(epoch_order(1000, 1, 1, seed=7), epoch_order(1000, 1, 1, seed=8))
    with pytest.raises(ValueError, match="epoch"):
        epoch_order(5, 1, -1)


@pytest.mark.parametrize(("real", "synth", "batch"), [(30, 10, 8), (768, 256, 256), (37, 11, 5), (10, 0, 4),
                                                      (0, 9, 4), (3, 3, 16), (1000, 7, 64)])  # fmt: skip
def test_ratio_batches_are_exact(real: int, synth: int, batch: int) -> None:
    rng = np.random.default_rng(real * 31 + synth)
    flags = rng.permutation(np.array([False] * real + [True] * synth))
    batches = ratio_batches(flags, batch)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(real + synth))  # every row exactly once
    full = [b for b in batches if len(b) == batch]
    assert len(full) == (real + synth) // batch
    share = batch * real / (real + synth)
    done_real = 0
    for k, b in enumerate(full, start=1):
        n_real = int((~flags[b]).sum())
        assert n_real in (int(np.floor(share)), int(np.ceil(share)))
        done_real += n_real
        assert done_real == k * batch * real // (real + synth)  # cumulative: exact
    # rows keep their relative order within each kind
    assert [p for p in flat if not flags[p]] == sorted(p for p in flat if not flags[p])
    assert [p for p in flat if flags[p]] == sorted(p for p in flat if flags[p])


def test_ratio_batches_3_to_1_at_256() -> None:
    flags = np.random.default_rng(0).permutation(np.array([False] * 3 * 2560 + [True] * 2560))
    for b in ratio_batches(flags, 256):
        assert Counter(flags[b].tolist()) == {False: 192, True: 64}


def test_cumulative_counts_do_not_overflow() -> None:
    # 4e9 rows in batches of 2**22: k * B * real passes int64's range, the counts must still be exact.
    real, total, batch = 3_000_000_001, 4_000_000_000, 2**22
    n = total // batch
    counts = cumulative_real(n, batch, real, total)
    assert counts.dtype == np.int64
    for k in (1, 2, n // 2, n):
        assert counts[k] == k * batch * real // total
    assert np.all(np.diff(counts) >= batch * real // total)


@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("n", [0, 1, 7, 24, 25])
def test_deal_matches_distributed_sampler(world: int, n: int) -> None:
    for rank in range(world):
        for uneven, drop_last in (("pad", False), ("drop", True)):
            sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False,
                                         drop_last=drop_last)  # fmt: skip
            if n == 0 and uneven == "pad":
                continue  # DistributedSampler pads an empty dataset with nothing; nothing to compare
            assert deal(n, rank, world, uneven).tolist() == list(sampler), (rank, uneven)


@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_rank_then_worker_covers_each_unit_once(world: int, workers: int) -> None:
    for n in (0, 5, 31, 96):
        seen = Counter()
        per_rank = []
        for rank in range(world):
            mine = [rank_then_worker(n, rank, world, w, workers).tolist() for w in range(workers)]
            per_rank.append(sum(len(m) for m in mine))
            seen.update(u for m in mine for u in m)
        assert seen == Counter(range(n))
        assert max(per_rank) - min(per_rank) <= 1
        padded = [sum(len(rank_then_worker(n, r, world, w, workers, "pad")) for w in range(workers))
                  for r in range(world)]  # fmt: skip
        assert len(set(padded)) == 1 and padded[0] == -(-n // world)


def test_deal_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="uneven"):
        deal(4, 0, 2, "spread")
    with pytest.raises(ValueError, match="consumer"):
        deal(4, 2, 2)
