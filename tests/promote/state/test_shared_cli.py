"""Two clones of one workspace (two .promote/ directories) sharing one S3 bucket, driven
through the installed ``promote`` command as CI runners would run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.s3 import ACCESS_KEY, SECRET_KEY, S3Server, moto_process
from tests.promote.engine.workspaces import EMAIL, ENVIRON, env_yaml

PROMOTE = str(Path(sys.executable).parent / "promote")


def _hook(gate: Path) -> str:
    """A restart hook that waits until ``gate`` exists: it holds a run inside its restart."""
    code = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)"
    argv = f"[{json.dumps(sys.executable)}, -c, {json.dumps(code)}]"
    return f"restart:\n  command: {argv}\n  timeout: 60"


def _clone(root: Path, tenants: Path, state: str, *, staging_hook: Path | None = None) -> Path:
    """One clone: environment files whose local tenants live in the shared ``tenants`` dir
    (the real tenants every runner reaches), ``promote.yaml`` naming the shared store."""
    envs = {
        "dev": env_yaml("dev"),
        "staging": env_yaml(
            "staging", port="465", ssl="true", restart=_hook(staging_hook) if staging_hook else ""
        ),
    }
    (root / "environments").mkdir(parents=True)
    for name, text in envs.items():
        text = text.replace("  kind: local", f"  kind: local\n  path: {tenants / name}")
        (root / "environments" / f"{name}.yaml").write_text(text)
    (root / "config").mkdir()
    (root / "config" / "external.email.json").write_text(json.dumps(EMAIL))
    (root / "promote.yaml").write_text(f"chain: [dev, staging]\n{state}")
    return root


def _state(server: S3Server, bucket: str, prefix: str = "email/") -> str:
    return (
        f"state:\n  kind: s3\n  bucket: {bucket}\n  prefix: {prefix}\n"
        f"  endpoint_url: {server.endpoint}\n  region: us-east-1\n"
    )


def _env(server: S3Server) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **ENVIRON, **server.environ()}


def _promote(ws: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMOTE, *args], cwd=ws, env=env, capture_output=True, text=True, timeout=120
    )


def _start(ws: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PROMOTE, *args],
        cwd=ws,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _journal_step(server: S3Server, bucket: str) -> dict | None:  # type: ignore[type-arg]
    client = server.client()
    listed = client.list_objects_v2(Bucket=bucket, Prefix="email/runs/").get("Contents", [])
    for item in listed:
        data = json.loads(client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        if data.get("current"):
            return data["current"]  # type: ignore[no-any-return]
    return None


def _everything_written(*roots: Path, server: S3Server, bucket: str) -> str:
    text = ""
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.name.endswith(".sqlite3"):
                text += path.read_text(errors="replace")
    client = server.client()
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        text += client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
    return text


@pytest.fixture
def shared(tmp_path: Path, s3_server: S3Server):  # type: ignore[no-untyped-def]
    bucket = s3_server.new_bucket()
    gate = tmp_path / "gate"
    tenants = tmp_path / "tenants"
    a = _clone(tmp_path / "a", tenants, _state(s3_server, bucket), staging_hook=gate)
    b = _clone(tmp_path / "b", tenants, _state(s3_server, bucket), staging_hook=gate)
    return a, b, bucket, gate


def test_two_runs_at_once_one_exits_4_naming_the_holder(shared, s3_server: S3Server) -> None:
    a, b, bucket, gate = shared
    env = _env(s3_server)
    first = _start(a, env, "run", "--to", "staging")
    try:
        _wait_for(
            lambda: _journal_step(s3_server, bucket) == {"env": "staging", "step": "restart"},
            "A's restart",
        )
        second = _promote(b, env, "run", "--to", "staging")
        assert second.returncode == 4, second.stderr
        assert "is locked by another promote run (promote run to staging" in second.stderr
        assert "promote state unlock" in second.stderr
        gate.touch()
        out, err = first.communicate(timeout=60)
    finally:
        gate.touch()
        first.kill() if first.poll() is None else None
    assert first.returncode == 0, err
    assert out == "dev: applied\nstaging: applied\n"
    history = json.loads(_promote(b, env, "history", "--format", "json").stdout)["records"]
    assert [r["env"] for r in history] == ["dev", "staging"]
    assert len({r["run_id"] for r in history}) == 1
    again = _promote(b, env, "run", "--to", "staging")
    assert (
        again.returncode == 0
        and again.stdout == "dev: in sync (skipped)\nstaging: in sync (skipped)\n"
    )
    shown = _promote(b, env, "state", "show")
    assert "lock: free" in shown.stdout and "unfinished runs: none" in shown.stdout
    written = (
        _everything_written(a, b, server=s3_server, bucket=bucket) + shown.stdout + shown.stderr
    )
    for secret in (*ENVIRON.values(), SECRET_KEY):
        assert secret not in written


def test_a_run_killed_on_a_is_seen_unlocked_finished_and_rolled_back_on_b(
    shared, s3_server: S3Server
) -> None:
    a, b, bucket, gate = shared
    env = _env(s3_server)
    killed = _start(a, env, "run", "--to", "staging")
    _wait_for(
        lambda: _journal_step(s3_server, bucket) == {"env": "staging", "step": "restart"},
        "A's restart",
    )
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    gate.touch()  # the orphaned hook may go now

    status = _promote(b, env, "status")
    assert status.returncode == 0, status.stderr
    lock = json.loads(_promote(b, env, "state", "show", "--format", "json").stdout)["lock"]
    assert f"promote state unlock {lock['id']}" in status.stderr
    assert "stopped in staging at step restart; already applied: dev" in status.stderr

    blocked = _promote(b, env, "run", "--to", "staging")
    assert blocked.returncode == 4 and lock["id"] in blocked.stderr
    wrong = _promote(b, env, "state", "unlock", "not-the-id")
    assert wrong.returncode == 3 and lock["id"] in wrong.stderr
    unlocked = _promote(b, env, "state", "unlock", lock["id"])
    assert unlocked.returncode == 0, unlocked.stderr
    assert f"held by promote run to staging {lock['run_id']}" in unlocked.stdout

    finished = _promote(b, env, "run", "--to", "staging")
    assert finished.returncode == 0, finished.stderr
    assert f"found unfinished run {lock['run_id']} to staging" in finished.stderr
    history = json.loads(_promote(a, env, "history", "--format", "json").stdout)["records"]
    dev, staging = history  # staging: finished (and recorded) by B's run, naming A's
    assert dev["run_id"] == lock["run_id"] and staging["run_id"] != lock["run_id"]
    assert staging["notes"] == [f"finishes run {lock['run_id']}"]

    rolled = _promote(b, env, "rollback", "--env", "staging")
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.startswith("staging: rolled back")
    plan = json.loads(_promote(a, env, "plan", "--to", "staging", "--format", "json").stdout)
    assert [s["status"] for s in plan["stages"]] == ["in-sync", "changes"]
    actions = [
        r["action"]
        for r in json.loads(_promote(a, env, "history", "--format", "json").stdout)["records"]
    ]
    assert actions == ["promote", "promote", "rollback"]


def test_push_copies_local_state_once_and_the_other_clone_reads_it(
    tmp_path: Path, s3_server: S3Server
) -> None:
    bucket = s3_server.new_bucket()
    tenants = tmp_path / "tenants"
    a = _clone(tmp_path / "a", tenants, "")
    env = _env(s3_server)
    assert _promote(a, env, "run", "--to", "staging").returncode == 0
    local_history = _promote(a, env, "history", "--format", "json").stdout
    (a / "promote.yaml").write_text("chain: [dev, staging]\n" + _state(s3_server, bucket))
    pushed = _promote(a, env, "state", "push")
    assert pushed.returncode == 0, pushed.stderr
    assert "1 journals, 2 history entries" in pushed.stdout
    again = _promote(a, env, "state", "push")
    assert "0 journals, 0 history entries, 0 records, fingerprint key" in again.stdout
    b = _clone(tmp_path / "b", tenants, _state(s3_server, bucket))
    assert _promote(b, env, "history", "--format", "json").stdout == local_history


@pytest.mark.parametrize("problem", ["unreachable", "no bucket", "credentials"])
def test_store_problems_exit_1_before_any_tenant_is_touched(
    tmp_path: Path, s3_server: S3Server, problem: str
) -> None:
    tenants = tmp_path / "tenants"
    if problem == "unreachable":
        with moto_process() as gone:
            endpoint = gone.endpoint
        server, bucket = S3Server(endpoint), "bucket"
    elif problem == "no bucket":
        server, bucket = s3_server, "promote-no-such-bucket"
    if problem == "credentials":
        with moto_process(auth=True) as strict:
            ws = _clone(tmp_path / "ws", tenants, _state(strict, "bucket"))
            results = [_promote(ws, _env(strict), *args) for args in _COMMANDS]
    else:
        ws = _clone(tmp_path / "ws", tenants, _state(server, bucket))
        results = [_promote(ws, _env(server), *args) for args in _COMMANDS]
    expected = {
        "unreachable": "the store cannot be reached",
        "no bucket": "does not exist; create it or fix state.bucket in promote.yaml",
        "credentials": "access denied (",
    }[problem]
    for result in results:
        assert result.returncode == 1, (result.args, result.stderr)
        assert expected in result.stderr and "state store s3://" in result.stderr
        assert ACCESS_KEY not in result.stderr + result.stdout
        assert SECRET_KEY not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
    assert not tenants.exists()  # no tenant was opened, let alone changed


_COMMANDS = [
    ("run", "--to", "staging"),
    ("rollback", "--env", "staging"),
    ("status",),
    ("history",),
    ("state", "show"),
]
