"""``promote init``, ``validate``, ``esv check|list|usage`` and ``resolve``.

Each command parses its options, calls the core (``promote.workspace``,
``promote.validation``, ``esv``), prints what it returned (machine output on stdout, warnings
and errors on stderr) and exits with the code the core's error carries (SPEC 4.1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import click

from esv import Problem, check_environment, id_to_token, index_references, is_valid_id, token_to_id
from esv.jsonfile import dump_pretty
from promote.cli import Context, handle_errors, pass_context
from promote.cli.completion import complete_esv_ids, complete_object_ids, env_option
from promote.errors import BlockedError
from promote.validation import (
    available_secrets,
    check_workspace,
    received_config,
    resolve_environment,
)
from promote.workspace import Workspace, init_workspace, load_workspace

__all__ = ["esv_group", "init_cmd", "resolve_cmd", "validate_cmd"]


def _workspace(ctx: Context) -> Workspace:
    return load_workspace(ctx.workspace_option)


def _known_env(workspace: Workspace, env: str) -> str:
    workspace.walk(env)  # BlockedError naming the chain when unknown
    return env


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _print_problems(problems: Iterable[Problem]) -> int:
    """Problems to stderr, one a line; returns how many are errors."""
    return _print_grouped({problem: [] for problem in problems})


def _print_grouped(found: Mapping[Problem, list[str]]) -> int:
    """Each problem once, tagged with every environment it holds for (unless its location is
    an environment file, which names it); returns how many are errors."""
    errors = 0
    for problem, envs in found.items():
        tag = ""
        if envs and not problem.location.startswith("environments/"):
            tag = f"[{', '.join(envs)}] "
        click.echo(f"{problem.severity}: {tag}{problem}", err=True)
        errors += problem.severity == "error"
    return errors


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@pass_context
def init_cmd(ctx: Context, directory: Path | None) -> None:
    """Scaffold a workspace in DIRECTORY (default: the current directory)."""
    root = directory or Path(".")

    def run() -> int:
        for rel in init_workspace(root):
            click.echo(f"created {root / rel}")
        click.echo(
            "next: set DEV_SMTP_PASSWORD (and the other stages' *_SMTP_PASSWORD), "
            "then run `promote validate`",
            err=True,
        )
        return 0

    handle_errors(ctx, run)


@click.command("validate")
@pass_context
def validate_cmd(ctx: Context) -> None:
    """Check every file for every environment; nothing changes."""

    def run() -> int:
        workspace = _workspace(ctx)
        results = check_workspace(workspace, environ=os.environ)
        found: dict[Problem, list[str]] = {}
        for env, problems in results.items():
            for problem in problems:
                found.setdefault(problem, []).append(env)
        errors = _print_grouped(found)
        warnings = len(found) - errors
        summary = (
            f"{_count(len(workspace.chain), 'environment')} ({' -> '.join(workspace.chain)}), "
            f"{_count(len(workspace.config), 'config object')}: "
            f"{_count(errors, 'error')}, {_count(warnings, 'warning')}"
        )
        if errors:
            raise BlockedError(f"validate: {summary}")
        click.echo(f"valid: {summary}")
        return 0

    handle_errors(ctx, run)


@click.group("esv")
def esv_group() -> None:
    """Inspect ESVs: referenced vs defined, what each environment holds, where each is used."""


@esv_group.command("check")
@env_option("--env", "env", required=True, metavar=None, help="Environment to check.")
@pass_context
def check_cmd(ctx: Context, env: str) -> None:
    """Referenced vs defined in ENV: missing (error), unused and mistyped (warning).

    Only the config objects ENV's tenant receives count (Okta: external.email).
    """

    def run() -> int:
        workspace = _workspace(ctx)
        file = workspace.environments[_known_env(workspace, env)]
        objects = received_config(workspace, env)
        _, absent = available_secrets(workspace, file, os.environ)
        problems = [*file.warnings, *check_environment(objects, file), *absent]
        errors = _print_problems(problems)
        referenced = {r.esv_id for r in index_references(objects)}
        summary = (
            f"{env}: {len(referenced)} ESVs referenced, "
            f"{len(file.variables) + len(file.secrets)} defined: "
            f"{_count(errors, 'error')}, {_count(len(problems) - errors, 'warning')}"
        )
        if errors:
            raise BlockedError(f"esv check: {summary}")
        click.echo(f"ok: {summary}")
        return 0

    handle_errors(ctx, run)


@esv_group.command("list")
@env_option("--env", "env", required=True, metavar=None, help="Environment whose ESVs to list.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_context
def list_cmd(ctx: Context, env: str, fmt: str) -> None:
    """ESVs of ENV: ids, kinds, types, variable values and secret sources (never values)."""

    def run() -> int:
        workspace = _workspace(ctx)
        file = workspace.environments[_known_env(workspace, env)]
        rows = [
            {"id": v.id, "kind": "variable", "type": v.type, "value": v.value}
            for v in file.variables.values()
        ] + [
            {"id": s.id, "kind": "secret", "type": "string", "source": s.source.describe()}
            for s in file.secrets.values()
        ]
        rows.sort(key=lambda row: row["id"])
        if fmt == "json":
            click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
            return 0
        width = max((len(row["id"]) for row in rows), default=2)
        for row in rows:
            shown = row.get("value", row.get("source", ""))
            if row["kind"] == "variable":
                shown = json.dumps(shown, ensure_ascii=False)
            click.echo(f"{row['id']:<{width}}  {row['kind']:<8}  {row['type']:<8}  {shown}")
        return 0

    handle_errors(ctx, run)


@esv_group.command("usage")
@click.argument("esv_id", required=False, shell_complete=complete_esv_ids)
@pass_context
def usage_cmd(ctx: Context, esv_id: str | None) -> None:
    """Where each ESV (or ESV_ID, as esv-a-b or esv.a.b) is referenced: object and JSON path."""

    def run() -> int:
        workspace = _workspace(ctx)
        wanted = token_to_id(esv_id) if esv_id and esv_id.startswith("esv.") else esv_id
        if wanted is not None and not is_valid_id(wanted):
            raise BlockedError(f"{esv_id!r} is not an ESV id (esv-a-b) or token (esv.a.b)")
        refs = [r for r in index_references(workspace.config) if wanted in (None, r.esv_id)]
        if wanted is not None and not refs:
            click.echo(
                f"{wanted} ({id_to_token(wanted)}) is not referenced by any config", err=True
            )
            return 0
        refs.sort(key=lambda r: r.esv_id)
        id_width = max((len(r.esv_id) for r in refs), default=0)
        object_width = max((len(r.object_id) for r in refs), default=0)
        for ref in refs:
            notes = [n for n in (ref.wrapper, "defaulted" if ref.defaulted else None) if n]
            suffix = f"  ({', '.join(notes)})" if notes else ""
            path = ref.path or "(whole object)"
            click.echo(f"{ref.esv_id:<{id_width}}  {ref.object_id:<{object_width}}  {path}{suffix}")
        return 0

    handle_errors(ctx, run)


@click.command("resolve")
@env_option("--env", "env", required=True, metavar=None, help="Environment whose values to use.")
@click.argument("object_ids", nargs=-1, shell_complete=complete_object_ids)
@click.option(
    "--show-secrets", is_flag=True, help="Print secret-derived values instead of ********."
)
@pass_context
def resolve_cmd(ctx: Context, env: str, object_ids: tuple[str, ...], show_secrets: bool) -> None:
    """The config as ENV would run it, as JSON: one OBJECT_ID -> that object, else {id: object}."""

    def run() -> int:
        workspace = _workspace(ctx)
        resolved = resolve_environment(
            workspace, _known_env(workspace, env), object_ids or None, environ=os.environ
        )
        shown = {i: (r.value if show_secrets else r.masked) for i, r in resolved.items()}
        output = shown[object_ids[0]] if len(object_ids) == 1 else shown
        click.echo(dump_pretty(output))
        return 0

    handle_errors(ctx, run)
