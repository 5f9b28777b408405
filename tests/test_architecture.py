"""The layers of docs/architecture.md hold in the code, not only in lint-imports' config.

lint-imports (in `make lint`) checks imports between our modules; these tests check
what it cannot: imports hidden inside functions, and Django's own modules in the engine.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("refiner", "segments", "surveys", "targeting", "demo", "workspace_backups")
ENGINE = ("rules", "values", "memory", "sql", "snapshot", "registry")
# What a request handler is made of: none of it belongs in the engine.
WEB_MODULES = (
    "django.http",
    "django.views",
    "django.forms",
    "django.shortcuts",
    "django.template",
    "django.urls",
    "django.contrib.admin",
)


def _app_files():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield app, path


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return []


def _nested_imports(tree: ast.Module):
    """Imports inside a function or class body: invisible to a reader of the file's top."""
    for top in tree.body:
        if isinstance(top, ast.Import | ast.ImportFrom):
            continue
        for node in ast.walk(top):
            for module in _imported(node):
                yield node.lineno, module


def function_level_imports_of_other_apps() -> list[str]:
    found = []
    for app, path in _app_files():
        for line, module in _nested_imports(ast.parse(path.read_text())):
            top = module.split(".")[0]
            if top in APPS and top != app:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def test_no_app_imports_another_inside_a_function():
    assert function_level_imports_of_other_apps() == []


def test_the_check_sees_an_import_hidden_in_a_function():
    source = "def f():\n    from surveys.models import Survey\n    return Survey\n"
    assert list(_nested_imports(ast.parse(source))) == [(2, "surveys.models")]


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_imports_no_web_module(module):
    tree = ast.parse((ROOT / "segments" / f"{module}.py").read_text())
    imported = [name for node in ast.walk(tree) for name in _imported(node)]
    web = [name for name in imported if name.startswith(WEB_MODULES)]
    assert web == [], f"segments.{module} imports {web}"


def test_the_rule_language_and_values_load_without_django():
    # A fresh interpreter: this one has Django loaded already.
    code = "import sys, segments.rules, segments.values; print('django' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
