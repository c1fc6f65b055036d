"""Tiny dataset roots with real LMDB shards and Parquet indexes, written through SourceWriter."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from rebusyn.sample import Sample
from rebusyn.store.dataset import SourceWriter


def png_bytes(width: int, height: int, shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (shade % 256, (shade * 7) % 256, (shade * 13) % 256)).save(buf, "PNG")
    return buf.getvalue()


def image_size(source: str, i: int) -> tuple[int, int]:
    """Width varies per sample so a decoded image can be checked against its row."""
    return 16 + (i % 23) + len(source), 8 + (i % 5)


def make_root(root: Path, sources: dict[str, tuple[str, int]], *, max_shard_samples: int = 10) -> Path:
    """Write `{source: (group, n)}` into `root`; shards roll over every `max_shard_samples` samples."""
    for source, (group, n) in sources.items():
        writer = SourceWriter(root, source, group, max_shard_samples=max_shard_samples)
        with writer:
            for i in range(n):
                w, h = image_size(source, i)
                writer.add(
                    Sample(
                        image=png_bytes(w, h, i + len(source)),
                        label=f"{source[:3]}{i}",
                        label_raw=f"{source[:3].upper()}-{i}",
                        source=source,
                        group=group,
                        key=f"{source}/img{i // 3}/{i % 3}",
                        width=w,
                        height=h,
                    )
                )
            writer.close()
    return root
