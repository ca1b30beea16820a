"""The import contract: stages import downwards only, serving reads the formats only, no cycles.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked by
import-linter; cycles inside a layer (which a layers contract cannot see) by a strongly
connected components pass over grimp's import graph.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import importlinter  # noqa: F401  (a test dependency: missing, this module fails, not skips)
import pytest

REPO = Path(__file__).resolve().parents[1]
# what the package is made of: the root modules and one folder per stage
PACKAGE_FILES = ("__init__.py", "__main__.py", "pipeline.py")
PACKAGE_DIRS = ("app", "bench", "coding", "core", "export", "graph", "kernels", "serve", "train")


def lint_imports(cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_import_contract():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout


def copy_package(into: Path) -> Path:
    """The package's Python files under ``into/hashembed`` (what import-linter reads)."""
    package = into / "hashembed"
    package.mkdir(parents=True)
    for name in PACKAGE_FILES:
        shutil.copy(REPO / name, package / name)
    for folder in PACKAGE_DIRS:
        for file in (REPO / folder).rglob("*.py"):
            target = package / file.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(file, target)
    shutil.copy(REPO / "pyproject.toml", into / "pyproject.toml")
    return package


@pytest.mark.parametrize("module, forbidden", [
    ("core/errors.py", "from hashembed.app import cli"),        # a format imports the app
    ("serve/predictor.py", "import torch"),                     # serving imports torch
    ("train/decoder.py", "from hashembed.export import exporter"),  # training imports export
])
def test_a_forbidden_import_breaks_the_contract(tmp_path, module, forbidden):
    """The same check fails on a copy of the package with one forbidden import added."""
    package = copy_package(tmp_path)
    file = package / module
    file.write_text(file.read_text() + f"\n{forbidden}  # forbidden\n")
    done = lint_imports(tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": ""})
    assert done.returncode != 0, done.stdout
    assert "BROKEN" in done.stdout
    assert f"hashembed.{module[:-3].replace('/', '.')}" in done.stdout


def import_cycles() -> list[list[str]]:
    """Groups of the package's modules that import each other in a cycle (Tarjan's SCCs)."""
    import grimp

    graph = grimp.build_graph("hashembed")
    modules = sorted(m for m in graph.modules if m.startswith("hashembed"))
    imports = {m: sorted(d for d in graph.find_modules_directly_imported_by(m)
                         if d.startswith("hashembed")) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in imports[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_through_others():
    assert import_cycles() == []
