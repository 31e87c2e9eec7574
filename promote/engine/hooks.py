"""Restart hooks: the env file's ``restart:`` run after an environment's ESVs changed.

A hook is an argv command (no shell; run in the workspace, with a timeout) or an HTTP POST
(2xx = success, with a timeout). A failure raises :class:`HookError` (exit 1) naming the
environment and what went wrong.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from esv.envfile import RestartHook
from promote.errors import PromoteError
from promote.http import HttpClient, RetryPolicy

__all__ = ["HookError", "PostHook", "run_restart_hook"]

PostHook = Callable[[str, float], None]
"""Send an HTTP POST to a url with a timeout; raise ``PromoteError`` unless 2xx."""

_OUTPUT_CHARS = 300


class HookError(PromoteError):
    """A restart hook failed or timed out."""

    def __init__(self, env: str, message: str) -> None:
        super().__init__(f"{env}: restart hook {message}")
        self.env = env


def _post(url: str, timeout: float) -> None:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    base = f"{parts.scheme}://{parts.netloc}"
    client = HttpClient(base, timeout=timeout, retry=RetryPolicy(attempts=1))
    try:
        client.request("POST", path, authenticate=False)
    finally:
        client.close()


def _run_command(
    argv: list[str],
    env: str,
    cwd: Path,
    environ: Mapping[str, str] | None,
    timeout: float,
) -> tuple[int, str]:
    """Run ``argv``; its exit status and its stderr (else stdout). The child is always reaped,
    also on a timeout or Ctrl-C."""
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(environ) if environ is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as error:
        raise HookError(env, f"{argv[0]} could not be started: {error.strerror}") from None
    with process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise HookError(env, f"{argv[0]} did not finish within {timeout:g}s") from None
        except BaseException:
            process.kill()
            process.wait()
            raise
    return process.returncode, (err or out or b"").decode(errors="replace")


def run_restart_hook(
    hook: RestartHook,
    *,
    env: str,
    cwd: Path,
    environ: Mapping[str, str] | None = None,
    post: PostHook = _post,
) -> str:
    """Run ``hook`` for ``env``; returns a one-line description of what ran.

    Commands run with ``cwd`` as working directory, without a shell; a non-zero exit, a
    missing program or a timeout raise :class:`HookError` with the tail of its output.
    """
    if hook.command:
        argv = list(hook.command)
        returncode, output = _run_command(argv, env, cwd, environ, hook.timeout)
        if returncode != 0:
            tail = output.strip()
            detail = f": {tail[-_OUTPUT_CHARS:]}" if tail else ""
            raise HookError(env, f"{argv[0]} exited with status {returncode}{detail}")
        return f"ran {argv[0]}"
    if hook.url:
        try:
            post(hook.url, hook.timeout)
        except PromoteError as error:
            raise HookError(env, f"POST {hook.url} failed: {error}") from None
        return f"POST {hook.url}"
    return "no hook"
