"""Streaming reader for the cell arrays of MATLAB v5/v7 MAT-files (SynthText's `gt.mat`).

SynthText's `gt.mat` holds four 1x858750 cell arrays, `imnames`, `wordBB`, `charBB` and `txt`
(/work/shared/reference/synth_generators.md §5.2). `scipy.io.loadmat` builds a whole variable in memory;
this module yields one cell element at a time, so memory stays flat however many images there are.

Format (MathWorks, "MAT-File Format", the "Level 5 MAT-File Format" chapter; v7 files are the same format
with variables wrapped in zlib-compressed elements):

- A 128-byte header: 116 bytes of text, 8 bytes of subsystem-data offset, a 2-byte version (0x0100) and a
  2-byte endian indicator, the characters `IM` in the file's byte order, so the bytes read `IM` in a
  little-endian file and `MI` in a big-endian one.
- Then data elements. Each is an 8-byte tag (uint32 data type, uint32 byte count), the data, then padding
  to the next 8-byte boundary. In the *Small Data Element* form the tag's first uint32 holds the byte count
  (<= 4) in its upper 2 bytes and the type in its lower 2, and the data sits in the tag's last 4 bytes.
  Data types: miINT8=1, miUINT8=2, miINT16=3, miUINT16=4, miINT32=5, miUINT32=6, miSINGLE=7, miDOUBLE=9,
  miINT64=12, miUINT64=13, miMATRIX=14, miCOMPRESSED=15, miUTF8=16, miUTF16=17, miUTF32=18.
- A top-level variable is an miMATRIX element, or an miCOMPRESSED element whose zlib stream decompresses to
  one. Because the compressed byte count is in the tag, variables we do not want are skipped with a seek.
- An miMATRIX holds sub-elements: array flags (miUINT32 x2; class in the low byte, logical 0x0200,
  global 0x0400, complex 0x0800), dimensions (miINT32), the name (miINT8, empty inside a cell), then the
  class's data. Numeric classes hold a real part and, if complex, an imaginary part. The storage type may
  be narrower than the class: MATLAB stores a double array of small integers as miUINT8, for example.
  Char arrays hold column-major character codes. Cell arrays hold one miMATRIX per element in column-major
  order. Class codes: mxCELL=1, mxSTRUCT=2, mxOBJECT=3, mxCHAR=4, mxSPARSE=5, mxDOUBLE=6, mxSINGLE=7,
  mxINT8=8, mxUINT8=9, mxINT16=10, mxUINT16=11, mxINT32=12, mxUINT32=13, mxINT64=14, mxUINT64=15.
- MATLAB v7.3 files are HDF5 containers (`\\x89HDF` at byte 512). They are rejected with a clear error.

Values match `scipy.io.loadmat(path, mat_dtype=True)` without squeeze_me. Numeric arrays keep their stored
dims and take the class's dtype; logical arrays are bool; complex double/single arrays keep their imaginary
part (as plain loadmat does; mat_dtype=True drops it). An empty miMATRIX (byte count 0; MATLAB writes these
for unassigned cells [?]) becomes a 1x0 double, as in scipy. Char matrices become one `str` per row. For
char data, scipy's defaults differ from what MATLAB stores, and this reader follows MATLAB: miUINT16 and
miUTF16 codes are UTF-16 code units (scipy keeps only the low byte of miUINT16 codes), and miUINT8 codes
are Latin-1 (scipy decodes them as ASCII). Struct, object, sparse and function-handle elements, and
complex integer arrays, raise MatFormatError ("unsupported"); SynthText has none.

Memory while iterating: one input chunk (1 MiB), at most 1 MiB of decompressed output, and the current
element.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

__all__ = ["MatFormatError", "MatVariable", "iter_cell", "list_variables"]

MI_INT8, MI_UINT8, MI_INT16, MI_UINT16, MI_INT32, MI_UINT32 = 1, 2, 3, 4, 5, 6
MI_MATRIX, MI_COMPRESSED, MI_UTF8, MI_UTF16, MI_UTF32 = 14, 15, 16, 17, 18
MX_CELL, MX_CHAR, MX_OPAQUE = 1, 4, 17
LOGICAL_FLAG, COMPLEX_FLAG = 0x0200, 0x0800

# (byte order, storage data type) -> numpy dtype
_MI_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MI_DTYPES = {e: {code: np.dtype(e + t) for code, t in _MI_TYPES.items()} for e in "<>"}
_CHAR_CODECS = {MI_UINT8: "latin-1", MI_INT8: "latin-1", MI_UTF8: "utf-8", MI_UTF32: "utf-32"}
_U32X2 = {e: struct.Struct(e + "II") for e in "<>"}
_DIMS = {e: [struct.Struct(f"{e}{n}i") for n in range(33)] for e in "<>"}
# Numeric array class -> (MATLAB class name, numpy dtype of the values).
_MX_NUMERIC = {6: ("double", "f8"), 7: ("single", "f4"), 8: ("int8", "i1"), 9: ("uint8", "u1"),
               10: ("int16", "i2"), 11: ("uint16", "u2"), 12: ("int32", "i4"), 13: ("uint32", "u4"),
               14: ("int64", "i8"), 15: ("uint64", "u8")}
_CLASS_DTYPES = {mclass: np.dtype(t) for mclass, (_, t) in _MX_NUMERIC.items()}
_BOOL = np.dtype(np.bool_)
_MX_OTHER = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 16: "function_handle",
             17: "opaque"}

_IN_CHUNK = 1 << 20  # compressed (or raw) bytes read from the file at a time
_OUT_CHUNK = 1 << 20  # at most this many decompressed bytes per zlib call
_HEAD_MAX = 1024  # bytes peeked to parse a top-level variable's header
_MAX_EMPTY_ROWS = 1 << 20  # a rows x 0 char array becomes `rows` empty strings


class MatFormatError(ValueError):
    """The file is not a readable MAT v5/v7 file, or lacks the requested cell array. The message names the
    file and the byte offset or the variable."""


@dataclass(frozen=True)
class MatVariable:
    name: str
    mclass: str  # MATLAB class name: "cell", "double", "char", "logical", "struct", ...
    dims: tuple[int, ...]


def _class_name(mclass: int, flags: int) -> str:
    if mclass in _MX_NUMERIC:
        return "logical" if flags & LOGICAL_FLAG else _MX_NUMERIC[mclass][0]
    return _MX_OTHER.get(mclass, f"class {mclass}")


class _Stream:
    """Reads one byte range of the file in order, zlib-decompressing it if `compressed`. Memory holds at most
    one input chunk and one output chunk, plus whatever a single `read` asks for."""

    def __init__(self, f: BinaryIO, path: Path, endian: str, start: int, length: int, compressed: bool):
        self.path, self.endian, self.start = path, endian, start
        self._f, self._left = f, length
        self._z = zlib.decompressobj() if compressed else None
        self._buf, self._i, self._n = b"", 0, 0  # unread bytes: self._buf[self._i:self._n]
        self.pos = 0  # offset of the next byte within the (decompressed) range
        f.seek(start)

    def error(self, message: str, pos: int | None = None) -> MatFormatError:
        pos = self.pos if pos is None else pos
        if self._z is None:
            where = f"byte offset {self.start + pos}"
        else:
            where = f"decompressed byte {pos} of the miCOMPRESSED data starting at byte offset {self.start}"
        return MatFormatError(f"{self.path}: {message} (at {where})")

    def _more(self) -> bytes:
        """The next chunk of data; b"" at the proper end of the range or of the zlib stream."""
        if self._z is None:
            if not self._left:
                return b""
            data = self._f.read(min(_IN_CHUNK, self._left))
            if not data:
                raise self.error("file truncated")
            self._left -= len(data)
            return data
        while not self._z.eof:
            if self._z.unconsumed_tail:
                src = self._z.unconsumed_tail
            elif self._left:
                src = self._f.read(min(_IN_CHUNK, self._left))
                if not src:
                    raise self.error("file truncated inside compressed data")
                self._left -= len(src)
            else:
                src = b""  # input used up: let zlib flush what it still holds
            try:
                out = self._z.decompress(src, _OUT_CHUNK)
            except zlib.error as exc:
                raise self.error(f"corrupt compressed data ({exc})") from None
            if out:
                return out
            if not src:
                raise self.error("compressed data ends before its zlib stream does (truncated?)")
        return b""

    def peek(self, n: int) -> bytes:
        """The next `n` bytes without consuming them; fewer at the end of the data."""
        have = self._n - self._i
        if have < n:
            parts = [self._buf[self._i:]]
            while have < n and (chunk := self._more()):
                parts.append(chunk)
                have += len(chunk)
            self._buf, self._i, self._n = b"".join(parts), 0, have
        return self._buf[self._i:self._i + n]

    def read(self, n: int) -> bytes:
        i, j = self._i, self._i + n
        if j > self._n:  # not all buffered (once per chunk): refill
            if len(self.peek(n)) < n:
                raise self.error(f"data ends {n - self._n + self._i} bytes early (truncated file?)")
            i, j = 0, n
        self._i = j
        self.pos += n
        return self._buf[i:j]

    def tag(self) -> tuple[int, int]:
        """The next 8 bytes as two uint32 (an element tag), without consuming them."""
        if self._i + 8 > self._n and len(self.peek(8)) < 8:
            self.read(8)  # raises: truncated
        return _U32X2[self.endian].unpack_from(self._buf, self._i)

    def finish(self, end: int) -> None:
        """Check that the variable ends where its tag says and, if compressed, that the zlib stream (with its
        checksum) ends there too."""
        if self.pos != end:
            raise self.error(f"variable content ends at {self.pos}, but its tag says {end}")
        if self.peek(1):
            raise self.error("unexpected data after the end of the variable")


class _Parser:
    """Parses miMATRIX content held in memory; `base` is the stream position of `buf[0]`, for messages."""

    __slots__ = ("buf", "stream", "base", "e")

    def __init__(self, buf: bytes, stream: _Stream, base: int):
        self.buf, self.stream, self.base, self.e = buf, stream, base, stream.endian

    def error(self, message: str, off: int) -> MatFormatError:
        return self.stream.error(message, self.base + off)

    def element(self, off: int, end: int) -> tuple[int, int, int, int]:
        """The data element at `off` -> (data type, data offset, byte count, offset after the padding)."""
        if off + 8 > end:
            raise self.error("data element runs past the end of its array (or of the data)", off)
        first, second = _U32X2[self.e].unpack_from(self.buf, off)
        if first >> 16:  # Small Data Element: byte count in the upper 2 bytes of the first word
            if first >> 16 > 4:
                raise self.error(f"small data element claims {first >> 16} bytes (at most 4)", off)
            return first & 0xFFFF, off + 4, first >> 16, off + 8
        after = off + 8 + ((second + 7) & -8)  # data padded to a multiple of 8 bytes
        if after > end:
            raise self.error(f"data element of {second} bytes runs past the end of its array", off)
        return first, off + 8, second, after

    def header(self, off: int, end: int) -> tuple[int, int, tuple[int, ...], str, int]:
        """Array flags, dims and name of the miMATRIX content `buf[off:end]`
        -> (class, flags, dims, name, offset after the name)."""
        start, buf, e = off, self.buf, self.e
        ftype, foff, fbytes, off = self.element(off, end)
        if ftype != MI_UINT32 or fbytes != 8:
            raise self.error("malformed array flags", start)
        flags = _U32X2[e].unpack_from(buf, foff)[0]
        dims: tuple[int, ...] = ()
        if flags & 0xFF != MX_OPAQUE:  # opaque objects have no dimensions element
            dtype, doff, dbytes, off = self.element(off, end)
            # scipy also refuses more than 32 dims
            if dtype not in (MI_INT32, MI_UINT32) or not dbytes or dbytes % 4 or dbytes > 128:
                raise self.error("malformed array dimensions", start)
            dims = _DIMS[e][dbytes // 4].unpack_from(buf, doff)
            if min(dims) < 0:
                raise self.error(f"negative array dimensions {dims}", start)
        ntype, noff, nbytes, off = self.element(off, end)
        if ntype not in (MI_INT8, MI_UTF8):
            raise self.error(f"malformed array name (data type {ntype})", start)
        try:
            name = buf[noff:noff + nbytes].decode("ascii")
        except UnicodeDecodeError:
            raise self.error("array name is not ASCII", start) from None
        return flags & 0xFF, flags, dims, name, off

    def content(self, off: int, end: int) -> Any:
        """The value of the miMATRIX content `buf[off:end]` (a cell element; see the module docstring)."""
        if off == end:
            return np.zeros((1, 0))  # what scipy returns for an empty miMATRIX
        mclass, flags, dims, _, off = self.header(off, end)
        if mclass in _MX_NUMERIC:
            value, off = self.numeric(mclass, flags, dims, off, end)
        elif mclass == MX_CHAR:
            value, off = self.chars(dims, off, end)
        elif mclass == MX_CELL:
            value = []
            for _ in range(math.prod(dims)):
                if off + 8 > end:
                    raise self.error("cell array ends before its last element", off)
                mdtype, nbytes = _U32X2[self.e].unpack_from(self.buf, off)
                if mdtype != MI_MATRIX or off + 8 + nbytes > end:
                    raise self.error("malformed cell element", off)
                value.append(self.content(off + 8, off + 8 + nbytes))
                off += 8 + nbytes
        else:
            raise self.error(f"unsupported: MATLAB class '{_class_name(mclass, flags)}' in a cell array", off)
        if off != end:
            raise self.error(f"{_class_name(mclass, flags)} array ends before its tag's byte count", off)
        return value

    def _part(self, dims: tuple[int, ...], off: int, end: int) -> tuple[np.ndarray, int]:
        """The real or imaginary part: a column-major view of the stored values."""
        mdtype, doff, nbytes, after = self.element(off, end)
        dtype = _MI_DTYPES[self.e].get(mdtype)
        if dtype is None:
            raise self.error(f"numeric array stored as unsupported data type {mdtype}", off)
        if nbytes != math.prod(dims) * dtype.itemsize:
            raise self.error(f"numeric array of dims {dims} holds {nbytes} bytes of {dtype}", off)
        return np.ndarray(dims, dtype, self.buf, doff, None, "F"), after  # positional: this is the hot path

    def numeric(self, mclass: int, flags: int, dims: tuple[int, ...], off: int, end: int
                ) -> tuple[np.ndarray, int]:
        real, off = self._part(dims, off, end)
        if not flags & COMPLEX_FLAG:
            # The class, not the (possibly narrower) storage type, decides the dtype; astype also copies the
            # values out of the read buffer, in native byte order and column-major layout.
            return real.astype(_BOOL if flags & LOGICAL_FLAG else _CLASS_DTYPES[mclass]), off
        if mclass not in (6, 7):
            raise self.error(f"unsupported: complex {_class_name(mclass, flags)} array", off)
        values = np.empty(dims, np.complex128 if mclass == 6 else np.complex64, order="F")
        values.real, (values.imag, off) = real, self._part(dims, off, end)
        return values, off

    def chars(self, dims: tuple[int, ...], off: int, end: int) -> tuple[list[str], int]:
        """A rows x cols char matrix -> one string per row (row r: codes r, r+rows, ...; column-major)."""
        if len(dims) != 2:
            raise self.error(f"unsupported: char array with dims {dims}", off)
        rows, cols = dims
        if rows > _MAX_EMPTY_ROWS and not cols:  # guard against corrupt dims: real files hold no such arrays
            raise self.error(f"implausible char array dims {dims}", off)
        mdtype, doff, nbytes, after = self.element(off, end)
        data = self.buf[doff:doff + nbytes]
        if mdtype in (MI_UINT16, MI_UTF16):
            # MATLAB chars are UTF-16 code units; a surrogate pair within one row becomes one character.
            if nbytes != 2 * rows * cols:
                raise self.error(f"char array of dims {dims} holds {nbytes} bytes of UTF-16 code units", off)
            grid = np.frombuffer(data, self.e + "u2").reshape((rows, cols), order="F").astype("<u2")
            return [row.tobytes().decode("utf-16-le", "surrogatepass") for row in grid], after
        codec = _CHAR_CODECS.get(mdtype)
        if codec is None:
            raise self.error(f"char array stored as unsupported data type {mdtype}", off)
        if mdtype == MI_UTF32:
            codec += "-le" if self.e == "<" else "-be"
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as exc:
            raise self.error(f"invalid {codec} char data ({exc.reason})", off) from None
        if len(text) != rows * cols:
            raise self.error(f"char array of dims {dims} holds {len(text)} characters", off)
        return [text[r::rows] for r in range(rows)], after


class _Top(NamedTuple):
    mclass: int
    flags: int
    dims: tuple[int, ...]
    name: str
    end: int  # stream position just past the variable's miMATRIX element


def _open(f: BinaryIO, path: Path) -> str:
    """Check the 128-byte header; return the file's byte order ("<" or ">")."""
    head = f.read(128)
    f.seek(512)
    if head[:10] == b"MATLAB 7.3" or f.read(4) == b"\x89HDF":
        raise MatFormatError(f"{path}: MATLAB v7.3 MAT-file (HDF5 container): not supported; only v5/v7 "
                             "files can be read here (re-save in MATLAB with save(..., '-v7'))")
    if len(head) < 128:
        raise MatFormatError(f"{path}: not a MATLAB v5/v7 MAT-file, or truncated: {len(head)} bytes, "
                             "shorter than the 128-byte header")
    endian = {b"IM": "<", b"MI": ">"}.get(head[126:128])
    if endian is None:
        raise MatFormatError(f"{path}: not a MATLAB v5/v7 MAT-file (no IM/MI endian indicator at byte "
                             "offset 126; MATLAB v4 files have none)")
    version = struct.unpack(endian + "H", head[124:126])[0]
    if version != 0x0100:
        raise MatFormatError(f"{path}: unsupported MAT-file version 0x{version:04x} at byte offset 124")
    return endian


def _variables(f: BinaryIO, path: Path, endian: str) -> Iterator[tuple[_Top, _Stream]]:
    """Each top-level variable's header, with a stream positioned just after it."""
    size = os.fstat(f.fileno()).st_size
    offset = 128
    while offset < size:
        f.seek(offset)
        tag = f.read(8)
        if len(tag) < 8:
            raise MatFormatError(f"{path}: file truncated inside the tag at byte offset {offset}")
        mdtype, nbytes = _U32X2[endian].unpack(tag)
        if mdtype not in (MI_MATRIX, MI_COMPRESSED):
            raise MatFormatError(f"{path}: expected a variable (miMATRIX or miCOMPRESSED) at byte offset "
                                 f"{offset}, found data type {mdtype}")
        end = offset + 8 + nbytes
        if end > size:
            raise MatFormatError(f"{path}: the variable at byte offset {offset} needs {end - offset} bytes "
                                 f"but the file ends at {size} (truncated file?)")
        if mdtype == MI_COMPRESSED:
            stream = _Stream(f, path, endian, offset + 8, nbytes, compressed=True)
        else:
            stream = _Stream(f, path, endian, offset, 8 + nbytes, compressed=False)
        # The header is small: array flags, <= 32 dims and a name (MATLAB names have <= 63 characters).
        head = stream.peek(_HEAD_MAX)
        if len(head) < 8 or _U32X2[endian].unpack_from(head)[0] != MI_MATRIX:
            raise stream.error("expected an miMATRIX element (data type 14)", 0)
        length = _U32X2[endian].unpack_from(head)[1]
        if length == 0:
            raise stream.error("empty top-level miMATRIX element", 0)
        mclass, flags, dims, name, after = _Parser(head, stream, 0).header(8, min(len(head), 8 + length))
        stream.read(after)
        yield _Top(mclass, flags, dims, name, 8 + length), stream
        offset = end + (-nbytes % 8 if mdtype == MI_MATRIX else 0)


def list_variables(path: Path) -> list[MatVariable]:
    """Top-level variables in file order, reading only headers (for compressed variables: decompress just
    enough to read the array flags, dims and name)."""
    path = Path(path)
    with open(path, "rb") as f:
        return [MatVariable(top.name, _class_name(top.mclass, top.flags), top.dims)
                for top, _ in _variables(f, path, _open(f, path))]


def iter_cell(path: Path, name: str) -> Iterator[Any]:
    """The elements of top-level cell array `name`, one at a time, in MATLAB's linear (column-major) order,
    decompressing incrementally so that memory does not grow with the number of elements.

    Elements: numeric -> np.ndarray (stored dims, class dtype), char -> list[str] (one per row), cell ->
    list. This is a generator, so errors surface while iterating: MatFormatError if the file is truncated or
    malformed (when the bad bytes are reached), or if `name` is absent or not a cell array (on the first
    `next`)."""
    path = Path(path)
    with open(path, "rb") as f:
        seen = []
        for top, stream in _variables(f, path, _open(f, path)):
            if top.name != name:
                seen.append(top.name)
                continue
            if top.mclass != MX_CELL:
                raise MatFormatError(f"{path}: variable {name!r} is a {_class_name(top.mclass, top.flags)} "
                                     "array, not a cell array")
            parser, last_tag = _Parser(b"", stream, 0), top.end - 8
            for _ in itertools.repeat(None, math.prod(top.dims)):  # (no int object per element)
                start = stream.pos
                mdtype, nbytes = stream.tag()
                if mdtype != MI_MATRIX or start + nbytes > last_tag:
                    raise stream.error(f"malformed element of cell array {name!r}", start)
                # One element is read whole, then parsed in memory.
                parser.buf, parser.base = stream.read(8 + nbytes), start
                yield parser.content(8, 8 + nbytes)
            stream.finish(top.end)
            return
    raise MatFormatError(f"{path}: no variable {name!r} (variables: {', '.join(seen) or 'none'})")
