"""PyTorch datasets over a rebusyn manifest (or a dataset root), read straight from the LMDB shards.

    from rebusyn.loaders.torch import ManifestDataset, ManifestIterableDataset, RatioBatchSampler

- `ManifestDataset(manifest, image_size=(32, 128))`: map-style; item i of the current epoch is
  (uint8 tensor C x H x W, normalized label).
- `ManifestIterableDataset(...)`: streaming; splits the epoch across ranks and DataLoader workers so the
  job reads every row exactly once (rebusyn.loaders.sharding), optionally in whole ratio-balanced batches.
- `RatioBatchSampler(dataset, batch_size)`: batches whose real:synthetic split is the manifest's, for the
  map-style dataset (and split across ranks).

Both datasets hold the rows as flat NumPy/Arrow buffers (no per-row Python objects), so forked workers share
them without copy-on-write growth. LMDB environments open lazily in the process that reads (py-lmdb >= 2
refuses an environment inherited through fork(), and refuses a second open of a path in one process: every
reader in a process goes through rebusyn.loaders.hf's shared pool). The epoch lives in shared memory, so
`set_epoch` in the main process reaches persistent workers too.

Images are decoded by rebusyn.loaders.decode (OpenCV, JPEG DCT reduction for large crops) and stretched or
padded to `image_size`.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import context as mp_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset, Sampler, get_worker_info

from rebusyn.loaders.decode import DecodeError, ImageSpec, decode_fit
from rebusyn.loaders.hf import LmdbImages, check_shards, resolve
from rebusyn.loaders.sharding import UNEVEN, epoch_order, rank_then_worker, ratio_batches

# With return_row=True a third element is the manifest row number (an int, or an int64 tensor per batch).
Item = tuple[torch.Tensor, str] | tuple[torch.Tensor, str, int]
Batch = tuple[torch.Tensor, list[str]] | tuple[torch.Tensor, list[str], torch.Tensor]


# ---------------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class ManifestRows:
    """A manifest's rows as flat arrays: shard code and 1-based idx per row, labels, synthetic flags.

    Rows are grouped by epoch: `epochs` blocks of `per_epoch` rows. `shuffled` is False for a dataset root
    (rows in index order), whose every epoch is then a seeded permutation."""

    root: str
    shards: tuple[str, ...]  # absolute shard directories, by code
    shard_code: np.ndarray  # int32
    idx: np.ndarray  # int32
    labels: pa.StringArray
    synthetic: np.ndarray  # bool
    epochs: int
    per_epoch: int
    shuffled: bool

    @classmethod
    def load(cls, path: str | Path, root: str | Path | None = None) -> ManifestRows:
        plan = resolve(path, root=root, with_epoch=True)
        check_shards(plan)
        rows = plan.rows
        encoded = pc.dictionary_encode(rows.column("shard")).combine_chunks()
        shards = tuple(str(plan.root / s) for s in encoded.dictionary.to_pylist())
        epoch = rows.column("epoch").to_numpy()
        epochs = int(epoch.max()) + 1 if len(epoch) else 1
        per_epoch = len(epoch) // epochs
        expected = np.repeat(np.arange(epochs, dtype=np.int32), per_epoch)
        if len(epoch) != epochs * per_epoch or not np.array_equal(epoch, expected):
            raise ValueError(
                f"{path}: manifest rows are not {epochs} consecutive epochs of equal size "
                "(column `epoch`); re-run `rebusyn mix`"
            )
        if plan.kind == "manifest":
            spec = json.loads((plan.home / "manifest.json").read_text(encoding="utf-8"))
            declared = int(spec.get("counts", {}).get("epochs", 1))
            if declared != epochs:
                raise ValueError(f"{path}: manifest.json says {declared} epochs, its rows hold {epochs}")
        return cls(
            root=str(plan.root),
            shards=shards,
            shard_code=encoded.indices.to_numpy().astype(np.int32, copy=False),
            idx=rows.column("idx").to_numpy().astype(np.int32, copy=False),
            labels=rows.column("label").combine_chunks(),
            synthetic=rows.column("synthetic").to_numpy(zero_copy_only=False).astype(bool),
            epochs=epochs,
            per_epoch=per_epoch,
            shuffled=plan.kind == "manifest",
        )

    def order(self, epoch: int, seed: int = 0) -> np.ndarray:
        """Row positions of `epoch`, in reading order (see rebusyn.loaders.sharding.epoch_order)."""
        order = epoch_order(self.per_epoch, self.epochs, epoch, seed)
        if not self.shuffled and epoch < self.epochs:
            order = order[np.random.default_rng([seed, epoch]).permutation(len(order))]
        return order


# ---------------------------------------------------------------------------------------------------
# What every dataset shares: rows, image spec, the epoch in shared memory, lazy per-process readers


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world size): as given, else from torch.distributed when initialized, else RANK/WORLD_SIZE."""
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            found = dist.get_rank(), dist.get_world_size()
        else:
            found = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        rank = found[0] if rank is None else rank
        world_size = found[1] if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of size {world_size}")
    return rank, world_size


class _ManifestSource:
    """The state both datasets share, picklable for spawned DataLoader workers."""

    def __init__(
        self,
        manifest: str | Path,
        image_size: tuple[int, int],
        channels: int,
        resize: str,
        interpolation: str,
        pad_value: int,
        transform: Callable[[torch.Tensor], Any] | None,
        epoch: int,
        seed: int,
        root: str | Path | None,
        return_row: bool,
    ) -> None:
        height, width = image_size
        self.spec = ImageSpec(height, width, channels, resize, interpolation, pad_value)
        self.rows = ManifestRows.load(manifest, root)
        self.transform = transform
        self.seed = seed
        self.return_row = return_row
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        # Shared memory: set_epoch in the main process is seen by forked, spawned and persistent workers.
        self._epoch = multiprocessing.RawValue("q", epoch)
        self._order: tuple[int, np.ndarray] | None = None
        self._images: LmdbImages | None = None
        self._images_pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_images"] = state["_images_pid"] = state["_order"] = None
        if mp_context.get_spawning_popen() is None:
            # Pickled outside process creation (copy, Ray, ...): shared memory cannot travel, the value can.
            state["_epoch"] = int(self._epoch.value)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["_epoch"], int):
            state["_epoch"] = multiprocessing.RawValue("q", state["_epoch"])
        self.__dict__.update(state)

    def close(self) -> None:
        """Release this process's LMDB environments (reopened lazily if read again). py-lmdb refuses a
        second open of a path in one process, so close before opening these shards with lmdb yourself."""
        if self._images is not None and self._images_pid == os.getpid():
            self._images.close()
        self._images = self._images_pid = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown there is nothing left to release
            self.close()

    def set_epoch(self, epoch: int) -> None:
        """Read epoch `epoch` from now on (call before iterating, as with DistributedSampler)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch.value = epoch

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def epoch_rows(self) -> np.ndarray:
        """Row positions of the current epoch, in reading order (cached per epoch)."""
        epoch = self.epoch
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, self.rows.order(epoch, self.seed))
        return self._order[1]

    def _read(self, position: int) -> bytes:
        if self._images is None or self._images_pid != os.getpid():
            self._images, self._images_pid = LmdbImages(), os.getpid()
        rows = self.rows
        return self._images.read(rows.shards[rows.shard_code[position]], int(rows.idx[position]))

    def _pixels(self, position: int) -> np.ndarray:
        """H x W x C uint8 pixels of row `position`."""
        try:
            return decode_fit(self._read(position), self.spec)
        except DecodeError as err:
            rows = self.rows
            raise DecodeError(
                f"{rows.shards[rows.shard_code[position]]} sample {rows.idx[position]}: {err}; "
                "run `rebusyn verify` on the shard"
            ) from None

    def item(self, position: int) -> Item:
        chw = np.ascontiguousarray(self._pixels(position).transpose(2, 0, 1))
        tensor = torch.from_numpy(chw)
        label = self.rows.labels[position].as_py()
        image = self.transform(tensor) if self.transform else tensor
        return (image, label, position) if self.return_row else (image, label)

    def batch(self, positions: np.ndarray) -> Batch:
        spec = self.spec
        out = np.empty((len(positions), spec.channels, spec.height, spec.width), dtype=np.uint8)
        for j, position in enumerate(positions):
            out[j] = self._pixels(int(position)).transpose(2, 0, 1)
        labels = self.rows.labels.take(pa.array(positions, type=pa.int64())).to_pylist()
        tensor = torch.from_numpy(out)
        images = self.transform(tensor) if self.transform else tensor
        if self.return_row:
            return images, labels, torch.from_numpy(np.asarray(positions, dtype=np.int64))
        return images, labels


class _ManifestView:
    """What both datasets expose of their shared `_ManifestSource`."""

    source: _ManifestSource

    @property
    def rows(self) -> ManifestRows:
        return self.source.rows

    @property
    def epoch(self) -> int:
        return self.source.epoch

    def set_epoch(self, epoch: int) -> None:
        self.source.set_epoch(epoch)

    def close(self) -> None:
        """Release this process's LMDB environments (see the module doc); reading again reopens them."""
        self.source.close()


# ---------------------------------------------------------------------------------------------------
# Map-style


class ManifestDataset(_ManifestView, TorchDataset):
    """Map-style dataset: item i is (uint8 tensor channels x height x width, label) of row i of the epoch.

    `manifest`: a manifest directory (or its manifest.json), or a dataset root (every training row).
    `image_size`: (height, width), PARSeq's (32, 128) by default. `channels`: 3 (RGB) or 1 (grey).
    `resize`: "stretch" (PARSeq/CLIP4STR) or "pad" (keep aspect, pad right with `pad_value`).
    `interpolation`: auto (area when shrinking, bicubic when enlarging), nearest, linear, cubic or area.
    `transform`: applied to each uint8 tensor (e.g. augmentation, float conversion, normalization).
    `epoch`, `set_epoch(e)`: which epoch's rows and order (see rebusyn.loaders.sharding.epoch_order).
    `root`: a dataset root that has moved since the manifest was drawn.
    `return_row`: items are (image, label, manifest row number), to trace a sample to its source.

    Rows come in the manifest's shuffled order, so a plain sequential sampler already reads a random order;
    use RatioBatchSampler for batches with the manifest's exact real:synthetic split."""

    def __init__(
        self,
        manifest: str | Path,
        image_size: tuple[int, int] = (32, 128),
        *,
        channels: int = 3,
        resize: str = "stretch",
        interpolation: str = "auto",
        pad_value: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        epoch: int = 0,
        seed: int = 0,
        root: str | Path | None = None,
        return_row: bool = False,
    ) -> None:
        self.source = _ManifestSource(
            manifest, image_size, channels, resize, interpolation, pad_value, transform, epoch, seed, root,
            return_row,
        )

    def __len__(self) -> int:
        return self.source.rows.per_epoch

    def __getitem__(self, i: int) -> Item:
        order = self.source.epoch_rows()
        if not -len(order) <= i < len(order):
            raise IndexError(f"index {i} outside an epoch of {len(order)} rows")
        return self.source.item(int(order[i]))

    def synthetic(self) -> np.ndarray:
        """Synthetic flag of each item of the current epoch (what RatioBatchSampler balances)."""
        return self.source.rows.synthetic[self.source.epoch_rows()]


class RatioBatchSampler(Sampler[list[int]]):
    """Batches of ManifestDataset indices, each with the manifest's real:synthetic proportion (exact when
    batch_size x real / rows is an integer, else floor or ceil, with exact cumulative counts).

    Every row of the epoch is in exactly one batch; the last batch may be smaller (`drop_last=True` leaves
    it out). Batches are dealt to ranks round-robin (`rank`/`world_size` default to torch.distributed or
    the RANK/WORLD_SIZE variables); `uneven` = keep | pad | drop decides what happens when the batch count
    does not divide by the world size (see rebusyn.loaders.sharding). `set_epoch` also sets the dataset's.

        loader = DataLoader(ds, batch_sampler=RatioBatchSampler(ds, 256), num_workers=8)
    """

    def __init__(
        self,
        dataset: ManifestDataset,
        batch_size: int,
        *,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        uneven: str = "keep",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if uneven not in UNEVEN:
            raise ValueError(f"uneven must be one of {', '.join(UNEVEN)}, got {uneven!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.rank, self.world_size = _distributed(rank, world_size)
        self.uneven = uneven

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def _batches(self) -> list[np.ndarray]:
        batches = ratio_batches(self.dataset.synthetic(), self.batch_size)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        for b in rank_then_worker(len(batches), self.rank, self.world_size, 0, 1, self.uneven):
            yield batches[b].tolist()

    def __len__(self) -> int:
        return len(rank_then_worker(len(self._batches()), self.rank, self.world_size, 0, 1, self.uneven))


# ---------------------------------------------------------------------------------------------------
# Iterable


class ManifestIterableDataset(_ManifestView, IterableDataset):
    """Streaming dataset: this rank's share of the epoch, split again among DataLoader workers.

    Every row of the epoch goes to exactly one (rank, worker) with `uneven="keep"` (ranks then differ by at
    most one unit); "pad" and "drop" give every rank the same count, as DistributedDataParallel needs.
    Without `batch_size`, items are (uint8 C x H x W tensor, label): use DataLoader(batch_size=B).
    With `batch_size`, items are whole batches (uint8 B x C x H x W tensor, list of labels), the unit that is
    dealt: use DataLoader(batch_size=None). `balanced=True` (needs batch_size) makes every batch hold the
    manifest's real:synthetic proportion. `drop_last` leaves out the epoch's last, smaller batch.
    Other arguments as for ManifestDataset; `transform` gets what is yielded (a sample or a batch tensor).
    Call `set_epoch(e)` before each epoch's `iter(loader)`."""

    def __init__(
        self,
        manifest: str | Path,
        image_size: tuple[int, int] = (32, 128),
        *,
        batch_size: int | None = None,
        balanced: bool = False,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        uneven: str = "keep",
        channels: int = 3,
        resize: str = "stretch",
        interpolation: str = "auto",
        pad_value: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        epoch: int = 0,
        seed: int = 0,
        root: str | Path | None = None,
        return_row: bool = False,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        if balanced and batch_size is None:
            raise ValueError("balanced=True balances batches: give batch_size")
        if uneven not in UNEVEN:
            raise ValueError(f"uneven must be one of {', '.join(UNEVEN)}, got {uneven!r}")
        self.source = _ManifestSource(
            manifest, image_size, channels, resize, interpolation, pad_value, transform, epoch, seed, root,
            return_row,
        )
        self.batch_size = batch_size
        self.balanced = balanced
        self.drop_last = drop_last
        self.rank, self.world_size = _distributed(rank, world_size)
        self.uneven = uneven

    def _units(self, order: np.ndarray) -> Sequence[np.ndarray] | None:
        """The epoch's batches (positions into `order`), or None when single rows are the units."""
        if self.batch_size is None:
            return None
        if self.balanced:
            batches = ratio_batches(self.source.rows.synthetic[order], self.batch_size)
        else:
            batches = [np.arange(s, min(s + self.batch_size, len(order))) for s in
                       range(0, len(order), self.batch_size)]  # fmt: skip
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[Item | Batch]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        order = self.source.epoch_rows()
        units = self._units(order)
        n_units = len(order) if units is None else len(units)
        mine = rank_then_worker(n_units, self.rank, self.world_size, worker, num_workers, self.uneven)
        if units is None:
            for position in order[mine]:
                yield self.source.item(int(position))
        else:
            for b in mine:
                yield self.source.batch(order[units[b]])

    def __len__(self) -> int:
        """Items (rows, or batches with batch_size) this rank yields in an epoch, over all its workers."""
        order = self.source.epoch_rows()
        units = self._units(order)
        n_units = len(order) if units is None else len(units)
        return len(rank_then_worker(n_units, self.rank, self.world_size, 0, 1, self.uneven))
