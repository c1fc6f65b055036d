"""A real HTTP file server on 127.0.0.1 for tests: Range support, a request log, per-path fault injection.

    with FileServer(tmp_path / "www") as srv:
        srv.add_file("a.zip", data)
        srv.fault("/a.zip", drop_first=1, drop_after=1000)
        ... requests.get(srv.url("a.zip")) ...
        assert srv.hits("/a.zip")[1].range == "bytes=1000-"
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import re
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote, urlsplit

_FLIP = bytes(b ^ 0xFF for b in range(256))


@dataclass
class Faults:
    """Misbehaviour for one path; "first K" counts every request to that path, starting at 0."""

    status_first: int = 0  # answer `status` to the first K requests
    status: int = 500
    drop_first: int = 0  # on the first K requests: full headers, `drop_after` body bytes, then close
    drop_after: int = 0
    corrupt: bool = False  # serve every byte flipped (same length)
    ignore_range: bool = False  # always 200 with the whole file
    # On the first K requests: after `stall_at` body bytes (-1: before the status line) go silent for
    # `stall_seconds` (cut short when the server stops), then send the rest: trips a client's read timeout.
    stall_first: int = 0
    stall_at: int = 0
    stall_seconds: float = 5.0
    reset: bool = False  # with drop_first: end with a TCP reset (RST) instead of an orderly close
    # On the first K requests: announce Content-Length = real length + length_delta, send the real body,
    # then close (a server whose length header lies in either direction).
    length_first: int = 0
    length_delta: int = 0
    swap_data: bytes | None = None  # the file changed on the server: requests from `swap_after` on get this
    swap_after: int = 1
    redirect_to: str | None = None  # answer with `redirect_status` and Location: this path (same server)
    redirect_status: int = 302
    content_encoding: str | None = None  # a Content-Encoding header on unchanged bytes (a lying label)
    gzip_body: bool = False  # really gzip the file on the wire (and say Content-Encoding: gzip)


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    range: str | None
    status: int


def _parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive, "unsatisfiable", or None to ignore the header (as RFC 9110 allows)."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", value)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    if m.group(1) == "":  # suffix range: the last N bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n and size else "unsatisfiable"
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return start, min(end, size - 1)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers: exercises connection reuse
    timeout = 10  # an idle client must not pin a handler thread forever

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass  # keep test output clean; the request log is FileServer.requests

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve(head=False)

    def _reply(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        owner: FileServer = self.server.owner  # type: ignore[attr-defined]
        path = unquote(urlsplit(self.path).path)
        rng = self.headers.get("Range")
        n, faults = owner._next(path)

        if n < faults.status_first:
            owner._record(Hit(self.command, path, rng, faults.status))
            self._reply(faults.status, b"injected failure\n", {"Content-Type": "text/plain"}, head)
            return
        if faults.redirect_to is not None:
            owner._record(Hit(self.command, path, rng, faults.redirect_status))
            location = {"Location": owner.url(faults.redirect_to.lstrip("/"))}
            self._reply(faults.redirect_status, b"", location, head)
            return
        file = owner._resolve(path)
        if file is None:
            owner._record(Hit(self.command, path, rng, 404))
            self._reply(404, b"not found\n", {"Content-Type": "text/plain"}, head)
            return
        data = file.read_bytes()
        if faults.swap_data is not None and n >= faults.swap_after:
            data = faults.swap_data
        if faults.corrupt:
            data = data.translate(_FLIP)
        if faults.gzip_body:
            data = gzip.compress(data, mtime=0)
        size = len(data)
        status, body = 200, data
        headers = {"Content-Type": "application/octet-stream"}
        if not faults.ignore_range:
            headers["Accept-Ranges"] = "bytes"
            parsed = _parse_range(rng, size) if rng else None
            if parsed == "unsatisfiable":
                status, body = 416, b""
                headers["Content-Range"] = f"bytes */{size}"
            elif isinstance(parsed, tuple):
                start, end = parsed
                status, body = 206, data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if faults.gzip_body or faults.content_encoding:
            headers["Content-Encoding"] = "gzip" if faults.gzip_body else str(faults.content_encoding)
        owner._record(Hit(self.command, path, rng, status))

        if not head and n < faults.stall_first:
            self._stall(status, headers, body, faults)
            return
        if not head and n < faults.length_first:
            self._send_and_close(status, headers, body, len(body) + faults.length_delta)
            return

        if not head and n < faults.drop_first and faults.drop_after < len(body):
            # Announce the full length, send part of it, then hang up: a truncated body.
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: faults.drop_after])
            self.wfile.flush()
            self.close_connection = True
            if faults.reset:
                self._reset()
                return
            with contextlib.suppress(OSError):  # the client may already be gone
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._reply(status, body, headers, head)

    def _headers(self, status: int, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _stall(self, status: int, headers: dict[str, str], body: bytes, faults: Faults) -> None:
        owner: FileServer = self.server.owner  # type: ignore[attr-defined]
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client gives up during the stall and hangs up
            if faults.stall_at >= 0:
                self._headers(status, headers, len(body))
                self.wfile.write(body[: faults.stall_at])
                self.wfile.flush()
            owner._stopping.wait(faults.stall_seconds)
            if faults.stall_at < 0:
                self._headers(status, headers, len(body))
            self.wfile.write(body[max(faults.stall_at, 0) :])
            self.wfile.flush()

    def _send_and_close(self, status: int, headers: dict[str, str], body: bytes, announced: int) -> None:
        self.close_connection = True  # a lying length leaves the stream unusable for another request
        with contextlib.suppress(OSError):
            self._headers(status, headers, announced)
            self.wfile.write(body)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes the close send RST, not FIN.
        # close() only marks the socket: the kernel close (RST) happens when the handler's finish() closes
        # rfile/wfile, still before socketserver's shutdown(SHUT_WR) could send an orderly FIN.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a lingering keep-alive connection must not block shutdown
    owner: FileServer


class FileServer:
    """Serves files under `root` at http://127.0.0.1:<port>/; a context manager (start/stop)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[Hit] = []
        self._faults: dict[str, Faults] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # ends stalls early, so stop() is never held up by one
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FileServer:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addressing and content
    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, name: str = "") -> str:
        return f"{self.base_url}/{quote(name)}"

    def add_file(self, name: str, data: bytes) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    def fault(self, path: str, **kwargs: object) -> Faults:
        """Set the faults of one URL path ("/name"); returns the Faults object (mutable)."""
        path = "/" + path.lstrip("/")
        with self._lock:
            f = self._faults[path] = Faults(**kwargs)  # type: ignore[arg-type]
        return f

    def hits(self, path: str) -> list[Hit]:
        path = "/" + path.lstrip("/")
        with self._lock:
            return [h for h in self.requests if h.path == path]

    # -- used by the handler
    def _next(self, path: str) -> tuple[int, Faults]:
        with self._lock:
            n = self._counts.get(path, 0)
            self._counts[path] = n + 1
            return n, self._faults.get(path, Faults())

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self.requests.append(hit)

    def _resolve(self, path: str) -> Path | None:
        root = self.root.resolve()
        p = (root / path.lstrip("/")).resolve()
        if p != root and root not in p.parents:
            return None
        return p if p.is_file() else None
