"""Restart hooks: argv commands and HTTP POSTs (a real server on 127.0.0.1)."""

from __future__ import annotations

import _thread
import base64
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from esv import SecretValue
from esv.envfile import RestartHook
from promote.engine.hooks import HookError, display_url, redact, run_restart_hook
from tests.helpers.http import QuietHandler, serving


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802
            seen.append(self.path)
            self.reply(500 if self.path.split("?")[0].endswith("/fail") else 204)

    with serving(Handler) as url:
        yield url, seen


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


def test_display_url_drops_user_info_query_and_fragment() -> None:
    assert (
        display_url("https://u:pw@host.example:8443/a/b?key=k#f") == "https://host.example:8443/a/b"
    )
    assert display_url("http://TOKEN@[::1]/restart") == "http://[::1]/restart"
    assert display_url("http://host/") == "http://host/"


def test_redact_masks_raw_and_encoded_forms() -> None:
    value = SecretValue('p@ss w/"q"+=é')
    text = redact(
        " | ".join(
            [
                'p@ss w/"q"+=é',
                json.dumps('p@ss w/"q"+=é')[1:-1],
                quote('p@ss w/"q"+=é', safe=""),
                quote_plus('p@ss w/"q"+=é'),
                base64.b64encode('p@ss w/"q"+=é'.encode()).decode(),
                base64.urlsafe_b64encode('p@ss w/"q"+=é'.encode()).decode().rstrip("="),
            ]
        ),
        [value, SecretValue("")],
    )
    assert text == " | ".join(["********"] * 6)


def test_a_failing_command_hook_masks_the_secrets_in_its_output(tmp_path: Path) -> None:
    secret = "hook-Secret-4242"
    argv = (sys.executable, "-c", f"import sys; print('x' * 400 + {secret!r}); sys.exit(1)")
    with pytest.raises(HookError) as caught:
        run_restart_hook(
            RestartHook(argv, None, 10), env="dev", cwd=tmp_path, secrets=[SecretValue(secret)]
        )
    assert secret not in str(caught.value) and str(caught.value).endswith("x********")


def test_a_failing_url_hook_names_the_url_without_credentials(
    server: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, seen = server
    hook = RestartHook(None, url.replace("//", "//ops:pw-1234@") + "/fail?token=tok-5678", 5)
    with pytest.raises(HookError) as caught:
        run_restart_hook(hook, env="uat", cwd=tmp_path)
    text = str(caught.value)
    assert text.startswith(f"uat: restart hook POST {url}/fail failed")
    assert "pw-1234" not in text and "tok-5678" not in text
    assert seen == ["/fail?token=tok-5678"]


def _script(tmp_path: Path, body: str) -> tuple[str, ...]:
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return (str(script),)


def test_a_timeout_kills_the_hooks_children_too(tmp_path: Path) -> None:
    # The shell waits for its `sleep`: killing only the shell would leave the sleep holding
    # the pipes, and reading them would wait the sleep's whole 8 s.
    argv = _script(tmp_path, "echo started\nsleep 8\necho done")
    began = time.monotonic()
    with pytest.raises(HookError) as caught:
        run_restart_hook(RestartHook(argv, None, 1), env="dev", cwd=tmp_path)
    assert time.monotonic() - began < 6
    assert str(caught.value) == f"dev: restart hook {argv[0]} did not finish within 1s"


def test_a_hook_that_exits_0_leaving_a_child_behind_succeeds(tmp_path: Path) -> None:
    # The background sleep holds the pipes after the hook exited: its exit status counts.
    argv = _script(tmp_path, "sleep 8 &\necho started\nexit 0")
    began = time.monotonic()
    summary = run_restart_hook(RestartHook(argv, None, 3), env="dev", cwd=tmp_path)
    assert time.monotonic() - began < 6
    assert summary == f"ran {argv[0]}"


def test_a_failing_hook_that_leaves_a_child_behind_shows_its_output(tmp_path: Path) -> None:
    argv = _script(tmp_path, "sleep 8 &\necho 'cannot restart' >&2\nexit 3")
    began = time.monotonic()
    with pytest.raises(HookError) as caught:
        run_restart_hook(RestartHook(argv, None, 3), env="uat", cwd=tmp_path)
    assert time.monotonic() - began < 6
    assert str(caught.value) == f"uat: restart hook {argv[0]} exited with status 3: cannot restart"


def test_ctrl_c_kills_the_hooks_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    argv = _script(tmp_path, f"(sleep 2; touch {marker}) &\nsleep 8")
    timer = threading.Timer(0.5, lambda: _thread.interrupt_main())
    timer.start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_restart_hook(RestartHook(argv, None, 30), env="dev", cwd=tmp_path)
    assert time.monotonic() - began < 6
    time.sleep(2.5)
    assert not marker.exists()
