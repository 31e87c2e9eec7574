"""The ``promote`` command line: parse options, call the core, print, exit with its code.

Commands live in one module per area (``esv_cmds``, ``engine_cmds``, ``email_cmds``,
``sandbox_cmds``, ``state_cmds``, ``adopt_cmds``), each loaded only when one of its
commands runs (Click's lazy-loading group pattern): ``promote --help`` lists every command
from :data:`COMMANDS` without importing any of them. This module owns the one error handler.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import click

from esv.errors import EsvError
from promote import __version__
from promote.errors import PromoteError

__all__ = ["COMMANDS", "Context", "handle_errors", "main", "pass_context"]

COMMANDS: dict[str, tuple[str, str, str]] = {
    "email": ("email_cmds", "email_group", "The email provider of each environment."),
    "esv": (
        "esv_cmds",
        "esv_group",
        "Inspect ESVs: referenced vs defined, what each environment holds, where each is used.",
    ),
    "history": ("engine_cmds", "history_command", "Promotions and rollbacks, oldest first."),
    "import": (
        "adopt_cmds",
        "import_group",
        "Create or update a workspace from an fr-config-manager repository or frodo exports.",
    ),
    "init": (
        "esv_cmds",
        "init_cmd",
        "Scaffold a workspace in DIRECTORY (default: the current directory).",
    ),
    "plan": (
        "engine_cmds",
        "plan_command",
        "Show what 'run --to ENV' would change, stage by stage; changes nothing.",
    ),
    "pull": (
        "adopt_cmds",
        "pull_command",
        "Write what ENV's tenant holds into the workspace: config, variables, secret ids.",
    ),
    "resolve": (
        "esv_cmds",
        "resolve_cmd",
        "The config as ENV would run it, as JSON: one OBJECT_ID -> that object, else {id: object}.",
    ),
    "rollback": (
        "engine_cmds",
        "rollback_command",
        "Undo ENV's last promotion (recorded in the history); shows what it restores first.",
    ),
    "run": (
        "engine_cmds",
        "run_command",
        "Carry config and ESVs up the chain to ENV, stage by stage.",
    ),
    "sandbox": (
        "sandbox_cmds",
        "sandbox_group",
        "A local tenant server for rehearsing pipelines offline.",
    ),
    "state": (
        "state_cmds",
        "state_group",
        "The state store: run lock, unfinished runs, history (local or S3).",
    ),
    "status": (
        "engine_cmds",
        "status_command",
        "Each environment: in sync with the one below? pending ESVs, last promotion, drift.",
    ),
    "validate": (
        "esv_cmds",
        "validate_cmd",
        "Check every file for every environment; nothing changes.",
    ),
}
"""Every command: ``name -> (module under promote.cli, attribute, first paragraph of its
help)``. The help is what ``--help`` lists; a test keeps it equal to the command's own."""


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use (Click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"promote.cli.{module}"), attribute)
            assert isinstance(command, click.Command)
            _add_global_options(command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click.Group does, but a command not loaded yet is listed from COMMANDS.
        listed = [
            (name, self.commands.get(name) or click.Command(name, help=COMMANDS[name][2]))
            for name in self.list_commands(ctx)
        ]
        listed = [(name, command) for name, command in listed if not command.hidden]
        if not listed:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in listed)
        rows = [(name, command.get_short_help_str(limit)) for name, command in listed]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class Context:
    """Options shared by every command."""

    def __init__(self, workspace: Path | None = None, debug: bool = False) -> None:
        self.workspace_option = workspace
        self.debug = debug


pass_context = click.make_pass_decorator(Context)


def _print_traceback(error: BaseException) -> None:
    import traceback  # with textwrap, ~1 ms to load: only for --debug

    traceback.print_exception(error, file=sys.stderr)


def fail(error: EsvError | PromoteError, *, debug: bool) -> NoReturn:
    """Print an error for people (traceback only with --debug) and exit with its code."""
    if debug:
        _print_traceback(error)
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
            _print_traceback(error)
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except Exception as error:
        if ctx.debug:
            _print_traceback(error)
        click.echo(
            f"error: internal error ({type(error).__name__}); this is a bug in promote: "
            "rerun with --debug for the traceback and report it",
            err=True,
        )
        sys.exit(1)
    if code:
        sys.exit(code)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


_GC_THRESHOLD = 200_000
"""Allocations between young-generation collections while a command runs (Python's
default: 700). A command builds hundreds of thousands of parsed JSON values that are freed
by reference counting, not by the cycle collector, which would otherwise scan them again
and again: about 10% of a plan or resolve of 20,000 objects. (mypy does the same.)"""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI (``SystemExit`` with its exit code, as Click ends)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(_GC_THRESHOLD, *thresholds[1:])
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="promote")
    finally:
        gc.set_threshold(*thresholds)


def console_script() -> NoReturn:
    """The ``promote`` command: :func:`main`, then, once its output is flushed and the
    functions registered with ``atexit`` have run, the process ends without the interpreter
    freeing every object one by one (~15 ms after a plan of 20,000 objects; the system
    frees the memory at once). mypy ends the same way. With threads still running, it ends
    as Python does."""
    try:
        main()
        code: object = 0
    except SystemExit as done:
        code = done.code
    if threading.active_count() > 1:
        sys.exit(code)  # type: ignore[arg-type]
    if code is None or isinstance(code, int):
        status = code or 0
    else:  # as Python does: the text on stderr, exit 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a reader that went away: Python then ends with 120
        status = status or 120
    os._exit(status)
