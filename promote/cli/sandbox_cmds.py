"""``promote sandbox serve``: an AIC-compatible (and Okta-compatible) server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from promote.cli import Context, handle_errors, pass_context
from promote.errors import BlockedError

if TYPE_CHECKING:
    from promote.sandbox.server import EnvSpec, SandboxServer

__all__ = ["sandbox_group"]

_KINDS = ("aic", "okta")


@click.group("sandbox")
def sandbox_group() -> None:
    """A local tenant server for rehearsing pipelines offline."""


@sandbox_group.command("serve")
@click.option(
    "--env",
    "envs",
    multiple=True,
    required=True,
    metavar="NAME[:KIND]",
    help="An environment to serve, in chain order (kind aic or okta; default aic). "
    "The first aic environment is mutable; each later one is promoted from the one before.",
)
@click.option("--port", type=int, default=0, show_default=True, help="Port (0: any free port).")
@click.option(
    "--token-env",
    default="PROMOTE_SANDBOX_TOKEN",
    show_default=True,
    metavar="VAR",
    help="Environment variable holding the token every request must carry "
    "(Authorization: Bearer <token> or SSWS <token>).",
)
@click.option("--latency-ms", type=float, default=0.0, help="Added latency per request.")
@click.option(
    "--fail",
    "failures",
    multiple=True,
    metavar="STATUS:COUNT:REGEX",
    help="Answer the next COUNT requests matching REGEX (against 'METHOD /env/path') "
    "with STATUS, e.g. 500:2:GET /uat/environment/startup. Repeatable.",
)
@click.option(
    "--rate-limit", type=float, default=None, metavar="N", help="Requests per second (429 above)."
)
@click.option(
    "--restart-seconds",
    type=float,
    default=0.0,
    help="How long a restart takes.",
    show_default=True,
)
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".promote/sandbox"),
    show_default=True,
    help="Where the environments keep their state (one local tenant per environment).",
)
@click.option(
    "--service-account",
    "service_accounts",
    multiple=True,
    metavar="ID=JWK_FILE",
    help="Accept this service account at <env url>/am/oauth2/access_token (JWT-bearer "
    "grant); JWK_FILE holds its public JWK. Repeatable.",
)
@click.option(
    "--duration",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Stop after SECONDS (default: serve until Ctrl-C).",
)
@pass_context
def serve_command(
    ctx: Context,
    envs: tuple[str, ...],
    port: int,
    token_env: str,
    latency_ms: float,
    failures: tuple[str, ...],
    rate_limit: float | None,
    restart_seconds: float,
    state_dir: Path,
    service_accounts: tuple[str, ...],
    duration: float | None,
) -> None:
    """Serve environments on http://127.0.0.1:PORT/<env> until Ctrl-C."""

    def call() -> int:
        from promote.sandbox.server import start_sandbox

        token = os.environ.get(token_env)
        if not token:
            raise BlockedError(
                f"the sandbox needs a token: set the environment variable {token_env} "
                "(or name another with --token-env) and give tenants token: {env: "
                f"{token_env}}}"
            )
        specs = _env_specs(envs)
        server = start_sandbox(
            specs,
            state_dir,
            tokens=token,
            port=port,
            latency_ms=latency_ms,
            failures=failures,
            rate_limit=rate_limit,
            restart_seconds=restart_seconds,
            service_accounts=_service_accounts(service_accounts),
        )
        try:
            _announce(server, specs, state_dir, token_env)
            try:
                threading.Event().wait(duration)
            except KeyboardInterrupt:
                pass
        finally:
            server.stop()
        click.echo(f"stopped after {len(server.requests)} requests")
        return 0

    handle_errors(ctx, call)


def _env_specs(envs: tuple[str, ...]) -> list[EnvSpec]:
    """``--env NAME[:KIND]`` as specs: the first AIC environment is the mutable one."""
    from promote.sandbox.server import EnvSpec

    specs = []
    seen_aic = False
    for text in envs:
        name, _, kind = text.partition(":")
        kind = kind or "aic"
        if kind not in _KINDS:
            raise BlockedError(f"--env {text}: kind must be one of {', '.join(_KINDS)}")
        specs.append(EnvSpec(name, kind, mutable=kind == "aic" and not seen_aic))
        seen_aic = seen_aic or kind == "aic"
    return specs


def _service_accounts(texts: tuple[str, ...]) -> dict[str, Any]:
    """``--service-account ID=JWK_FILE`` as id -> public JWK."""
    accounts = {}
    for text in texts:
        account, _, path = text.partition("=")
        try:
            accounts[account] = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise BlockedError(
                f"--service-account {text}: expected ID=JWK_FILE with a public JWK ({exc})"
            ) from None
    return accounts


def _announce(server: SandboxServer, specs: list[EnvSpec], state_dir: Path, token_env: str) -> None:
    click.echo(f"promote sandbox on http://127.0.0.1:{server.port} (state: {state_dir})")
    lower: str | None = None
    for spec in specs:
        role = spec.kind
        if spec.kind == "aic":
            role += ", mutable" if spec.mutable else f", promoted from {lower}"
            lower = spec.name
        click.echo(f"  {spec.name:<12} {server.url(spec.name)}  ({role})")
    click.echo(f"token: ${token_env}; Ctrl-C to stop", nl=True)
