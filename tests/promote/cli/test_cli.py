"""The command line's shared parts: global options anywhere, one error handler."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from promote.cli import Context, cli, handle_errors
from promote.errors import BlockedError


@pytest.fixture
def workspace(example: Path) -> Path:
    return example


@pytest.mark.parametrize(
    "args",
    [
        ["--workspace", "{ws}", "esv", "usage"],
        ["esv", "usage", "--workspace", "{ws}"],
        ["esv", "usage", "-w", "{ws}"],
    ],
)
def test_workspace_option_before_or_after_the_command(workspace: Path, args: list[str]) -> None:
    argv = [a.replace("{ws}", str(workspace)) for a in args]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert "esv-email-provider-host" in result.stdout


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--workspace", str(tmp_path), "--debug"])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr


def test_every_command_accepts_the_global_options() -> None:
    def leaves(command):  # type: ignore[no-untyped-def]
        subs = getattr(command, "commands", None)
        if subs is None:
            yield command
            return
        for sub in subs.values():
            yield from leaves(sub)

    for command in leaves(cli):
        names = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--workspace", "-w", "--debug"} <= names, command.name


def test_library_errors_exit_with_their_code(capsys: pytest.CaptureFixture[str]) -> None:
    def call() -> int:
        raise BlockedError("blocked by checks")

    with pytest.raises(SystemExit) as exit_info:
        handle_errors(Context(None, False), call)
    assert exit_info.value.code == 3
    assert capsys.readouterr().err == "error: blocked by checks\n"


def test_an_unexpected_error_is_a_bug_report_without_its_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def call() -> int:
        raise ValueError("s3cr3t-value-from-a-workspace")

    with pytest.raises(SystemExit) as exit_info:
        handle_errors(Context(None, False), call)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "internal error (ValueError)" in err
    assert "--debug" in err
    assert "s3cr3t" not in err
    assert "Traceback" not in err


def test_an_os_error_names_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    def call() -> int:
        raise PermissionError(13, "Permission denied", "/ws/.promote/runs")

    with pytest.raises(SystemExit) as exit_info:
        handle_errors(Context(None, False), call)
    assert exit_info.value.code == 1
    assert "/ws/.promote/runs" in capsys.readouterr().err
