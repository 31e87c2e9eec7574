"""``promote email test``: send the test email through an environment's provider."""

from __future__ import annotations

import click

from promote.cli import Context, handle_errors, pass_context
from promote.cli.completion import env_option
from promote.email.probe import test_environment
from promote.workspace import load_workspace

__all__ = ["email_group"]


@click.group("email")
def email_group() -> None:
    """The email provider of each environment."""


@email_group.command("test")
@env_option("--env", "env_name", required=True, help="Environment to test.")
@click.option("--to", "to", required=True, metavar="ADDRESS", help="Recipient of the test.")
@click.option(
    "--live",
    is_flag=True,
    help="Test what ENV's tenant holds now (default: the config a run would deliver).",
)
@click.option(
    "--from",
    "sender",
    default=None,
    metavar="ADDRESS",
    help="Sender address (default: the provider's from).",
)
@pass_context
def test_command(ctx: Context, env_name: str, to: str, live: bool, sender: str | None) -> None:
    """Send the AIC console's test email to ADDRESS through ENV's email provider."""

    def call() -> None:
        workspace = load_workspace(ctx.workspace_option)
        result = test_environment(workspace, env_name, to, live=live, sender=sender)
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(result.summary)

    handle_errors(ctx, call)
