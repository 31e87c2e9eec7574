"""State commands: ``state show``, ``state unlock LOCK_ID``, ``state push``."""

from __future__ import annotations

import click

from promote.cli import Context, handle_errors, pass_context
from promote.errors import BlockedError
from promote.state.admin import push_state, state_report
from promote.state.factory import open_store
from promote.state.local import LocalStore
from promote.workspace import load_workspace

__all__ = ["state_group"]


@click.group("state")
def state_group() -> None:
    """The state store: run lock, unfinished runs, history (local or S3)."""


@state_group.command("show")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@pass_context
def show_command(ctx: Context, fmt: str) -> None:
    """Where state is kept, who holds the run lock, which runs are unfinished."""

    def call() -> int:
        from promote.engine.render import render_json

        report = state_report(open_store(load_workspace(ctx.workspace_option)))
        if fmt == "json":
            click.echo(render_json(report.to_json()), nl=False)
            return 0
        click.echo(f"store: {report.store}")
        if report.lock is None:
            click.echo("lock: free")
        else:
            click.echo(f"lock: held by {report.lock.describe()}")
        if report.unfinished:
            click.echo("unfinished runs:")
            for journal in report.unfinished:
                click.echo(f"  {journal.describe()} [{journal.status}]")
        else:
            click.echo("unfinished runs: none")
        click.echo(f"history: {report.history_entries} entries")
        click.echo(f"records: {len(report.records)}")
        click.echo(f"fingerprint key: {'present' if report.has_fingerprint_key else 'not yet'}")
        return 0

    handle_errors(ctx, call)


@state_group.command("unlock")
@click.argument("lock_id")
@pass_context
def unlock_command(ctx: Context, lock_id: str) -> None:
    """Remove the run lock LOCK_ID, left by a run whose machine or process is gone."""

    def call() -> int:
        store = open_store(load_workspace(ctx.workspace_option))
        store.check()
        holder = store.force_unlock(lock_id)
        click.echo(f"unlocked {store.describe()}: the lock was held by {holder.describe()}")
        click.echo(
            f"run {holder.run_id} may have left an unfinished run; the next 'promote run' "
            "finishes it ('promote state show' lists it)",
            err=True,
        )
        return 0

    handle_errors(ctx, call)


@state_group.command("push")
@pass_context
def push_command(ctx: Context) -> None:
    """Copy the local state (.promote/) into the store promote.yaml configures."""

    def call() -> int:
        workspace = load_workspace(ctx.workspace_option)
        target = open_store(workspace)
        if target.kind == "local":
            raise BlockedError(
                "promote.yaml configures no shared store (state.kind is local): set "
                "state: {kind: s3, bucket: ...} first (docs/state.md); nothing was copied"
            )
        result = push_state(LocalStore(workspace.state_dir), target)
        for note in result.notes:
            click.echo(f"note: {note}", err=True)
        key = {"copied": "copied", "same": "already there", "kept": "store's kept"}
        click.echo(
            f"pushed to {target.describe()}: {result.journals} journals, {result.history} "
            f"history entries, {result.records} records, fingerprint key: "
            f"{key.get(result.key, 'none here')}"
        )
        return 0

    handle_errors(ctx, call)
