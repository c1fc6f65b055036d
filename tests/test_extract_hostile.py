"""Hostile archives against rebusyn.fetch.safe_extract (issue 9), beyond the cases in tests/test_fetch.py.

Every archive here is real bytes on disk, built with zipfile/tarfile (or patched by hand where those
libraries refuse to write something hostile). Each case ends in a FetchError that names the archive (and the
member when one member is to blame) with nothing left behind, or in a documented, safe outcome.
docs/security.md has the table of these cases.
"""

from __future__ import annotations

import contextlib
import io
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from rebusyn.fetch import MARKER, FetchError, safe_extract
from tests._fetch_helpers import make_tar, tinfo

S_IFLNK = stat.S_IFLNK | 0o777


def make_zip(
    path: Path, members: list[tuple[str, bytes] | tuple[str, bytes, int]], method: int = zipfile.ZIP_DEFLATED
) -> Path:
    """A zip of (name, data[, unix mode with file type]) in this order; duplicates are written as given."""
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            if mode:
                info.create_system = 3  # unix: external_attr's high 16 bits are st_mode
                info.external_attr = mode[0] << 16
            zf.writestr(info, data)
    return path




def refused(archive: Path, target: Path, *words: str, **limits: object) -> str:
    """safe_extract must raise a FetchError naming the archive and `words`, and leave nothing behind."""
    with pytest.raises(FetchError) as ei:
        safe_extract(archive, target, **limits)  # type: ignore[arg-type]
    msg = str(ei.value)
    assert str(archive) in msg, msg
    for w in words:
        assert w in msg, f"{w!r} not in: {msg}"
    assert not target.exists() and not target.is_symlink()
    assert [p.name for p in target.parent.iterdir() if ".extracting-" in p.name] == []
    return msg


def nothing_outside(tmp_path: Path) -> None:
    """No hostile member landed next to the target (all test archives aim at `evil` or `outside`)."""
    for p in tmp_path.rglob("*"):
        assert p.name not in ("evil", "outside"), p


@pytest.fixture
def target(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "t"


# -------------------------------------------------------------------------------------------- zip paths


@pytest.mark.parametrize(
    "name, why",
    [
        ("/etc/evil", "absolute path"),
        ("C:\\evil", "absolute path"),  # a drive letter, backslash separator
        ("C:/evil", "absolute path"),
        ("\\\\server\\share\\evil", "absolute path"),  # a UNC path
        ("..\\..\\evil", "'..' path component"),
        ("a\\..\\..\\evil", "'..' path component"),
        ("a/./../../evil", "'..' path component"),
    ],
)
def test_zip_paths_that_leave_the_target(tmp_path: Path, target: Path, name: str, why: str) -> None:
    arc = make_zip(tmp_path / "bad.zip", [("fine.txt", b"fine"), (name, b"x")])
    refused(arc, target, why, repr(name))
    nothing_outside(tmp_path)


# ------------------------------------------------------------------------------------------- zip links


@pytest.mark.parametrize(
    "link, why",
    [
        ("../../outside", "outside the target"),
        ("/etc/passwd", "absolute path"),
        ("..\\..\\outside", "outside the target"),
    ],
)
def test_zip_symlink_entries_pointing_outside(tmp_path: Path, target: Path, link: str, why: str) -> None:
    arc = make_zip(tmp_path / "bad.zip", [("fine.txt", b"fine"), ("imgs/l", link.encode(), S_IFLNK)])
    refused(arc, target, why, "'imgs/l'", "symlink")


def test_zip_symlink_chain_escaping_in_two_steps(tmp_path: Path, target: Path) -> None:
    # d/up -> ".." is the archive root (inside); d/up2 -> "up/.." looks like d/ when read as text, but the
    # kernel follows up first: root/.., outside. Only resolving the real path catches it.
    arc = make_zip(
        tmp_path / "bad.zip", [("d/", b""), ("d/up", b"..", S_IFLNK), ("d/up2", b"up/..", S_IFLNK)]
    )
    refused(arc, target, "'d/up2'", "resolves outside")


def test_zip_symlink_inside_then_file_written_through_it(tmp_path: Path, target: Path) -> None:
    # A link to a folder inside the target may be written through: the bytes stay inside.
    arc = make_zip(tmp_path / "ok.zip", [("real/", b""), ("alias", b"real", S_IFLNK), ("alias/x.txt", b"x")])
    files = safe_extract(arc, target)
    assert (target / "real" / "x.txt").read_bytes() == b"x"
    assert (target / "alias").is_symlink() and sorted(f.name for f in files) == ["alias", "x.txt"]


@pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_zip_device_fifo_socket_entries(tmp_path: Path, target: Path, kind: int) -> None:
    arc = make_zip(tmp_path / "bad.zip", [("fine.txt", b"fine"), ("node", b"", kind | 0o644)])
    refused(arc, target, "'node'", "device, fifo or socket")


# -------------------------------------------------------------------------------------------- tar links


def test_tar_hard_link_to_an_absolute_path(tmp_path: Path, target: Path) -> None:
    arc = make_tar(
        tmp_path / "bad.tar", [("fine.txt", b"fine"), tinfo("h", tarfile.LNKTYPE, "/etc/passwd")], "w"
    )
    refused(arc, target, "'h'", "absolute path")


def test_tar_hard_link_through_a_symlink_to_outside(tmp_path: Path, target: Path) -> None:
    # the symlink itself is refused before the hard link could use it
    arc = make_tar(
        tmp_path / "bad.tar",
        [tinfo("d", tarfile.DIRTYPE), tinfo("d/up", tarfile.SYMTYPE, ".."),
         tinfo("d/esc", tarfile.SYMTYPE, "up/.."), tinfo("h", tarfile.LNKTYPE, "d/esc/outside")],
        "w",
    )  # fmt: skip
    refused(arc, target, "'d/esc'", "resolves outside")


def test_tar_hard_link_to_a_later_member(tmp_path: Path, target: Path) -> None:
    arc = make_tar(tmp_path / "bad.tar", [tinfo("h", tarfile.LNKTYPE, "a"), ("a", b"a")], "w")
    refused(arc, target, "'h'", "not in the archive before it")


def test_tar_symlink_chain_escaping_in_two_steps(tmp_path: Path, target: Path) -> None:
    arc = make_tar(
        tmp_path / "bad.tgz",
        [
            tinfo("d", tarfile.DIRTYPE),
            tinfo("d/up", tarfile.SYMTYPE, ".."),
            tinfo("d/up2", tarfile.SYMTYPE, "up/.."),
        ],
    )
    refused(arc, target, "'d/up2'", "resolves outside")


def test_tar_write_through_a_symlinked_folder_is_checked(tmp_path: Path, target: Path) -> None:
    # "link" -> "." is harmless; "link/../evil" is refused for its '..' before any path is built
    arc = make_tar(tmp_path / "bad.tgz", [tinfo("link", tarfile.SYMTYPE, "."), ("link/../evil", b"x")])
    refused(arc, target, "'link/../evil'", "'..'")
    nothing_outside(tmp_path)


@pytest.mark.parametrize(
    "type_, what", [(tarfile.CHRTYPE, "device"), (tarfile.BLKTYPE, "device"), (tarfile.FIFOTYPE, "fifo")]
)
def test_tar_device_and_fifo_members(tmp_path: Path, target: Path, type_: bytes, what: str) -> None:
    node = tinfo("dev/node", type_)
    node.devmajor, node.devminor = 1, 3  # /dev/null's numbers: harmless if it were ever created
    arc = make_tar(tmp_path / "bad.tgz", [("fine.txt", b"fine"), node])
    refused(arc, target, "'dev/node'", what)


def test_tar_device_outside_the_wanted_folders_is_still_refused(tmp_path: Path, target: Path) -> None:
    # `members=` narrows what is written, not what is tolerated: a device anywhere means a hostile archive
    arc = make_tar(tmp_path / "bad.tgz", [("keep/a.txt", b"a"), tinfo("other/node", tarfile.CHRTYPE)])
    refused(arc, target, "'other/node'", "device", members=("keep",))


def test_tar_pax_path_header_is_checked(tmp_path: Path, target: Path) -> None:
    # A PAX extended header overrides the name in the ustar header: the checked name must be the final one.
    info = tarfile.TarInfo("harmless.txt")
    info.size = 1
    info.pax_headers = {"path": "../evil"}
    arc = tmp_path / "bad.tar"
    with tarfile.open(arc, "w", format=tarfile.PAX_FORMAT) as tf:
        tf.addfile(info, io.BytesIO(b"x"))
    refused(arc, target, "'../evil'", "'..'")
    nothing_outside(tmp_path)


# --------------------------------------------------------------------------------------------- bombs


def test_bzip2_zip_bomb_refused_at_default_limits(tmp_path: Path, target: Path) -> None:
    # 4 MiB of zeros compress 40,000:1 with bzip2: over the default ratio limit (1000), refused before writing
    arc = make_zip(tmp_path / "bomb.zip", [("zeros.bin", bytes(4 << 20))], zipfile.ZIP_BZIP2)
    refused(arc, target, "'zeros.bin'", "compression ratio", "zip bomb")


def test_tar_bz2_bomb_refused_at_default_limits(tmp_path: Path, target: Path) -> None:
    arc = make_tar(tmp_path / "bomb.tar.bz2", [("zeros.bin", bytes(4 << 20))], "w:bz2")
    refused(arc, target, "'zeros.bin'", "compression ratio")


def overlapping_zip(path: Path, entries: int, size: int) -> Path:
    """A zip whose central directory lists the same compressed member `entries` times: each entry is
    harmless, together they expand to entries * size bytes from a few KB (the "overlapping files" bomb)."""
    one = io.BytesIO()
    with zipfile.ZipFile(one, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(size))
    raw = one.getvalue()
    cd_at = raw.rindex(b"PK\x01\x02")
    eocd_at = raw.rindex(b"PK\x05\x06")
    local, central = raw[:cd_at], raw[cd_at:eocd_at]
    eocd = bytearray(raw[eocd_at:])
    struct.pack_into("<HHII", eocd, 8, entries, entries, len(central) * entries, len(local))
    path.write_bytes(local + central * entries + bytes(eocd))
    return path


def test_overlapping_entries_bomb_refused_by_declared_size(tmp_path: Path, target: Path) -> None:
    arc = overlapping_zip(tmp_path / "overlap.zip", entries=50, size=1 << 20)
    assert arc.stat().st_size < 100_000 and len(zipfile.ZipFile(arc).infolist()) == 50
    msg = refused(arc, target, f"{50 << 20} bytes uncompressed", "limit 10000000", max_total_bytes=10_000_000)
    assert "zeros.bin" not in msg  # the archive as a whole is too big; no single member is to blame


def test_zip_lying_about_its_size_cannot_write_more(tmp_path: Path, target: Path) -> None:
    # The central directory says 1000 bytes for a member that inflates to 2 MiB: zipfile stops at the declared
    # size and its CRC check fails, so the declared total (checked up front) bounds what is written.
    arc = make_zip(tmp_path / "liar.zip", [("big.bin", bytes(2 << 20))])
    raw = bytearray(arc.read_bytes())
    for sig, at in (
        (b"PK\x03\x04", 22),
        (b"PK\x01\x02", 24),
    ):  # uncompressed size in local and central header
        struct.pack_into("<I", raw, raw.index(sig) + at, 1000)
    arc.write_bytes(bytes(raw))
    refused(arc, target, "BadZipFile", "CRC", max_total_bytes=5000)


def test_nested_archives_are_data(tmp_path: Path, target: Path) -> None:
    # A "quine-like" zip of zips: only the outer level is extracted; inner archives stay files, byte for byte.
    inner = make_zip(tmp_path / "inner.zip", [("deep.txt", b"deep")]).read_bytes()
    middle = make_zip(
        tmp_path / "middle.zip", [("inner.zip", inner), ("inner.tgz", b"\x1f\x8b not really")]
    ).read_bytes()
    outer = make_zip(
        tmp_path / "outer.zip", [("middle.zip", middle), ("self.zip", b"PK\x03\x04 a copy of me")]
    )
    files = safe_extract(outer, target)
    assert sorted(f.name for f in files) == ["middle.zip", "self.zip"]
    assert (target / "middle.zip").read_bytes() == middle
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "middle.zip", "self.zip"]


# ---------------------------------------------------------------------------------- names that collide


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_duplicate_names_later_member_wins_inside(tmp_path: Path, target: Path, kind: str) -> None:
    # As tar and unzip do: the later member replaces the earlier one (appended tars rely on it). It replaces
    # the directory entry, never writes through what the earlier member left (see the symlink case below).
    members = [("gt.txt", b"first"), ("gt.txt", b"second")]
    with pytest.warns(UserWarning, match="Duplicate name") if kind == "zip" else contextlib.nullcontext():
        arc = (
            make_zip(tmp_path / "dup.zip", members)
            if kind == "zip"
            else make_tar(tmp_path / "dup.tar", members, "w")
        )
    files = safe_extract(arc, target)
    assert (target / "gt.txt").read_bytes() == b"second"
    assert set(files) == {target / "gt.txt"}  # (the list names it once per member: twice; docs/security.md)
    nothing_outside(tmp_path)


def test_duplicate_name_replacing_a_symlink_does_not_write_through_it(tmp_path: Path, target: Path) -> None:
    (tmp_path / "out" / "victim.txt").write_bytes(b"keep")
    arc = make_tar(
        tmp_path / "dup.tar",
        [tinfo("sub", tarfile.DIRTYPE), tinfo("sub/l", tarfile.SYMTYPE, "x"), ("sub/l", b"new")],
        "w",
    )
    safe_extract(arc, target)
    assert (target / "sub" / "l").read_bytes() == b"new" and not (target / "sub" / "l").is_symlink()
    assert not (target / "sub" / "x").exists()
    assert (tmp_path / "out" / "victim.txt").read_bytes() == b"keep"


def test_directory_then_file_of_the_same_name(tmp_path: Path, target: Path) -> None:
    arc = make_tar(tmp_path / "clash.tar", [tinfo("x", tarfile.DIRTYPE), ("x/a", b"a"), ("x", b"file")], "w")
    refused(arc, target, "'x'", "conflicts with a directory")


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_file_then_directory_of_the_same_name(tmp_path: Path, target: Path, kind: str) -> None:
    # The OS refuses to make a folder where a file is; the error names the archive and the path of the member.
    members = [("x", b"file"), ("x/a", b"a")]
    arc = (
        make_zip(tmp_path / "clash.zip", members)
        if kind == "zip"
        else make_tar(tmp_path / "clash.tar", members, "w")
    )
    refused(arc, target, "cannot extract", "FileExistsError", "/x'")


# ------------------------------------------------------------------------------------------ odd names


def patch_zip_name(path: Path, old: bytes, new: bytes, utf8_flag: bool) -> None:
    """Rewrite a member's name bytes (same length) in the local and central headers, setting or clearing
    general-purpose flag bit 11 ("the name is UTF-8"); zipfile itself would always write valid names."""
    raw = bytearray(path.read_bytes())
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.index(sig)
        flags = struct.unpack_from("<H", raw, at + flag_at)[0]
        struct.pack_into("<H", raw, at + flag_at, (flags | 0x800) if utf8_flag else (flags & ~0x800))
        name_at = raw.index(old, at)
        raw[name_at : name_at + len(old)] = new
    path.write_bytes(bytes(raw))


def test_zip_cp437_name_is_kept_readable(tmp_path: Path, target: Path) -> None:
    # Flag bit 11 off: the name is cp437 (old Windows zips); zipfile decodes it so, every byte maps to a char.
    arc = make_zip(tmp_path / "dos.zip", [("caf_.txt", b"menu")])
    patch_zip_name(arc, b"caf_.txt", b"caf\x82.txt", utf8_flag=False)  # 0x82 is cp437 for e-acute
    files = safe_extract(arc, target)
    assert [f.name for f in files] == ["café.txt"] and (target / "café.txt").read_bytes() == b"menu"


def test_zip_name_flagged_utf8_but_invalid(tmp_path: Path, target: Path) -> None:
    arc = make_zip(tmp_path / "bad.zip", [("caf_.txt", b"menu")])
    patch_zip_name(arc, b"caf_.txt", b"caf\xff.txt", utf8_flag=True)
    refused(arc, target, "cannot extract", "UnicodeDecodeError")


def test_tar_name_invalid_in_utf8_is_kept_as_bytes(tmp_path: Path, target: Path) -> None:
    # tarfile decodes names with surrogateescape: the file gets exactly the bytes of its name (GBK here).
    gbk = "\u5e7f\u544a.jpg".encode("gbk")  # "advertisement" in GBK: not valid UTF-8
    name = gbk.decode("utf-8", "surrogateescape")
    arc = tmp_path / "gbk.tar"
    with tarfile.open(arc, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tf:
        info = tarfile.TarInfo(name)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"jpg"))
    files = safe_extract(arc, target)
    assert [bytes(f.name, "utf-8", "surrogateescape") for f in files] == [gbk]
    assert (target / name).read_bytes() == b"jpg"
    assert safe_extract(arc, target) == files  # the marker (JSON) round-trips the name


def test_name_too_long_for_the_filesystem(tmp_path: Path, target: Path) -> None:
    arc = make_zip(tmp_path / "long.zip", [("a" * 300 + ".txt", b"x")])
    refused(arc, target, "cannot extract", "File name too long")
