"""The provider's module structure: imports that go one way, and a responder that loads before anything can fail."""

from __future__ import annotations

import ast
import sys
from graphlib import TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ecr_cache_provider"


def provider_imports(module: str) -> set[str]:
    """The provider modules `module` imports, wherever in the module the import is."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "ecr_cache_provider":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ecr_cache_provider."):
            found.add(str(node.module).split(".")[1])
    return found


def external_imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {str(node.module) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    return {name.split(".")[0] for name in names} - {"ecr_cache_provider", "__future__"}


def test_no_import_cycles() -> None:
    graph = {path.stem: provider_imports(path.stem) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}

    TopologicalSorter(graph).prepare()  # raises CycleError, naming the cycle


def test_the_entry_point_and_responder_load_with_the_standard_library_and_crhelper_only() -> None:
    """An import failure is answered only if the responder exists: nothing loaded before it may fail to import.
    handler.py imports everything else (dispatch) inside the try that answers such a failure."""
    assert provider_imports("responder") == set()
    assert provider_imports("handler") == {"responder", "dispatch"}
    for module in ("handler", "responder"):
        assert external_imports(module) - sys.stdlib_module_names <= {"crhelper"}
