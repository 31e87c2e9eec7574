"""Start-up stays fast structurally: importing the CLI loads no command module and no heavy
library, and ``--help`` lists every command from the registry exactly as Click would."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from promote.cli import COMMANDS, cli

HEAVY = ("deepdiff", "jinja2", "httpx", "yaml", "boto3", "botocore", "cryptography", "sqlite3")
HEAVY += ("traceback",)  # printed only under --debug
LOADED_BY_COMMANDS = (
    "promote.engine",
    "promote.email",
    "promote.tenants",
    "promote.state",
    "promote.sandbox",
    "promote.cli.engine_cmds",
    "promote.cli.esv_cmds",
    "esv.resolver",
    "esv.envfile",
)


def _modules_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_command_and_no_heavy_library() -> None:
    loaded = _modules_after("import promote.cli")
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    eager = [m for m in loaded if m.startswith(LOADED_BY_COMMANDS)]
    assert heavy == [] and eager == []


def test_help_loads_no_command_module() -> None:
    loaded = _modules_after(
        "import sys\nfrom promote.cli import cli\n"
        "try:\n    cli.main(['--help'], prog_name='promote')\nexcept SystemExit:\n    pass"
    )
    assert [m for m in loaded if m.startswith(("promote.cli.", "deepdiff"))] == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_registry_matches_each_command(name: str) -> None:
    module, attribute, text = COMMANDS[name]
    command = getattr(importlib.import_module(f"promote.cli.{module}"), attribute)
    assert isinstance(command, click.Command) and command.name == name
    assert inspect.cleandoc(command.help or "").split("\n\n")[0] == text


def test_every_command_in_a_module_is_registered() -> None:
    registered = {(module, attribute) for module, attribute, _ in COMMANDS.values()}
    for module in {module for module, _, _ in COMMANDS.values()}:
        loaded = importlib.import_module(f"promote.cli.{module}")
        for attribute, value in vars(loaded).items():
            top = isinstance(value, click.Command) and not any(
                value in group.commands.values()
                for group in vars(loaded).values()
                if isinstance(group, click.Group)
            )
            if top:
                assert (module, attribute) in registered, f"{module}.{attribute} is not listed"


def test_help_lists_every_command_as_click_would() -> None:
    lazy = CliRunner().invoke(cli, ["--help"], prog_name="promote")
    eager = click.Group(
        cli.name,
        commands=[cli.get_command(click.Context(cli), name) for name in sorted(COMMANDS)],
        params=cli.params,
        help=cli.help,
        context_settings=cli.context_settings,
    )
    expected = CliRunner().invoke(eager, ["--help"], prog_name="promote")
    assert lazy.exit_code == 0 and lazy.stdout == expected.stdout
    for name in COMMANDS:
        assert f"\n  {name} " in lazy.stdout


@pytest.mark.parametrize("group", ["esv", "email", "sandbox", "state"])
def test_every_group_lists_its_commands(group: str) -> None:
    result = CliRunner().invoke(cli, [group, "--help"])
    command = cli.get_command(click.Context(cli), group)
    assert isinstance(command, click.Group) and command.commands
    for name in command.commands:
        assert f"\n  {name} " in result.stdout


def test_the_collector_threshold_is_raised_only_while_a_command_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    import promote.cli

    before = gc.get_threshold()
    during: list[tuple[int, ...]] = []

    def command(**kwargs: object) -> None:
        during.append(gc.get_threshold())
        raise SystemExit(0)

    monkeypatch.setattr(promote.cli.cli, "main", command)
    with pytest.raises(SystemExit):
        promote.cli.main(["--help"])
    assert during == [(promote.cli._GC_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before


def _console(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = f"import sys\nsys.argv = ['promote', *{list(args)!r}]\n{code}"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=buffered
    )


def test_the_console_script_ends_with_the_commands_code_and_all_its_output(
    tmp_path: Path,
) -> None:
    from tests.promote.engine.workspaces import write_workspace

    config = {f"obj/{n:04d}": {"n": n, "text": "x" * 100} for n in range(2000)}
    root = write_workspace(tmp_path / "ws", config=config)
    entry = "from promote.cli import console_script\nconsole_script()"
    done = _console(entry, "--workspace", str(root), "resolve", "--env", "dev")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == config  # 300 KB, every byte of it
    done = _console(entry, "--workspace", str(root), "plan", "--to", "nowhere")
    assert done.returncode == 3 and "unknown environment 'nowhere'" in done.stderr
    done = _console(f"import atexit\natexit.register(print, 'atexit ran')\n{entry}", "--version")
    assert done.returncode == 0 and done.stdout.endswith("atexit ran\n")


def test_the_console_script_ends_as_python_does_while_threads_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    import promote.cli

    monkeypatch.setattr(threading, "active_count", lambda: 2)
    monkeypatch.setattr(promote.cli, "main", lambda: sys.exit(4))
    with pytest.raises(SystemExit) as ended:
        promote.cli.console_script()
    assert ended.value.code == 4


ONLY_FOR_REMOTE = ("httpx", "httpcore", "cryptography", "boto3", "botocore", "jinja2")


def test_a_run_and_a_plan_on_local_tenants_load_no_client_library(tmp_path: Path) -> None:
    # The shipped example (local tenants only): HTTP and signing are for remote tenants,
    # webhooks and email checks, S3 for the shared state store, templates for text plans,
    # status and history; none of them for a run or a JSON plan on local tenants.
    repo = Path(__file__).resolve().parents[3]
    shutil.copytree(repo / "config", tmp_path / "config")
    shutil.copytree(repo / "environments", tmp_path / "environments")
    loaded = []
    for args in (["run", "--to", "staging"], ["plan", "--to", "staging", "--format", "json"]):
        code = (
            "from promote.cli import main\n"
            f"try:\n    main({['--workspace', str(tmp_path), *args]!r})\n"
            "except SystemExit as done:\n    assert done.code == 0, done.code"
        )
        loaded.append(_modules_after(code))
    assert "promote.engine.apply" in loaded[0]  # the run did run
    for modules in loaded:
        assert [m for m in modules if m.split(".")[0] in ONLY_FOR_REMOTE] == []


def test_an_aic_tenant_signs_with_cryptography_only_when_it_has_a_key() -> None:
    assert "cryptography" not in {
        m.split(".")[0] for m in _modules_after("import promote.tenants.aic")
    }
