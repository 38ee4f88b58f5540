"""The package's shape (docs/architecture.md): layers that import only downward, no import of the
package's own modules hidden in a function, and ruff's checks (configured in pyproject.toml)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "neurodelay"


def _run(args: list[str]) -> subprocess.CompletedProcess:
    """``args`` run from the repository's root, with this checkout's package first on the path."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_layers_import_only_downward():
    """import-linter's layers contract in pyproject.toml holds (imports inside functions count too)."""
    pytest.importorskip("importlinter", reason="import-linter is in the test extra: pip install -e '.[test]'")
    done = _run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                 "sys.argv[0] = 'lint-imports'; lint_imports_command()", "--no-cache", "--no-logo"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_ruff_finds_nothing():
    """``ruff check`` over the repository, with the configuration in pyproject.toml."""
    pytest.importorskip("ruff", reason="ruff is in the test extra: pip install -e '.[test]'")
    done = _run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."])
    assert done.returncode == 0, done.stdout + done.stderr


def _function_level_imports(source: str, name: str) -> list[str]:
    """``name:line: module`` of each import of neurodelay's own modules inside a function of ``source``."""
    found = []
    for fn in ast.walk(ast.parse(source, name)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("neurodelay")):
                found.append(f"{name}:{node.lineno}: {'.' * node.level}{node.module or ''}")
            elif isinstance(node, ast.Import):
                found += [f"{name}:{node.lineno}: {a.name}" for a in node.names
                          if a.name.split(".")[0] == "neurodelay"]
    return found


def test_no_module_imports_the_package_inside_a_function():
    """The package's own modules are imported at module level (optional extras such as dask and
    submitit may be imported where they are used): a cycle cannot hide in a function."""
    found = [hit for path in sorted(PACKAGE.rglob("*.py"))
             for hit in _function_level_imports(path.read_text(), str(path.relative_to(ROOT)))]
    assert not found, "imports of neurodelay inside functions:\n" + "\n".join(found)


def test_the_function_level_import_check_sees_one():
    source = "import os\n\ndef f():\n    from .study import load_study\n    import neurodelay.run\n    import json\n"
    assert [h.split(": ")[1] for h in _function_level_imports(source, "probe.py")] == [".study", "neurodelay.run"]
