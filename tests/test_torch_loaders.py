"""rebusyn.loaders.torch through real DataLoaders (forked and spawned workers) over real LMDB shards.

The coverage matrix: world sizes 1, 2, 3, 8 x 0-4 workers, rows and ratio-balanced batches; every row of an
epoch must reach exactly one (rank, worker). Rows are traced with return_row and checked against the
manifest read with pyarrow and the shards read with plain lmdb + PIL."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import lmdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from rebusyn.loaders.decode import DecodeError
from rebusyn.loaders.hf import load_dataset
from rebusyn.loaders.torch import ManifestDataset, ManifestIterableDataset, RatioBatchSampler
from rebusyn.mix import MixOptions, mix
from tests.conftest_helpers import make_root

PER_EPOCH = 80  # 60 real + 20 synthetic at 3:1


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sources = {"alpha": ("R", 45), "beta": ("B", 15), "syn": ("S", 20), "bench": ("T", 4)}
    return make_root(tmp_path_factory.mktemp("torch") / "root", sources)


@pytest.fixture(scope="module")
def manifest(root: Path) -> Path:
    return mix(MixOptions(root=root, out=root.parent / "manifests", seed=5, epochs=2)).manifest_path.parent


def table(manifest: Path) -> list[dict]:
    return pq.read_table(manifest / "manifest.parquet").to_pylist()


def pil_pixel(root: Path, shard: str, idx: int) -> list[int]:
    env = lmdb.open(str(root / shard), readonly=True, lock=False)
    with env.begin() as txn:
        data = txn.get(b"image-%09d" % idx)
    env.close()
    return list(Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)))


def test_items_are_the_manifest_rows(root: Path, manifest: Path) -> None:
    rows = table(manifest)
    # read independently first: py-lmdb refuses a second open of a path the dataset holds open
    colours = [pil_pixel(root, r["shard"], r["idx"]) for r in rows]
    ds = ManifestDataset(manifest, return_row=True)
    assert len(ds) == PER_EPOCH and ds.rows.epochs == 2
    for i in range(len(ds)):
        image, label, row = ds[i]
        assert row == i  # epoch 0 is the first block, in manifest order
        assert image.dtype == torch.uint8 and image.shape == (3, 32, 128)
        assert label == rows[row]["label"]
        # the fixture's crops are one solid colour: every pixel of the resized crop is that colour
        assert image[:, 0, 0].tolist() == colours[row] and image[:, -1, -1].tolist() == colours[row]
    with pytest.raises(IndexError):
        ds[PER_EPOCH]
    assert ds[-1][2] == PER_EPOCH - 1
    ds.close()  # after close, plain lmdb may open the shards again
    assert pil_pixel(root, rows[0]["shard"], rows[0]["idx"]) == colours[0]
    assert ds[0][2] == 0  # and the dataset reopens lazily


def test_epochs_follow_the_manifest_then_reshuffle(manifest: Path) -> None:
    ds = ManifestDataset(manifest, return_row=True, seed=1)
    ds.set_epoch(1)
    assert [ds[i][2] for i in range(len(ds))] == list(range(PER_EPOCH, 2 * PER_EPOCH))
    ds.set_epoch(2)  # past the manifest's 2 epochs: block 0 in a new, seeded order
    late = [ds[i][2] for i in range(len(ds))]
    assert sorted(late) == list(range(PER_EPOCH)) and late != list(range(PER_EPOCH))
    again = ManifestDataset(manifest, return_row=True, seed=1, epoch=2)
    assert [again[i][2] for i in range(len(again))] == late
    with pytest.raises(ValueError, match="epoch"):
        ds.set_epoch(-1)


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # 3-4 workers on 2 cores
@pytest.mark.parametrize("world", [1, 2, 3, 8])
@pytest.mark.parametrize("workers", [0, 1, 2, 3, 4])
def test_every_row_once_across_ranks_and_workers(manifest: Path, world: int, workers: int) -> None:
    for epoch in (0, 1):
        expected = Counter(range(epoch * PER_EPOCH, (epoch + 1) * PER_EPOCH))
        for balanced in (False, True):
            seen: Counter = Counter()
            per_rank = []
            for rank in range(world):
                kw = {"batch_size": 8, "balanced": True} if balanced else {}
                ds = ManifestIterableDataset(manifest, rank=rank, world_size=world, return_row=True,
                                             epoch=epoch, **kw)  # fmt: skip
                loader = DataLoader(ds, batch_size=None if balanced else 5, num_workers=workers)
                items = list(loader)
                got = [r for item in items for r in item[2].tolist()]
                # len() is what the rank yields over all its workers: batches, or rows
                assert len(ds) == (len(items) if balanced else len(got))
                per_rank.append(len(got))
                seen.update(got)
            assert seen == expected, (epoch, balanced)
            assert max(per_rank) - min(per_rank) <= (8 if balanced else 1)


@pytest.mark.parametrize("uneven", ["pad", "drop"])
def test_even_ranks_for_ddp(manifest: Path, uneven: str) -> None:
    counts, seen = [], Counter()
    for rank in range(3):
        ds = ManifestIterableDataset(manifest, rank=rank, world_size=3, uneven=uneven, return_row=True)
        got = [r for b in DataLoader(ds, batch_size=4, num_workers=2) for r in b[2].tolist()]
        counts.append(len(got))
        assert len(ds) == len(got)
        seen.update(got)
    assert len(set(counts)) == 1
    if uneven == "pad":  # 80 rows on 3 ranks: 27 each, row 0 read twice (DistributedSampler's padding)
        assert counts[0] == 27 and seen[0] == 2 and set(seen) == set(range(PER_EPOCH))
    else:  # 26 each, row 79 left out
        assert counts[0] == 26 and set(seen) == set(range(PER_EPOCH - 2)) and max(seen.values()) == 1


def test_balanced_batches_hold_the_mix_ratio(manifest: Path) -> None:
    synthetic = {i: r["synthetic"] for i, r in enumerate(table(manifest))}
    ds = ManifestDataset(manifest, return_row=True)
    for world in (1, 2):
        seen: Counter = Counter()
        for rank in range(world):
            sampler = RatioBatchSampler(ds, 8, rank=rank, world_size=world)
            batches = list(DataLoader(ds, batch_sampler=sampler, num_workers=2))
            assert len(batches) == len(sampler)
            for images, labels, rows in batches:
                assert images.shape == (8, 3, 32, 128) and len(labels) == 8
                assert Counter(synthetic[r] for r in rows.tolist()) == {False: 6, True: 2}
                seen.update(rows.tolist())
        assert seen == Counter(range(PER_EPOCH))
    it = ManifestIterableDataset(manifest, batch_size=8, balanced=True, return_row=True)
    batches = list(DataLoader(it, batch_size=None, num_workers=2))
    assert len(batches) == PER_EPOCH // 8
    for images, _labels, rows in batches:
        assert images.shape == (8, 3, 32, 128)
        assert Counter(synthetic[r] for r in rows.tolist()) == {False: 6, True: 2}


def test_sampler_drop_last_and_set_epoch(manifest: Path) -> None:
    ds = ManifestDataset(manifest, return_row=True)
    sampler = RatioBatchSampler(ds, 12, drop_last=True)
    assert len(sampler) == PER_EPOCH // 12
    assert all(len(b) == 12 for b in sampler)
    sampler.set_epoch(1)
    assert ds.epoch == 1
    rows = [r for b in DataLoader(ds, batch_sampler=RatioBatchSampler(ds, 10)) for r in b[2].tolist()]
    assert sorted(rows) == list(range(PER_EPOCH, 2 * PER_EPOCH))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_set_epoch_reaches_persistent_workers(manifest: Path, context: str) -> None:
    it = ManifestIterableDataset(manifest, return_row=True)
    mapped = ManifestDataset(manifest, return_row=True)
    loaders = [
        (it, DataLoader(it, batch_size=16, num_workers=2, persistent_workers=True,
                        multiprocessing_context=context)),  # fmt: skip
        (mapped, DataLoader(mapped, batch_size=16, num_workers=2, persistent_workers=True,
                            multiprocessing_context=context)),  # fmt: skip
    ]
    for ds, loader in loaders:
        for epoch in (0, 1, 0):
            ds.set_epoch(epoch)
            rows = [r for b in loader for r in b[2].tolist()]
            assert sorted(rows) == list(range(epoch * PER_EPOCH, (epoch + 1) * PER_EPOCH)), (ds, epoch)


def test_fork_after_the_parent_has_read(manifest: Path) -> None:
    ds = ManifestDataset(manifest, return_row=True)
    first = ds[0][0].clone()  # opens LMDB environments in this process
    stream = iter(load_dataset(manifest, streaming=True))  # and the HF pool opens the same paths
    next(stream)
    rows = [r for b in DataLoader(ds, batch_size=16, num_workers=2) for r in b[2].tolist()]
    assert rows == list(range(PER_EPOCH))
    assert torch.equal(ds[0][0], first)  # the parent reopens after the fork
    assert sum(1 for _ in stream) == PER_EPOCH * 2 - 1  # HF rows span both epochs


def test_root_reads_every_training_row_shuffled(root: Path) -> None:
    ds = ManifestDataset(root, return_row=True)
    assert len(ds) == 45 + 15 + 20  # bench (group T) is not training data
    order = [ds[i][2] for i in range(len(ds))]
    assert sorted(order) == list(range(80)) and order != list(range(80))
    labels = Counter(ds[i][1] for i in range(len(ds)))
    assert labels == Counter([f"alp{i}" for i in range(45)] + [f"bet{i}" for i in range(15)]
                             + [f"syn{i}" for i in range(20)])  # fmt: skip


def test_options_transform_and_env_rank(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = ManifestDataset(manifest, (48, 160), channels=1, resize="pad", transform=lambda t: t.float() / 255)
    image, _ = ds[0]
    assert image.dtype == torch.float32 and image.shape == (1, 48, 160)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    it = ManifestIterableDataset(manifest, return_row=True)
    assert (it.rank, it.world_size) == (2, 4)
    assert [item[2] for item in it] == list(range(2, PER_EPOCH, 4))
    with pytest.raises(ValueError, match="outside a world"):
        ManifestIterableDataset(manifest, rank=4, world_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        ManifestIterableDataset(manifest, balanced=True)


def test_corrupt_image_names_shard_and_sample(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    manifest = mix(MixOptions(root=copy, out=tmp_path / "m")).manifest_path.parent
    row = table(manifest)[3]
    env = lmdb.open(str(copy / row["shard"]), map_size=2**24)
    with env.begin(write=True) as txn:
        txn.put(b"image-%09d" % row["idx"], b"\x89PNG\r\n\x1a\n truncated")
    env.close()
    ds = ManifestDataset(manifest)
    ds[2]  # other rows still read
    with pytest.raises(DecodeError, match=rf"{row['shard']} sample {row['idx']}: undecodable image"):
        ds[3]
    assert np.array_equal(ds.synthetic(), np.array([r["synthetic"] for r in table(manifest)]))
