"""`.env` files as fr-config-manager reads them."""

from __future__ import annotations

from pathlib import Path

from promote.adopt.dotenv import read_dotenv


def test_values_comments_quotes_and_export(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# a comment\n"
        "PLAIN=value # trailing comment\n"
        "export EXPORTED=yes\n"
        'DOUBLE="two words\\nnext line"\n'
        "SINGLE='keep # this'\n"
        "EMPTY=\n"
        "  SPACED = padded  \n"
        "LAST=no final newline"
    )
    values, problems = read_dotenv(path, shown=".env")
    assert problems == []
    assert values == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "DOUBLE": "two words\nnext line",
        "SINGLE": "keep # this",
        "EMPTY": "",
        "SPACED": "padded",
        "LAST": "no final newline",
    }


def test_a_bad_line_is_named_by_number_never_shown(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("GOOD=1\nthis line holds hunter2 and no equals sign\n")
    values, problems = read_dotenv(path, shown=".env")
    assert values == {"GOOD": "1"}
    (problem,) = problems
    assert str(problem).startswith(".env: line 2: is not NAME=value")
    assert "hunter2" not in str(problem)
    missing, problems = read_dotenv(tmp_path / "absent", shown="absent")
    assert missing == {} and "cannot be read" in str(problems[0])
