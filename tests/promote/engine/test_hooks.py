"""Restart hooks: argv commands and HTTP POSTs (a real server on 127.0.0.1)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from esv.envfile import RestartHook
from promote.engine.hooks import HookError, run_restart_hook


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen.append(self.path)
            status = 500 if self.path.endswith("/fail") else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def test_http_hook_posts(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, seen = server
    summary = run_restart_hook(RestartHook(None, f"{url}/restart", 5), env="dev", cwd=tmp_path)
    assert summary == f"POST {url}/restart"
    assert seen == ["/restart"]


def test_http_hook_failure_names_env_and_status(
    server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, _ = server
    with pytest.raises(HookError) as caught:
        run_restart_hook(RestartHook(None, f"{url}/fail", 5), env="uat", cwd=tmp_path)
    assert str(caught.value).startswith(f"uat: restart hook POST {url}/fail failed")
    assert "500" in str(caught.value)


def test_command_hook_runs_in_the_workspace(tmp_path: Path) -> None:
    argv = (sys.executable, "-c", "open('ran', 'w').write('yes')")
    assert run_restart_hook(RestartHook(argv, None, 10), env="dev", cwd=tmp_path).startswith("ran ")
    assert (tmp_path / "ran").read_text() == "yes"


def test_missing_program_is_a_hook_error(tmp_path: Path) -> None:
    with pytest.raises(HookError) as caught:
        run_restart_hook(RestartHook(("./no-such-script",), None, 10), env="dev", cwd=tmp_path)
    assert "./no-such-script could not be started" in str(caught.value)
