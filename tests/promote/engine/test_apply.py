"""Applying plans: faults, recovery, approvals, restart waits, verify gates (core API)."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from promote.cli import cli
from promote.email import Transports
from promote.engine.apply import Ambient, rollback, run
from promote.engine.plan import build_plan
from promote.engine.session import Tenants
from promote.errors import (
    ApplyError,
    BlockedError,
    InterruptedRun,
    LockedError,
    PromoteError,
)
from promote.files import StateFileError
from promote.state.history import read_history
from promote.state.journal import Journal, unfinished_runs
from promote.state.local import LocalStore
from promote.tenants.base import EsvWrite, Tenant
from promote.tenants.local import LocalTenant
from promote.workspace import Workspace, load_workspace
from tests.helpers.example import REPO
from tests.promote.engine.workspaces import (
    EMAIL,
    ENVIRON,
    WELCOME,
    default_envs,
    env_yaml,
    faulty_opener,
    set_config,
    write_workspace,
)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return load_workspace(write_workspace(tmp_path / "ws"))


def tenants(workspace: Workspace, **kwargs: object) -> Tenants:
    return Tenants(workspace, environ=ENVIRON, **kwargs)  # type: ignore[arg-type]


def ambient(**kwargs: object) -> Ambient:
    return Ambient(environ=ENVIRON, **kwargs)  # type: ignore[arg-type]


def held(workspace: Workspace, env: str) -> dict[str, object]:
    with tenants(workspace) as ts:
        t = ts[env]
        return t.read_config(sorted(t.list_config_ids()))


class Crash(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


def test_crash_between_esv_write_and_config_write_is_finished_by_next_run(
    ws: Workspace,
) -> None:
    def die(env: str, step: str) -> None:
        if (env, step) == ("staging", "config"):
            raise Crash

    with tenants(ws) as ts, pytest.raises(Crash):
        run(ws, "staging", ts, ambient=ambient(before_step=die))
    (journal,) = unfinished_runs(LocalStore(ws.state_dir))
    assert journal.data["current"] == {"env": "staging", "step": "config"}
    assert held(ws, "staging") == {}
    with tenants(ws) as ts:
        result = run(ws, "dev", ts, ambient=ambient())
    (note,) = result.notes
    assert note.startswith(f"found unfinished run {journal.run_id} to staging")
    assert "stopped in staging at step config; already applied: dev" in note
    assert note.endswith("finished it (applied: staging)")
    assert held(ws, "staging") == held(ws, "dev") != {}
    assert result.applied == () and result.recovered == {"staging": journal.run_id}
    assert unfinished_runs(LocalStore(ws.state_dir)) == []
    assert Journal.load(journal.store, journal.run_id).status == "recovered"  # type: ignore[union-attr]


def test_process_killed_with_sigkill_mid_run_is_recovered_through_the_cli(
    ws: Workspace,
) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from promote.engine.apply import Ambient, run
        from promote.engine.session import Tenants
        from promote.workspace import load_workspace
        ws = load_workspace(Path({str(ws.root)!r}))
        environ = {ENVIRON!r}
        def die(env, step):
            if (env, step) == ("staging", "config"):
                os.kill(os.getpid(), signal.SIGKILL)
        with Tenants(ws, environ=environ) as ts:
            run(ws, "staging", ts, ambient=Ambient(environ=environ, before_step=die))
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, check=False
    )
    assert killed.returncode == -9, killed.stderr
    staging = LocalTenant("staging", ws.state_dir / "tenants" / "staging", mutable=False)
    assert staging.list_variables() and staging.list_config_ids() == set()
    staging.close()

    runner = CliRunner()
    args = ["--workspace", str(ws.root)]
    result = runner.invoke(cli, [*args, "status"], env=ENVIRON)
    assert "note: found unfinished run" in result.stderr
    assert "the next 'promote run' finishes it" in result.stderr
    result = runner.invoke(cli, [*args, "run", "--to", "staging"], env=ENVIRON)
    assert result.exit_code == 0, result.stderr
    assert "found unfinished run" in result.stderr and "finished it" in result.stderr
    assert held(ws, "staging") == held(ws, "dev") != {}
    # The finishing run's history entry keeps what the killed run changed before it died.
    (killed_run,) = [r.run_id for r in read_history(LocalStore(ws.state_dir), env="dev")]
    (record,) = read_history(LocalStore(ws.state_dir), env="staging")
    assert record.run_id != killed_run
    assert record.esvs == (
        "add variable esv-email-provider-from",
        "add variable esv-email-provider-host",
        "add variable esv-email-provider-port",
        "add variable esv-email-provider-use-ssl",
        "add variable esv-email-provider-username",
        "add secret esv-email-provider-password",
    )
    assert record.config_added == ("external.email",) and record.restarted
    assert record.notes == (f"finishes run {killed_run}",)
    assert result.stdout == (
        f"dev: in sync (skipped)\nstaging: finished (run {killed_run} recovered)\n"
    )
    history = runner.invoke(cli, [*args, "history", "--env", "staging"], env=ENVIRON)
    assert history.exit_code == 0 and history.stderr == ""
    assert "staging  promote from dev  run " in history.stdout
    assert ": config +1 ~0 -0, 6 ESV changes, restarted\n" in history.stdout
    assert "    ESVs: add variable esv-email-provider-from, " in history.stdout
    assert f"    finishes run {killed_run}\n" in history.stdout


def test_a_stage_the_killed_run_left_in_sync_is_recorded_under_its_run_id(
    ws: Workspace,
) -> None:
    def die(env: str, step: str) -> None:
        if (env, step) == ("staging", "record"):
            raise Crash

    with tenants(ws) as ts, pytest.raises(Crash):
        run(ws, "staging", ts, ambient=ambient(before_step=die))
    (journal,) = unfinished_runs(LocalStore(ws.state_dir))
    with tenants(ws) as ts:
        result = run(ws, "staging", ts, ambient=ambient())
    assert result.applied == ()
    assert result.notes[0].endswith("finished it (applied: nothing left to apply)")
    assert result.recovered == {"staging": journal.run_id}
    (record,) = read_history(LocalStore(ws.state_dir), env="staging")
    assert record.run_id == journal.run_id
    assert record.config_added == ("external.email",) and record.restarted
    assert len(record.esvs) == 6
    assert record.notes[0].endswith("which finished this run")
    with tenants(ws) as ts:  # recorded once
        run(ws, "staging", ts, ambient=ambient())
    assert len(read_history(LocalStore(ws.state_dir), env="staging")) == 1


def test_ctrl_c_marks_the_run_interrupted_and_exits_130(ws: Workspace) -> None:
    def interrupt(env: str, step: str) -> None:
        if step == "restart":
            raise KeyboardInterrupt

    with tenants(ws) as ts, pytest.raises(InterruptedRun) as caught:
        run(ws, "staging", ts, ambient=ambient(before_step=interrupt))
    assert caught.value.exit_code == 130
    text = str(caught.value)
    assert "dev: partially applied (ESVs written:" in text
    assert (
        "dev: partially applied (ESVs written:" in text and "interrupted during the restart" in text
    )
    assert "failed during" not in text
    assert "staging: untouched" in text
    (journal,) = unfinished_runs(LocalStore(ws.state_dir))
    assert journal.status == "interrupted"


def _failing_writer(after: int, code: int):  # type: ignore[no-untyped-def]
    from promote.files import atomic_write

    calls = {"n": 0}

    def write(path: Path, data: bytes) -> None:
        calls["n"] += 1
        if calls["n"] > after:
            raise StateFileError(path, OSError(code, os.strerror(code)))
        atomic_write(path, data)

    return write


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize(
    ("writes", "failing"),
    [(0, "fingerprint.key"), (1, "runs")],  # the key (planning), then the journal
)
def test_full_or_read_only_state_dir_before_the_run_changes_nothing(
    ws: Workspace, code: int, writes: int, failing: str
) -> None:
    with tenants(ws) as ts, pytest.raises(PromoteError) as caught:
        run(ws, "staging", ts, ambient=ambient(write=_failing_writer(writes, code)))
    text = str(caught.value)
    assert os.strerror(code) in text and "nothing was changed" in text
    assert str(ws.state_dir / failing) in text
    assert held(ws, "dev") == {}


def test_full_disk_mid_run_names_what_each_environment_was_left_in(ws: Workspace) -> None:
    # start + dev's esvs/config/restart steps succeed; the next journal write fails
    with tenants(ws) as ts, pytest.raises(ApplyError) as caught:
        run(ws, "staging", ts, ambient=ambient(write=_failing_writer(4, errno.ENOSPC)))
    states = caught.value.states
    assert states["dev"].startswith("partially applied (ESVs written:")
    assert states["staging"] == "untouched"
    assert "No space left on device" in str(caught.value)


def test_blocked_stage_anywhere_means_nothing_changes(tmp_path: Path) -> None:
    reply = {"esv-email-reply-to": "reply@example.com"}
    envs = default_envs(
        dev=env_yaml("dev", extra_variables=reply),
        staging=env_yaml("staging", port="465", ssl="true", extra_variables=reply),
    )
    config = {"external.email": {**EMAIL, "replyTo": "&{esv.email.reply.to}"}}
    workspace = load_workspace(write_workspace(tmp_path / "ws", envs=envs, config=config))
    with tenants(workspace) as ts, pytest.raises(BlockedError) as caught:
        run(workspace, "prod", ts, approve=["prod"], ambient=ambient())
    assert "blocked by checks in prod" in str(caught.value)
    assert any(p.esv_id == "esv-email-reply-to" for p in caught.value.problems)
    assert held(workspace, "dev") == {}


def test_interactive_confirmation_approves_protected_environment(ws: Workspace) -> None:
    asked: list[str] = []

    def yes(question: str) -> bool:
        asked.append(question)
        return True

    with tenants(ws) as ts:
        result = run(ws, "prod", ts, ambient=ambient(confirm=yes))
    assert asked == [
        "prod <- staging (protected):\n"
        "  config: +1 ~0 -0 (by promotion from staging)\n"
        "  ESVs: 6 to change (+esv-email-provider-from, +esv-email-provider-host, "
        "+esv-email-provider-port, +esv-email-provider-use-ssl, +esv-email-provider-username, "
        "+esv-email-provider-password)\n"
        "  restart: yes\n"
        "prod is protected; apply these changes to it?"
    ]
    assert result.applied == ("dev", "staging", "prod")
    with tenants(ws) as ts:  # in sync: nobody is asked
        run(ws, "prod", ts, ambient=ambient(confirm=yes))
    assert len(asked) == 1


def test_interactive_no_refuses(ws: Workspace) -> None:
    with tenants(ws) as ts, pytest.raises(BlockedError):
        run(ws, "prod", ts, ambient=ambient(confirm=lambda q: False))
    assert held(ws, "dev") == {}


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _slow_opener(clock: FakeTime, seconds: float):  # type: ignore[no-untyped-def]
    def opener(workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        return LocalTenant(
            env,
            workspace.state_dir / "tenants" / env,
            mutable=workspace.is_mutable(env),
            restart_seconds=seconds,
            clock=clock,
        )

    return opener


def test_waits_for_the_restart_and_reports_progress(ws: Workspace) -> None:
    clock = FakeTime()
    lines: list[str] = []
    with tenants(ws, opener=_slow_opener(clock, 7.0)) as ts:
        result = run(
            ws,
            "dev",
            ts,
            ambient=ambient(clock=clock, sleep=clock.sleep, progress=lines.append),
        )
    assert result.applied == ("dev",)
    assert lines == [
        "dev: waiting for the restart to finish (0s)",
        "dev: waiting for the restart to finish (2s)",
        "dev: waiting for the restart to finish (4s)",
        "dev: waiting for the restart to finish (6s)",
    ]


def test_restart_that_never_finishes_times_out_after_tenant_restart_timeout(
    tmp_path: Path,
) -> None:
    hook = 'restart:\n  command: ["true"]\n  timeout: 30\n'  # the hook's own timeout
    dev = env_yaml("dev", restart=hook).replace(
        "  kind: local\n", "  kind: local\n  restart_timeout: 45\n"
    )
    workspace = load_workspace(write_workspace(tmp_path / "ws", envs=default_envs(dev=dev)))
    clock = FakeTime()
    with tenants(workspace, opener=_slow_opener(clock, 3600.0)) as ts:
        with pytest.raises(ApplyError) as caught:
            run(workspace, "dev", ts, ambient=ambient(clock=clock, sleep=clock.sleep))
    assert "the restart did not finish within 45s" in str(caught.value)
    assert "raise tenant.restart_timeout in environments/dev.yaml" in str(caught.value)
    assert clock.now - 1_000_000.0 == 45.0
    assert caught.value.states["dev"].endswith(
        "config written; restart hook ran; failed during the restart)"
    )


def test_restart_wait_defaults_to_600_seconds_whatever_the_hook_timeout(tmp_path: Path) -> None:
    hook = 'restart:\n  command: ["true"]\n  timeout: 30\n'
    workspace = load_workspace(
        write_workspace(tmp_path / "ws", envs=default_envs(dev=env_yaml("dev", restart=hook)))
    )
    clock = FakeTime()
    with tenants(workspace, opener=_slow_opener(clock, 599.0)) as ts:
        result = run(workspace, "dev", ts, ambient=ambient(clock=clock, sleep=clock.sleep))
    assert result.applied == ("dev",)
    with tenants(workspace, opener=_slow_opener(clock, 3600.0)) as ts:
        ts["dev"].write_esvs([EsvWrite("esv-email-provider-host", "variable", "modify", "h")])
        with pytest.raises(ApplyError, match="did not finish within 600s"):
            run(workspace, "dev", ts, ambient=ambient(clock=clock, sleep=clock.sleep))


def test_verify_gate_runs_after_apply(tmp_path: Path) -> None:
    dev = env_yaml("dev") + "verify:\n  email_test: {to: ops@example.com}\n"
    root = write_workspace(
        tmp_path / "ws",
        envs=default_envs(dev=dev),
        config={"emailTemplate/welcome": WELCOME},
    )
    workspace = load_workspace(root)
    with tenants(workspace) as ts:
        result = run(workspace, "dev", ts, ambient=ambient())
    assert any(note.startswith("verify email_test passed for dev") for note in result.notes)
    assert list((workspace.state_dir / "tenants" / "dev" / "outbox").iterdir())


class _CountingTenant:
    """A real tenant counting its config reads once ``counting`` is set."""

    def __init__(self, tenant: Tenant, reads: list[str], counting: list[bool]) -> None:
        self._tenant, self._reads, self._counting = tenant, reads, counting

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self._tenant, name)
        if name in ("read_config", "list_config_ids") and self._counting:

            def counted(*args: object) -> object:
                self._reads.append(name)
                return attribute(*args)

            return counted
        return attribute


def test_the_record_step_reads_no_config_from_the_tenant(ws: Workspace) -> None:
    from promote.engine.status import environment_status
    from promote.state.history import config_digest
    from promote.tenants.factory import open_tenant

    set_config(ws.root, "emailTemplate/welcome", WELCOME)
    ws = load_workspace(ws.root)
    reads: list[str] = []
    counting: list[bool] = []

    def opener(workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        tenant = open_tenant(workspace.environments[env], workspace=workspace, environ=environ)
        return _CountingTenant(tenant, reads, counting)  # type: ignore[return-value]

    def before_step(env: str, step: str) -> None:
        counting[:] = [True] if step == "record" else []

    with tenants(ws, opener=opener) as ts:
        run(ws, "staging", ts, ambient=ambient(before_step=before_step))
        counting.clear()
        held_now = {env: ts[env].read_config(sorted(ts[env].list_config_ids())) for env in ws.chain}
        statuses = environment_status(ws, ts, LocalStore(ws.state_dir), envs=["dev", "staging"])
    assert reads == []
    for record in read_history(LocalStore(ws.state_dir)):
        assert record.config_digest == config_digest(held_now[record.env])
    assert [s.drift for s in statuses] == [False, False]


class _RestartLoadsNothing:
    """A real tenant whose restart is ready at once but loads no ESV."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant

    def restart(self) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        return getattr(self._tenant, name)


def test_written_esvs_still_not_loaded_after_the_restart_stop_the_stage(ws: Workspace) -> None:
    from promote.tenants.factory import open_tenant

    def opener(workspace: Workspace, env: str, environ: Mapping[str, str]) -> Tenant:
        tenant = open_tenant(workspace.environments[env], workspace=workspace, environ=environ)
        return _RestartLoadsNothing(tenant) if env == "dev" else tenant  # type: ignore[return-value]

    with tenants(ws, opener=opener) as ts, pytest.raises(ApplyError) as caught:
        run(ws, "dev", ts, ambient=ambient())
    text = str(caught.value)
    assert text.startswith("dev failed: after the restart these ESVs are still not loaded: ")
    assert "esv-email-provider-host, " in text and "esv-email-provider-password" in text


def test_verify_gates_use_the_ambient_transports(tmp_path: Path) -> None:
    dev = env_yaml("dev") + "verify:\n  email_test: {to: ops@example.com}\n"
    root = write_workspace(
        tmp_path / "ws", envs=default_envs(dev=dev), config={"emailTemplate/welcome": WELCOME}
    )
    workspace = load_workspace(root)
    sent_at = 1893456000.0  # 2030-01-01T00:00:00Z: the outbox names its files by its clock
    with tenants(workspace) as ts:
        run(workspace, "dev", ts, ambient=ambient(transports=Transports(clock=lambda: sent_at)))
    (message,) = (workspace.state_dir / "tenants" / "dev" / "outbox").glob("*.eml")
    assert message.name.startswith("20300101T000000Z-")


def test_failing_verify_gate_stops_the_walk(tmp_path: Path) -> None:
    # A loopback port bound and held (never listening) for the whole test: nobody else can
    # take it, and a connection to it is refused.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        dev = env_yaml("dev", host="127.0.0.1", port=str(port))
        dev += "verify:\n  email_test: {to: ops@example.com}\n"
        root = write_workspace(tmp_path / "ws", envs=default_envs(dev=dev))
        workspace = load_workspace(root)
        with tenants(workspace) as ts, pytest.raises(ApplyError) as caught:
            run(workspace, "staging", ts, ambient=ambient())
    assert caught.value.exit_code == 1
    assert "dev failed" in str(caught.value) and "email_test" in str(caught.value)
    assert caught.value.states["dev"].startswith("partially applied (ESVs written")
    assert caught.value.states["staging"] == "untouched"


def test_invalid_verify_recipient_blocks_before_anything_changes(tmp_path: Path) -> None:
    dev = env_yaml("dev") + "verify:\n  email_test: {to: not-an-address}\n"
    workspace = load_workspace(write_workspace(tmp_path / "ws", envs=default_envs(dev=dev)))
    with tenants(workspace) as ts, pytest.raises(BlockedError) as caught:
        run(workspace, "staging", ts, ambient=ambient())
    assert "not-an-address" in str(caught.value)
    assert held(workspace, "dev") == {}


def test_tenant_locked_by_another_promotion_exits_4(ws: Workspace) -> None:
    staging = LocalTenant("staging", ws.state_dir / "tenants" / "staging", mutable=False)
    staging.lock("someone else")
    staging.close()
    with tenants(ws) as ts, pytest.raises(LockedError) as caught:
        build_plan(ws, "staging", ts, environ=ENVIRON)
    assert caught.value.exit_code == 4
    assert "'staging' is locked by someone else" in str(caught.value)
    with tenants(ws) as ts, pytest.raises(LockedError):
        run(ws, "staging", ts, ambient=ambient())
    assert held(ws, "dev") == {}


def test_rollback_is_recorded(ws: Workspace) -> None:
    with tenants(ws) as ts:
        run(ws, "staging", ts, ambient=ambient())
        record = rollback(ws, "staging", ts, ambient=ambient())
    assert record.action == "rollback" and record.config_deleted == ("external.email",)
    assert [r.action for r in read_history(LocalStore(ws.state_dir), env="staging")] == [
        "promote",
        "rollback",
    ]
    assert held(ws, "staging") == {}
    history = (ws.state_dir / "history.jsonl").read_text()
    assert all(json.loads(line) for line in history.splitlines())


def test_recovery_releases_the_promotion_lock_a_killed_run_left(ws: Workspace) -> None:
    holder: list[str] = []

    def die(env: str, step: str) -> None:
        if (env, step) == ("staging", "config"):
            (journal,) = unfinished_runs(LocalStore(ws.state_dir))
            holder.append(f"promote run {journal.run_id}")
            staging = LocalTenant("staging", ws.state_dir / "tenants" / "staging", mutable=False)
            staging.lock(holder[0])  # killed inside promote_from, after it took the lock
            staging.close()
            raise Crash

    with tenants(ws) as ts, pytest.raises(Crash):
        run(ws, "staging", ts, ambient=ambient(before_step=die))
    with tenants(ws) as ts:
        result = run(ws, "staging", ts, ambient=ambient())
    assert "released the promotion lock it left on staging" in result.notes[0]
    assert held(ws, "staging") == held(ws, "dev") != {}
    with tenants(ws) as ts:
        assert not ts["staging"].lock_state().locked


def test_unfinished_run_that_can_no_longer_be_finished_is_named(ws: Workspace) -> None:
    def die(env: str, step: str) -> None:
        if (env, step) == ("staging", "config"):
            raise Crash

    with tenants(ws) as ts, pytest.raises(Crash):
        run(ws, "staging", ts, ambient=ambient(before_step=die))
    environ = {k: v for k, v in ENVIRON.items() if k != "STAGING_SMTP_PASSWORD"}
    with Tenants(ws, environ=environ) as ts, pytest.raises(BlockedError) as caught:
        run(ws, "dev", ts, ambient=Ambient(environ=environ))
    text = str(caught.value)
    assert text.startswith("found unfinished run ")
    assert "it cannot be finished: blocked by checks in staging" in text
    assert "STAGING_SMTP_PASSWORD" in text
    assert len(unfinished_runs(LocalStore(ws.state_dir))) == 1  # still there for the next try


def test_lock_taken_between_plan_and_first_change_exits_4(ws: Workspace) -> None:
    with tenants(ws) as ts:
        run(ws, "staging", ts, ambient=ambient())
    set_config(ws.root, "emailTemplate/welcome", WELCOME)
    workspace = load_workspace(ws.root)
    with tenants(workspace) as ts:
        run(workspace, "dev", ts, ambient=ambient())

    def someone_locks(env: str, step: str) -> None:
        staging = LocalTenant("staging", ws.state_dir / "tenants" / "staging", mutable=False)
        staging.lock("someone else")
        staging.close()

    with tenants(workspace) as ts, pytest.raises(LockedError) as caught:
        run(workspace, "staging", ts, ambient=ambient(before_step=someone_locks))
    assert caught.value.exit_code == 4
    assert "emailTemplate/welcome" not in held(workspace, "staging")


def test_unexpected_error_mid_apply_names_its_type_and_every_state(ws: Workspace) -> None:
    opener = faulty_opener("staging", "promote_from", ValueError("secret-text"))
    with tenants(ws, opener=opener) as ts, pytest.raises(ApplyError) as caught:
        run(ws, "prod", ts, approve=["prod"], ambient=ambient())
    error = caught.value
    assert isinstance(error.__cause__, ValueError)  # --debug shows the original traceback
    assert "secret-text" not in str(error)
    assert str(error).startswith("staging failed: internal error (ValueError); this is a bug")
    assert error.states == {
        "dev": "applied",
        "staging": "partially applied (ESVs written: esv-email-provider-from, "
        "esv-email-provider-host, esv-email-provider-port, esv-email-provider-use-ssl, "
        "esv-email-provider-username, esv-email-provider-password; failed during the config "
        "step)",
        "prod": "untouched",
    }
    (journal,) = unfinished_runs(LocalStore(ws.state_dir))  # kept, so the next run finishes it
    assert journal.status == "aborted" and journal.data["error"] == "ValueError"
    assert "secret-text" not in (ws.state_dir / "runs" / f"{journal.run_id}.json").read_text()
    with tenants(ws) as ts:
        result = run(ws, "prod", ts, approve=["prod"], ambient=ambient())
    assert result.notes[0].startswith(f"found unfinished run {journal.run_id} to prod")
    assert held(ws, "prod") == held(ws, "staging") == held(ws, "dev") != {}


def test_an_os_error_mid_apply_names_its_type_and_the_system_text_only(ws: Workspace) -> None:
    error = OSError(errno.EIO, "secret-text", "/secret-text")
    opener = faulty_opener("dev", "put_config", error)
    with tenants(ws, opener=opener) as ts, pytest.raises(ApplyError) as caught:
        run(ws, "staging", ts, ambient=ambient())
    text = str(caught.value)
    assert text.startswith("dev failed: internal error (OSError: Input/output error)")
    assert "secret-text" not in text
    assert caught.value.states["staging"] == "untouched"


def test_approval_summary_counts_config_lists_esvs_by_id_and_says_restart(ws: Workspace) -> None:
    with tenants(ws) as ts:
        run(ws, "prod", ts, approve=["prod"], ambient=ambient())
    set_config(ws.root, "emailTemplate/welcome", WELCOME)
    extra = {f"esv-extra-{i:02d}": f"value {i}" for i in range(10)}
    prod = env_yaml("prod", port="465", ssl="true", protected=True, extra_variables=extra)
    (ws.root / "environments" / "prod.yaml").write_text(prod)
    asked: list[str] = []
    workspace = load_workspace(ws.root)
    with tenants(workspace) as ts, pytest.raises(BlockedError, match="nothing was changed"):
        run(workspace, "prod", ts, ambient=ambient(confirm=lambda q: asked.append(q) or False))
    (question,) = asked
    assert question == (
        "prod <- staging (protected):\n"
        "  config: +1 ~0 -0 (by promotion from staging)\n"
        "  ESVs: 10 to change (+esv-extra-00, +esv-extra-01, +esv-extra-02, +esv-extra-03, "
        "+esv-extra-04, +esv-extra-05, +esv-extra-06, +esv-extra-07, and 2 more)\n"
        "  restart: yes\n"
        "prod is protected; apply these changes to it?"
    )
    assert "value 1" not in question
