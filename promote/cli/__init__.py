"""The ``promote`` command line: parse options, call the core, print, exit with its code.

Commands live in one module per area (``esv_cmds``, ``engine_cmds``, ``email_cmds``,
``sandbox_cmds``); each exposes ``register(group)``. This module owns the one error handler.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import click

from esv import EsvError
from promote import __version__
from promote.errors import PromoteError

__all__ = ["Context", "handle_errors", "main", "pass_context"]


class Context:
    """Options shared by every command."""

    def __init__(self, workspace: Path | None, debug: bool) -> None:
        self.workspace_option = workspace
        self.debug = debug


pass_context = click.make_pass_decorator(Context)


def fail(error: EsvError | PromoteError, *, debug: bool) -> NoReturn:
    """Print an error for people (traceback only with --debug) and exit with its code."""
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    click.echo(f"error: {error}", err=True)
    sys.exit(error.exit_code)


def handle_errors(ctx: Context, call: Callable[[], int | None]) -> None:
    """Run ``call`` and exit with the code it returns when that is not 0; map library errors
    to their exit codes; Ctrl-C to 130.

    Anything else is a bug: it exits 1 naming only the exception's type (its text could hold
    a value from the workspace, a secret included); ``--debug`` shows the traceback.
    """
    try:
        code = call() or 0
    except (EsvError, PromoteError) as error:
        fail(error, debug=ctx.debug)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as error:
        # File-system and network failures name a path or an address, never a value.
        if ctx.debug:
            traceback.print_exception(error, file=sys.stderr)
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except Exception as error:
        if ctx.debug:
            traceback.print_exception(error, file=sys.stderr)
        click.echo(
            f"error: internal error ({type(error).__name__}); this is a bug in promote: "
            "rerun with --debug for the traceback and report it",
            err=True,
        )
        sys.exit(1)
    if code:
        sys.exit(code)


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


def _set_workspace(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).workspace_option = value


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Context).debug = True


def _global_options() -> list[click.Parameter]:
    """``--workspace`` and ``--debug`` as every command also accepts them after its name."""
    return [
        click.Option(
            ["--workspace", "-w"],
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            expose_value=False,
            is_eager=True,
            callback=_set_workspace,
            help="Workspace directory (default: the nearest directory holding environments/).",
        ),
        click.Option(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            is_eager=True,
            callback=_set_debug,
            help="Show tracebacks for errors.",
        ),
    ]


def _add_global_options(command: click.Command) -> None:
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_global_options(sub)
    else:
        command.params.extend(_global_options())


def _register() -> None:
    from promote.cli import email_cmds, engine_cmds, esv_cmds, sandbox_cmds, state_cmds

    for module in (esv_cmds, engine_cmds, email_cmds, sandbox_cmds, state_cmds):
        module.register(cli)
    for command in cli.commands.values():
        _add_global_options(command)


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="promote")
