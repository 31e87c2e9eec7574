"""Adoption commands: ``import fr-config-manager``, ``import frodo``, ``pull`` (SPEC 6)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from esv.errors import Problem
from promote.adopt.model import Collected
from promote.adopt.writer import FileChange, plan_changes, write_changes
from promote.cli import Context, handle_errors, pass_context
from promote.cli.completion import complete_object_ids, env_option
from promote.errors import BlockedError

__all__ = ["import_group", "pull_command"]


def _target(ctx: Context) -> Path:
    """The workspace to import into: --workspace, else the one around the current
    directory, else the current directory (an import may create the workspace)."""
    if ctx.workspace_option is not None:
        return ctx.workspace_option.resolve()
    from promote.workspace import find_workspace

    try:
        return find_workspace(Path.cwd())
    except BlockedError:
        return Path.cwd().resolve()


def _report(found: Collected, changes: list[FileChange], root: Path) -> None:
    written = [c for c in changes if c.status != "unchanged"]
    if written:
        click.echo(f"{found.origin} -> workspace {root}, environment {found.env}:")
    else:
        click.echo(f"{found.origin}: the workspace already holds all of it; nothing changed")
    for change in changes:
        click.echo(f"  {change.status:<9}  {change.path}")
    if found.imported:
        click.echo("read:")
        for line in found.imported:
            click.echo(f"  {line}")
    if found.skipped:
        click.echo("skipped:")
        for line in found.skipped:
            click.echo(f"  {line}")
    for warning in found.warnings:
        click.echo(f"warning: {warning}", err=True)
    if found.to_set:
        click.echo("secrets are read from these environment variables (set them before plan):")
        for name, esv_id in sorted(found.to_set.items()):
            click.echo(f"  {name}  ({esv_id})")


def _import(ctx: Context, found: Collected, force: bool) -> int:
    root = _target(ctx)
    changes = plan_changes(root, found)
    write_changes(root, changes, force=force)
    _report(found, changes, root)
    return 0


_FORCE = click.option(
    "--force", is_flag=True, help="Overwrite files that exist with other content."
)
_ENV = env_option("--env", "env", required=True, help="The environment the import describes.")


@click.group("import")
def import_group() -> None:
    """Create or update a workspace from an fr-config-manager repository or frodo exports."""


@import_group.command("fr-config-manager")
@click.argument("directory", type=click.Path(path_type=Path))
@_ENV
@click.option(
    "--env-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A .env file with the values ${NAME} references stand for (it wins over the environment).",
)
@_FORCE
@pass_context
def fr_config_manager_command(
    ctx: Context, directory: Path, env: str, env_file: Path | None, force: bool
) -> None:
    """Import an fr-config-manager repository DIRECTORY as environment ENV."""

    def call() -> int:
        from promote.adopt.dotenv import read_dotenv
        from promote.adopt.frconfig import read_fr_config_manager

        environ = dict(os.environ)
        dotenv_problems: list[Problem] = []
        if env_file is not None:
            values, dotenv_problems = read_dotenv(env_file, shown=str(env_file))
            environ.update(values)
        found = read_fr_config_manager(directory, env=env, environ=environ)
        found.problems[:0] = dotenv_problems
        return _import(ctx, found, force)

    handle_errors(ctx, call)


@import_group.command("frodo")
@click.argument("path", type=click.Path(path_type=Path))
@_ENV
@_FORCE
@pass_context
def frodo_command(ctx: Context, path: Path, env: str, force: bool) -> None:
    """Import frodo exports (a file or a directory of them) as environment ENV."""

    def call() -> int:
        from promote.adopt.frodo import read_frodo

        return _import(ctx, read_frodo(path, env=env), force)

    handle_errors(ctx, call)


@click.command("pull")
@env_option("--env", "env", required=True, help="The environment whose tenant to read.")
@click.argument(
    "object_ids", nargs=-1, metavar="[OBJECT_ID]...", shell_complete=complete_object_ids
)
@_FORCE
@pass_context
def pull_command(ctx: Context, env: str, object_ids: tuple[str, ...], force: bool) -> None:
    """Write what ENV's tenant holds into the workspace: config, variables, secret ids."""

    def call() -> int:
        from promote.adopt.pull import pull
        from promote.engine.session import Tenants
        from promote.state.factory import open_store
        from promote.workspace import load_workspace

        workspace = load_workspace(ctx.workspace_option, partial=True)
        tenants = Tenants(workspace, store=open_store(workspace))
        try:
            found = pull(workspace, env, object_ids, tenants=tenants)
        finally:
            tenants.close()
        changes = plan_changes(workspace.root, found)
        write_changes(workspace.root, changes, force=force)
        _report(found, changes, workspace.root)
        return 0

    handle_errors(ctx, call)
