"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers.ci_api import FakeCiApi, serve
from tests.helpers.example import copy_example
from tests.helpers.s3 import S3Server

if TYPE_CHECKING:
    from promote.sandbox import SandboxServer


@pytest.fixture(autouse=True)
def _config_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test's workspace config cache in a directory of its own (never the user's)."""
    path = tmp_path_factory.mktemp("config-cache")
    monkeypatch.setenv("PROMOTE_CACHE_DIR", str(path))
    return path


@pytest.fixture
def trusted_config_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Config files written a moment ago count as old enough for the cache of digests (it
    otherwise leaves out files written in the last two seconds)."""
    import promote.configtree

    monkeypatch.setattr(promote.configtree, "_RACY_NS", 0)


@pytest.fixture
def config_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The config files the workspace reads (``config/...json``), in order."""
    import promote.configtree

    seen: list[str] = []
    real = promote.configtree.load_json

    def counting(path: Any, *, relpath: str) -> Any:
        seen.append(relpath)
        return real(path, relpath=relpath)

    monkeypatch.setattr(promote.configtree, "load_json", counting)
    return seen


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's standalone S3 server on 127.0.0.1 (one per test session)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def start_sandboxes(tmp_path: Path) -> Iterator[Callable[..., SandboxServer]]:
    """Start ``promote sandbox`` servers on 127.0.0.1 (``start(envs, tokens=..., **kw)``, state
    under the test's tmp_path unless ``state`` is given); every one is stopped afterwards."""
    from promote.sandbox import start_sandbox

    started: list[SandboxServer] = []

    def start(envs: Sequence[Any], *, state: Path | None = None, **kw: Any) -> SandboxServer:
        server = start_sandbox(list(envs), state or tmp_path / f"sandbox-{len(started)}", **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the shipped example workspace in ``tmp_path / "ws"``."""
    return copy_example(tmp_path / "ws")


@pytest.fixture
def ci_api() -> Iterator[FakeCiApi]:
    """The fake GitHub and GitLab comment APIs on 127.0.0.1 (tests.helpers.ci_api)."""
    yield from serve()
