"""Real mail servers on 127.0.0.1 for tests: aiosmtpd (plain, AUTH, STARTTLS, implicit TLS)
and a Graph-like HTTP server (token + sendMail endpoints) in a thread."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.helpers.http import QuietHandler, serving

USER = "mailer"
PASSWORD = "smtp-Pa55word-never-shown"


class _Controller(Controller):
    """aiosmtpd's Controller bound to an ephemeral port (port 0) on 127.0.0.1."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    async def _bind(self) -> Any:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _create_server(self) -> Any:
        return self._bind()


@dataclass
class Mailbox:
    """What the server received."""

    envelopes: list[Any] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    refuse: frozenset[str] = frozenset()
    """Recipients answered ``550``."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox


def _authenticator(mailbox: Mailbox):
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        mailbox.logins.append(auth_data.login.decode())
        ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    return check


@contextlib.contextmanager
def smtp_server(
    *,
    auth: bool = False,
    tls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    refuse: frozenset[str] = frozenset(),
    smtputf8: bool = True,
) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1: AUTH with USER/PASSWORD when ``auth``, STARTTLS
    with ``tls``, implicit TLS with ``implicit_tls``."""
    mailbox = Mailbox(refuse=refuse)
    kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}
    if auth:
        kwargs.update(authenticator=_authenticator(mailbox), auth_require_tls=tls is not None)
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=False)
    if implicit_tls is not None:
        kwargs.update(ssl_context=implicit_tls)
    controller = _Controller(mailbox, **kwargs)
    controller.start()
    try:
        yield SmtpServer(controller.port, mailbox)
    finally:
        controller.stop()


@dataclass(frozen=True)
class Certificates:
    server: ssl.SSLContext
    client: ssl.SSLContext


def certificates() -> Certificates:
    """A throw-away CA and a certificate for 127.0.0.1 / localhost, generated now."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Certificates(server, client)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) and never says anything."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield int(sock.getsockname()[1])


# -- Microsoft Graph look-alike ----------------------------------------------------------

CLIENT_ID = "client-1"
CLIENT_SECRET = "graph-Secret-never-shown"
TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0In0.sig-token-never-shown"


@dataclass
class GraphServer:
    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    sent: list[Any] = field(default_factory=list)

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/tenant/oauth2/v2.0/token"

    @property
    def mail_endpoint(self) -> str:
        return f"{self.url}/v1.0/users/me@acme.example/sendMail"


@contextlib.contextmanager
def graph_server(*, secret: str = CLIENT_SECRET, mail_status: int = 202) -> Iterator[GraphServer]:
    """A loopback HTTP server answering the token request (checking the client secret) and
    sendMail (checking the bearer token)."""
    state = GraphServer(url="")

    class Handler(QuietHandler):
        def _reply(self, status: int, body: Any = None) -> None:
            self.reply(status, body)

        def do_POST(self) -> None:
            body = self.body()
            state.requests.append((self.path, dict(self.headers), body))
            if self.path.endswith("/token"):
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                if form.get("client_id") == CLIENT_ID and form.get("client_secret") == secret:
                    self._reply(200, {"access_token": TOKEN, "token_type": "Bearer"})
                else:
                    self._reply(
                        401,
                        {"error": "invalid_client", "error_description": "bad client secret"},
                    )
            elif self.path.endswith("/sendMail"):
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._reply(401, {"error": {"code": "InvalidAuthenticationToken"}})
                    return
                state.sent.append(json.loads(body))
                self._reply(mail_status)
            else:
                self._reply(404)

    with serving(Handler) as url:
        state.url = url
        yield state
