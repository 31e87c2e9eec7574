"""The sandbox: a real HTTP server on 127.0.0.1 serving several named environments.

Each environment lives under a path prefix (``http://127.0.0.1:PORT/<env>``) and is an
:class:`~promote.sandbox.routes.Api`: AIC (:class:`~promote.sandbox.aic_api.AicApi`, backed by
a ``local`` tenant in ``state_dir/<env>``) or Okta (``promote.sandbox.okta_api.OktaApi``).
Every request needs the environment's bearer (or ``SSWS``) token. Knobs for rehearsing
failure: added latency, injected failures (status, count, path regex) and a rate limit
(requests per second, answered 429 with ``Retry-After``). Every request is logged in
:attr:`SandboxServer.requests`.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from promote.errors import BlockedError, ImmutableError, LockedError, PromoteError
from promote.sandbox.oauth import TOKEN_PATH, TokenEndpoint, public_key_from_jwk
from promote.sandbox.routes import Api, SandboxRequest, SandboxResponse, error

__all__ = [
    "EnvSpec",
    "FailureRule",
    "LoggedRequest",
    "SandboxServer",
    "parse_failure",
    "start_sandbox",
]


@dataclass(frozen=True)
class EnvSpec:
    """One served environment: name, API kind, whether its config is directly writable."""

    name: str
    kind: str = "aic"
    mutable: bool = False


@dataclass
class FailureRule:
    """Answer the next ``count`` requests whose ``METHOD /env/path`` matches with ``status``."""

    status: int
    count: int
    pattern: re.Pattern[str]
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        self.remaining = self.count


def parse_failure(text: str) -> FailureRule:
    """``STATUS:COUNT:REGEX`` (``500:2:GET /uat/environment/startup``) as a rule."""
    status, count, pattern = (text.split(":", 2) + ["", ""])[:3]
    try:
        return FailureRule(int(status), int(count), re.compile(pattern))
    except (ValueError, re.error) as exc:
        raise BlockedError(
            f"--fail {text!r}: expected STATUS:COUNT:REGEX, e.g. 500:2:/environment/startup ({exc})"
        ) from None


@dataclass(frozen=True)
class LoggedRequest:
    """One request the sandbox answered."""

    method: str
    env: str
    path: str
    status: int


class _RateLimiter:
    """A token bucket: ``rate`` requests per second, bursts up to ``rate``."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._clock = clock
        self._tokens = rate
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 when the request may pass, else the seconds until it could."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate


class SandboxServer:
    """A running sandbox; :meth:`url` gives each environment's tenant URL, :meth:`stop` ends it."""

    def __init__(
        self,
        apis: Mapping[str, Api],
        *,
        tokens: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        failures: Sequence[FailureRule] = (),
        rate_limit: float | None = None,
        token_endpoint: TokenEndpoint | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.apis = dict(apis)
        self.token_endpoint = token_endpoint
        self.tokens = dict(tokens)
        self.latency = latency_ms / 1000.0
        self.failures = list(failures)
        self.requests: list[LoggedRequest] = []
        self.peak_in_flight = 0
        """Most requests ever being answered at once (reset it to measure a phase)."""
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self._limiter = _RateLimiter(rate_limit, clock) if rate_limit else None
        self._sleep = sleep
        self._failure_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="promote-sandbox",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port actually bound."""
        return int(self._httpd.server_address[1])

    def url(self, env: str) -> str:
        """The tenant URL of ``env`` (``http://127.0.0.1:PORT/<env>``)."""
        if env not in self.apis:
            raise KeyError(f"the sandbox serves {sorted(self.apis)}, not {env!r}")
        return f"http://127.0.0.1:{self.port}/{env}"

    def writes(self, env: str | None = None) -> list[LoggedRequest]:
        """Logged requests that may change state (everything but GET and HEAD)."""
        return [
            r
            for r in self.requests
            if r.method not in ("GET", "HEAD") and (env is None or r.env == env)
        ]

    def stop(self) -> None:
        """Stop serving and close every environment's store."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        for api in self.apis.values():
            api.close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def respond(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> SandboxResponse:
        """Answer one raw request (the HTTP handler's only call)."""
        split = urlsplit(target)
        env, _, rest = split.path.lstrip("/").partition("/")
        path = "/" + rest
        with self._flight_lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            response = self._answer(env, method, path, split.query, headers, body)
        finally:
            with self._flight_lock:
                self._in_flight -= 1
        self.requests.append(LoggedRequest(method, env, path, response.status))
        return response

    def _answer(
        self,
        env: str,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> SandboxResponse:
        api = self.apis.get(env)
        if api is None:
            return error(404, f"no environment {env!r} here; serving {sorted(self.apis)}")
        if self.latency:
            self._sleep(self.latency)
        if self._limiter is not None:
            wait = self._limiter.take()
            if wait > 0:
                return SandboxResponse(
                    429,
                    {"code": 429, "message": "Too Many Requests"},
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
        if self.token_endpoint is not None and method == "POST" and path == TOKEN_PATH:
            return self.token_endpoint.exchange(env, self.url(env) + TOKEN_PATH, body)
        if not self._authorized(env, headers.get("authorization", "")):
            return SandboxResponse(
                401, {"code": 401, "reason": "Unauthorized", "message": "Access Denied"}
            )
        injected = self._injected(f"{method} /{env}{path}")
        if injected is not None:
            return injected
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                if "json" in headers.get("content-type", ""):
                    return error(400, "The request body is not valid JSON")
        request = SandboxRequest(method, path, parse_qs(query), headers, body, parsed)
        try:
            answer = api.handle(request)
        except LockedError as exc:
            return error(409, str(exc))
        except ImmutableError as exc:
            return SandboxResponse(403, {"code": 403, "reason": "Forbidden", "message": str(exc)})
        except PromoteError as exc:
            return error(400, str(exc))
        except Exception as exc:  # the sandbox must answer, never drop the connection
            return error(500, f"sandbox error: {type(exc).__name__}: {exc}")
        return answer if answer is not None else error(404, f"no route for {method} {path}")

    def _authorized(self, env: str, given: str) -> bool:
        token = self.tokens.get(env)
        if token is None and self.token_endpoint is None:
            return True
        if token is not None and given in (f"Bearer {token}", f"SSWS {token}"):
            return True
        scheme, _, value = given.partition(" ")
        return (
            self.token_endpoint is not None
            and scheme == "Bearer"
            and self.token_endpoint.valid(env, value)
        )

    def _injected(self, line: str) -> SandboxResponse | None:
        with self._failure_lock:
            for rule in self.failures:
                if rule.remaining > 0 and rule.pattern.search(line):
                    rule.remaining -= 1
                    return error(rule.status, f"injected failure ({rule.status})")
        return None


def _handler_class(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else small responses wait for delayed ACKs (40 ms)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            response = server.respond(self.command, self.path, headers, body)
            payload = b"" if response.json is None else json.dumps(response.json).encode()
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the request log is :attr:`SandboxServer.requests`."""

    return Handler


def start_sandbox(
    envs: Sequence[str | EnvSpec],
    state_dir: Path,
    *,
    tokens: Mapping[str, str] | str | None = None,
    port: int = 0,
    latency_ms: float = 0.0,
    failures: Sequence[FailureRule | str] = (),
    rate_limit: float | None = None,
    restart_seconds: float = 0.0,
    service_accounts: Mapping[str, Mapping[str, Any]] | None = None,
    token_lifetime: float = 900.0,
    stale_status_polls: int = 0,
) -> SandboxServer:
    """Serve ``envs`` on 127.0.0.1 with state under ``state_dir/<env>``; returns at once.

    Plain names are AIC environments forming a chain in the given order: the first is mutable,
    every later one is immutable and promotable from the one before it. ``tokens``: one token
    for every environment, or per environment; ``None`` (and no service accounts) disables
    auth. ``service_accounts`` maps account ids to public JWKs: they get access tokens
    (``token_lifetime`` seconds) at ``<env url>/am/oauth2/access_token`` by the JWT-bearer
    grant. ``stale_status_polls``: after a promotion or rollback starts, that many status polls
    still answer the status from before (see :attr:`AicApi.stale_polls`).
    """
    specs = [
        EnvSpec(e, "aic", mutable=i == 0) if isinstance(e, str) else e for i, e in enumerate(envs)
    ]
    if not specs:
        raise BlockedError("the sandbox needs at least one environment (--env NAME)")
    names = [s.name for s in specs]
    if len(set(names)) != len(names) or not all(re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in names):
        raise BlockedError(f"environment names must be unique words: {names}")
    if tokens is None or isinstance(tokens, str):
        token_map = {name: tokens for name in names if tokens is not None}
    else:
        token_map = dict(tokens)
    rules = [parse_failure(f) if isinstance(f, str) else f for f in failures]
    endpoint = _token_endpoint(service_accounts, token_lifetime)
    apis = _apis(specs, Path(state_dir), restart_seconds, stale_status_polls)
    return SandboxServer(
        apis,
        tokens=token_map,
        port=port,
        latency_ms=latency_ms,
        failures=rules,
        rate_limit=rate_limit,
        token_endpoint=endpoint,
    )


def _apis(
    specs: Sequence[EnvSpec], state_dir: Path, restart_seconds: float, stale_status_polls: int
) -> dict[str, Api]:
    """One API per environment, each AIC one promoted from the AIC one before it; all closed
    again when one cannot be made."""
    apis: dict[str, Api] = {}
    previous: EnvSpec | None = None
    try:
        for spec in specs:
            apis[spec.name] = _api(spec, previous, state_dir, restart_seconds, stale_status_polls)
            if spec.kind == "aic":
                previous = spec
    except BaseException:
        for api in apis.values():
            api.close()
        raise
    return apis


def _token_endpoint(
    service_accounts: Mapping[str, Mapping[str, Any]] | None, lifetime: float
) -> TokenEndpoint | None:
    """The JWT-bearer token endpoint of ``service_accounts`` (account id -> public JWK)."""
    if not service_accounts:
        return None
    try:
        keys = {k: public_key_from_jwk(v) for k, v in service_accounts.items()}
    except (ValueError, KeyError) as exc:
        raise BlockedError(f"service account keys must be RSA public JWKs ({exc})") from None
    return TokenEndpoint(keys, lifetime=lifetime)


def _api(
    spec: EnvSpec,
    lower: EnvSpec | None,
    state_dir: Path,
    restart_seconds: float,
    stale_polls: int = 0,
) -> Api:
    if spec.kind == "okta":
        # Imported by name: the Okta API is optional for AIC-only sandboxes.
        okta_api = importlib.import_module("promote.sandbox.okta_api")
        api: Api = okta_api.OktaApi(state_dir / spec.name)
        return api
    if spec.kind != "aic":
        raise BlockedError(f"sandbox environment {spec.name}: unknown kind {spec.kind!r}")
    from promote.sandbox.aic_api import AicApi
    from promote.tenants.local import LocalTenant

    def tenant(env: EnvSpec) -> LocalTenant:
        # A stand-in for a remote tenant: its commits need not reach the disk before it
        # answers (atomic all the same), so fsyncs do not serialise concurrent requests.
        return LocalTenant(
            env.name,
            state_dir / env.name,
            mutable=env.mutable,
            restart_seconds=restart_seconds,
            durable=False,
        )

    return AicApi(
        tenant(spec), lower=tenant(lower) if lower is not None else None, stale_polls=stale_polls
    )
