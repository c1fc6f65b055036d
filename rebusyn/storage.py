"""Where a dataset root lives: a local folder, or an fsspec URL (`s3://bucket/data`, `gs://...`).

Workers write every shard on their own local disk, close it, and then *publish* it here in one step that a
reader cannot see half-done:
- local root: a rename into place (a copy to a hidden sibling first when the work folder is on another
  filesystem, so the final step is always a rename within one filesystem);
- object store: every file of the shard is uploaded, `data.mdb` last. An object PUT is atomic, and every
  reader (rebusyn, PARSeq's glob, `rebusyn verify`) takes a folder for a shard only when it has `data.mdb`.
Index files and reports are small and written whole by the driver once all work units are in.

Remote roots take the credentials and endpoint of the fsspec backend: for S3 (s3fs) the usual AWS variables,
including `AWS_ENDPOINT_URL` for MinIO, Ceph or a local emulator.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Any


def is_remote(root: str | os.PathLike[str]) -> bool:
    """True for an fsspec URL other than file://."""
    text = str(root)
    return "://" in text and not text.startswith("file://")


class Storage:
    """A dataset root: `local` is its Path for a local root, None for a remote one."""

    def __init__(self, root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> None:
        text = str(root)
        self.root = text.rstrip("/")
        self.storage_options = dict(storage_options or {})
        if is_remote(text):
            self.local: Path | None = None
            self._fs: Any = None  # opened lazily, in whichever process publishes
        else:
            self.local = Path(text.removeprefix("file://"))

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "storage_options": self.storage_options, "local": self.local, "_fs": None}

    def __repr__(self) -> str:
        return f"Storage({self.root!r})"

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            self._fs, _ = fsspec.core.url_to_fs(self.root, **self.storage_options)
        return self._fs

    def url(self, rel: str) -> str:
        return f"{self.root}/{rel.strip('/')}"

    # -- writing -----------------------------------------------------------------------------------
    def publish_dir(self, local_dir: Path, rel: str) -> None:
        """Make the finished folder `local_dir` (an LMDB shard) appear at `rel`, whole or not at all.
        An existing folder at `rel` (an earlier attempt of the same unit) is replaced."""
        local_dir = Path(local_dir)
        if self.local is not None:
            final = self.local / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            if _same_filesystem(local_dir, final.parent):
                incoming = local_dir
            else:
                incoming = final.with_name(f".{final.name}.incoming-{tag}")
                shutil.copytree(local_dir, incoming)
            if final.exists():
                old = final.with_name(f".{final.name}.replaced-{tag}")
                os.replace(final, old)
                os.replace(incoming, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(incoming, final)
            if incoming is not local_dir:
                shutil.rmtree(local_dir, ignore_errors=True)
            return
        files = sorted(p for p in local_dir.iterdir() if p.is_file())
        files.sort(key=lambda p: p.name == "data.mdb")  # data.mdb last: its presence marks a whole shard
        for path in files:
            self.fs.put_file(str(path), self.url(f"{rel}/{path.name}"))
        shutil.rmtree(local_dir, ignore_errors=True)

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a small file (an index, a report) whole: temp name + rename locally, one PUT remotely."""
        if self.local is not None:
            final = self.local / rel
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, final)
            return
        with self.fs.open(self.url(rel), "wb") as handle:
            handle.write(data)

    def read_bytes(self, rel: str) -> bytes:
        if self.local is not None:
            return (self.local / rel).read_bytes()
        with self.fs.open(self.url(rel), "rb") as handle:
            return handle.read()

    def exists(self, rel: str) -> bool:
        if self.local is not None:
            return (self.local / rel).exists()
        return bool(self.fs.exists(self.url(rel)))

    def remove(self, rel: str) -> None:
        """Delete a folder or file at `rel` if it exists."""
        if self.local is not None:
            target = self.local / rel
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            return
        if self.fs.exists(self.url(rel)):
            self.fs.rm(self.url(rel), recursive=True)

    def list_shards(self, rel: str) -> list[str]:
        """Folders directly under `rel` that hold a data.mdb (published shards), sorted by name."""
        if self.local is not None:
            base = self.local / rel
            if not base.is_dir():
                return []
            return sorted(p.name for p in base.iterdir() if (p / "data.mdb").is_file())
        pattern = self.url(f"{rel}/*/data.mdb")
        return sorted(Path(p).parent.name for p in self.fs.glob(pattern))


def disk_full(exc: BaseException | None) -> bool:
    """ENOSPC/EDQUOT anywhere in an exception's chain, including LMDB's and pyarrow's own error texts."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _same_filesystem(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False
