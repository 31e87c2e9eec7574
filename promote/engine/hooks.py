"""Restart hooks: the env file's ``restart:`` run after an environment's ESVs changed.

A hook is an argv command (no shell; run in the workspace, with a timeout) or an HTTP POST
(2xx = success, with a timeout). A failure raises :class:`HookError` (exit 1) naming the
environment and what went wrong. A command runs with the whole environment, secrets included,
so every secret value in play (raw and in common encodings) is replaced by ``********`` in the
output quoted; a url is shown without its user info or query (:func:`display_url`).
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

from esv import MASK, SecretValue
from esv.envfile import RestartHook
from promote.errors import PromoteError

__all__ = ["HookError", "PostHook", "display_url", "redact", "run_restart_hook"]

PostHook = Callable[[str, float], None]
"""Send an HTTP POST to a url with a timeout; raise ``PromoteError`` unless 2xx."""

_OUTPUT_CHARS = 300
_KEPT_BYTES = 64 * 1024
_POLL_SECONDS = 0.05
_DRAIN_ROUNDS = 64


class HookError(PromoteError):
    """A restart hook failed or timed out."""

    def __init__(self, env: str, message: str) -> None:
        super().__init__(f"{env}: restart hook {message}")
        self.env = env


def display_url(url: str) -> str:
    """``url`` as it may be shown: no user info (a password), no query (a token), no
    fragment: ``https://user:pw@host/restart?key=k`` -> ``https://host/restart``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _forms(value: str) -> list[str]:
    # The ways a value commonly shows up in output: raw, JSON-escaped, URL-encoded, base64.
    raw = value.encode()
    forms = [
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value),
    ]
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms += [text, text.rstrip("=")]
    return forms


def redact(text: str, secrets: Collection[SecretValue | str]) -> str:
    """``text`` with every value of ``secrets`` (raw, JSON-escaped, URL-encoded, base64)
    replaced by ``********``; longer forms first, so no part of one is left."""
    forms: set[str] = set()
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, SecretValue) else secret
        if value:
            forms.update(form for form in _forms(value) if form)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def _url_secrets(url: str) -> list[str]:
    # The parts of a hook url that display_url leaves out and that may hold a credential.
    # A user name alone is a token (https://TOKEN@host); beside a password it is a name.
    parts = urlsplit(url)
    user = parts.username if parts.password is None else None
    return [item for item in (parts.password, user, parts.query) if item]


def _post(url: str, timeout: float) -> None:
    # httpx (about 25 ms to import) only when a webhook is sent, not for every run.
    from promote.http import HttpClient, RetryPolicy

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
    """Run ``argv`` in a session of its own; its exit status and its stderr (else stdout).

    Output is read until the command itself exits: a child it left running in the background
    that still holds its pipes is not waited for. On a timeout or Ctrl-C the command's whole
    process group is killed (a ``sleep`` it started included) and the command is reaped.
    """
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(environ) if environ is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise HookError(env, f"{argv[0]} could not be started: {error.strerror}") from None
    assert process.stdout is not None and process.stderr is not None
    out, err = bytearray(), bytearray()
    buffers = {process.stdout.fileno(): out, process.stderr.fileno(): err}
    try:
        with selectors.DefaultSelector() as selector:
            for fd in buffers:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            while process.poll() is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _kill_group(process)
                    raise HookError(env, f"{argv[0]} did not finish within {timeout:g}s")
                wait = min(remaining, _POLL_SECONDS)
                if selector.get_map():
                    _read_ready(selector, buffers, wait)
                else:
                    time.sleep(wait)
            # The command exited: take what its pipes hold now, without waiting for the
            # end of a child that may still hold them (bounded: that child may keep writing).
            for _ in range(_DRAIN_ROUNDS):
                if not selector.get_map() or not _read_ready(selector, buffers, 0):
                    break
    except BaseException:
        _kill_group(process)
        raise
    finally:
        process.stdout.close()
        process.stderr.close()
    return process.returncode, bytes(err or out).decode(errors="replace")


def _read_ready(
    selector: selectors.BaseSelector, buffers: Mapping[int, bytearray], timeout: float
) -> bool:
    """Read what the pipes ready within ``timeout`` hold; unregister a pipe at its end.
    Whether anything was read or closed. Each buffer keeps its last ``_KEPT_BYTES``."""
    progressed = False
    for key, _ in selector.select(timeout):
        fd = key.fd
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        progressed = True
        if not data:
            selector.unregister(fd)
            continue
        buffer = buffers[fd]
        buffer += data
        del buffer[:-_KEPT_BYTES]
    return progressed


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill ``process`` and every process of its group (its session), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already
    process.wait()


def run_restart_hook(
    hook: RestartHook,
    *,
    env: str,
    cwd: Path,
    environ: Mapping[str, str] | None = None,
    post: PostHook = _post,
    secrets: Collection[SecretValue] = (),
) -> str:
    """Run ``hook`` for ``env``; returns a one-line description of what ran.

    Commands run with ``cwd`` as working directory, without a shell; a non-zero exit, a
    missing program or a timeout raise :class:`HookError` with the tail of its output, in
    which every value of ``secrets`` (the secrets in play) is masked.
    """
    if hook.command:
        argv = list(hook.command)
        returncode, output = _run_command(argv, env, cwd, environ, hook.timeout)
        if returncode != 0:
            tail = redact(output, secrets).strip()
            detail = f": {tail[-_OUTPUT_CHARS:]}" if tail else ""
            raise HookError(env, f"{argv[0]} exited with status {returncode}{detail}")
        return f"ran {argv[0]}"
    if hook.url:
        shown = display_url(hook.url)
        try:
            post(hook.url, hook.timeout)
        except PromoteError as error:
            reason = redact(
                str(error).replace(hook.url, shown), [*secrets, *_url_secrets(hook.url)]
            )
            raise HookError(env, f"POST {shown} failed: {reason}") from None
        return f"POST {shown}"
    return "no hook"
