"""The streaming MAT v5/v7 cell reader (`rebusyn.sources._matv5`), on files written by `scipy.io.savemat` in
SynthText's `gt.mat` layout and on files built byte by byte here (big-endian, narrowed storage types,
miUINT16/miUTF16/miUINT8 chars, Small Data Elements, empty miMATRIX, v7.3 headers, truncation). Every
element is compared with `scipy.io.loadmat`'s."""

from __future__ import annotations

import collections
import struct
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from rebusyn.sources._matv5 import MatFormatError, MatVariable, iter_cell, list_variables

# ---------------------------------------------------------------- byte-level MAT v5 writer (MathWorks spec)


def _el(e: str, mdtype: int, payload: bytes, small: bool = False) -> bytes:
    """A data element; `small` = Small Data Element (byte count in the upper 2 bytes of the first word)."""
    if small:
        assert len(payload) <= 4
        return struct.pack(e + "I", len(payload) << 16 | mdtype) + payload.ljust(4, b"\0")
    return struct.pack(e + "II", mdtype, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def _matrix(e: str, mclass: int, dims: tuple[int, ...], parts: list[bytes], name: bytes = b"",
            flags: int = 0, small_name: bool = False) -> bytes:
    body = (_el(e, 6, struct.pack(e + "II", mclass | flags, 0))
            + _el(e, 5, struct.pack(f"{e}{len(dims)}i", *dims))
            + _el(e, 1, name, small=small_name) + b"".join(parts))
    return struct.pack(e + "II", 14, len(body)) + body


def _cell(e: str, name: bytes, elements: list[bytes], small_name: bool = False) -> bytes:
    return _matrix(e, 1, (1, len(elements)), elements, name, small_name=small_name)


def _compressed(e: str, matrix: bytes) -> bytes:
    data = zlib.compress(matrix)
    return struct.pack(e + "II", 15, len(data)) + data


def _matfile(e: str, *variables: bytes) -> bytes:
    text = b"MATLAB 5.0 MAT-file, written by tests/test_matv5.py".ljust(116, b" ")
    indicator = b"IM" if e == "<" else b"MI"  # the characters "MI" as one uint16 in the file's byte order
    return text + b"\0" * 8 + struct.pack(e + "H", 0x0100) + indicator + b"".join(variables)


def _chars_utf16(e: str, rows: list[str], mdtype: int = 4) -> bytes:
    """A char matrix stored as MATLAB does: UTF-16 code units, column-major."""
    units = [np.frombuffer(r.encode("utf-16-le"), "<u2") for r in rows]
    grid = np.stack(units)  # rows x cols, rows of equal length in code units
    return _matrix(e, 4, grid.shape, [_el(e, mdtype, grid.astype(e + "u2").tobytes(order="F"))])


# ---------------------------------------------------------------- comparison with scipy


def _assert_same(ours, typed, plain) -> None:
    """`typed` = loadmat(mat_dtype=True)'s element, `plain` = loadmat's: the class dtype comes from the
    first, complex values from the second (mat_dtype=True casts complex arrays to real)."""
    if typed.dtype.kind == "U":  # chars_as_strings: one string per row
        assert isinstance(ours, list)
        assert ours == list(typed)
    elif typed.dtype == object:  # nested cell
        assert isinstance(ours, list)
        assert len(ours) == typed.size
        for a, b, c in zip(ours, typed.ravel(order="F"), plain.ravel(order="F")):
            _assert_same(a, b, c)
    else:
        theirs = plain if plain.dtype.kind == "c" else typed
        assert isinstance(ours, np.ndarray)
        assert ours.dtype == theirs.dtype.newbyteorder("=")
        assert ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


def _assert_cell_matches(path, name, **loadmat_kwargs) -> int:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Casting complex values to real")
        typed = scipy.io.loadmat(path, mat_dtype=True, **loadmat_kwargs)[name]
    plain = scipy.io.loadmat(path, **loadmat_kwargs)[name]
    ours = list(iter_cell(path, name))
    assert len(ours) == typed.size > 0
    for a, b, c in zip(ours, typed.ravel(order="F"), plain.ravel(order="F")):
        _assert_same(a, b, c)
    return len(ours)


def _object_row(items) -> np.ndarray:
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def _synthtext_vars(n_images: int = 30) -> dict[str, np.ndarray]:
    """gt.mat's four 1xN cells; image i has (i % 4) + 1 words (one word: a plain 2x4 box, as MATLAB drops
    the trailing singleton)."""
    rng = np.random.default_rng(0)
    words = ["Lorem", "ipsum\ndolor", "café", "中文", "x", "a b"]
    imnames, word_bb, char_bb, txt = [], [], [], []
    for i in range(n_images):
        n = i % 4 + 1
        imnames.append(f"{i % 200 + 1}/ballet_{100 + i}_{i % 3}.jpg")
        word_bb.append(rng.uniform(0, 600, (2, 4) if n == 1 else (2, 4, n)))
        lines = [words[(i + k) % len(words)] for k in range(min(n, 3))]
        width = max(len(s) for s in lines)
        txt.append(np.array([s.ljust(width) for s in lines]))  # char matrix, rows padded with spaces
        n_chars = sum(len(s.replace(" ", "").replace("\n", "")) for s in lines)
        char_bb.append(rng.uniform(0, 600, (2, 4, n_chars)))
    return {"imnames": _object_row(imnames), "wordBB": _object_row(word_bb),
            "charBB": _object_row(char_bb), "txt": _object_row(txt)}


# ---------------------------------------------------------------- files written by scipy.io.savemat


@pytest.mark.parametrize("compressed", [True, False])
def test_synthtext_layout_matches_loadmat(tmp_path, compressed):
    path = tmp_path / "gt.mat"
    variables = _synthtext_vars()
    scipy.io.savemat(path, variables, do_compression=compressed)
    for name in ("imnames", "wordBB", "charBB", "txt"):
        assert _assert_cell_matches(path, name) == 30
    # rebusyn's use: three readers on one file in lock-step.
    rows = list(zip(iter_cell(path, "imnames"), iter_cell(path, "wordBB"), iter_cell(path, "txt")))
    assert rows[0][0] == ["1/ballet_100_0.jpg"]
    assert rows[0][1].shape == (2, 4) and rows[0][1].dtype == np.float64
    assert rows[1][1].shape == (2, 4, 2)
    assert np.array_equal(rows[1][1], variables["wordBB"][0, 1])
    assert rows[1][2] == ["ipsum\ndolor", "café       "]
    assert rows[3][2] == ["中文 ", "x  ", "a b"]


@pytest.mark.parametrize("compressed", [True, False])
def test_list_variables_names_classes_dims_in_order(tmp_path, compressed):
    path = tmp_path / "gt.mat"
    variables = _synthtext_vars(7)
    variables["n"] = np.arange(6, dtype=np.int32).reshape(2, 3)
    variables["label"] = np.array(["ab", "cd"])
    variables["mask"] = np.array([[True, False]])
    scipy.io.savemat(path, variables, do_compression=compressed)
    assert list_variables(path) == [
        MatVariable("imnames", "cell", (1, 7)), MatVariable("wordBB", "cell", (1, 7)),
        MatVariable("charBB", "cell", (1, 7)), MatVariable("txt", "cell", (1, 7)),
        MatVariable("n", "int32", (2, 3)), MatVariable("label", "char", (2, 2)),
        MatVariable("mask", "logical", (1, 2)),
    ]
    if not compressed:  # names of <= 4 bytes are Small Data Elements: tag (type 1, 3 bytes) + "txt\0"
        assert b"\x01\x00\x03\x00txt\x00" in path.read_bytes()


@pytest.mark.parametrize("compressed", [True, False])
def test_other_classes_in_a_cell_match_loadmat(tmp_path, compressed):
    path = tmp_path / "misc.mat"
    misc = [np.float32(2.5) * np.ones((1, 1), np.float32),  # 4 bytes: a Small Data Element
            np.arange(6, dtype=np.int32).reshape(2, 3), np.array([[1, 2, 255]], np.uint8),
            np.array([[-5]], np.int8), np.array([[2**40]], np.uint64), np.array([[True, False, True]]),
            np.zeros((0, 0)), np.zeros((3, 0)), "", "a", np.array([[1 + 2j, 3 - 4j]]),
            _object_row(["nested", np.ones((2, 2))]), np.arange(24.0).reshape(2, 3, 4)]
    scipy.io.savemat(path, {"misc": _object_row(misc)}, do_compression=compressed)
    _assert_cell_matches(path, "misc")
    values = list(iter_cell(path, "misc"))
    assert values[5].dtype == np.bool_ and values[5].tolist() == [[True, False, True]]
    assert values[7].shape == (3, 0) and values[8] == [] and values[9] == ["a"]
    assert values[10].dtype == np.complex128
    assert values[11][0] == ["nested"] and values[11][1].shape == (2, 2)
    assert values[12][1, 2, 3] == 23.0  # Fortran order kept: (i, j, k) -> i + 2j + 6k


def test_struct_and_sparse_elements_are_unsupported(tmp_path):
    path = tmp_path / "s.mat"
    scipy.io.savemat(path, {"a": _object_row([np.ones((1, 1)), {"f": 1.0}]),
                            "b": _object_row([scipy.sparse.csc_array(np.eye(2))])})
    with pytest.raises(MatFormatError, match="struct"):
        list(iter_cell(path, "a"))
    with pytest.raises(MatFormatError, match="sparse"):
        list(iter_cell(path, "b"))


def test_missing_variable_and_non_cell(tmp_path):
    path = tmp_path / "gt.mat"
    scipy.io.savemat(path, {"imnames": _object_row(["a.jpg"]), "x": np.ones((2, 2))})
    with pytest.raises(MatFormatError, match="'wordBB'.*imnames, x"):
        next(iter_cell(path, "wordBB"))
    with pytest.raises(MatFormatError, match="'x' is a double array, not a cell"):
        next(iter_cell(path, "x"))


# ---------------------------------------------------------------- files built byte by byte


def _handmade_elements(e: str) -> list[bytes]:
    return [
        _matrix(e, 6, (2, 3), [_el(e, 9, np.arange(6, dtype=e + "f8").tobytes())]),
        # doubles stored narrowed, as MATLAB does for integral values: miUINT8, miINT16
        _matrix(e, 6, (1, 3), [_el(e, 2, bytes([0, 7, 255]))]),
        _matrix(e, 6, (2, 2), [_el(e, 3, np.array([-300, 2, 3, 30000], e + "i2").tobytes())]),
        _matrix(e, 12, (1, 2), [_el(e, 1, struct.pack("2b", -1, 100), small=True)]),  # int32 via miINT8 SDE
        _matrix(e, 7, (1, 1), [_el(e, 7, struct.pack(e + "f", 0.5), small=True)]),  # single, SDE data
        _matrix(e, 9, (1, 2), [_el(e, 2, b"\x00\x01", small=True)], flags=0x0200),  # logical
        _matrix(e, 6, (1, 1), [_el(e, 9, struct.pack(e + "d", 1.5)), _el(e, 9, struct.pack(e + "d", -2.0))],
                flags=0x0800),  # complex double
        _chars_utf16(e, ["word\n", "café ", "中文   "]),
        struct.pack(e + "II", 14, 0),  # empty miMATRIX
    ]


@pytest.mark.parametrize("e", ["<", ">"])
def test_handmade_elements_both_byte_orders(tmp_path, e):
    path = tmp_path / "hand.mat"
    path.write_bytes(_matfile(e, _cell(e, b"c", _handmade_elements(e), small_name=True)))
    assert list_variables(path) == [MatVariable("c", "cell", (1, 9))]
    values = list(iter_cell(path, "c"))
    assert np.array_equal(values[0], np.arange(6.0).reshape(2, 3, order="F"))
    assert values[1].dtype == np.float64 and values[1].tolist() == [[0.0, 7.0, 255.0]]
    assert values[2].dtype == np.float64 and values[2].tolist() == [[-300.0, 3.0], [2.0, 30000.0]]
    assert values[3].dtype == np.int32 and values[3].tolist() == [[-1, 100]]
    assert values[4].dtype == np.float32 and values[4].tolist() == [[0.5]]
    assert values[5].dtype == np.bool_ and values[5].tolist() == [[False, True]]
    assert values[6].dtype == np.complex128 and values[6].tolist() == [[1.5 - 2j]]
    assert values[7] == ["word\n", "café ", "中文   "]
    assert values[8].shape == (1, 0) and values[8].dtype == np.float64
    # scipy agrees once told the class dtypes and the UTF-16 byte order of miUINT16 chars
    codec = "utf-16-le" if e == "<" else "utf-16-be"
    _assert_cell_matches(path, "c", uint16_codec=codec)


@pytest.mark.parametrize("e", ["<", ">"])
def test_char_storage_types(tmp_path, e):
    rows = ["ab\n", "é中 "]
    flat = "".join(rows[r][c] for c in range(3) for r in range(2))  # column-major
    utf32 = "utf-32-le" if e == "<" else "utf-32-be"
    elements = [
        _chars_utf16(e, rows),  # miUINT16 (MATLAB)
        _chars_utf16(e, rows, mdtype=17),  # miUTF16
        _matrix(e, 4, (2, 3), [_el(e, 16, flat.encode("utf-8"))]),  # miUTF8 (scipy.io.savemat)
        _matrix(e, 4, (2, 3), [_el(e, 18, flat.encode(utf32))]),  # miUTF32
        _matrix(e, 4, (1, 3), [_el(e, 2, "Aé!".encode("latin-1"))]),  # miUINT8
        _chars_utf16(e, ["😀x"]),  # a surrogate pair within a row becomes one character
        _matrix(e, 4, (1, 2), [_el(e, 16, b"hi", small=True)]),  # SDE char data
    ]
    path = tmp_path / "chars.mat"
    path.write_bytes(_matfile(e, _compressed(e, _cell(e, b"txt", elements, small_name=True))))
    values = list(iter_cell(path, "txt"))
    assert values == [rows, rows, rows, rows, ["Aé!"], ["😀x"], ["hi"]]


def test_narrowed_storage_matches_loadmat_mat_dtype(tmp_path):
    path = tmp_path / "narrow.mat"
    # savemat never narrows (integral doubles stay miDOUBLE: tag 9, 16 bytes), so craft such elements by hand
    scipy.io.savemat(path, {"a": np.array([[1.0, 2.0]])})
    assert struct.pack("<II", 9, 16) + struct.pack("<2d", 1.0, 2.0) in path.read_bytes()
    elements = [_matrix("<", 6, (2, 4, 2), [_el("<", 2, bytes(range(16)))]),
                _matrix("<", 7, (1, 3), [_el("<", 3, np.array([-1, 0, 9], "<i2").tobytes())]),
                _matrix("<", 14, (1, 2), [_el("<", 5, np.array([-7, 8], "<i4").tobytes())])]
    path.write_bytes(_matfile("<", _compressed("<", _cell("<", b"wordBB", elements))))
    _assert_cell_matches(path, "wordBB")
    assert [v.dtype for v in iter_cell(path, "wordBB")] == [np.float64, np.float32, np.int64]


def test_skipped_variables_are_not_decompressed(tmp_path):
    # A big incompressible variable whose zlib checksum is wrong: only reading it to the end can notice.
    blob = np.random.default_rng(1).integers(0, 256, 3 << 20, dtype=np.uint8)
    junk = bytearray(_compressed("<", _cell("<", b"junk", [_matrix("<", 9, (1, blob.size),
                                                                    [_el("<", 2, blob.tobytes())])])))
    junk[-4:] = bytes(b ^ 0xFF for b in junk[-4:])
    path = tmp_path / "skip.mat"
    imnames = _compressed("<", _cell("<", b"imnames", [_chars_utf16("<", ["a"])]))
    path.write_bytes(_matfile("<", bytes(junk), imnames))
    assert [v.name for v in list_variables(path)] == ["junk", "imnames"]
    assert list(iter_cell(path, "imnames")) == [["a"]]
    with pytest.raises(MatFormatError, match="corrupt compressed data"):
        list(iter_cell(path, "junk"))


def test_v73_hdf5_and_non_v5_files_are_refused(tmp_path):
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0200) + b"IM"
    path = tmp_path / "gt.mat"
    path.write_bytes(header.ljust(512, b"\0") + b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(MatFormatError, match="7.3"):
        list_variables(path)
    with pytest.raises(MatFormatError, match="HDF5"):
        next(iter_cell(path, "imnames"))
    path.write_bytes(b"\0" * 200)  # no MAT v5 endian indicator (a MATLAB v4 file, or not a MAT-file)
    with pytest.raises(MatFormatError, match="not a MATLAB v5"):
        list_variables(path)


# ---------------------------------------------------------------- truncated and malformed files


def _last_variable_offset(raw: bytes) -> int:
    """File offset of the last top-level element (tags are 8-byte type + byte count; little-endian)."""
    offset = last = 128
    while offset < len(raw):
        last = offset
        nbytes = struct.unpack_from("<I", raw, offset + 4)[0]
        offset += 8 + nbytes + -nbytes % 8
    return last


@pytest.mark.parametrize("compressed", [True, False])
def test_truncated_savemat_file(tmp_path, compressed):
    full = tmp_path / "gt.mat"
    scipy.io.savemat(full, _synthtext_vars(12), do_compression=compressed)
    raw = full.read_bytes()
    start = _last_variable_offset(raw)
    assert start > 128 and list_variables(full)[-1].name == "txt"
    cut_path = tmp_path / "cut.mat"
    step = max(1, (len(raw) - start) // 20)
    for cut in [0, 10, 127, *range(start + 1, len(raw), step), len(raw) - 1]:
        cut_path.write_bytes(raw[:cut])
        with pytest.raises(MatFormatError, match="cut.mat"):
            list_variables(cut_path)
        with pytest.raises(MatFormatError):
            list(iter_cell(cut_path, "txt"))


@pytest.mark.parametrize("compressed", [True, False])
def test_every_truncation_of_a_small_file_raises(tmp_path, compressed):
    var = _cell("<", b"wordBB", _handmade_elements("<"))
    raw = _matfile("<", _compressed("<", var) if compressed else var)
    path = tmp_path / "cut.mat"
    for cut in range(len(raw)):
        path.write_bytes(raw[:cut])
        with pytest.raises(MatFormatError):
            list(iter_cell(path, "wordBB"))


def test_truncated_zlib_stream_inside_a_whole_element(tmp_path):
    data = zlib.compress(_cell("<", b"txt", [_chars_utf16("<", ["x" * 50])] * 40))
    path = tmp_path / "gt.mat"
    for keep in (2, len(data) // 2, len(data) - 5):
        path.write_bytes(_matfile("<", struct.pack("<II", 15, keep) + data[:keep]))
        with pytest.raises(MatFormatError, match="byte offset 136"):
            list(iter_cell(path, "txt"))


@pytest.mark.parametrize("compressed", [True, False])
def test_corrupted_bytes_raise_format_errors_only(tmp_path, compressed):
    var = _cell("<", b"wordBB", _handmade_elements("<"))
    raw = _matfile("<", _compressed("<", var) if compressed else var)
    path = tmp_path / "bad.mat"
    failures = 0
    for i in range(128, len(raw)):
        for flip in (0x01, 0x80):
            bad = bytearray(raw)
            bad[i] ^= flip
            path.write_bytes(bytes(bad))
            try:
                list(iter_cell(path, "wordBB"))
            except MatFormatError:
                failures += 1
    # Most flips (tags, counts, flags, dims, zlib data) must be caught, and none as another exception.
    assert failures > (len(raw) - 128) // 2


def test_data_element_overrunning_its_matrix(tmp_path):
    inner = _matrix("<", 6, (1, 2), [_el("<", 9, struct.pack("<2d", 1.0, 2.0))])
    inner = inner[:-24] + struct.pack("<II", 9, 4096) + inner[-16:]  # data tag claims 4096 bytes
    path = tmp_path / "bad.mat"
    path.write_bytes(_matfile("<", _cell("<", b"c", [inner])))
    with pytest.raises(MatFormatError, match="4096 bytes runs past the end of its array"):
        list(iter_cell(path, "c"))
    path.write_bytes(_matfile("<", _cell("<", b"c", [_matrix("<", 4, (2**31 - 1, 0), [_el("<", 16, b"")])])))
    with pytest.raises(MatFormatError, match="implausible char array dims"):
        list(iter_cell(path, "c"))


# ---------------------------------------------------------------- memory


def _big_wordbb_file(path, n: int) -> None:
    """A compressed 1xn cell of 2x4x3 doubles (element i = base + i), built directly as bytes because
    savemat needs seconds for 200,000 objects."""
    prefix = _matrix("<", 6, (2, 4, 3), [_el("<", 9, bytes(192))])[:-192]  # tag, flags, dims, name, data tag
    rows = np.zeros(n, dtype=[("prefix", f"V{len(prefix)}"), ("data", "<f8", (24,))])
    rows["prefix"] = np.void(prefix)
    rows["data"] = np.arange(24.0) + np.arange(n, dtype=np.float64)[:, None]
    cell = _matrix("<", 1, (1, n), [rows.tobytes()], b"wordBB")
    data = zlib.compress(cell, 1)
    path.write_bytes(_matfile("<", struct.pack("<II", 15, len(data)) + data))


def test_memory_stays_flat_with_many_elements(tmp_path):
    n = 200_000
    path = tmp_path / "big.mat"
    _big_wordbb_file(path, n)
    assert list_variables(path) == [MatVariable("wordBB", "cell", (1, n))]

    tracemalloc.start()
    try:
        # deque(maxlen=1) keeps only the last (count, element) pair
        [(count, box)] = collections.deque(enumerate(iter_cell(path, "wordBB"), 1), maxlen=1)
        ours = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        theirs_cell = scipy.io.loadmat(path)["wordBB"]
        theirs = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == n and np.array_equal(box, np.arange(24.0).reshape(2, 4, 3, order="F") + n - 1)
    assert theirs_cell.shape == (1, n) and np.array_equal(theirs_cell[0, -1], box)
    assert ours < theirs / 5
    assert ours < 20 * 2**20
