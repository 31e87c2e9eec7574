"""Layering: esv is pure (no promote, click, httpx: side effects live in promote); each
third-party library sits behind its one module; the engine and the email package talk to
tenants only through the Protocol (no kind modules, no tenant kind strings)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.example import REPO as ROOT

ESV = ROOT / "esv"
PROMOTE = ROOT / "promote"
FORBIDDEN = ("promote", "click", "httpx", "jinja2", "deepdiff")
KIND_MODULES = {"promote.tenants.local", "promote.tenants.aic", "promote.tenants.okta"}
TENANT_KINDS = {"local", "aic", "okta"}
_KIND_PACKAGES = tuple(f"{module}." for module in sorted(KIND_MODULES))

# Each third-party library and the only modules (relative to the repository) that import it
# at run time (imports under ``if TYPE_CHECKING:`` are annotations only).
BEHIND_ONE_MODULE = {
    "httpx": {
        "promote/http.py",
        "promote/tenants/aic/auth.py",
        "promote/tenants/aic/tenant.py",
        "promote/tenants/okta/http.py",
        "promote/tenants/okta/tenant.py",
        "promote/email/graph.py",
    },
    "jinja2": {"promote/engine/render.py"},
    "deepdiff": {"promote/engine/diff.py"},
    "yaml": {"esv/envfile.py"},
    "boto3": {"promote/state/s3.py"},
    "orjson": {"esv/jsonfile.py"},
    "botocore": {"promote/state/s3.py"},
}


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, *, runtime: bool) -> Iterator[ast.AST]:
    """Every node under ``node``; with ``runtime``, not the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if runtime and _is_type_checking(child):
            assert isinstance(child, ast.If)
            for other in child.orelse:
                yield other
                yield from _walk(other, runtime=runtime)
            continue
        yield child
        yield from _walk(child, runtime=runtime)


def _imports(path: Path, *, runtime: bool = False) -> list[str]:
    names: list[str] = []
    for node in _walk(ast.parse(path.read_text(), filename=str(path)), runtime=runtime):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _modules(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py"))


@pytest.mark.parametrize("path", sorted(ESV.rglob("*.py")), ids=lambda p: p.name)
def test_esv_module_imports_nothing_from_promote(path: Path) -> None:
    bad = [n for n in _imports(path) if n.split(".")[0] in FORBIDDEN]
    assert bad == [], f"{path.name} imports {bad}"


def test_only_the_loader_imports_yaml() -> None:
    users = [p.name for p in ESV.rglob("*.py") if "yaml" in {n.split(".")[0] for n in _imports(p)}]
    assert users == ["envfile.py"]


def test_the_scan_finds_imports() -> None:
    assert "esv.errors" in _imports(ESV / "resolver.py")


def test_promote_core_never_imports_click() -> None:
    users = [
        str(p.relative_to(ROOT))
        for p in _modules(PROMOTE)
        if "cli" not in p.relative_to(PROMOTE).parts[:-1]
        and "click" in {n.split(".")[0] for n in _imports(p)}
    ]
    assert users == []


@pytest.mark.parametrize("library", sorted(BEHIND_ONE_MODULE))
def test_each_library_sits_behind_its_modules(library: str) -> None:
    users = {
        str(p.relative_to(ROOT))
        for p in _modules(ESV, PROMOTE)
        if library in {n.split(".")[0] for n in _imports(p, runtime=True)}
    }
    assert users == BEHIND_ONE_MODULE[library]


@pytest.mark.parametrize(
    "path",
    _modules(PROMOTE / "email", PROMOTE / "engine", PROMOTE / "state"),
    ids=lambda p: p.name,
)
def test_engine_and_email_import_no_tenant_kind_module(path: Path) -> None:
    names = {n for n in _imports(path) if n in KIND_MODULES or n.startswith(_KIND_PACKAGES)}
    assert not names, f"{path.name} imports {names}"


def _kind_references(path: Path) -> list[str]:
    """Comparisons with a tenant kind string; reads of ``x.tenant["kind"]``, ``.get("kind")``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                items = (
                    operand.elts
                    if isinstance(operand, (ast.Tuple, ast.List, ast.Set))
                    else [operand]
                )
                if any(isinstance(i, ast.Constant) and i.value in TENANT_KINDS for i in items):
                    found.append(f"line {node.lineno}: compares with a tenant kind")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if (
                node.func.attr == "get"
                and isinstance(target, ast.Attribute)
                and target.attr == "tenant"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value == "kind"
            ):
                found.append(f"line {node.lineno}: reads tenant.kind")
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "tenant"
            and isinstance(node.slice, ast.Constant)
            and node.slice.value == "kind"
        ):
            found.append(f"line {node.lineno}: reads tenant.kind")
    return found


@pytest.mark.parametrize(
    "path", _modules(PROMOTE / "engine", PROMOTE / "state"), ids=lambda p: p.name
)
def test_the_engine_never_looks_at_a_tenant_kind(path: Path) -> None:
    assert _kind_references(path) == []


@pytest.mark.parametrize("path", _modules(PROMOTE / "state"), ids=lambda p: p.name)
def test_state_sits_below_the_engine_tenants_and_cli(path: Path) -> None:
    upward = ("promote.engine", "promote.tenants", "promote.cli", "promote.email")
    bad = [n for n in _imports(path) if n.startswith(upward)]
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", _modules(PROMOTE / "email"), ids=lambda p: p.name)
def test_email_decides_nothing_by_tenant_kind(path: Path) -> None:
    # ``email test --live`` names the kind in its summary; it never branches on it.
    found = [f for f in _kind_references(path) if "compares" in f]
    assert found == []


def test_the_kind_scan_finds_kind_branches(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        'if env.tenant.get("kind") == "okta":\n    pass\nk = env.tenant["kind"]\n'
        'if kind in ("local", "aic"):\n    pass\n'
    )
    assert len(_kind_references(module)) == 4


def test_type_checking_imports_are_not_run_time_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx\n"
        "else:\n    import json\n"
    )
    assert "httpx" in _imports(module) and "httpx" not in _imports(module, runtime=True)
    assert "json" in _imports(module, runtime=True)
