"""The ``promote`` command line: parse options, call the core, print, exit with its code.

Commands live in one module per area (``esv_cmds``, ``engine_cmds``, ``email_cmds``,
``sandbox_cmds``); each exposes ``register(group)``. This module owns the one error handler.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from esv import EsvError
from promote import __version__
from promote.errors import PromoteError

__all__ = ["Context", "handle_errors", "main", "pass_context"]

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """Options shared by every command."""

    def __init__(self, workspace: Path | None, debug: bool) -> None:
        self.workspace_option = workspace
        self.debug = debug


pass_context = click.make_pass_decorator(Context)


def fail(error: EsvError | PromoteError, *, debug: bool) -> NoReturn:
    """Print an error for people (traceback only with --debug) and exit with its code."""
    if debug:
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    click.echo(f"error: {error}", err=True)
    sys.exit(error.exit_code)


def handle_errors(ctx: Context, call: Callable[[], int | None]) -> int:
    """Run ``call``; map library errors to their exit codes; Ctrl-C to 130."""
    try:
        return call() or 0
    except (EsvError, PromoteError) as error:
        fail(error, debug=ctx.debug)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="promote")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Workspace directory (default: the nearest directory holding environments/).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(click_ctx: click.Context, workspace: Path | None, debug: bool) -> None:
    """Carry configuration and ESVs through the chain of environments."""
    click_ctx.obj = Context(workspace, debug)


def _register() -> None:
    from promote.cli import email_cmds, engine_cmds, esv_cmds, sandbox_cmds

    for module in (esv_cmds, engine_cmds, email_cmds, sandbox_cmds):
        module.register(cli)


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="promote")
