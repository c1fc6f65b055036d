"""rebusyn.fetch against a real HTTP server on 127.0.0.1: real bytes, real Range requests, no mocks."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from rebusyn.fetch import (
    MARKER,
    ArchiveRef,
    ChecksumMismatch,
    FetchError,
    ManualDownloadRequired,
    fetch_archive,
    fetch_archives,
    file_digests,
    read_sha256sums,
    safe_extract,
    tar_members,
)
from tests._fetch_helpers import make_tar, opts, sha256, tinfo
from tests.httpserver import FileServer

DATA = bytes((i * 7 + i // 251) % 256 for i in range(200_000))  # not all-zero: corruption must be visible
NAME = "train_images.zip"


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


@pytest.fixture
def srv(tmp_path: Path):
    with FileServer(tmp_path / "www") as s:
        s.add_file(NAME, DATA)
        yield s


def ref(srv: FileServer, **kw: object) -> ArchiveRef:
    return ArchiveRef(name=NAME, url=srv.url(NAME), **kw)  # type: ignore[arg-type]


def assert_done(dest: Path, data: bytes = DATA) -> None:
    assert (dest / NAME).read_bytes() == data
    assert not (dest / (NAME + ".part")).exists()


# ------------------------------------------------------------------------------------------------- download


def test_plain_download_sha256(srv: FileServer, dest: Path) -> None:
    r = fetch_archive(ref(srv, sha256=sha256(DATA), size=len(DATA)), dest, opts())
    assert (r.origin, r.checksum_ok, r.size, r.path) == ("download", True, len(DATA), dest / NAME)
    assert (r.sha256, r.md5) == (sha256(DATA), md5(DATA))
    assert_done(dest)
    assert [h.range for h in srv.hits(NAME)] == [None]


def test_plain_download_md5(srv: FileServer, dest: Path) -> None:
    r = fetch_archive(ref(srv, md5=md5(DATA).upper()), dest, opts())
    assert r.checksum_ok is True
    assert_done(dest)


def test_sha256_preferred_over_md5(srv: FileServer, dest: Path) -> None:
    r = fetch_archive(ref(srv, sha256=sha256(DATA), md5="0" * 32), dest, opts())
    assert r.checksum_ok is True
    with pytest.raises(ChecksumMismatch, match="sha256"):
        fetch_archive(ArchiveRef(NAME, srv.url(NAME), md5=md5(DATA), sha256="0" * 64), dest / "b", opts())


def test_nothing_to_verify_gives_none(srv: FileServer, dest: Path) -> None:
    r = fetch_archive(ref(srv), dest, opts())
    assert r.checksum_ok is None and r.sha256 == sha256(DATA)


def test_resume_from_existing_part(srv: FileServer, dest: Path) -> None:
    dest.mkdir()
    (dest / (NAME + ".part")).write_bytes(DATA[:30_000])
    r = fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    assert r.checksum_ok is True
    assert_done(dest)
    hits = srv.hits(NAME)
    assert [(h.range, h.status) for h in hits] == [("bytes=30000-", 206)]


def test_dropped_connection_is_retried_and_resumed(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, drop_first=2, drop_after=40_000)
    r = fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    assert r.checksum_ok is True
    assert_done(dest)
    assert [h.range for h in srv.hits(NAME)] == [None, "bytes=40000-", "bytes=80000-"]


def test_truncation_gives_up_after_retries(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, drop_first=100, drop_after=1_000)
    with pytest.raises(FetchError) as ei:
        fetch_archive(ref(srv), dest, opts(retries=2))
    msg = str(ei.value)
    assert srv.url(NAME) in msg and "3000 bytes received" in msg
    assert len(srv.hits(NAME)) == 3
    assert not (dest / NAME).exists()
    assert (dest / (NAME + ".part")).read_bytes() == DATA[:3_000]  # kept for a later resume


def test_500s_are_retried(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, status_first=2)
    r = fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    assert r.checksum_ok is True
    assert [h.status for h in srv.hits(NAME)] == [500, 500, 200]


def test_persistent_500_fails_after_retries(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, status_first=1000, status=503)
    with pytest.raises(FetchError, match="503") as ei:
        fetch_archive(ref(srv), dest, opts(retries=2))
    assert srv.url(NAME) in str(ei.value)
    assert len(srv.hits(NAME)) == 3
    assert not (dest / NAME).exists()


def test_connection_refused_is_retried_then_fails(dest: Path) -> None:
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{NAME}"
    with pytest.raises(FetchError, match="after 3 attempts") as ei:
        fetch_archive(ArchiveRef(NAME, url), dest, opts(retries=2))
    assert url in str(ei.value) and "0 bytes received" in str(ei.value)


def test_4xx_fails_at_once(srv: FileServer, dest: Path) -> None:
    with pytest.raises(FetchError, match="404") as ei:
        fetch_archive(ArchiveRef("nope.zip", srv.url("nope.zip")), dest, opts(retries=5))
    assert srv.url("nope.zip") in str(ei.value)
    assert len(srv.hits("nope.zip")) == 1
    srv.fault(NAME, status_first=1000, status=403)
    with pytest.raises(FetchError, match="403"):
        fetch_archive(ref(srv), dest, opts(retries=5))
    assert len(srv.hits(NAME)) == 1


def test_server_ignoring_range_still_gives_right_file(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, ignore_range=True)
    dest.mkdir()
    (dest / (NAME + ".part")).write_bytes(DATA[:50_000])
    r = fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    assert r.checksum_ok is True
    assert_done(dest)
    assert [(h.range, h.status) for h in srv.hits(NAME)] == [("bytes=50000-", 200)]


def test_complete_part_answered_416_is_verified(srv: FileServer, dest: Path) -> None:
    dest.mkdir()
    (dest / (NAME + ".part")).write_bytes(DATA)
    r = fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    assert (r.origin, r.checksum_ok) == ("download", True)
    assert_done(dest)
    assert [h.status for h in srv.hits(NAME)] == [416]


def test_oversized_part_restarts(srv: FileServer, dest: Path) -> None:
    dest.mkdir()
    (dest / (NAME + ".part")).write_bytes(DATA + b"junk")
    r = fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    assert r.checksum_ok is True
    assert_done(dest)
    assert [h.status for h in srv.hits(NAME)] == [416, 200]


def test_wrong_bytes_fail_closed(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, corrupt=True)
    with pytest.raises(ChecksumMismatch) as ei:
        fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    e = ei.value
    assert e.expected == sha256(DATA) and e.actual != e.expected and e.path == dest / NAME
    assert srv.url(NAME) in str(e) and str(dest / NAME) in str(e)
    assert not (dest / NAME).exists()
    assert not (dest / (NAME + ".part")).exists()


def test_skip_checksum_keeps_file_and_warns(
    srv: FileServer, dest: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv.fault(NAME, corrupt=True)
    with caplog.at_level(logging.WARNING, logger="rebusyn.fetch"):  # only warnings are captured
        r = fetch_archive(ref(srv, md5=md5(DATA)), dest, opts(skip_checksum=True))
    assert r.checksum_ok is False
    assert (dest / NAME).read_bytes() == DATA.translate(bytes(b ^ 0xFF for b in range(256)))
    warned = [rec.getMessage() for rec in caplog.records if rec.name == "rebusyn.fetch"]
    assert any("md5 mismatch" in m and NAME in m for m in warned)


def test_cache_hit_makes_no_request(srv: FileServer, dest: Path) -> None:
    a = ref(srv, sha256=sha256(DATA))
    fetch_archive(a, dest, opts())
    n = len(srv.requests)
    r = fetch_archive(a, dest, opts())
    assert (r.origin, r.checksum_ok, r.sha256) == ("cache", True, sha256(DATA))
    assert len(srv.requests) == n


def test_cached_digests_are_remembered_until_the_file_changes(
    srv: FileServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rebusyn.fetch as fetch_module

    a = ref(srv, sha256=sha256(DATA))
    fetch_archive(a, dest, opts())
    fetch_archive(a, dest, opts())  # first cache hit hashes the file and records its digests
    hashed: list[Path] = []
    real = fetch_module.file_digests
    monkeypatch.setattr(fetch_module, "file_digests", lambda p: hashed.append(p) or real(p))
    assert fetch_archive(a, dest, opts()).checksum_ok is True
    assert hashed == []  # unchanged size and mtime: not hashed again
    corrupt = bytes(b ^ 1 for b in DATA)  # same size, new mtime
    (dest / NAME).write_bytes(corrupt)
    os.utime(dest / NAME, ns=(1, 1))
    r = fetch_archive(a, dest, opts())
    assert hashed and (r.origin, r.checksum_ok) == ("download", True)
    assert (dest / NAME).read_bytes() == DATA


def test_bad_cache_is_fetched_again_and_kept_aside(srv: FileServer, dest: Path) -> None:
    dest.mkdir()
    (dest / NAME).write_bytes(b"stale")  # e.g. a file placed by hand: another release, a wrong file
    r = fetch_archive(ref(srv, sha256=sha256(DATA)), dest, opts())
    assert (r.origin, r.checksum_ok) == ("download", True)
    assert_done(dest)
    # nothing is lost: the rejected file is next to it, named by its digest, and is not used
    aside = [p.name for p in dest.iterdir() if ".rejected-" in p.name]
    assert aside == [f"{NAME}.rejected-{sha256(b'stale')[:12]}"]
    assert (dest / aside[0]).read_bytes() == b"stale"


# ---------------------------------------------------------------------------------------------------- mirrors


def mirror_setup(srv: FileServer) -> tuple[bytes, list[ArchiveRef]]:
    """Mirror /m/: a repacked train archive (vouched for by SHA256SUMS) and an unlisted test archive."""
    repacked = DATA[::-1]
    test_data = b"test archive" * 1000
    srv.add_file("m/" + NAME, repacked)
    srv.add_file("m/test.zip", test_data)
    srv.add_file("m/SHA256SUMS", f"# made by hand\n{sha256(repacked)} *{NAME}\n\n".encode())
    refs = [
        ArchiveRef(NAME, srv.url("official/" + NAME), sha256=sha256(DATA), size=len(DATA)),
        ArchiveRef("test.zip", srv.url("official/test.zip"), md5=md5(test_data)),
    ]
    return repacked, refs


def test_mirror_url_with_sha256sums(srv: FileServer, dest: Path) -> None:
    repacked, refs = mirror_setup(srv)
    res = fetch_archives(refs, dest, opts(mirror=srv.url("m")))
    assert [(r.origin, r.checksum_ok) for r in res] == [("mirror", True), ("mirror", True)]
    assert (dest / NAME).read_bytes() == repacked
    assert len(srv.hits("m/SHA256SUMS")) == 1  # read once for all archives
    assert not [h for h in srv.requests if h.path.startswith("/official/")]


def test_mirror_sha256sums_is_enforced(srv: FileServer, dest: Path) -> None:
    _, refs = mirror_setup(srv)
    srv.add_file("m/SHA256SUMS", f"{'ab' * 32}  {NAME}\n".encode())
    with pytest.raises(ChecksumMismatch, match="ab" * 32):
        fetch_archives(refs[:1], dest, opts(mirror=srv.url("m") + "/"))
    assert not (dest / NAME).exists() and not (dest / (NAME + ".part")).exists()


@pytest.mark.parametrize("as_url", [False, True])
def test_mirror_local_directory(srv: FileServer, dest: Path, as_url: bool) -> None:
    repacked, refs = mirror_setup(srv)
    mdir = srv.root / "m"
    mirror = mdir.as_uri() if as_url else str(mdir)
    res = fetch_archives(refs, dest, opts(mirror=mirror))
    assert [(r.origin, r.checksum_ok) for r in res] == [("mirror", True), ("mirror", True)]
    assert (dest / NAME).read_bytes() == repacked
    assert (mdir / NAME).read_bytes() == repacked  # the mirror copy is untouched
    assert srv.requests == []


def test_mirror_missing_file_is_an_error(srv: FileServer, dest: Path) -> None:
    with pytest.raises(FetchError, match="404"):
        fetch_archive(ArchiveRef("absent.zip", srv.url("absent.zip")), dest, opts(mirror=srv.url("m")))
    assert srv.hits("absent.zip") == []  # the official URL is not a fallback


def test_read_sha256sums(tmp_path: Path, srv: FileServer) -> None:
    (tmp_path / "SHA256SUMS").write_text(
        f"{'A' * 64}  a.zip\n{'b' * 64} *b c.tar.gz\n{'c' * 64}  ./d.zip\nnot a line\n"
    )
    assert read_sha256sums(str(tmp_path)) == {"a.zip": "a" * 64, "b c.tar.gz": "b" * 64, "d.zip": "c" * 64}
    assert read_sha256sums(str(tmp_path / "nowhere")) == {}
    assert read_sha256sums(srv.url("nowhere")) == {}


# ---------------------------------------------------------------------------------- login-gated and --from


def gated_refs() -> list[ArchiveRef]:
    page = "https://rrc.example.org/?ch=4&com=downloads"
    return [
        ArchiveRef("ch4_training_images.zip", page, md5=md5(b"one")),
        ArchiveRef("ch4_test_images.zip", page, md5=md5(b"two")),
        ArchiveRef("ch4_training_gt.zip", page, md5=md5(b"three")),
    ]


def test_login_required_lists_every_missing_file(dest: Path) -> None:
    refs = gated_refs()
    dest.mkdir()
    (dest / refs[2].name).write_bytes(b"three")  # one already in place
    with pytest.raises(ManualDownloadRequired) as ei:
        fetch_archives(refs, dest, opts(login_required=True))
    e = ei.value
    assert [r.name for r in e.missing] == [refs[0].name, refs[1].name]
    msg = str(e)
    assert refs[0].name in msg and refs[1].name in msg and refs[2].name not in msg
    assert refs[0].url in msg and str(dest.resolve()) in msg and "--from" in msg
    assert not (dest / (refs[0].name + ".part")).exists()


def test_login_required_single_archive(dest: Path) -> None:
    with pytest.raises(ManualDownloadRequired) as ei:
        fetch_archive(gated_refs()[0], dest, opts(login_required=True))
    assert len(ei.value.missing) == 1


def test_login_required_with_mirror_lacking_files(srv: FileServer, dest: Path) -> None:
    refs = gated_refs()
    srv.add_file("m/" + refs[0].name, b"one")
    with pytest.raises(ManualDownloadRequired) as ei:
        fetch_archives(refs, dest, opts(login_required=True, mirror=srv.url("m")))
    assert [r.name for r in ei.value.missing] == [refs[1].name, refs[2].name]
    assert (dest / refs[0].name).read_bytes() == b"one"


def test_per_archive_login_overrides_the_source(srv: FileServer, tmp_path: Path, dest: Path) -> None:
    # SynthAdd: Baidu-only images (manual) next to MMOCR's public label.txt (downloaded)
    images = ArchiveRef("SynthText_Add.zip", "https://pan.baidu.com/s/x", md5=md5(b"images"))
    labels = ArchiveRef("label.txt", srv.url("label.txt"), md5=md5(b"a 1"), login_required=False)
    srv.add_file("label.txt", b"a 1")
    with pytest.raises(ManualDownloadRequired) as ei:
        fetch_archives([images, labels], dest, opts(login_required=True))
    assert [r.name for r in ei.value.missing] == ["SynthText_Add.zip"]  # label.txt is not asked for
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / images.name).write_bytes(b"images")
    res = fetch_archives([images, labels], dest, opts(login_required=True, from_dir=hand))
    assert [r.origin for r in res] == ["from", "download"]
    # and the reverse: one manual file in an open source (PARSeq's Drive folder next to a direct tarball)
    drive = ArchiveRef("parseq_synth.tar", "https://drive.google.com/drive/folders/x", login_required=True)
    with pytest.raises(ManualDownloadRequired) as ei:
        fetch_archives([drive], tmp_path / "d2", opts())
    assert [r.name for r in ei.value.missing] == ["parseq_synth.tar"]


def test_from_dir_picks_files_up(tmp_path: Path, dest: Path) -> None:
    refs = gated_refs()
    hand = tmp_path / "downloads"
    hand.mkdir()
    for r, data in zip(refs, [b"one", b"two", b"three"]):
        (hand / r.name).write_bytes(data)
    res = fetch_archives(refs, dest, opts(login_required=True, from_dir=hand))
    assert [(r.origin, r.checksum_ok) for r in res] == [("from", True)] * 3
    assert (dest / refs[1].name).read_bytes() == b"two"
    assert (hand / refs[1].name).read_bytes() == b"two"  # the user's copy stays
    # second run: everything is cached now
    assert {r.origin for r in fetch_archives(refs, dest, opts(login_required=True))} == {"cache"}


def test_from_dir_bad_file_fails_closed(tmp_path: Path, dest: Path) -> None:
    hand = tmp_path / "downloads"
    hand.mkdir()
    r = gated_refs()[0]
    (hand / r.name).write_bytes(b"not one")
    with pytest.raises(ChecksumMismatch, match=r.name):
        fetch_archive(r, dest, opts(login_required=True, from_dir=hand))
    assert not (dest / r.name).exists() and not (dest / (r.name + ".part")).exists()
    assert (hand / r.name).read_bytes() == b"not one"


def test_invalid_name_is_refused(dest: Path) -> None:
    with pytest.raises(FetchError, match="invalid archive name"):
        fetch_archive(ArchiveRef("../x.zip", None), dest, opts())


def test_file_digests(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(DATA)
    assert file_digests(p) == (md5(DATA), sha256(DATA))


# -------------------------------------------------------------------------------------------------- extract


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path




def assert_clean(tmp_path: Path, target: Path) -> None:
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if ".extracting-" in p.name] == []


def test_extract_zip(tmp_path: Path) -> None:
    arc = make_zip(tmp_path / "a.zip", {"imgs/": b"", "imgs/1.jpg": b"x" * 5000, "gt.txt": b"hello"})
    target = tmp_path / "out" / "a"
    files = safe_extract(arc, target)
    assert sorted(files) == sorted([target / "imgs/1.jpg", target / "gt.txt"])
    assert (target / "gt.txt").read_bytes() == b"hello"
    assert (target / MARKER).is_file()
    # a complete target is not extracted again
    (target / "gt.txt").write_bytes(b"edited")
    assert sorted(safe_extract(arc, target)) == sorted(files)
    assert (target / "gt.txt").read_bytes() == b"edited"


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_extract_only_some_folders(tmp_path: Path, kind: str) -> None:
    # DTRB's data_lmdb_release.zip: the MJ recipe wants training/MJ only, under an optional top folder
    members = {
        "data_lmdb_release/training/MJ/MJ_train/data.mdb": b"mj",
        "data_lmdb_release/training/MJX/data.mdb": b"not MJ",  # a prefix of a name is not its folder
        "data_lmdb_release/training/ST/data.mdb": b"st",
        "training/MJ/MJ_test/data.mdb": b"no wrapper",
        "evaluation/training/MJ/data.mdb": b"one wrapper too many? no: evaluation/ is its top folder",
        "a/b/training/MJ/data.mdb": b"two folders deep",
    }
    if kind == "zip":
        arc = make_zip(tmp_path / "a.zip", members)
    else:
        arc = make_tar(tmp_path / "a.tar", list(members.items()), "w")
    target = tmp_path / "out"
    files = safe_extract(arc, target, members=("training/MJ",))
    assert sorted(f.relative_to(target).as_posix() for f in files) == [
        "data_lmdb_release/training/MJ/MJ_train/data.mdb",
        "evaluation/training/MJ/data.mdb",
        "training/MJ/MJ_test/data.mdb",
    ]
    assert not (target / "data_lmdb_release/training/ST").exists()
    assert len(safe_extract(arc, target, members=("training/MJ",))) == 3  # complete: reused
    with pytest.raises(FetchError, match="remove it to extract again"):
        safe_extract(arc, target, members=("training/ST",))  # same target, other members
    with pytest.raises(FetchError, match="no members under nope"):
        safe_extract(arc, tmp_path / "none", members=("nope",))
    assert_clean(tmp_path, tmp_path / "none")


@pytest.mark.parametrize("mode", ["r:*", "r|*"])
def test_tar_members_are_not_kept(tmp_path: Path, mode: str) -> None:
    # TarFile keeps every member it reads (~0.5 KB each: GBs for MJSynth's 8.9M files); tar_members does not
    arc = make_tar(tmp_path / "a.tar.gz", [(f"d/{i}.jpg", b"x" * (i % 7)) for i in range(500)])
    with tarfile.open(arc, mode) as tf:
        names = [m.name for m in tar_members(tf)]
        assert names == [f"d/{i}.jpg" for i in range(500)] and len(tf.members) <= 1
    with tarfile.open(arc, mode) as tf:
        assert len(list(tf)) == len(tf.members) == 500  # what it would hold otherwise


@pytest.mark.parametrize("mode", ["w:gz", "w", "w:bz2", "w:xz"])
def test_extract_tar(tmp_path: Path, mode: str) -> None:
    d = tinfo("data", tarfile.DIRTYPE)
    d.mode = 0o755
    arc = make_tar(
        tmp_path / "a.bin",  # no telling extension: detection is by content
        [d, ("./data/1.png", b"png" * 100), tinfo("data/link.png", tarfile.SYMTYPE, "1.png"),
         tinfo("data/hard.png", tarfile.LNKTYPE, "data/1.png")],
        mode,
    )
    target = tmp_path / "t"
    files = safe_extract(arc, target)
    assert sorted(f.relative_to(target).as_posix() for f in files) == [
        "data/1.png", "data/hard.png", "data/link.png"
    ]
    assert (target / "data/link.png").read_bytes() == b"png" * 100
    assert (target / "data/hard.png").read_bytes() == b"png" * 100


@pytest.mark.parametrize(
    "members, why",
    [
        ([("../evil", b"x")], "'..'"),
        ([("ok/../../evil", b"x")], "'..'"),
        ([("/tmp/evil_abs", b"x")], "absolute"),
        ([tinfo("l", tarfile.SYMTYPE, "../../outside")], "outside"),
        ([tinfo("l", tarfile.SYMTYPE, "/etc/passwd")], "absolute"),
        ([("a", b"x"), tinfo("h", tarfile.LNKTYPE, "../a")], "'..'"),
        ([tinfo("dev", tarfile.CHRTYPE)], "device"),
        ([tinfo("fifo", tarfile.FIFOTYPE)], "fifo"),
        # a link that looks inside when made, and escapes once a later member becomes a link
        ([tinfo("d", tarfile.DIRTYPE), tinfo("d/s1", tarfile.SYMTYPE, "../s2/../x"),
          tinfo("s2", tarfile.SYMTYPE, ".")], "resolves"),
    ],
)
def test_extract_tar_refuses(tmp_path: Path, members: list, why: str) -> None:
    arc = make_tar(tmp_path / "bad.tar.gz", [("fine.txt", b"fine"), *members])
    target = tmp_path / "out" / "t"
    with pytest.raises(FetchError, match=why) as ei:
        safe_extract(arc, target)
    assert str(arc) in str(ei.value)
    assert_clean(tmp_path, target)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "evil").exists()


@pytest.mark.parametrize("name, why", [("../evil", "'..'"), ("/abs/evil", "absolute"), ("..\\evil", "'..'")])
def test_extract_zip_refuses_paths(tmp_path: Path, name: str, why: str) -> None:
    arc = make_zip(tmp_path / "bad.zip", {"fine.txt": b"fine", name: b"x"})
    target = tmp_path / "out" / "t"
    with pytest.raises(FetchError, match=why) as ei:
        safe_extract(arc, target)
    assert name in str(ei.value) or repr(name) in str(ei.value)
    assert_clean(tmp_path, target)


def test_extract_refuses_too_large_total(tmp_path: Path) -> None:
    target = tmp_path / "t"
    arc = make_zip(tmp_path / "a.zip", {"a": b"x" * 600, "b": b"y" * 600})
    with pytest.raises(FetchError, match="limit of 1000|limit 1000"):
        safe_extract(arc, target, max_total_bytes=1000)
    assert_clean(tmp_path, target)
    tar = make_tar(tmp_path / "a.tgz", [("a", b"x" * 600), ("b", b"y" * 600)])
    with pytest.raises(FetchError, match="'b'.*limit of 1000"):
        safe_extract(tar, target, max_total_bytes=1000)
    assert_clean(tmp_path, target)


def test_extract_refuses_too_many_members(tmp_path: Path) -> None:
    target = tmp_path / "t"
    for arc in (make_zip(tmp_path / "a.zip", {f"{i}": b"" for i in range(5)}),
                make_tar(tmp_path / "a.tgz", [(f"{i}", b"") for i in range(5)])):
        with pytest.raises(FetchError, match="limit"):
            safe_extract(arc, target, max_members=4)
        assert_clean(tmp_path, target)


def test_extract_refuses_bomb_ratio(tmp_path: Path) -> None:
    arc = make_zip(tmp_path / "bomb.zip", {"zeros": bytes(2 * 2**20)})
    target = tmp_path / "t"
    with pytest.raises(FetchError, match="ratio"):
        safe_extract(arc, target, max_ratio=50)
    assert_clean(tmp_path, target)
    # the same file stored uncompressed is fine
    ok = make_zip(tmp_path / "stored.zip", {"zeros": bytes(2 * 2**20)}, zipfile.ZIP_STORED)
    assert safe_extract(ok, target, max_ratio=50) == [target / "zeros"]


def test_extract_rejects_garbage_and_foreign_target(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(FetchError, match="junk.zip"):
        safe_extract(junk, tmp_path / "t")
    assert_clean(tmp_path, tmp_path / "t")
    arc = make_zip(tmp_path / "a.zip", {"a": b"a"})
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FetchError, match="not a complete extraction"):
        safe_extract(arc, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
