"""Fixtures shared by several test files (pytest finds this file itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebusyn.synth import fonts as fontmod


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Keep the font-analysis cache of a test module out of the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REBUSYN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        fontmod.clear_cache()
        yield
    fontmod.clear_cache()


@pytest.fixture(scope="session")
def s3_server():  # noqa: ANN201
    """One moto S3 server on 127.0.0.1 for the whole session: fsspec caches S3 filesystems by their
    arguments, so a second server on another port would be missed by the cached client."""
    import fsspec

    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield fsspec.filesystem("s3")
    server.stop()


@pytest.fixture()
def s3(s3_server):  # noqa: ANN001, ANN201
    """(s3fs filesystem, a fresh bucket name) on the session's moto server."""
    import uuid

    bucket = f"rebusyn-{uuid.uuid4().hex[:12]}"  # moto keeps buckets for the whole process
    s3_server.mkdir(bucket)
    return s3_server, bucket


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would swallow requests meant for 127.0.0.1.
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "dest"


@pytest.fixture(scope="module")
def ray_instance():  # noqa: ANN201
    """A real local Ray instance for one test module (Ray's local mode no longer exists); shut down after."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
