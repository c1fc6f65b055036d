"""The network fault matrix of rebusyn.fetch (issue 9): one test per way a server on 127.0.0.1 misbehaves.

Each case ends in success (the right bytes, and the request log shows the Range requests that got there) or
in a FetchError that names the URL and says what to do. docs/security.md has the table of these cases.
"""

from __future__ import annotations

import gzip
import logging
import re
import socket
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from rebusyn.fetch import ArchiveRef, ChecksumMismatch, FetchError, FetchResult, fetch_archive
from tests._fetch_helpers import opts, sha256
from tests.httpserver import FileServer

DATA = bytes((i * 7 + i // 251) % 256 for i in range(200_000))  # not all-zero: a splice must be visible
NAME = "train_images.zip"
TIMEOUT = 0.5  # client read timeout in the stall cases: short (tests < 2 s), yet safe on a loaded machine


@pytest.fixture
def srv(tmp_path: Path):
    with FileServer(tmp_path / "www") as s:
        s.add_file(NAME, DATA)
        yield s


def fetch(
    srv: FileServer, dest: Path, data: bytes | None = DATA, name: str = NAME, **kw: object
) -> FetchResult:
    """fetch_archive of `name` from its URL on `srv`, expecting sha256(data) (None: nothing to verify)."""
    ref = ArchiveRef(name, srv.url(name), sha256=sha256(data) if data is not None else None)
    return fetch_archive(ref, dest, opts(**kw))


def log_of(srv: FileServer, name: str = NAME) -> list[tuple[str | None, int]]:
    return [(h.range, h.status) for h in srv.hits(name)]


def assert_done(dest: Path, data: bytes = DATA, name: str = NAME) -> None:
    assert (dest / name).read_bytes() == data
    assert not (dest / (name + ".part")).exists()


def assert_says_what_to_do(msg: str, url: str, *todo: str) -> None:
    assert url in msg, msg
    for words in todo:
        assert words in msg, f"{words!r} not in: {msg}"


def retry_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    messages = [r.getMessage() for r in caplog.records if r.name == "rebusyn.fetch"]
    return [m for m in messages if "; retry " in m]


# --------------------------------------------------------------------------------------- connection level


def test_connection_refused_says_run_later(dest: Path) -> None:
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{NAME}"
    with pytest.raises(FetchError) as ei:
        fetch_archive(ArchiveRef(NAME, url), dest, opts(retries=1))
    assert type(ei.value) is FetchError
    assert_says_what_to_do(
        str(ei.value),
        url,
        "after 2 attempts",
        "connection failed",
        "run the same command later",
        "--from DIR",
    )
    assert not (dest / (NAME + ".part")).exists()  # no response, nothing written


def test_reset_mid_body_resumes(srv: FileServer, dest: Path, caplog: pytest.LogCaptureFixture) -> None:
    srv.fault(NAME, drop_first=1, drop_after=40_000, reset=True)  # TCP RST after 40,000 body bytes
    with caplog.at_level(logging.WARNING, logger="rebusyn.fetch"):
        assert fetch(srv, dest).checksum_ok is True
    assert_done(dest)
    (first, _), (second, status) = log_of(srv)
    assert first is None and status in (200, 206)
    # Bytes that reached the client before the reset are kept; how many arrived is the kernel's business.
    m = re.fullmatch(r"bytes=(\d+)-", second or "")
    assert second is None or (m and 0 < int(m.group(1)) <= 40_000), second
    assert "reset" in retry_reasons(caplog)[0].lower()  # a real RST, not an orderly close


def test_close_after_headers_with_no_body(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, drop_first=1, drop_after=0)  # full headers, zero body bytes, hang up
    assert fetch(srv, dest).checksum_ok is True
    assert_done(dest)
    assert log_of(srv) == [(None, 200), (None, 200)]  # nothing to resume from: the second asks for all


# ------------------------------------------------------------------------------------------- stalls


def test_stall_before_headers_times_out_then_succeeds(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, stall_first=1, stall_at=-1)
    assert fetch(srv, dest, timeout=TIMEOUT).checksum_ok is True
    assert_done(dest)
    assert log_of(srv) == [(None, 200), (None, 200)]


def test_stall_mid_body_keeps_what_arrived(
    srv: FileServer, dest: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv.fault(NAME, stall_first=1, stall_at=40_000)
    with caplog.at_level(logging.WARNING, logger="rebusyn.fetch"):
        assert fetch(srv, dest, timeout=TIMEOUT).checksum_ok is True
    assert_done(dest)
    # the 40,000 bytes read before the stall are not thrown away: the retry asks for the rest only
    assert log_of(srv) == [(None, 200), ("bytes=40000-", 206)]
    assert "timed out" in retry_reasons(caplog)[0]


def test_endless_stall_gives_up_and_keeps_the_part(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, stall_first=100, stall_at=40_000)
    with pytest.raises(FetchError) as ei:
        fetch(srv, dest, timeout=TIMEOUT, retries=1)
    msg = str(ei.value)
    assert_says_what_to_do(
        msg,
        srv.url(NAME),
        "after 2 attempts",
        "timed out",
        "80000 bytes received",
        "run the same command later",
    )
    assert "--from DIR" in msg
    assert log_of(srv) == [(None, 200), ("bytes=40000-", 206)]
    assert (dest / (NAME + ".part")).read_bytes() == DATA[:80_000]  # a later run resumes from here
    assert not (dest / NAME).exists()


# ------------------------------------------------------------------------------------------ HTTP status


def test_5xx_then_success(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, status_first=2, status=503)
    assert fetch(srv, dest).checksum_ok is True
    assert_done(dest)
    assert log_of(srv) == [(None, 503), (None, 503), (None, 200)]


def test_5xx_forever_says_run_later(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, status_first=100, status=502)
    with pytest.raises(FetchError) as ei:
        fetch(srv, dest, retries=2)
    msg = str(ei.value)
    assert_says_what_to_do(msg, srv.url(NAME), "HTTP 502", "after 3 attempts", "run the same command later")
    assert f"download {NAME} by hand" in msg and "--from DIR" in msg
    assert len(srv.hits(NAME)) == 3


def test_404_is_final_and_says_download_by_hand(srv: FileServer, dest: Path) -> None:
    with pytest.raises(FetchError) as ei:
        fetch(srv, dest, name="gone.zip", retries=5)
    assert_says_what_to_do(str(ei.value), srv.url("gone.zip"), "HTTP 404", "does not have this file",
                           "download gone.zip by hand", "--from DIR")  # fmt: skip
    assert log_of(srv, "gone.zip") == [(None, 404)]  # no retry: a missing file does not come back


def test_404_from_a_mirror_says_check_the_mirror(srv: FileServer, dest: Path) -> None:
    mirror = srv.url("m")
    ref = ArchiveRef(NAME, srv.url(NAME), sha256=sha256(DATA))
    with pytest.raises(FetchError) as ei:
        fetch_archive(ref, dest, opts(mirror=mirror), expected_override={})
    assert_says_what_to_do(str(ei.value), f"{mirror}/{NAME}", "HTTP 404", f"Check that the mirror {mirror}")
    assert srv.hits(NAME) == []  # the official URL is not a silent fallback


def test_redirect_to_another_path_keeps_the_range(srv: FileServer, dest: Path) -> None:
    srv.add_file("cdn/" + NAME, DATA)
    srv.fault(NAME, redirect_to="cdn/" + NAME)
    dest.mkdir()
    (dest / (NAME + ".part")).write_bytes(DATA[:30_000])
    r = fetch(srv, dest)
    assert (r.origin, r.checksum_ok) == ("download", True)
    assert_done(dest)
    assert log_of(srv) == [("bytes=30000-", 302)]
    assert log_of(srv, "cdn/" + NAME) == [("bytes=30000-", 206)]  # the resume survives the redirect


def test_redirect_loop_is_a_clear_error(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, redirect_to=NAME)
    with pytest.raises(FetchError) as ei:
        fetch(srv, dest)
    assert_says_what_to_do(str(ei.value), srv.url(NAME), "TooManyRedirects", "--from DIR")
    assert len(srv.hits(NAME)) == 31  # requests' limit of 30 redirects, then no retry of a loop


# ------------------------------------------------------------------------------------------- Range


def test_server_ignoring_range_restarts_from_zero(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, ignore_range=True, drop_first=1, drop_after=40_000)
    assert fetch(srv, dest).checksum_ok is True
    assert_done(dest)
    # asked for the rest, got 200 with the whole file: written from byte 0, not appended
    assert log_of(srv) == [(None, 200), ("bytes=40000-", 200)]


def test_416_on_a_complete_part_is_verified_not_refetched(srv: FileServer, dest: Path) -> None:
    dest.mkdir()
    (dest / (NAME + ".part")).write_bytes(DATA)
    assert fetch(srv, dest).checksum_ok is True
    assert_done(dest)
    assert log_of(srv) == [("bytes=200000-", 416)]


def test_416_on_a_full_size_but_wrong_part_fails_closed(srv: FileServer, dest: Path) -> None:
    dest.mkdir()
    (dest / (NAME + ".part")).write_bytes(bytes(len(DATA)))  # right size, wrong bytes
    with pytest.raises(ChecksumMismatch) as ei:
        fetch(srv, dest)
    msg = str(ei.value)
    assert_says_what_to_do(msg, srv.url(NAME), "The bad copy was deleted", "Run the same command again")
    assert not (dest / (NAME + ".part")).exists()  # never resumed from again
    assert fetch(srv, dest).checksum_ok is True  # ... as the message says
    assert log_of(srv) == [("bytes=200000-", 416), (None, 200)]


# ---------------------------------------------------------------------------------- lying Content-Length


def test_content_length_larger_than_body(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, length_first=1, length_delta=100)  # announces 100 bytes more than it sends, then closes
    assert fetch(srv, dest).checksum_ok is True
    assert_done(dest)
    # the short body is kept; the resume request learns from the 416 that the part is the whole file
    assert log_of(srv) == [(None, 200), ("bytes=200000-", 416)]


def test_body_longer_than_content_length(srv: FileServer, dest: Path) -> None:
    srv.fault(NAME, length_first=1, length_delta=-100)  # announces 100 bytes less than it sends
    with pytest.raises(ChecksumMismatch) as ei:
        fetch(srv, dest)
    # HTTP framing ends the body at Content-Length: only the checksum can tell that bytes are missing
    assert_says_what_to_do(str(ei.value), srv.url(NAME), "Run the same command again", "--from DIR",
                           "--skip-checksum")  # fmt: skip
    assert not (dest / (NAME + ".part")).exists() and not (dest / NAME).exists()
    assert fetch(srv, dest).checksum_ok is True
    assert_done(dest)
    assert log_of(srv) == [(None, 200), (None, 200)]


# ------------------------------------------------------------------------------ a file that changes


@pytest.mark.parametrize("new_size", [len(DATA), 30_000], ids=["same-size", "shrunk"])
def test_file_swapped_between_attempts(srv: FileServer, dest: Path, new_size: int) -> None:
    new = DATA[::-1][:new_size]
    srv.fault(NAME, drop_first=1, drop_after=40_000, swap_data=new, swap_after=1)  # A, then B from then on
    with pytest.raises(ChecksumMismatch) as ei:
        fetch(srv, dest)  # the recipe knows version A
    assert_says_what_to_do(str(ei.value), srv.url(NAME), "the file changed on the server", "--from DIR")
    assert not (dest / (NAME + ".part")).exists() and not (dest / NAME).exists()  # the splice is gone
    if new_size == len(DATA):  # resumed: A's first 40,000 bytes + B's rest
        assert log_of(srv) == [(None, 200), ("bytes=40000-", 206)]
    else:  # B is shorter than what we had: 416, start again from zero
        assert log_of(srv) == [(None, 200), ("bytes=40000-", 416), (None, 200)]
    # with the recipe updated to version B, a fresh run gets B whole, not resumed from the bad splice
    assert fetch(srv, dest, data=new).checksum_ok is True
    assert_done(dest, new)
    assert log_of(srv)[-1] == (None, 200)


@pytest.mark.parametrize("where", ["mirror", "from"])
def test_mismatch_advice_depends_on_where_the_file_came_from(srv: FileServer, dest: Path, where: str) -> None:
    srv.add_file("m/" + NAME, DATA[::-1])  # a mirror (or a hand download) holding some other file
    hand = srv.root / "m"
    kw: dict[str, object] = {"mirror": srv.url("m")} if where == "mirror" else {"from_dir": hand}
    with pytest.raises(ChecksumMismatch) as ei:
        fetch(srv, dest, **kw)
    msg = str(ei.value)
    if where == "mirror":
        assert_says_what_to_do(msg, srv.url("m/" + NAME), f"Check the mirror {srv.url('m')}", "SHA256SUMS")
    else:
        assert_says_what_to_do(
            msg, str(hand / NAME), "is not the file the recipe expects", "download it again"
        )
    assert "--skip-checksum" in msg
    assert srv.hits(NAME) == []  # the official URL is not a fallback in either case


# ------------------------------------------------------------------------------------ Content-Encoding


def zip_bytes() -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("gt.txt", DATA)
    return buf.getvalue()


def test_gzip_label_on_a_zip_keeps_the_bytes(
    srv: FileServer, dest: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The bytes are the zip itself, the header says gzip (a misconfigured server): nothing to decode.
    archive = zip_bytes()
    srv.add_file(NAME, archive)
    srv.fault(NAME, content_encoding="gzip")
    with caplog.at_level(logging.WARNING, logger="rebusyn.fetch"):
        assert fetch(srv, dest, data=archive).checksum_ok is True
        assert fetch(srv, dest / "unverified", data=None).checksum_ok is None
    assert_done(dest, archive)
    assert_done(dest / "unverified", archive)
    assert any("Content-Encoding 'gzip'" in r.getMessage() and srv.url(NAME) in r.getMessage()
               for r in caplog.records)  # fmt: skip


@pytest.mark.parametrize("verified", [True, False])
def test_zip_gzipped_on_the_wire_is_decoded(srv: FileServer, dest: Path, verified: bool) -> None:
    # A server that compresses although the client asked for identity: the file is the decoded body.
    archive = zip_bytes()
    srv.add_file(NAME, archive)
    srv.fault(NAME, gzip_body=True)
    r = fetch(srv, dest, data=archive if verified else None)
    assert r.checksum_ok is (True if verified else None)
    assert (r.sha256, r.size) == (sha256(archive), len(archive))
    assert_done(dest, archive)
    assert zipfile.ZipFile(dest / NAME).read("gt.txt") == DATA
    assert [p.name for p in dest.iterdir()] == [NAME, f".{NAME}.digests.json"]  # no decoded leftovers


def test_gzip_bomb_on_the_wire_is_not_decoded(srv: FileServer, dest: Path) -> None:
    # 4 MiB of zeros gzip about 1020:1; decoding stops past 1000:1, so a small body cannot fill the disk
    srv.add_file(NAME, bytes(4 << 20))
    srv.fault(NAME, gzip_body=True)
    r = fetch(srv, dest, data=None)
    assert (dest / NAME).read_bytes() == gzip.compress(bytes(4 << 20), mtime=0)  # kept as sent
    assert r.size < 10_000 and sorted(p.name for p in dest.iterdir()) == [f".{NAME}.digests.json", NAME]


def test_tar_gz_labelled_gzip_is_kept_as_sent(srv: FileServer, dest: Path) -> None:
    # The classic misconfiguration: a .tar.gz served with Content-Encoding: gzip. The file is the .tar.gz.
    tgz = gzip.compress(DATA, mtime=0)
    srv.add_file("images.tar.gz", tgz)
    srv.fault("images.tar.gz", content_encoding="gzip")
    assert fetch(srv, dest, data=None, name="images.tar.gz").checksum_ok is None
    assert_done(dest, tgz, "images.tar.gz")
