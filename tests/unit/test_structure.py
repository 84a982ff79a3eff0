"""The provider's module structure: rooms by role whose imports go one way, and a responder that loads before
anything can fail.

The root holds the contract with CloudFormation (the entry point, dispatch, the responder, the request and its
context, failures, properties, continuations, deadlines, observability); `types/` one module per resource type;
`engine/` the work on many repositories; `grammar/` the policy languages; `aws/` every AWS call."""

from __future__ import annotations

import ast
import sys
from graphlib import TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ecr_cache_provider"
ROOMS = ("types", "engine", "grammar", "aws")
# The root modules allowed to import every room: the entry point, and dispatch, which routes to the types.
ENTRY = {"handler", "dispatch"}
# What each room may never import (a room, or "entry": handler and dispatch).
FORBIDDEN = {
    "entry": set(),
    "root": {"types", "engine", "entry"},
    "types": {"entry"},
    "engine": {"types", "entry"},
    "grammar": {"types", "engine", "aws", "entry"},
    "aws": {"types", "engine", "grammar", "entry"},
}
# Past ~350 lines a module says at its top why it is one module (see the docstring's first lines).
LONG_MODULE_LINES = 350


def modules() -> dict[str, Path]:
    """Every provider module by its dotted name below the package (`types.pull_through_cache_rule`)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts)] = path
    return found


def provider_imports(module: str) -> set[str]:
    """The provider modules (dotted, below the package) `module` imports, wherever in the module the import is."""
    known = modules()
    tree = ast.parse(known[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            inner = name.removeprefix("ecr_cache_provider.")
            if not name.startswith("ecr_cache_provider."):
                continue
            if inner in known:
                found.add(inner)
            elif f"{inner}.__init__" in known:  # a sub-package: its __init__ runs
                found.add(f"{inner}.__init__")
    found.discard(module)
    return found


def room(module: str) -> str:
    head = module.split(".", maxsplit=1)[0]
    if head in ROOMS:
        return head
    return "entry" if head in ENTRY else "root"


def external_imports(module: str) -> set[str]:
    tree = ast.parse(modules()[module].read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {str(node.module) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    return {name.split(".")[0] for name in names} - {"ecr_cache_provider", "__future__"}


def test_the_rooms_are_sub_packages_and_the_root_holds_only_the_contract() -> None:
    root = {name for name in modules() if "." not in name} - {"__init__"}
    assert root == ENTRY | {
        "responder",
        "contract",
        "failures",
        "properties",
        "continuation",
        "deadline",
        "observability",
    }
    for name in ROOMS:
        assert (PACKAGE / name / "__init__.py").is_file(), f"{name}/ is no package"
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders == set(ROOMS)


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_keep_to_the_layers(module: str) -> None:
    """Types use engines, grammars and gateways; engines never use a type; gateways and grammars use neither."""
    mine = room(module)
    crossing = {name for name in provider_imports(module) if room(name) in FORBIDDEN[mine]}
    assert not crossing, f"{module} ({mine}) imports {sorted(crossing)}"


@pytest.mark.parametrize(
    "module", sorted(name for name in modules() if name.startswith("types.") and name != "types.__init__")
)
def test_a_type_imports_no_other_type(module: str) -> None:
    others = {name for name in provider_imports(module) if room(name) == "types"}
    assert not others, f"{module} imports {sorted(others)}"


def test_no_import_cycles() -> None:
    graph = {name: provider_imports(name) for name in modules()}

    TopologicalSorter(graph).prepare()  # raises CycleError, naming the cycle


@pytest.mark.parametrize("module", sorted(modules()))
def test_every_module_says_what_it_is_for(module: str) -> None:
    tree = ast.parse(modules()[module].read_text())
    docstring = ast.get_docstring(tree)
    assert docstring, f"{module} has no docstring"
    lines = modules()[module].read_text().count("\n")
    if lines > LONG_MODULE_LINES:
        assert "one module" in docstring.split("\n\n")[0].lower() or "long:" in docstring.lower(), (
            f"{module} has {lines} lines: its docstring's first paragraph says why it is one module"
        )


def test_the_entry_point_and_responder_load_with_the_standard_library_and_crhelper_only() -> None:
    """An import failure is answered only if the responder exists: nothing loaded before it may fail to import.
    handler.py imports everything else (dispatch) inside the try that answers such a failure."""
    assert provider_imports("responder") == set()
    assert provider_imports("handler") == {"responder", "dispatch"}
    for module in ("handler", "responder"):
        assert external_imports(module) - sys.stdlib_module_names <= {"crhelper"}
