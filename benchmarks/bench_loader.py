"""PyTorch loading speed: rebusyn's datasets against a PARSeq-style LMDB reader over the same shards.

    python benchmarks/bench_loader.py [--real 15000] [--synthetic 5000] [--workers 1,2] [--repeats 3]

Builds a root with `--real` word crops cut from the genuine ICDAR 2015 scene images in tests/data (random
boxes, 24-400 px wide, 12-120 px high, log-uniform, JPEG q95: real crop sizes) and `--synthetic` words
rendered by `rebusyn synth` (fast engine), mixes them 3:1 (every row of the root once), then reads every
row through `torch.utils.data.DataLoader(batch_size=256)` as uint8 3x32x128 tensors with:

  parseq-style   what PARSeq's LmdbDataset does: one LMDB per shard (ConcatDataset), a transaction per
                 item, PIL `Image.open(...).convert("RGB")`, PIL bicubic resize to 128x32, then a uint8
                 tensor (PARSeq continues with ToTensor/Normalize; both sides stop at uint8), shuffled
  map            rebusyn ManifestDataset, manifest order (already shuffled by mix)
  map+ratio      ManifestDataset with RatioBatchSampler (every batch 192 real + 64 synthetic)
  iterable       ManifestIterableDataset(batch_size=256, balanced=True), DataLoader(batch_size=None)

For each number of DataLoader workers it prints samples/s (wall) and samples per CPU-second (main process
plus its workers, from getrusage: the "per core" figure, which does not depend on how busy the machine
is), and each as a ratio to parseq-style in the same run. Runs alternate and the best of --repeats counts.
"""

from __future__ import annotations

import argparse
import io
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import lmdb
import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from rebusyn.loaders.torch import ManifestDataset, ManifestIterableDataset, RatioBatchSampler
from rebusyn.mix import MixOptions, mix
from rebusyn.sample import Sample
from rebusyn.store.dataset import SourceWriter
from rebusyn.store.shards import find_shards
from rebusyn.synth.run import SynthOptions, synthesize

SCENES = Path(__file__).resolve().parent.parent / "tests" / "data" / "icdar2015"
BATCH = 256


def real_crops(root: Path, n: int, seed: int = 0) -> None:
    """`n` JPEG crops of random boxes from the ICDAR 2015 scene images, written as source `scene_crops`."""
    rng = np.random.default_rng(seed)
    scenes = [cv2.imread(str(p)) for p in sorted(SCENES.glob("*.jpg"))]
    with SourceWriter(root, "scene_crops", "R") as writer:
        for i in range(n):
            scene = scenes[i % len(scenes)]
            h = int(np.exp(rng.uniform(np.log(12), np.log(120))))
            w = int(np.clip(h * np.exp(rng.uniform(np.log(1.0), np.log(8.0))), 24, 400))
            y = int(rng.integers(0, scene.shape[0] - h))
            x = int(rng.integers(0, scene.shape[1] - w))
            ok, data = cv2.imencode(".jpg", scene[y : y + h, x : x + w], [cv2.IMWRITE_JPEG_QUALITY, 95])
            assert ok
            writer.add(Sample(image=data.tobytes(), label=f"w{i}", label_raw=f"w{i}", source="scene_crops",
                              group="R", key=f"scene_crops/{i}", width=w, height=h))  # fmt: skip
        writer.close()


class ParseqStyleLmdb(Dataset):
    """PARSeq's strhub.data.dataset.LmdbDataset reading path (labels preloaded, env opened lazily)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._env = None
        env = self._create_env()
        with env.begin() as txn:
            self.num_samples = int(txn.get(b"num-samples"))
            keys = [f"label-{i:09d}".encode() for i in range(1, self.num_samples + 1)]
            self.labels = [txn.get(key).decode() for key in keys]
        env.close()

    def _create_env(self) -> lmdb.Environment:
        return lmdb.open(self.root, max_readers=1, readonly=True, create=False, readahead=False,
                         meminit=False, lock=False)  # fmt: skip

    @property
    def env(self) -> lmdb.Environment:
        if self._env is None:
            self._env = self._create_env()
        return self._env

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        with self.env.begin() as txn:
            imgbuf = txn.get(f"image-{index + 1:09d}".encode())
        img = Image.open(io.BytesIO(imgbuf)).convert("RGB")
        img = img.resize((128, 32), Image.BICUBIC)  # torchvision's T.Resize on a PIL image does this
        return torch.from_numpy(np.asarray(img)).permute(2, 0, 1), self.labels[index]


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers, once the loader has joined them
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(loader: DataLoader) -> tuple[int, float, float]:
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    n = 0
    for batch in loader:
        n += len(batch[1])
    del loader  # joins the workers, so their CPU time is counted
    return n, time.perf_counter() - t0, cpu_seconds() - cpu0


def loaders(root: Path, manifest: Path, workers: int) -> dict[str, DataLoader]:
    common = {"num_workers": workers, "persistent_workers": False}
    parseq = ConcatDataset([ParseqStyleLmdb(s) for s in find_shards(root / "train")])
    shuffled = torch.Generator().manual_seed(0)
    mapped = ManifestDataset(manifest)
    return {
        "parseq-style": DataLoader(parseq, batch_size=BATCH, shuffle=True, generator=shuffled, **common),
        "map": DataLoader(mapped, batch_size=BATCH, **common),
        "map+ratio": DataLoader(mapped, batch_sampler=RatioBatchSampler(mapped, BATCH), **common),
        "iterable": DataLoader(ManifestIterableDataset(manifest, batch_size=BATCH, balanced=True),
                               batch_size=None, **common),  # fmt: skip
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=15_000)
    parser.add_argument("--synthetic", type=int, default=5_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    try:
        root = base / "root"
        t0 = time.perf_counter()
        real_crops(root, args.real)
        synthesize(SynthOptions(n=args.synthetic, root=root, workers=2, progress=False))
        manifest = mix(MixOptions(root=root, out=base / "manifests", ratio=(3.0, 1.0))).manifest_path.parent
        took = time.perf_counter() - t0
        print(f"root: {args.real:,} real crops + {args.synthetic:,} synthetic words in {took:.1f} s; "
              f"manifest 3:1 of {args.real + args.synthetic:,} rows")  # fmt: skip
        sizes = np.array([Image.open(io.BytesIO(b)).size for b in _some_images(root, 2000)])
        w, h = sizes[:, 0], sizes[:, 1]
        print(f"crop sizes (2,000 sampled): median {np.median(w):.0f}x{np.median(h):.0f}, "
              f"90th percentile {np.percentile(w, 90):.0f}x{np.percentile(h, 90):.0f}")  # fmt: skip
        for workers in [int(w) for w in args.workers.split(",")]:
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.repeats):
                for name, loader in loaders(root, manifest, workers).items():
                    n, wall, cpu = run(loader)
                    assert n == args.real + args.synthetic, (name, n)
                    rate, per_cpu = n / wall, n / cpu
                    old = best.get(name, (0.0, 0.0))
                    best[name] = (max(old[0], rate), max(old[1], per_cpu))
            base_rate, base_cpu = best["parseq-style"]
            print(f"\n{workers} DataLoader worker(s), batch {BATCH}, best of {args.repeats}")
            print(f"{'reader':<14} {'samples/s':>10} {'ratio':>6} {'per CPU-s':>10} {'ratio':>6}")
            for name, (rate, per_cpu) in best.items():
                print(f"{name:<14} {rate:>10,.0f} {rate / base_rate:>5.2f}x {per_cpu:>10,.0f} "
                      f"{per_cpu / base_cpu:>5.2f}x")  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
    sys.stdout.flush()


def _some_images(root: Path, n: int) -> list[bytes]:
    out: list[bytes] = []
    for shard in find_shards(root / "train"):
        env = lmdb.open(str(shard), readonly=True, lock=False)
        with env.begin() as txn:
            count = int(txn.get(b"num-samples"))
            out += [bytes(txn.get(f"image-{i:09d}".encode())) for i in range(1, min(count, n) + 1)]
        env.close()
    rng = np.random.default_rng(0)
    return [out[i] for i in rng.choice(len(out), size=min(n, len(out)), replace=False)]


if __name__ == "__main__":
    main()
