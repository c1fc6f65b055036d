"""`mix --materialize`: the manifest as PARSeq-layout shards, read back by a reader that follows PARSeq's
LmdbDataset (1-based keys, label preprocessing, PIL decode) rather than rebusyn's own code."""

from __future__ import annotations

import hashlib
import io
import json
import unicodedata
from collections import Counter
from pathlib import Path

import lmdb
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rebusyn.cli import main
from rebusyn.materialize import MARKER, materialize
from rebusyn.mix import MixOptions, mix
from tests.conftest_helpers import make_root

CHARSET_94 = "".join(chr(c) for c in range(0x21, 0x7F))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 30 real, 5 synthetic: a 3:1 mix draws 10 synthetic, so 5 of them repeat (kept as repeats)
    root = make_root(tmp_path_factory.mktemp("mat") / "root",
                     {"alpha": ("R", 20), "beta": ("B", 10), "syn": ("S", 5), "bench": ("T", 3)})  # fmt: skip
    return root


def parseq_read(train_dir: Path, max_label_length: int = 25) -> list[tuple[str, str]]:
    """(label, sha1 of the RGB pixels) of every sample PARSeq's training code would see: it globs
    train_dir/**/data.mdb, opens each LMDB as LmdbDataset does, filters labels as _preprocess_labels does
    (remove whitespace, NFKD to ASCII, length, charset) and decodes with PIL + convert('RGB')."""
    out = []
    for mdb in sorted(train_dir.glob("**/data.mdb")):
        env = lmdb.open(str(mdb.parent), max_readers=1, readonly=True, create=False, readahead=False,
                        meminit=False, lock=False)  # fmt: skip
        with env.begin() as txn:
            for index in range(1, int(txn.get(b"num-samples").decode()) + 1):
                label = txn.get(f"label-{index:09d}".encode()).decode()
                label = "".join(label.split())
                label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
                if len(label) > max_label_length:
                    continue
                label = "".join(c for c in label if c in CHARSET_94)
                if not label:
                    continue
                image = Image.open(io.BytesIO(txn.get(f"image-{index:09d}".encode()))).convert("RGB")
                out.append((label, hashlib.sha1(image.tobytes()).hexdigest()))
        env.close()
    return out


def manifest_view(root: Path, manifest: Path, synthetic: bool) -> list[tuple[str, str]]:
    """The same (label, pixel sha1) pairs taken from the source shards the manifest names."""
    out = []
    for row in pq.read_table(manifest).to_pylist():
        if row["synthetic"] != synthetic:
            continue
        env = lmdb.open(str(root / row["shard"]), readonly=True, lock=False)
        with env.begin() as txn:
            data = txn.get(f"image-{row['idx']:09d}".encode())
        env.close()
        image = Image.open(io.BytesIO(data)).convert("RGB")
        out.append((row["label"], hashlib.sha1(image.tobytes()).hexdigest()))
    return out


def test_parseq_reads_exactly_the_mix(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, out=tmp_path / "m"))
    out = tmp_path / "parseq"
    done = materialize(summary.manifest_path.parent, out, max_shard_bytes=2_000, progress=False)
    assert (done.real, done.synthetic) == (30, 10) and done.shards > 2  # small shards: several per part
    for part, synthetic in (("real", False), ("synth", True)):
        seen = parseq_read(out / "train" / part)
        assert Counter(seen) == Counter(manifest_view(root, summary.manifest_path, synthetic))
    assert len(parseq_read(out / "train")) == 40  # data.train_dir=. : both parts, repeats included
    assert (out / "test").is_symlink() and (out / "test" / "bench" / "data.mdb").is_file()
    marker = json.loads((out / MARKER).read_text())
    assert marker["manifest"] == summary.name and (marker["real"], marker["synthetic"]) == (30, 10)
    # rebuilt over an earlier materialization; never over someone else's folder
    materialize(summary.manifest_path.parent, out, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(FileExistsError, match="not a materialized manifest"):
        materialize(summary.manifest_path.parent, other, progress=False)


def test_a_changed_manifest_is_refused(root: Path, tmp_path: Path) -> None:
    summary = mix(MixOptions(root=root, out=tmp_path / "m"))
    table = pq.read_table(summary.manifest_path)
    pq.write_table(table.slice(0, 5), summary.manifest_path)
    with pytest.raises(ValueError, match="does not match the sha256"):
        materialize(summary.manifest_path.parent, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_cli_materialize(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["mix", "--root", str(root), "--out", str(tmp_path), "--ratio", "1:1", "--materialize", "-q"]
    assert main(argv) == 0
    out = tmp_path / "rebusyn-1to1" / "lmdb"
    assert "data.train_dir=." in capsys.readouterr().out
    assert len(parseq_read(out / "train")) == 60  # 30 real + 30 synthetic (5 samples, repeated)
