"""The layers of docs/architecture.md ("Layers"), checked on the source with ``ast``.

``sdl.planners`` and ``sdl.devices`` import nothing from each other; ``sdl.protocols``
uses both; none of the three imports the core (campaign, loop, store, config, CLI...),
only ``sdl.errors`` and ``sdl._plugins``, which themselves import nothing else of sdl.
Every import counts: module level, inside functions (lazy), ``TYPE_CHECKING`` blocks,
relative ones and ``importlib.import_module("sdl...")`` with a literal name.

(import-linter would read the installed package's folder, ``sdl/``; three of our
subpackages live outside it through ``package-dir``, so the rules are checked here.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> package name (pyproject.toml's [tool.setuptools.package-dir])
PACKAGES = {"devices": "sdl.devices", "planners": "sdl.planners", "protocols": "sdl.protocols"}
SHARED = ("sdl.errors", "sdl._plugins")
ALLOWED = {
    "sdl.devices": ("sdl.devices", *SHARED),
    "sdl.planners": ("sdl.planners", *SHARED),
    "sdl.protocols": ("sdl.protocols", "sdl.devices", "sdl.planners", *SHARED),
}


def _module_name(path: Path, folder: Path, package: str) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def imported_sdl_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, module)`` for every ``sdl`` module that ``source`` (module ``module``) imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            # `from sdl import errors` imports sdl.errors; `from sdl.x import y`, sdl.x
            names = [f"{parent}.{a.name}" for a in node.names] if parent == "sdl" else [parent]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        found += [(node.lineno, n) for n in names if n == "sdl" or n.startswith("sdl.")]
    return found


def _violations(module: str, imports: list[tuple[int, str]], allowed: tuple[str, ...]):
    return [
        f"{module}:{line} imports {name}"
        for line, name in imports
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    ]


def _sources():
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, _module_name(path, ROOT / folder, package), package
    for name in SHARED:
        yield ROOT / (name.replace(".", "/") + ".py"), name, name


def test_the_sources_are_found():
    modules = {module for _, module, _ in _sources()}
    assert {"sdl.devices._motor", "sdl.planners._pareto", "sdl.protocols._objectives"} <= modules


@pytest.mark.parametrize("package", [*ALLOWED, *SHARED])
def test_lower_layers_import_only_what_the_architecture_allows(package):
    allowed = ALLOWED.get(package, (package, *SHARED))
    bad = []
    for path, module, pkg in _sources():
        if pkg == package:
            imports = imported_sdl_modules(path.read_text(), module, path.name == "__init__.py")
            bad += _violations(module, imports, allowed)
    assert not bad, "layer violations (docs/architecture.md, 'Layers'):\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "module, source, bad",
    [
        ("sdl.devices._x", "from sdl.planners import Objective", "sdl.planners"),
        ("sdl.devices._x", "def f():\n    import sdl.planners._space", "sdl.planners._space"),
        ("sdl.devices._x", "from ..planners import Space", "sdl.planners"),
        ("sdl.devices._x", "from sdl import open_store", "sdl.open_store"),
        ("sdl.planners._x", "from sdl.devices import SimMotor", "sdl.devices"),
        ("sdl.planners._x", "import importlib\nimportlib.import_module('sdl.store')", "sdl.store"),
        ("sdl.protocols._x", "from sdl._loop import closed_loop", "sdl._loop"),
    ],
)
def test_the_check_catches_a_forbidden_import(module, source, bad):
    package = module.rpartition(".")[0]
    imports = imported_sdl_modules(source, module, is_package=False)
    assert _violations(module, imports, ALLOWED[package]) == [
        f"{module}:{imports[0][0]} imports {bad}"
    ]
    ok = "from sdl.errors import LimitError\nfrom . import _motor\nfrom .._plugins import Registry"
    assert _violations(module, imported_sdl_modules(ok, module, False), ALLOWED[package]) == []
