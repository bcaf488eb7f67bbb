"""The layout rules of DEVELOPERS.md, read from the source (ast), so a regression fails the suite.

- no module of proxy/ or rules/ over 300 lines;
- no function (def, async def, methods included) over 40 lines outside tests/;
- rules/ (the domain) never imports proxy/ (the HTTP side).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("proxy", "rules")
CODE = (*PRODUCT, "bench", "scripts")
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40


def python_files(*folders: str) -> list[Path]:
    """Every .py file below the folders, build output and virtualenvs left out."""
    skip = {".venv", ".venv-mitm", "target", "build", "__pycache__"}
    return sorted(
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        if not skip.intersection(path.relative_to(ROOT).parts)
    )


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every def and async def in a module, nested ones and methods included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the `def` (decorators excluded) to the last line of the body."""
    end = node.end_lineno if node.end_lineno is not None else node.lineno
    return end - node.lineno + 1


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) for each `import x` and absolute `from x import y`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_structure_rules_see_the_product_code() -> None:
    """Guard against a vacuous pass: the scans below must find the modules they police."""
    names = {p.relative_to(ROOT).as_posix() for p in python_files(*PRODUCT)}
    assert {"proxy/app.py", "rules/model.py", "rules/consumer/loop.py"} <= names


def test_no_module_of_proxy_or_rules_is_over_300_lines() -> None:
    long = {
        path.relative_to(ROOT).as_posix(): n
        for path in python_files(*PRODUCT)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_outside_tests_is_over_40_lines() -> None:
    long = {
        f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name}": n
        for path in python_files(*CODE)
        for node in functions(parse(path))
        if (n := function_lines(node)) > MAX_FUNCTION_LINES
    }
    assert long == {}


def test_rules_never_imports_proxy() -> None:
    back = [
        f"{path.relative_to(ROOT).as_posix()}:{line} {module}"
        for path in python_files("rules")
        for line, module in imported_modules(parse(path))
        if module == "proxy" or module.startswith("proxy.")
    ]
    assert back == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import proxy.settings\n", ["proxy.settings"]),
        ("from proxy import app\n", ["proxy"]),
        ("def f():\n    from proxy.errors import StoreError\n", ["proxy.errors"]),
        ("from . import proxy\nimport proxyish\n", ["proxyish"]),
    ],
)
def test_imported_modules_reads_every_import_form(source: str, expected: list[str]) -> None:
    assert [module for _, module in imported_modules(ast.parse(source))] == expected


def test_function_lines_counts_from_def_to_the_last_body_line() -> None:
    source = "@decorator\nasync def f():\n    a = 1\n\n    return a\n"
    (node,) = functions(ast.parse(source))
    assert function_lines(node) == 4
