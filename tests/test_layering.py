"""esv is pure: no module in it imports promote (or click, httpx: side effects live in promote)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ESV = Path(__file__).resolve().parents[1] / "esv"
FORBIDDEN = ("promote", "click", "httpx", "jinja2", "deepdiff")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(ESV.rglob("*.py")), ids=lambda p: p.name)
def test_esv_module_imports_nothing_from_promote(path: Path) -> None:
    bad = [n for n in _imports(path) if n.split(".")[0] in FORBIDDEN]
    assert bad == [], f"{path.name} imports {bad}"


def test_only_the_loader_imports_yaml() -> None:
    users = [p.name for p in ESV.rglob("*.py") if "yaml" in {n.split(".")[0] for n in _imports(p)}]
    assert users == ["envfile.py"]


def test_the_scan_finds_imports() -> None:
    assert "esv.errors" in _imports(ESV / "resolver.py")
