"""Shards are read back the way deep-text-recognition-benchmark and PARSeq read them, and an LMDB
written the way their create_lmdb_dataset.py writes is read by rebusyn."""

import glob
import io
import json
import multiprocessing as mp
import os

import lmdb
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rebusyn.sample import Sample
from rebusyn.store.dataset import SourceWriter
from rebusyn.store.shards import ShardReader, ShardWriter, find_shards


def png(w, h, colour):
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    return buf.getvalue()


def make_samples(n):
    return [
        Sample(png(20 + i, 10, (i * 7 % 255, 0, 0)), f"w{i}", f"W{i}!", "src", "B", f"src/{i}", 20 + i, 10)
        for i in range(n)
    ]


def write_three(root):
    """Source `src` (group B) with samples w0, w1, w2 in one shard."""
    with SourceWriter(root, "src", "B") as writer:
        for s in make_samples(3):
            writer.add(s)
        return writer.close()


class STRLmdbReader:
    """A minimal reader written the way DTRB's and PARSeq's LmdbDataset read (independent of rebusyn)."""

    def __init__(self, root):
        self.env = lmdb.open(
            str(root), max_readers=32, readonly=True, lock=False, readahead=False, meminit=False
        )
        with self.env.begin(write=False) as txn:
            self.n = int(txn.get("num-samples".encode()))

    def __len__(self):
        return self.n

    def __getitem__(self, index):  # DTRB: index += 1 (lmdb starts with 1)
        index += 1
        with self.env.begin(write=False) as txn:
            label = txn.get(("label-%09d" % index).encode()).decode("utf-8")
            imgbuf = txn.get(("image-%09d" % index).encode())
        return Image.open(io.BytesIO(imgbuf)).convert("RGB"), label


def test_shards_read_by_independent_str_reader(tmp_path):
    samples = make_samples(25)
    with SourceWriter(tmp_path, "src", "B", max_shard_samples=10) as writer:
        for s in samples:
            writer.add(s)
        out = writer.close()
    assert [p.name for p in out.shards] == ["shard-00000", "shard-00001", "shard-00002"]
    assert out.directory == tmp_path / "train" / "real" / "B" / "src"
    seen = []
    for shard in out.shards:
        reader = STRLmdbReader(shard)
        for i in range(len(reader)):
            image, label = reader[i]
            seen.append((image.size, label))
        reader.env.close()
    assert seen == [((s.width, s.height), s.label) for s in samples]
    # the meta key carries provenance that STR readers ignore
    env = lmdb.open(str(out.shards[0]), readonly=True, lock=False)
    with env.begin() as txn:
        meta = json.loads(txn.get(b"meta-000000001"))
        assert txn.get(b"image-000000000") is None  # 1-based
        assert txn.get(b"image-000000011") is None  # rolled over after 10
    env.close()
    assert meta == {"label_raw": "W0!", "source": "src", "group": "B", "key": "src/0", "w": 20, "h": 10}
    index = pq.read_table(out.index).to_pylist()
    assert len(index) == 25
    assert index[12]["shard"] == "train/real/B/src/shard-00001" and index[12]["idx"] == 3
    assert index[12]["label"] == "w12" and index[12]["label_raw"] == "W12!"


def test_reads_lmdb_written_like_create_lmdb_dataset(tmp_path):
    # As DTRB/PARSeq create_lmdb_dataset.py: 1 TiB map, cnt from 1, commit every 1000, num-samples at the end.
    env = lmdb.open(str(tmp_path / "foreign"), map_size=1099511627776)
    cache = {}
    cnt = 1
    for i in range(3):
        cache[("image-%09d" % cnt).encode()] = png(30, 12, (0, i, 0))
        cache[("label-%09d" % cnt).encode()] = f"lbl{i}".encode()
        cnt += 1
    cache["num-samples".encode()] = str(cnt - 1).encode()
    with env.begin(write=True) as txn:
        for k, v in cache.items():
            txn.put(k, v)
    env.close()
    reader = ShardReader(tmp_path / "foreign")
    assert len(reader) == 3
    image, label, meta = reader.get(2)
    assert label == "lbl1" and meta == {}
    assert Image.open(io.BytesIO(image)).size == (30, 12)
    assert [row[2] for row in reader] == ["lbl0", "lbl1", "lbl2"]
    with pytest.raises(IndexError):
        reader.get(0)
    reader.close()


def test_map_grows_on_map_full(tmp_path):
    big = Sample(b"\x00" * (3 * 2**20), "x", "x", "s", "S", "k", 1, 1)
    with ShardWriter(tmp_path / "out", index_prefix="out", commit_every=50) as writer:
        for _ in range(40):  # 120 MiB through a 64 MiB initial map
            writer.add(big)
    shard = find_shards(tmp_path / "out")
    assert len(shard) == 1 and len(ShardReader(shard[0])) == 40


def test_failed_write_leaves_no_shard(tmp_path):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), ShardWriter(tmp_path / "out", index_prefix="out") as writer:
        for s in make_samples(5):
            writer.add(s)
        raise Boom
    assert list((tmp_path / "out").iterdir()) == []
    assert find_shards(tmp_path) == []


def test_unfinished_shard_is_invisible_until_renamed(tmp_path):
    writer = ShardWriter(tmp_path / "out", index_prefix="out", commit_every=2)
    for s in make_samples(5):
        writer.add(s)
    # data.mdb exists (commits happened) but only under a hidden temporary name that readers skip,
    # rebusyn's find_shards as well as PARSeq's `glob(root/**/data.mdb, recursive=True)`
    assert [p.name.split(".tmp-")[0] for p in (tmp_path / "out").iterdir()] == [".shard-00000"]
    assert list((tmp_path / "out").rglob("data.mdb"))
    assert find_shards(tmp_path) == []
    assert glob.glob(os.path.join(tmp_path, "**/data.mdb"), recursive=True) == []
    writer.close()
    assert [p.name for p in find_shards(tmp_path)] == ["shard-00000"]
    assert glob.glob(os.path.join(tmp_path, "**/data.mdb"), recursive=True) == [
        str(tmp_path / "out" / "shard-00000" / "data.mdb")
    ]


def test_failed_rebuild_keeps_the_previous_build(tmp_path):
    with SourceWriter(tmp_path, "src", "B") as writer:
        for s in make_samples(4):
            writer.add(s)
        first = writer.close()
    index_before = first.index.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), SourceWriter(tmp_path, "src", "B", max_shard_samples=2) as writer:
        for s in make_samples(3):  # one finished shard in staging, then a crash
            writer.add(s)
        assert len(glob.glob(os.path.join(tmp_path, "**/data.mdb"), recursive=True)) == 1  # staging is hidden
        raise Boom
    assert [p.name for p in find_shards(tmp_path)] == ["shard-00000"]
    assert len(ShardReader(first.shards[0])) == 4 and first.index.read_bytes() == index_before
    assert sorted(p.name for p in first.directory.parent.iterdir()) == ["src"]  # no staging left behind

    with SourceWriter(
        tmp_path, "src", "B", max_shard_samples=2
    ) as writer:  # a successful rebuild replaces it
        for s in make_samples(3):
            writer.add(s)
        second = writer.close()
    assert [p.name for p in find_shards(tmp_path)] == ["shard-00000", "shard-00001"]
    assert pq.read_table(second.index).column("shard").to_pylist() == [
        "train/real/B/src/shard-00000",
        "train/real/B/src/shard-00000",
        "train/real/B/src/shard-00001",
    ]
    assert sorted(p.name for p in first.directory.parent.iterdir()) == ["src"]


def _child_reads(reader, queue):
    queue.put((len(reader), reader.get(1)[1]))


def test_reader_survives_fork(tmp_path):
    out = write_three(tmp_path)
    reader = ShardReader(out.shards[0])
    assert reader.get(1)[1] == "w0"  # the parent holds an open environment
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_reads, args=(reader, queue))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert queue.get(timeout=5) == (3, "w0")
    assert reader.get(3)[1] == "w2"  # and the parent reopens lazily


def test_test_benchmark_is_one_lmdb_at_test_name(tmp_path):
    with SourceWriter(tmp_path, "svt_test", "T", max_shard_samples=2) as writer:  # no roll-over for T
        for s in make_samples(5):
            writer.add(s)
        out = writer.close()
    assert out.directory == tmp_path / "test" / "svt_test" and out.shards == [out.directory]
    assert sorted(p.name for p in out.directory.iterdir()) == ["data.mdb", "lock.mdb"]
    reader = STRLmdbReader(tmp_path / "test" / "svt_test")  # PARSeq opens test/<name> itself
    assert len(reader) == 5 and reader[4][1] == "w4"
    reader.env.close()
    rows = pq.read_table(out.index).to_pylist()
    assert {r["shard"] for r in rows} == {"test/svt_test"} and [r["idx"] for r in rows] == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in (tmp_path / "test").iterdir()) == ["svt_test"]  # no staging left


def test_custom_data_lives_under_train_real_custom(tmp_path):
    with SourceWriter(tmp_path, "mine", "C") as writer:
        writer.add(make_samples(1)[0])
        out = writer.close()
    assert out.directory == tmp_path / "train" / "real" / "custom" / "mine"


def test_readers_of_one_shard_share_its_environment(tmp_path, monkeypatch):
    """py-lmdb >= 2 refuses a second open of a path in one process; two readers of one shard (one by a
    relative path) both read, and the environment closes with the last of them."""
    out = write_three(tmp_path)
    shard = out.shards[0]
    monkeypatch.chdir(tmp_path)
    first, second = ShardReader(shard), ShardReader(os.path.relpath(shard))
    assert first.get(1)[1] == "w0" and second.get(2)[1] == "w1"
    assert first.env is second.env
    with pytest.raises(lmdb.Error, match="already open"):  # what sharing avoids
        lmdb.open(str(shard), readonly=True, lock=False)
    first.close()
    assert second.get(3)[1] == "w2"  # still open for the other reader
    second.close()
    env = lmdb.open(str(shard), readonly=True, lock=False)  # closed with the last reader
    env.close()


def test_materialize_after_a_loader_read_the_same_shards(tmp_path):
    """A ManifestDataset that has read a sample keeps its shard open; materialize in the same process
    reads the same shard (it failed with 'already open in this process')."""
    pytest.importorskip("torch")
    from rebusyn.loaders.torch import ManifestDataset
    from rebusyn.materialize import materialize
    from rebusyn.mix import MixOptions, mix

    for source, group in (("src", "B"), ("syn", "S")):
        with SourceWriter(tmp_path / "root", source, group) as writer:
            for s in make_samples(6):
                writer.add(Sample(s.image, s.label, s.label_raw, source, group, s.key, s.width, s.height))
            writer.close()
    manifest = mix(MixOptions(root=tmp_path / "root", out=tmp_path / "m", seed=1)).manifest_path.parent
    ds = ManifestDataset(manifest, image_size=(32, 128))
    assert ds[0][1].startswith("w")
    summary = materialize(manifest, tmp_path / "lmdb", progress=False)
    assert summary.real + summary.synthetic == pq.read_metadata(manifest / "manifest.parquet").num_rows
    ds.close()


def test_verify_in_the_process_of_a_reader_that_holds_the_shard(tmp_path):
    """verify (and LMDB inputs) share the env too: no false 'cannot open: already open' report."""
    from rebusyn.verify import VerifyOptions, verify

    out = write_three(tmp_path)
    reader = ShardReader(out.shards[0])
    assert reader.get(1)[1] == "w0"  # holds the environment open
    result = verify(VerifyOptions(path=out.shards[0], progress=False))
    assert result.ok, result.problems.listed
    assert reader.get(2)[1] == "w1"  # and still reads after verify released its share
    reader.close()
