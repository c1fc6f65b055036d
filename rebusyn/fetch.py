"""Download dataset archives: resume, retries, checksums, mirrors, hand-downloaded files, safe extraction.

Every failure is a FetchError whose message names the URL or path involved, so the user can act on it.
Bytes are never trusted before they are verified: downloads live in `<name>.part` until the body is
complete and the checksum passes, and archives are extracted into a temporary sibling directory that is
renamed into place only when every member passed the safety checks.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlsplit
from urllib.request import url2pathname

import requests
import urllib3
from tqdm import tqdm

from rebusyn import __version__

log = logging.getLogger("rebusyn.fetch")

CHUNK = 1 << 20
_MIB = 1 << 20
MARKER = ".rebusyn-extracted.json"
SUMS_NAME = "SHA256SUMS"
_USER_AGENT = f"rebusyn/{__version__} (+dataset fetcher)"
# Transient HTTP answers worth another attempt; every other 4xx is final.
_RETRY_STATUS = {408, 429}


class FetchError(Exception):
    """Any failure to obtain, verify or extract an archive; the message names the URL or path."""


class ChecksumMismatch(FetchError):
    """A file's digest differs from the expected one."""

    def __init__(
        self,
        path: Path,
        algo: str,
        expected: str,
        actual: str,
        source: str | None = None,
        advice: str = "",
    ) -> None:
        self.path = Path(path)
        self.algo = algo
        self.expected = expected
        self.actual = actual
        self.source = source
        where = f" (from {source})" if source and source != str(path) else ""
        tail = f". {advice}" if advice else ""
        super().__init__(f"{algo} mismatch for {path}{where}: expected {expected}, got {actual}{tail}")


class ManualDownloadRequired(FetchError):
    """A login-gated source whose files are not present; str() tells the user exactly what to do."""

    def __init__(self, missing: list[ArchiveRef], dest_dir: Path, from_dir: Path | None = None) -> None:
        self.missing = list(missing)
        self.dest_dir = Path(dest_dir)
        self.from_dir = Path(from_dir) if from_dir is not None else None
        super().__init__(self._message())

    def _message(self) -> str:
        n = len(self.missing)
        lines = [
            f"{n} file{'s' if n != 1 else ''} must be downloaded by hand "
            "(the source needs a login or is shared only through links a program cannot follow):"
        ]
        for i, ref in enumerate(self.missing, 1):
            lines.append(f"  {i}. {ref.name}")
            url = ref.url or "(no official URL known; see the dataset documentation)"
            lines.append(f"     get it from: {url}")
            facts = []
            if ref.sha256:
                facts.append(f"sha256 {ref.sha256}")
            elif ref.md5:
                facts.append(f"md5 {ref.md5}")
            if ref.size is not None:
                facts.append(f"{ref.size} bytes")
            if facts:
                lines.append(f"     expected: {', '.join(facts)}")
        lines.append("Put the file(s) in this directory and run again:")
        lines.append(f"  {self.dest_dir.resolve()}")
        lines.append("or save them in any folder and pass it with --from DIR.")
        if self.from_dir is not None:
            lines.append(f"(Looked in --from {self.from_dir.resolve()} too; not found there.)")
        return "\n".join(lines)


@dataclass(frozen=True)
class ArchiveRef:
    name: str
    url: str | None
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    login_required: bool | None = None  # None: as the source (FetchOptions.login_required)

    def manual(self, opts: FetchOptions) -> bool:
        """Whether this file must come from --from / a mirror (its URL is a login page or a share)."""
        return opts.login_required if self.login_required is None else self.login_required


@dataclass(frozen=True)
class FetchOptions:
    mirror: str | None = None
    from_dir: Path | None = None
    skip_checksum: bool = False
    login_required: bool = False
    retries: int = 5
    backoff: float = 0.5
    timeout: float = 60.0
    progress: bool = True


@dataclass(frozen=True)
class FetchResult:
    path: Path
    origin: str
    sha256: str
    md5: str
    size: int
    checksum_ok: bool | None


class _Retry(Exception):
    """A transient failure: worth another attempt, resuming from whatever the .part file holds."""


class _NotFound(FetchError):
    """The source does not have the file (HTTP 404/410 or a missing local file)."""


# ---------------------------------------------------------------------------------------------------------
# digests and verification


def file_digests(path: Path) -> tuple[str, str]:
    """(md5, sha256) of a file, computed in one pass over 1 MiB chunks."""
    # usedforsecurity=False keeps md5 available on FIPS builds; it is an integrity check here, not security.
    md5 = hashlib.md5(usedforsecurity=False)
    sha = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                md5.update(chunk)
                sha.update(chunk)
    except OSError as e:
        raise FetchError(f"cannot read {path}: {e}") from e
    return md5.hexdigest(), sha.hexdigest()


def _digest_record(path: Path) -> Path:
    return path.with_name(f".{path.name}.digests.json")


def cached_digests(path: Path) -> tuple[str, str]:
    """`file_digests` of a downloaded file, remembered in a hidden sidecar keyed by size and mtime.

    Re-verifying a cached multi-GB archive on every build would cost minutes of hashing; a file whose size
    and modification time are unchanged since it was hashed is not hashed again."""
    st = path.stat()
    record = _digest_record(path)
    try:
        data = json.loads(record.read_text())
        if data["size"] == st.st_size and data["mtime_ns"] == st.st_mtime_ns:
            return data["md5"], data["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    md5, sha = file_digests(path)
    _remember_digests(path, md5, sha)
    return md5, sha


def known_digests(path: Path) -> tuple[str, str] | None:
    """(md5, sha256) of a download as its sidecar remembers them, if the file is unchanged since it was
    hashed; None otherwise. Never hashes (for `rebusyn sources`, which must stay instant)."""
    try:
        st = path.stat()
        data = json.loads(_digest_record(path).read_text())
        if data["size"] == st.st_size and data["mtime_ns"] == st.st_mtime_ns:
            return data["md5"], data["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _remember_digests(path: Path, md5: str, sha: str) -> None:
    st = path.stat()
    with contextlib.suppress(OSError):  # a read-only download folder only costs a re-hash next time
        _digest_record(path).write_text(
            json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": md5, "sha256": sha})
        )


def _expected(ref: ArchiveRef, override: dict[str, str] | None) -> dict[str, str]:
    # An override (a mirror's SHA256SUMS, a lock file) replaces the ref's checksums entirely: it may
    # describe a repacked file whose size and md5 differ from the official one.
    if override:
        keys = ("sha256", "md5", "size")
        return {k: str(v).strip().lower() for k, v in override.items() if k in keys and v}
    exp: dict[str, str] = {}
    if ref.sha256:
        exp["sha256"] = ref.sha256.strip().lower()
    if ref.md5:
        exp["md5"] = ref.md5.strip().lower()
    if ref.size is not None:
        exp["size"] = str(ref.size)
    return exp


def _compare(exp: dict[str, str], md5: str, sha256: str, size: int) -> tuple[bool | None, str, str, str]:
    """(ok, algo, expected, actual); sha256 wins over md5, size is the fallback when no digest is known."""
    if "sha256" in exp:
        return sha256 == exp["sha256"], "sha256", exp["sha256"], sha256
    if "md5" in exp:
        return md5 == exp["md5"], "md5", exp["md5"], md5
    if "size" in exp:
        return str(size) == exp["size"], "size", exp["size"], str(size)
    return None, "", "", ""


# ---------------------------------------------------------------------------------------------------------
# mirrors


def _is_url(s: str) -> bool:
    return urlsplit(s).scheme.lower() in ("http", "https")


def _local_dir(mirror: str) -> Path | None:
    """The directory a file:// URL or plain path points at; None for http(s) mirrors."""
    parts = urlsplit(mirror)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(f"unsupported file URL (remote host) for mirror: {mirror}")
        return Path(url2pathname(parts.path))
    if _is_url(mirror):
        return None
    if parts.scheme and len(parts.scheme) > 1:  # "C:" is a drive, not a scheme
        raise FetchError(f"unsupported mirror scheme {parts.scheme!r}: {mirror} (use http(s), file, a path)")
    return Path(mirror).expanduser()


def _mirror_url(mirror: str, name: str) -> str:
    # Join by hand: urljoin would drop the last path segment of a base without a trailing slash.
    return mirror.rstrip("/") + "/" + quote(name)


def parse_sha256sums(text: str) -> dict[str, str]:
    """Parse sha256sum output: "<hex>  <name>" or "<hex> *<name>" per line; other lines are ignored."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-fA-F]{64})\s[ *]?(.+?)\s*$", line)
        if not m:
            continue
        name = m.group(2)
        if name.startswith("./"):
            name = name[2:]
        sums[name] = m.group(1).lower()
    return sums


def read_sha256sums(mirror: str, *, timeout: float = 60.0) -> dict[str, str]:
    """The name -> sha256 map published as <mirror>/SHA256SUMS; {} when the mirror has none."""
    with _session() as session:
        return _read_sums(mirror, session, timeout=timeout, retries=2, backoff=0.5)


def _read_sums(
    mirror: str, session: requests.Session, *, timeout: float, retries: int, backoff: float
) -> dict[str, str]:
    local = _local_dir(mirror)
    if local is not None:
        f = local / SUMS_NAME
        if not f.is_file():
            return {}
        try:
            return parse_sha256sums(f.read_text(encoding="utf-8", errors="replace"))
        except OSError as e:
            raise FetchError(f"cannot read {f}: {e}") from e
    url = _mirror_url(mirror, SUMS_NAME)
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            resp = session.get(url, timeout=timeout)
        except (requests.ConnectionError, requests.Timeout) as e:
            last = str(e)
            continue
        except requests.RequestException as e:
            raise FetchError(f"cannot request {url}: {e}") from e
        with resp:
            if resp.status_code in (404, 410):
                return {}
            if resp.status_code >= 500 or resp.status_code in _RETRY_STATUS:
                last = f"HTTP {resp.status_code} {resp.reason}"
                continue
            if resp.status_code != 200:
                raise FetchError(f"HTTP {resp.status_code} {resp.reason} for {url}")
            return parse_sha256sums(resp.text)
    raise FetchError(f"cannot read {url} after {retries + 1} attempts: {last}")


# ---------------------------------------------------------------------------------------------------------
# HTTP download with resume


def _opts_sums(opts: FetchOptions, session: requests.Session) -> dict[str, str]:
    assert opts.mirror
    return _read_sums(opts.mirror, session, timeout=opts.timeout, retries=opts.retries, backoff=opts.backoff)


def _session() -> requests.Session:
    s = requests.Session()
    s.headers["User-Agent"] = _USER_AGENT
    return s


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), int(m.group(2)), total


def _unsatisfied_total(value: str | None) -> int | None:
    m = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", value or "")
    return int(m.group(1)) if m else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _raw_body(resp: requests.Response) -> Iterator[bytes]:
    # Raw bytes, no content decoding: a server that labels a .tar.gz "Content-Encoding: gzip" must not
    # get it silently decompressed, and Content-Length counts the bytes on the wire.
    # read1 (urllib3 >= 2.3) returns whatever has arrived; read(CHUNK) waits for a full MiB, so bytes that
    # came before a stall (read timeout) or a reset would be lost and downloaded again.
    raw = resp.raw
    read1 = getattr(raw, "read1", None)
    while True:
        try:
            chunk = read1(CHUNK, decode_content=False) if read1 else raw.read(CHUNK, decode_content=False)
        except (urllib3.exceptions.HTTPError, requests.RequestException, ConnectionError, TimeoutError) as e:
            raise _Retry(f"connection dropped ({type(e).__name__}: {e})") from e
        if not chunk:
            return
        yield chunk


def _http_attempt(session: requests.Session, url: str, part: Path, opts: FetchOptions, label: str) -> str:
    """One GET; returns (the response's Content-Encoding, "" for none) when `part` holds the complete body,
    raises _Retry on a transient failure."""
    have = _size(part)
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = session.get(url, headers=headers, stream=True, timeout=opts.timeout)
    except requests.Timeout as e:  # connected (or not) but no answer within opts.timeout
        raise _Retry(f"no response within {opts.timeout:g}s ({type(e).__name__}: {e})") from e
    except requests.ConnectionError as e:
        raise _Retry(f"connection failed ({type(e).__name__}: {e})") from e
    except requests.RequestException as e:
        raise FetchError(f"cannot request {url}: {type(e).__name__}: {e}") from e
    with resp:
        status = resp.status_code
        encoding = resp.headers.get("Content-Encoding", "").strip().lower()
        encoding = "" if encoding == "identity" else encoding
        if status == 416 and have:
            total = _unsatisfied_total(resp.headers.get("Content-Range"))
            if total == have:
                return ""  # the .part already holds the whole file; the checksum decides if it is right
            part.unlink(missing_ok=True)
            raise _Retry(f"server refused range {have}- (file size {total}); restarting from zero")
        if status >= 500 or status in _RETRY_STATUS:
            raise _Retry(f"HTTP {status} {resp.reason}")
        if status in (404, 410):
            raise _NotFound(f"HTTP {status} {resp.reason} for {url}: the server does not have this file")
        if status not in (200, 206):
            raise FetchError(f"HTTP {status} {resp.reason} for {url}")
        if encoding:
            log.warning(
                "%s: the server sent Content-Encoding %r although identity was asked; stored as sent "
                "(gzip is decoded once complete if that gives the expected file)",
                url,
                encoding,
            )

        if status == 206:
            rng = _parse_content_range(resp.headers.get("Content-Range"))
            if rng is None or rng[0] != have:
                # Appending bytes from another offset would corrupt the file silently.
                part.unlink(missing_ok=True)
                raise _Retry(f"server answered range {resp.headers.get('Content-Range')!r} to bytes={have}-")
            mode, offset = "ab", have
            body_len: int | None = rng[1] - rng[0] + 1
            total = rng[2]
        else:
            # 200: no Range sent, or the server ignored it; either way the body is the whole file.
            mode, offset = "wb", 0
            body_len = _int_or_none(resp.headers.get("Content-Length"))
            total = body_len

        received = 0
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not opts.progress,
            leave=False,
        )
        try:
            with bar, open(part, mode) as fh:
                for chunk in _raw_body(resp):
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except _Retry as e:
            raise _Retry(f"{e} after {offset + received} bytes") from e
        except OSError as e:
            raise FetchError(f"cannot write {part}: {e}") from e
        if body_len is not None and received != body_len:
            raise _Retry(f"short body: {received} of {body_len} bytes, {offset + received} in total")
        if total is not None and offset + received != total:
            raise _Retry(f"have {offset + received} bytes, server announced {total}")
        return encoding


def _http_fetch(
    session: requests.Session, url: str, part: Path, opts: FetchOptions, label: str, advice: str
) -> str:
    """Download `url` into `part` with retries; returns the last response's Content-Encoding ("" for none).
    Final errors end with `advice`: what the user can do about them."""
    attempts = max(0, opts.retries) + 1
    last = ""
    for attempt in range(attempts):
        if attempt:
            delay = opts.backoff * 2 ** (attempt - 1)
            log.warning("%s: %s; retry %d/%d in %.2fs", url, last, attempt, attempts - 1, delay)
            time.sleep(delay)
        try:
            return _http_attempt(session, url, part, opts, label)
        except _Retry as e:
            last = str(e)
        except FetchError as e:  # a final answer (404, 403, a redirect loop): no retry, say what to do
            raise type(e)(f"{e}. {advice}") from e
    got = _size(part)
    kept = f" (kept in {part} for a later resume)" if got else ""
    raise FetchError(
        f"giving up on {url} after {attempts} attempts: {last}; {got} bytes received{kept}. "
        f"The server may be down or overloaded: run the same command later (it resumes). {advice}"
    )


def _download_advice(name: str, mirror: str | None) -> str:
    if mirror:
        return f"Check that the mirror {mirror} is up and serves {name}, or build without --mirror."
    return (
        f"If it persists, download {name} by hand (see the source's page in docs/sources/) "
        "and pass its folder with --from DIR, or use --mirror URL|DIR."
    )


def _gunzip_next_to(part: Path, max_ratio: float = 1000.0) -> Path | None:
    """`part` gzip-decoded into a sibling file; None when it is not (valid) gzip, or when it expands more
    than `max_ratio` times (a gzip bomb sent as the body must not fill the disk)."""
    with open(part, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            return None
    limit = max_ratio * max(part.stat().st_size, 1)
    decoded = part.with_name(part.name + ".decoded")
    written = 0
    try:
        with gzip.open(part, "rb") as src, open(decoded, "wb") as out:
            while written <= limit and (chunk := src.read(CHUNK)):
                written += len(chunk)
                out.write(chunk)
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        written = -1
    if not 0 <= written <= limit:
        decoded.unlink(missing_ok=True)
        return None
    return decoded


# ---------------------------------------------------------------------------------------------------------
# local sources and the fetch logic


def _place_local(src: Path, part: Path) -> None:
    """Copy src to part, or hard-link it when both are on one device (no second copy of a large file)."""
    part.unlink(missing_ok=True)
    try:
        if src.stat().st_dev == part.parent.stat().st_dev:
            try:
                os.link(src, part)
                return
            except OSError:
                pass  # filesystems without hard links (some network mounts): fall back to a copy
        shutil.copyfile(src, part)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise FetchError(f"cannot copy {src} to {part}: {e}") from e


def _check_name(name: str) -> None:
    # The name becomes a path under dest_dir: it must not be able to point anywhere else.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise FetchError(f"invalid archive name {name!r}: must be a plain file name")


def _obtain(
    ref: ArchiveRef, part: Path, dest_dir: Path, opts: FetchOptions, session: requests.Session
) -> tuple[str, str, str]:
    """Put the bytes for `ref` into `part`; returns (origin, source description, HTTP Content-Encoding)."""
    if opts.from_dir is not None:
        src = Path(opts.from_dir) / ref.name
        if src.is_file():
            _place_local(src, part)
            return "from", str(src), ""
    if opts.mirror:
        local = _local_dir(opts.mirror)
        try:
            if local is not None:
                src = local / ref.name
                if not src.is_file():
                    raise _NotFound(
                        f"{ref.name} is not in mirror directory {local}. "
                        f"{_download_advice(ref.name, opts.mirror)}"
                    )
                _place_local(src, part)
                return "mirror", str(src), ""
            url = _mirror_url(opts.mirror, ref.name)
            advice = _download_advice(ref.name, opts.mirror)
            encoding = _http_fetch(session, url, part, opts, ref.name, advice)
            return "mirror", url, encoding
        except _NotFound:
            if ref.manual(opts):
                raise ManualDownloadRequired([ref], dest_dir, opts.from_dir) from None
            raise
    if ref.manual(opts) or not ref.url:
        raise ManualDownloadRequired([ref], dest_dir, opts.from_dir)
    encoding = _http_fetch(session, ref.url, part, opts, ref.name, _download_advice(ref.name, None))
    return "download", ref.url, encoding


def _mismatch_advice(ref: ArchiveRef, origin: str, source: str, opts: FetchOptions) -> str:
    if origin == "from":
        return (
            f"{source} is not the file the recipe expects (an older release, or damaged): "
            "download it again by hand, or accept it as is with --skip-checksum"
        )
    if origin == "mirror":
        return (
            f"The bad copy was deleted. Check the mirror {opts.mirror}: its SHA256SUMS can vouch for a "
            "repacked file; or accept it as is with --skip-checksum"
        )
    return (
        "The bad copy was deleted. Run the same command again to download it afresh (the download was "
        "damaged, or the file changed on the server while it was fetched); if it fails again, the "
        f"server's file differs from the recipe's: download {ref.name} by hand and pass its folder with "
        "--from DIR, or accept it as is with --skip-checksum"
    )


def rejected_path(final: Path, digest: str) -> Path:
    """Where a downloads-folder file whose checksum does not match is moved: next to it, named by its
    digest, so two different rejected files never overwrite each other."""
    return final.with_name(f"{final.name}.rejected-{digest[:12]}")


def _fetch_one(
    ref: ArchiveRef,
    dest_dir: Path,
    opts: FetchOptions,
    expected_override: dict[str, str] | None,
    session: requests.Session,
) -> FetchResult:
    _check_name(ref.name)
    dest_dir = Path(dest_dir)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"cannot create {dest_dir}: {e}") from e
    final = dest_dir / ref.name
    part = dest_dir / (ref.name + ".part")
    if expected_override is None and opts.mirror:
        sums = _opts_sums(opts, session)
        expected_override = {"sha256": sums[ref.name]} if ref.name in sums else {}
    exp = _expected(ref, expected_override)

    if final.is_file():
        md5, sha, size = *cached_digests(final), final.stat().st_size
        ok, algo, want, got = _compare(exp, md5, sha, size)
        if ok is not False:
            return FetchResult(final, "cache", sha, md5, size, ok)
        if opts.skip_checksum:
            log.warning(
                "%s: %s mismatch (expected %s, got %s); kept because checksums are skipped",
                final,
                algo,
                want,
                got,
            )
            return FetchResult(final, "cache", sha, md5, size, False)
        # Never delete it: it may be a file fetched by hand (a login-gated source, another release).
        aside = rejected_path(final, got)
        os.replace(final, aside)
        _digest_record(final).unlink(missing_ok=True)
        log.warning("%s: %s mismatch (expected %s, got %s); kept as %s (not used; delete it when you no "
                    "longer need it, or move it back and pass --skip-checksum to use it), fetching it again",
                    final, algo, want, got, aside.name)  # fmt: skip

    origin, source, encoding = _obtain(ref, part, dest_dir, opts, session)
    md5, sha = file_digests(part)
    size = part.stat().st_size
    ok, algo, want, got = _compare(exp, md5, sha, size)
    # A server that gzips on the wire although identity was asked: the file is the decoded body if the
    # checksum says so or, with nothing to verify, if the name does not say gzip (a .tar.gz labelled
    # Content-Encoding: gzip is the file itself; browsers decide the same way).
    if encoding == "gzip" and (ok is False or (ok is None and not ref.name.endswith((".gz", ".tgz")))):
        decoded = _gunzip_next_to(part)
        if decoded is not None:
            d_md5, d_sha = file_digests(decoded)
            d_size = decoded.stat().st_size
            d_ok = _compare(exp, d_md5, d_sha, d_size)[0]
            if d_ok is not False:
                log.warning("%s: gzip-decoded the body the server compressed on the wire", source)
                os.replace(decoded, part)
                md5, sha, size, ok = d_md5, d_sha, d_size, d_ok
            decoded.unlink(missing_ok=True)
    if ok is False:
        if not opts.skip_checksum:
            # Fail closed: bad bytes must neither be used nor resumed from.
            part.unlink(missing_ok=True)
            advice = _mismatch_advice(ref, origin, source, opts)
            raise ChecksumMismatch(final, algo, want, got, source, advice)
        log.warning(
            "%s (from %s): %s mismatch (expected %s, got %s); kept because checksums are skipped",
            final,
            source,
            algo,
            want,
            got,
        )
    try:
        os.replace(part, final)
    except OSError as e:
        raise FetchError(f"cannot move {part} to {final}: {e}") from e
    _remember_digests(final, md5, sha)
    return FetchResult(final, origin, sha, md5, size, ok)


def fetch_archive(
    ref: ArchiveRef,
    dest_dir: Path,
    opts: FetchOptions,
    expected_override: dict[str, str] | None = None,
) -> FetchResult:
    """Obtain one verified archive at dest_dir/<name> from cache, --from, a mirror or the official URL.

    expected_override ({"sha256": ...} and/or "md5"/"size") replaces the ref's checksums; None with a
    mirror means "read the mirror's SHA256SUMS", an empty dict means "the ref's checksums apply".
    """
    with _session() as session:
        return _fetch_one(ref, dest_dir, opts, expected_override, session)


def fetch_archives(refs: list[ArchiveRef], dest_dir: Path, opts: FetchOptions) -> list[FetchResult]:
    """Fetch every ref; for login-gated sources, report all missing files in one ManualDownloadRequired."""
    dest_dir = Path(dest_dir)
    for ref in refs:
        _check_name(ref.name)
    if not opts.mirror:
        # Manual files must already be on disk: say what is missing before hashing gigabytes of what is not.
        missing = [
            r
            for r in refs
            if r.manual(opts)
            and not (dest_dir / r.name).is_file()
            and not (opts.from_dir is not None and (Path(opts.from_dir) / r.name).is_file())
        ]
        if missing:
            raise ManualDownloadRequired(missing, dest_dir, opts.from_dir)
    results: list[FetchResult] = []
    missing = []
    with _session() as session:
        sums: dict[str, str] = {}
        if opts.mirror:
            sums = _opts_sums(opts, session)
        for ref in refs:
            override = ({"sha256": sums[ref.name]} if ref.name in sums else {}) if opts.mirror else None
            try:
                results.append(_fetch_one(ref, dest_dir, opts, override, session))
            except ManualDownloadRequired as e:
                missing.extend(e.missing)
    if missing:
        raise ManualDownloadRequired(missing, dest_dir, opts.from_dir)
    return results


# ---------------------------------------------------------------------------------------------------------
# safe extraction


def _archive_kind(path: Path) -> str:
    """zip / tar / tar.gz / tar.bz2 / tar.xz, decided by content (file names lie)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if head.startswith(b"BZh"):
        return "tar.bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "tar.xz"
    if head[257:262] == b"ustar":
        return "tar"
    if zipfile.is_zipfile(path):  # zips with a prefix (self-extracting)
        return "zip"
    if tarfile.is_tarfile(path):  # old v7 tars without the ustar magic
        return "tar"
    raise FetchError(f"{path} is neither a zip nor a (compressed) tar archive; cannot extract it")


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _Extractor:
    """Writes members under `root`, refusing anything that could land outside it or exhaust the disk."""

    def __init__(self, archive: Path, root: Path, max_total_bytes: int, max_members: int) -> None:
        self.archive = archive
        self.root = root
        self.real_root = os.path.realpath(root)
        self.max_total = max_total_bytes
        self.max_members = max_members
        self.total = 0
        self.count = 0
        self.files: list[str] = []
        self.links: list[str] = []

    def refuse(self, member: str, why: str) -> FetchError:
        return FetchError(f"refusing to extract {self.archive}: member {member!r} {why}")

    def rel(self, member: str) -> str | None:
        """Normalised relative path of a member name (None for the archive root itself)."""
        self.count += 1
        if self.count > self.max_members:
            raise self.refuse(member, f"is beyond the limit of {self.max_members} members")
        return self.safe_rel(member, member)

    def safe_rel(self, name: str, member: str) -> str | None:
        # Windows-made archives use backslashes as separators: treat them as such, like unzip does.
        n = name.replace("\\", "/")
        if n.startswith("/") or re.match(r"^[A-Za-z]:", n):
            raise self.refuse(member, "has an absolute path")
        parts = [p for p in n.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(member, "has a '..' path component")
        return "/".join(parts) or None

    def _check_inside(self, path: Path | str, member: str, what: str) -> None:
        if not _within(os.path.realpath(path), self.real_root):
            raise self.refuse(member, f"{what} outside {self.archive.name}'s target")

    def _dest(self, rel: str, member: str) -> Path:
        dest = self.root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A symlink extracted earlier must not redirect later writes outside the tree.
        self._check_inside(dest.parent, member, "would be written through a link that points")
        if dest.is_symlink() or dest.is_file():
            dest.unlink()  # a duplicate member replaces the earlier one; never write through it
        elif dest.exists():
            raise self.refuse(member, "conflicts with a directory of the same name")
        return dest

    def mkdir(self, rel: str, member: str) -> None:
        d = self.root / rel
        if d.is_symlink():
            raise self.refuse(member, "is a directory over an existing symlink")
        d.mkdir(parents=True, exist_ok=True)
        self._check_inside(d, member, "is a directory that resolves")

    def add_bytes(self, member: str, n: int) -> None:
        self.total += n
        if self.total > self.max_total:
            raise self.refuse(member, f"takes the uncompressed size over the limit of {self.max_total} bytes")

    def write_file(self, rel: str, member: str, src: IO[bytes], mode: int, mtime: float | None) -> None:
        dest = self._dest(rel, member)
        with open(dest, "xb") as out:  # "x": never follow something planted at dest
            while chunk := src.read(CHUNK):
                self.add_bytes(member, len(chunk))  # count real bytes: headers may understate sizes
                out.write(chunk)
        # Keep only the executable bit: no setuid/setgid/world-writable files from an archive.
        os.chmod(dest, 0o755 if mode & 0o111 else 0o644)
        if mtime:
            # A bogus timestamp is not worth failing the extraction.
            with contextlib.suppress(OSError, OverflowError, ValueError):
                os.utime(dest, (mtime, mtime))
        self.files.append(rel)

    def symlink(self, rel: str, member: str, link_target: str) -> None:
        t = link_target.replace("\\", "/")
        if not t or t.startswith("/") or re.match(r"^[A-Za-z]:", t):
            raise self.refuse(member, f"is a symlink to the absolute path {link_target!r}")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), t))
        if resolved == ".." or resolved.startswith("../"):
            raise self.refuse(member, f"is a symlink to {link_target!r}, outside the target")
        dest = self._dest(rel, member)
        os.symlink(t, dest)
        self._check_inside(dest, member, f"is a symlink to {link_target!r} that resolves")
        self.links.append(rel)
        self.files.append(rel)

    def hardlink(self, rel: str, member: str, link_name: str) -> None:
        src_rel = self.safe_rel(link_name, member)
        if src_rel is None:
            raise self.refuse(member, f"is a hard link to {link_name!r}")
        src = self.root / src_rel
        if not os.path.lexists(src):
            raise self.refuse(member, f"is a hard link to {link_name!r}, not in the archive before it")
        self._check_inside(src, member, f"is a hard link to {link_name!r} that resolves")
        dest = self._dest(rel, member)
        os.link(os.path.realpath(src), dest)
        self.files.append(rel)

    def final_check(self) -> None:
        # Symlinks can be re-pointed by later members (a link to a path that only later became a link),
        # so judge them again once the tree has its final shape.
        for rel in self.links:
            self._check_inside(self.root / rel, rel, "is a symlink that (finally) resolves")


def member_filter(folders: tuple[str, ...] | None) -> Callable[[str], bool]:
    """Whether a member (normalised relative path) lies under one of `folders`, directly or below one top
    folder (archives often wrap everything in one, e.g. `data_lmdb_release/training/MJ/...`)."""
    if folders is None:
        return lambda rel: True

    def under(path: str) -> bool:
        return any(path == f or path.startswith(f + "/") for f in folders)

    return lambda rel: under(rel) or ("/" in rel and under(rel.split("/", 1)[1]))


def _extract_zip(archive: Path, ex: _Extractor, max_ratio: float, wanted: Callable[[str], bool]) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if wanted(i.filename.replace("\\", "/").strip("/"))]
        # The central directory is known up front: refuse before writing a single byte.
        if len(infos) > ex.max_members:
            raise FetchError(f"refusing to extract {archive}: {len(infos)} members, limit {ex.max_members}")
        declared = sum(i.file_size for i in infos)
        if declared > ex.max_total:
            raise FetchError(
                f"refusing to extract {archive}: {declared} bytes uncompressed, limit {ex.max_total}"
            )
        for i in infos:
            ex.safe_rel(i.filename, i.filename)
            kind = stat.S_IFMT(i.external_attr >> 16)
            if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
                raise ex.refuse(i.filename, "is a device, fifo or socket")
            if i.file_size > _MIB and i.file_size / max(i.compress_size, 1) > max_ratio:
                raise ex.refuse(
                    i.filename,
                    f"has compression ratio {i.file_size / max(i.compress_size, 1):.0f} "
                    f"(limit {max_ratio:g}); looks like a zip bomb",
                )
        for i in infos:
            rel = ex.rel(i.filename)
            if rel is None:
                continue
            mode = i.external_attr >> 16
            if i.is_dir():
                ex.mkdir(rel, i.filename)
            elif stat.S_ISLNK(mode):
                if i.file_size > 4096:
                    raise ex.refuse(i.filename, "is a symlink with an implausibly long target")
                ex.symlink(rel, i.filename, zf.read(i).decode("utf-8", errors="replace"))
            else:
                try:
                    mtime = time.mktime((*i.date_time, 0, 0, -1))
                except (OverflowError, ValueError):
                    mtime = None
                with zf.open(i) as src:
                    ex.write_file(rel, i.filename, src, mode, mtime)


def tar_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members of an open tar, one by one, without keeping them: TarFile appends every member it reads
    to `tf.members` (for getmembers()), about 0.5 KB each, so iterating MJSynth's 8.9M files would hold
    ~4 GB. Clearing the list is safe for iteration: TarFile then reads the next header from the stream."""
    for member in tf:
        tf.members = []
        yield member


def _extract_tar(
    archive: Path, ex: _Extractor, max_ratio: float, compressed: bool, wanted: Callable[[str], bool]
) -> None:
    archive_size = max(archive.stat().st_size, 1)
    # Single streaming pass: a compressed tar has no index, and reading it twice costs a full decompression.
    with tarfile.open(archive, "r:*") as tf:
        for m in tar_members(tf):
            rel = ex.rel(m.name)
            if m.ischr() or m.isblk() or m.isfifo():
                raise ex.refuse(m.name, "is a device or fifo")
            if rel is None or not wanted(rel):
                continue
            if m.isdir():
                ex.mkdir(rel, m.name)
            elif m.issym():
                ex.symlink(rel, m.name, m.linkname)
            elif m.islnk():
                ex.hardlink(rel, m.name, m.linkname)
            elif m.isreg():
                if ex.total + m.size > ex.max_total:
                    raise ex.refuse(m.name, f"takes the uncompressed size over the limit of {ex.max_total}")
                # Per-member compressed sizes are unknown inside a compressed stream: use the running ratio
                # of the whole archive, a lower bound on the worst member's ratio.
                if compressed and m.size > _MIB and (ex.total + m.size) / archive_size > max_ratio:
                    raise ex.refuse(m.name, f"brings the compression ratio over {max_ratio:g} (a bomb?)")
                src = tf.extractfile(m)
                if src is None:
                    raise ex.refuse(m.name, "has no readable data")
                with src:
                    ex.write_file(rel, m.name, src, m.mode, m.mtime)
            else:
                raise ex.refuse(m.name, f"has unsupported tar type {m.type!r}")


def _completed(target: Path, archive: Path, members: list[str] | None = None) -> list[Path] | None:
    marker = target / MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        files = info["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FetchError(f"unreadable extraction marker {marker}: {e}; remove {target} to extract") from e
    if info.get("archive") != archive.name or info.get("size") != archive.stat().st_size:
        raise FetchError(
            f"{target} holds an extraction of {info.get('archive')!r} ({info.get('size')} bytes), "
            f"not of {archive} ({archive.stat().st_size} bytes); remove it to extract again"
        )
    if info.get("members") != members:
        raise FetchError(
            f"{target} holds the members {info.get('members') or 'all'} of {archive.name}, not "
            f"{members or 'all'}; remove it to extract again"
        )
    return [target / f for f in files]


def safe_extract(
    archive: Path,
    target: Path,
    *,
    max_total_bytes: int = 64 * 2**30,
    max_members: int = 20_000_000,  # Union14M-L's release alone has about 3.6M files
    max_ratio: float = 1000.0,
    members: tuple[str, ...] | None = None,
) -> list[Path]:
    """Extract a zip/tar(.gz/.bz2/.xz) archive into `target` atomically; returns the extracted file paths.

    `members`: only the folders listed (see `member_filter`); the rest of the archive is never written.
    Refuses (FetchError) absolute paths, '..', links leaving the target, devices/fifos and bombs. A target
    completed earlier (marker file present, same members) is returned as is, without extracting again.
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FetchError(f"archive not found: {archive}")
    wanted_list = sorted(members) if members is not None else None
    done = _completed(target, archive, wanted_list)
    if done is not None:
        return done
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()  # an empty leftover directory is no one's data
    elif target.exists() or target.is_symlink():
        raise FetchError(f"{target} exists but is not a complete extraction of {archive}; remove it first")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extracting-", dir=target.parent))
    except OSError as e:
        raise FetchError(f"cannot create a directory next to {target}: {e}") from e
    try:
        kind = _archive_kind(archive)
        ex = _Extractor(archive, tmp, max_total_bytes, max_members)
        wanted = member_filter(members)
        if kind == "zip":
            _extract_zip(archive, ex, max_ratio, wanted)
        else:
            _extract_tar(archive, ex, max_ratio, kind != "tar", wanted)
        ex.final_check()
        if members is not None and not ex.files:
            raise FetchError(f"{archive} has no members under {', '.join(members)}; is it the right archive?")
        marker = {
            "archive": archive.name,
            "size": archive.stat().st_size,
            "members": wanted_list,
            "files": ex.files,
        }
        (tmp / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process may have finished the same extraction meanwhile: its result is as good.
            done = _completed(target, archive, wanted_list)
            if done is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return done
    except FetchError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as e:  # corrupt archives raise many types (BadZipFile, TarError, zlib/lzma errors...)
        shutil.rmtree(tmp, ignore_errors=True)
        raise FetchError(f"cannot extract {archive} into {target}: {type(e).__name__}: {e}") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / f for f in ex.files]
