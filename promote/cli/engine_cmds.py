"""Engine commands: ``plan``, ``run``, ``status``, ``history``, ``rollback``.

Machine output (plans, run results, status, history) goes to stdout; progress and notes for
people go to stderr, progress only when stderr is a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import click

from esv import EsvError
from promote.cli import Context, handle_errors, pass_context
from promote.cli.completion import env_option
from promote.engine.drift import drift_json
from promote.engine.plan import build_plan
from promote.engine.render import (
    Format,
    plan_error_json,
    render_json,
    render_plan,
    render_template,
)
from promote.engine.session import Opener, Tenants
from promote.errors import BlockedError, PromoteError
from promote.files import atomic_write
from promote.state.base import StateStore
from promote.state.factory import open_store
from promote.state.journal import run_in_progress, unfinished_runs
from promote.workspace import Workspace, load_workspace

if TYPE_CHECKING:
    from promote.engine.apply import Ambient

# promote.engine.apply (and through it hooks, verify gates, the email stack) is imported by
# the commands that change tenants, when they run: plan, status and history never load it;
# status and history load their own modules likewise.

__all__ = ["history_command", "plan_command", "rollback_command", "run_command", "status_command"]


def _workspace(ctx: Context) -> Workspace:
    return load_workspace(ctx.workspace_option)


def _note_unfinished(store: StateStore) -> None:
    """Say (on stderr) who holds the run lock and which runs are unfinished. The store is
    read before any tenant, so an unreachable store stops the command first (exit 1)."""
    holder = run_in_progress(store)
    if holder is not None and store.kind == "local":
        # A local lock is held only by a live process; its journal is that run's.
        click.echo("note: another promote run is in progress in this workspace", err=True)
        return
    if holder is not None:
        click.echo(f"note: another promote run is in progress: {holder.describe()}", err=True)
    for journal in unfinished_runs(store):
        if holder is not None and journal.run_id == holder.run_id:
            click.echo(
                f"note: run {journal.run_id} holds the run lock and is unfinished "
                f"({journal.describe()}); if that process is gone, release its lock with "
                f"'promote state unlock {holder.id}', then the next 'promote run' finishes it",
                err=True,
            )
            continue
        click.echo(
            f"note: found unfinished {journal.describe()}; the next 'promote run' finishes it",
            err=True,
        )


@click.command("plan")
@env_option("--to", "to", required=True, help="Last environment of the walk.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for terminals, markdown for pull requests, json for machines and run --plan.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the plan to FILE instead of stdout.",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 5 when changes are pending (0: none)."
)
@click.option(
    "--comment",
    type=click.Choice(["github", "gitlab"]),
    default=None,
    help="Also keep one comment with the Markdown plan on the pull/merge request (CI).",
)
@pass_context
def plan_command(
    ctx: Context,
    to: str,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    comment: str | None,
) -> None:
    """Show what 'run --to ENV' would change, stage by stage; changes nothing."""

    def emit(text: str) -> None:
        if out is not None:
            atomic_write(out, text.encode())
            click.echo(f"plan written to {out}", err=True)
        else:
            click.echo(text, nl=False)

    def call() -> int:
        try:
            # Problems of one environment file block only its stage (SPEC 4.3).
            workspace = load_workspace(ctx.workspace_option, partial=True)
            workspace.walk(to)
        except (EsvError, BlockedError) as error:
            if fmt == "json":
                emit(render_json(plan_error_json(to, list(error.problems), str(error))))
            raise
        store = open_store(workspace)
        _note_unfinished(store)
        with Tenants(workspace, store=store) as tenants:
            plan = build_plan(workspace, to, tenants, store=store)
        emit(render_plan(plan, cast(Format, fmt)))
        if comment is not None:
            _post_comment(comment, render_plan(plan, "markdown"), workspace.root, to)
        if plan.blocked:
            blocked = [stage.env for stage in plan.stages if stage.status == "blocked"]
            raise BlockedError(
                f"blocked by checks in {', '.join(blocked)}; a run would change nothing",
                plan.problems(),
            )
        return 5 if detailed_exitcode and plan.pending else 0

    handle_errors(ctx, call)


def _post_comment(provider: str, markdown: str, root: Path, to: str) -> None:
    from promote.comment import post_comment

    # The key tells this workspace's comment from another chain's in the same pull request.
    try:
        where = root.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        where = root.name
    done, path = post_comment(
        cast(Literal["github", "gitlab"], provider), markdown, f"{where}:{to}", os.environ
    )
    click.echo(f"plan comment {done} ({path})", err=True)


def _confirm(question: str) -> bool:
    return click.confirm(question, default=False, err=True)


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _ambient(stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> Ambient:
    """Ask for approval only when a person is there (stdin and stderr are terminals); show
    progress only on a terminal."""
    from promote.engine.apply import Ambient

    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    interactive = stdin.isatty() and stderr.isatty()
    return Ambient(
        environ=dict(os.environ),
        confirm=_confirm if interactive else None,
        progress=_progress if stderr.isatty() else None,
    )


def _read_plan(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise BlockedError(f"cannot read the plan {path}: {error.strerror}") from None
    except ValueError as error:
        raise BlockedError(
            f"{path} is not a JSON plan ({error}); make one with "
            "promote plan --to ENV --format json --out FILE"
        ) from None


@click.command("run")
@env_option("--to", "to", default=None, help="Last environment of the walk.")
@env_option(
    "--approve", multiple=True, help="Approve changes to a protected environment (repeatable)."
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Apply exactly this JSON plan; refused if any environment changed since.",
)
@env_option(
    "--accept-drift",
    multiple=True,
    help="Put back changes made outside promote in ENV even under on_drift: block (repeatable).",
)
@pass_context
def run_command(
    ctx: Context,
    to: str | None,
    approve: tuple[str, ...],
    plan_file: Path | None,
    accept_drift: tuple[str, ...],
) -> None:
    """Carry config and ESVs up the chain to ENV, stage by stage."""
    if to is None and plan_file is None:
        raise click.UsageError("give --to ENV or --plan FILE")
    handle_errors(ctx, lambda: _run(ctx, to, approve, plan_file, accept_drift=accept_drift))


def _run(
    ctx: Context,
    to: str | None,
    approve: tuple[str, ...],
    plan_file: Path | None,
    *,
    opener: Opener | None = None,
    accept_drift: tuple[str, ...] = (),
) -> int:
    """The body of ``run``; ``opener`` opens the tenants (tests inject faulty ones)."""
    from promote.engine.apply import run, run_plan

    workspace = _workspace(ctx)
    store = open_store(workspace)
    tenants_of = Tenants(workspace, opener=opener, store=store)
    with tenants_of as tenants:
        if plan_file is not None:
            saved = _read_plan(plan_file)
            if to is not None and isinstance(saved, dict) and saved.get("to") != to:
                raise BlockedError(
                    f"--to {to} does not match the plan, which goes to {saved.get('to')}"
                )
            result = run_plan(
                workspace,
                saved,
                tenants,
                approve=approve,
                ambient=_ambient(),
                store=store,
                accept_drift=accept_drift,
            )
        else:
            assert to is not None
            result = run(
                workspace,
                to,
                tenants,
                approve=approve,
                ambient=_ambient(),
                store=store,
                accept_drift=accept_drift,
            )
    for note in result.notes:
        click.echo(note, err=True)
    for stage in result.plan.stages:
        if stage.env in result.applied:
            state = "applied"
        elif stage.env in result.recovered:
            state = f"finished (run {result.recovered[stage.env]} recovered)"
        else:
            state = "in sync (skipped)"
        click.echo(f"{stage.env}: {state}")
    return 0


def _print_notes(notes: list[str], *, prefix: str = "note: ") -> None:
    for note in notes:
        click.echo(f"{prefix}{note}", err=True)


@click.command("status")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_context
def status_command(ctx: Context, fmt: str) -> None:
    """Each environment: in sync with the one below? pending ESVs, last promotion, drift."""

    def call() -> int:
        from promote.engine.status import environment_status

        workspace = _workspace(ctx)
        store = open_store(workspace)
        _note_unfinished(store)
        notes: list[str] = []
        with Tenants(workspace, store=store) as tenants:
            statuses = environment_status(workspace, tenants, store, notes=notes)
        _print_notes(notes)
        if fmt == "json":
            data = [
                {
                    "env": s.env,
                    "lower": s.lower,
                    "in_sync": s.in_sync,
                    "differing": list(s.differing),
                    "pending_esvs": list(s.pending_esvs),
                    "last": s.last.to_json() if s.last else None,
                    "drift": s.drift,
                    "drifted": [drift_json(d) for d in s.drifted],
                    "note": s.note,
                    "readable": s.readable,
                    "lower_in_sync": s.lower_in_sync,
                }
                for s in statuses
            ]
            click.echo(render_json({"format": "promote.status/1", "environments": data}), nl=False)
        else:
            click.echo(render_template("status.txt.j2", statuses=statuses), nl=False)
        unreadable = [s.env for s in statuses if not s.readable]
        if unreadable:
            raise PromoteError(
                f"could not read {', '.join(unreadable)}; the status above is incomplete "
                "for them (see each one's note)"
            )
        return 0

    handle_errors(ctx, call)


@click.command("history")
@env_option("--env", "env", default=None, help="Only this environment.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_context
def history_command(ctx: Context, env: str | None, fmt: str) -> None:
    """Promotions and rollbacks, oldest first."""

    def call() -> int:
        from promote.state.history import read_history

        workspace = _workspace(ctx)
        if env is not None and env not in workspace.chain:
            raise BlockedError(
                f"unknown environment {env!r}; the chain is {' -> '.join(workspace.chain)}"
            )
        notes: list[str] = []
        records = read_history(open_store(workspace), env=env, notes=notes)
        _print_notes(notes)
        if fmt == "json":
            data = {"format": "promote.history/1", "records": [r.to_json() for r in records]}
            click.echo(render_json(data), nl=False)
        else:
            click.echo(render_template("history.txt.j2", records=records, env=env), nl=False)
        return 0

    handle_errors(ctx, call)


@click.command("rollback")
@env_option("--env", "env", required=True, help="Environment to roll back.")
@env_option("--approve", multiple=True, help="Approve rolling back a protected environment.")
@pass_context
def rollback_command(ctx: Context, env: str, approve: tuple[str, ...]) -> None:
    """Undo ENV's last promotion (recorded in the history); shows what it restores first."""

    def call() -> int:
        from promote.engine.apply import rollback

        workspace = _workspace(ctx)
        store = open_store(workspace)
        notes: list[str] = []
        try:
            with Tenants(workspace, store=store) as tenants:
                record = rollback(
                    workspace,
                    env,
                    tenants,
                    approve=approve,
                    ambient=_ambient(),
                    notes=notes,
                    store=store,
                )
        finally:
            _print_notes(notes, prefix="")
        click.echo(f"{env}: rolled back ({record.summary()})")
        return 0

    handle_errors(ctx, call)
