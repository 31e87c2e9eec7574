"""Every engine command, every format, with known secrets: none may appear anywhere.

Searched: stdout and stderr of every command, and every file the commands wrote (plans,
``.promote/``: journals, history, lock, outboxes; the caches of config digests and of parsed
YAML, which keeps the environment files without an inline secret) except the
tenants' own databases, which must hold the values to serve them. The inputs (environment
files) are the test's own.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from click.testing import CliRunner

from promote.cli import cli
from tests.helpers.leaks import assert_no_leak, leak_forms
from tests.promote.engine.workspaces import EMAIL, ENVIRON, default_envs, env_yaml, write_workspace

INLINE = "Inl1ne-secret-VALUE-5521"
ROTATED = "R0tated-secret-VALUE-9034"
SECRETS = [*ENVIRON.values(), INLINE, ROTATED]
_DATABASE_SUFFIXES = ("tenant.sqlite3", "tenant.sqlite3-wal", "tenant.sqlite3-shm")


def _assert_clean(text: str, where: str) -> None:
    # The value, encoded, or any unkeyed digest of it (SPEC 4.4: only keyed fingerprints).
    assert_no_leak(text, SECRETS, where)


def test_no_command_leaks_a_secret(
    tmp_path: Path, _config_cache: Path, trusted_config_files: None
) -> None:
    hook = f"restart:\n  command: {json.dumps([sys.executable, '-c', 'import sys; sys.exit(2)'])}\n"
    envs = default_envs(
        staging=env_yaml("staging", port="465", ssl="true", password=json.dumps({"value": INLINE})),
    )
    email = {**EMAIL, "headers": {"X-Auth": "Bearer &{esv.email.provider.password}"}}
    root = write_workspace(tmp_path / "ws", envs=envs, config={"external.email": email})
    runner = CliRunner()
    outputs: list[tuple[str, str]] = []

    def promote(*args: str, env: dict[str, str] | None = None, code: int | None = None) -> None:
        result = runner.invoke(cli, ["--workspace", str(root), *args], env=env or ENVIRON)
        if code is not None:
            assert result.exit_code == code, (args, result.stdout, result.stderr)
        outputs.append((" ".join(args), result.stdout + result.stderr))

    plan_file = tmp_path / "out" / "plan.json"
    for fmt in ("text", "markdown", "json"):
        promote("plan", "--to", "prod", "--format", fmt, code=0)
        promote("plan", "--to", "prod", "--format", fmt, "--out", str(tmp_path / "out" / fmt))
    promote("plan", "--to", "staging", "--format", "json", "--out", str(plan_file), code=0)
    promote("run", "--plan", str(plan_file), code=0)
    promote("run", "--to", "prod", code=3)  # not approved
    promote("run", "--to", "prod", "--approve", "prod", code=0)
    rotated = {**ENVIRON, "DEV_SMTP_PASSWORD": ROTATED}
    for fmt in ("text", "markdown", "json"):
        promote("plan", "--to", "staging", "--format", fmt, env=rotated, code=0)
    promote("run", "--plan", str(plan_file), env=rotated, code=3)  # stale
    promote("--debug", "run", "--plan", str(plan_file), env=rotated, code=3)
    missing = {k: v for k, v in ENVIRON.items() if k != "PROD_SMTP_PASSWORD"}
    promote("plan", "--to", "prod", env=missing, code=3)
    promote("--debug", "run", "--to", "prod", "--approve", "prod", env=missing, code=3)
    # a failing restart hook after a secret rotation: exit 1 with states
    (root / "environments" / "dev.yaml").write_text(env_yaml("dev", restart=hook))
    promote("run", "--to", "staging", env=rotated, code=1)
    promote("--debug", "run", "--to", "staging", env=rotated, code=1)
    promote("run", "--to", "staging", env=rotated)
    for fmt in ("text", "json"):
        promote("status", "--format", fmt, code=0)
        promote("history", "--format", fmt, code=0)
        promote("history", "--env", "staging", "--format", fmt, code=0)
    promote("rollback", "--env", "prod", code=3)  # protected: not approved
    promote("rollback", "--env", "prod", "--approve", "prod", code=0)
    promote("rollback", "--env", "dev")

    for args, text in outputs:
        _assert_clean(text, f"the output of 'promote {args}'")

    written = [
        path
        for base in (root / ".promote", tmp_path / "out", _config_cache)
        for path in base.rglob("*")
        if path.is_file() and not path.name.endswith(_DATABASE_SUFFIXES)
    ]
    assert any(p.name == "history.jsonl" for p in written)
    assert any(p.suffix == ".cache" for p in written)  # the digests of config/
    assert any(p.parent.name == "runs" for p in written)
    # The search can see secrets: the staging tenant's own database holds its value.
    database = root / ".promote" / "tenants" / "staging" / "tenant.sqlite3"
    with closing(sqlite3.connect(database)) as conn:
        values = [row[0] for row in conn.execute("SELECT value FROM secret_versions")]
    assert INLINE in values
    for path in written:
        _assert_clean(path.read_bytes().decode(errors="replace"), str(path))


def test_approval_prompts_unexpected_errors_and_recovery_leak_no_secret(tmp_path: Path) -> None:
    import click

    from promote.cli import Context, handle_errors, pass_context
    from promote.cli.engine_cmds import _run
    from promote.engine.apply import Ambient, run
    from promote.engine.session import Tenants
    from promote.workspace import load_workspace
    from tests.promote.engine.workspaces import faulty_opener

    root = write_workspace(tmp_path / "ws")
    rotated = {**ENVIRON, "PROD_SMTP_PASSWORD": ROTATED}
    # A tenant bug whose message holds a secret value: only its type may be shown.
    opener = faulty_opener("staging", "write_esvs", ValueError(f"bad value {ROTATED}"))

    @click.command()
    @pass_context
    def faulty_run(ctx: Context) -> None:
        handle_errors(ctx, lambda: _run(ctx, "prod", ("prod",), None, opener=opener))

    result = CliRunner().invoke(faulty_run, [], obj=Context(root, False), env=rotated)
    assert result.exit_code == 1 and "internal error (ValueError)" in result.stderr
    outputs = [result.stdout + result.stderr]

    workspace = load_workspace(root)
    with Tenants(workspace, environ=rotated) as tenants:  # finishes the aborted run
        done = run(workspace, "prod", tenants, ambient=Ambient(environ=rotated))
    assert done.notes and "finished it" in done.notes[0]
    questions: list[str] = []
    again = {**rotated, "PROD_SMTP_PASSWORD": INLINE}  # rotated once more: asks for prod
    with Tenants(workspace, environ=again) as tenants:
        asked = run(
            workspace,
            "prod",
            tenants,
            ambient=Ambient(environ=again, confirm=lambda q: questions.append(q) or True),
        )
    assert asked.applied == ("prod",)
    assert questions and "~esv-email-provider-password" in questions[0]
    outputs += questions + list(done.notes)
    runner = CliRunner()
    for args in (["history"], ["history", "--format", "json"], ["status"]):
        shown = runner.invoke(cli, ["--workspace", str(root), *args], env=rotated)
        outputs.append(shown.stdout + shown.stderr)
    for text in outputs:
        _assert_clean(text, "output")
    for path in (root / ".promote").rglob("*"):
        if path.is_file() and not path.name.endswith(_DATABASE_SUFFIXES):
            _assert_clean(path.read_bytes().decode(errors="replace"), str(path))


def _search_all(root: Path, outputs: list[tuple[str, str]], secrets: list[str]) -> None:
    for args, text in outputs:
        assert_no_leak(text, secrets, f"the output of 'promote {args}'")
    for path in (root / ".promote").rglob("*"):
        if not path.is_file():
            continue
        text = path.read_bytes().decode(errors="replace")
        if not path.name.endswith(_DATABASE_SUFFIXES):
            assert_no_leak(text, secrets, str(path))
            continue
        # A local tenant keeps its secrets' values (as AIC does), never a digest of one.
        for secret in secrets:
            for index, form in enumerate(leak_forms(secret)[3:]):
                assert form not in text, f"an unkeyed digest ({index}) leaked into {path}"


def test_a_failing_hook_that_prints_a_secret_shows_it_masked(tmp_path: Path) -> None:
    # The hook runs with the whole environment; it echoes the staging password (and its
    # base64) to stderr and fails: the error quotes its output with both masked.
    script = (
        "import base64, os, sys; p = os.environ['STAGING_SMTP_PASSWORD'];"
        " sys.stderr.write('login failed for ' + p + ' / ' + base64.b64encode(p.encode())"
        ".decode() + '\\n'); sys.exit(3)"
    )
    hook = f"restart:\n  command: {json.dumps([sys.executable, '-c', script])}\n"
    envs = default_envs(dev=env_yaml("dev", restart=hook))
    root = write_workspace(tmp_path / "ws", envs=envs)
    result = CliRunner().invoke(cli, ["--workspace", str(root), "run", "--to", "dev"], env=ENVIRON)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "exited with status 3: login failed for ******** / ********" in result.stderr
    _search_all(root, [("run --to dev", result.stdout + result.stderr)], SECRETS)


def test_a_url_hook_is_shown_without_its_credentials(tmp_path: Path) -> None:
    from tests.helpers.http import QuietHandler, serving

    password, token = "Url-PASSWORD-in-userinfo-3141", "Url-TOKEN-in-query-2718"

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.reply(204 if self.path.startswith("/ok") else 500)

    outputs: list[tuple[str, str]] = []
    with serving(Handler) as url:
        base = url.replace("http://", f"http://ops:{password}@")
        for path, code in (("ok", 0), ("fail", 1)):
            hook = f"restart:\n  url: {base}/{path}?token={token}\n"
            root = write_workspace(
                tmp_path / path, envs=default_envs(dev=env_yaml("dev", restart=hook))
            )
            result = CliRunner().invoke(
                cli, ["--workspace", str(root), "run", "--to", "dev"], env=ENVIRON
            )
            text = result.stdout + result.stderr
            assert result.exit_code == code, text
            shown = f"POST {url}/{path}"
            assert shown in text
            outputs.append((f"run ({path} hook)", text))
            _search_all(root, outputs, [*SECRETS, password, token])
