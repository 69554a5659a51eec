"""The QNLP code keeps the layers: syntax imports no tensors, implementations no diagrams."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "diagrammar"
IMPLEMENTATION = ["arrays", "tensor_network", "circuits", "pennylane_runner", "lambeq_interop"]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (doctests not included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("name", IMPLEMENTATION)
def test_qnlp_implementation_modules_know_no_diagrammar_syntax_or_functors(name):
    imports = _imports(ROOT / "qnlp" / f"{name}.py")
    assert not {m for m in imports if m.startswith(("diagrammar.diagrams", "diagrammar.functors"))}


@pytest.mark.parametrize("name", ["rewrite", "pregroup"])
def test_pregroup_syntax_imports_only_discopy_and_stdlib(name):
    imports = _imports(ROOT / "diagrams" / f"{name}.py")
    top = {m.split(".")[0] for m in imports}
    assert top <= {"discopy", "__future__"} | set(sys.stdlib_module_names), top


def test_qnlp_functors_do_not_run_circuits_or_contract():
    for name in ("quantum", "tensor_network"):
        imports = _imports(ROOT / "functors" / f"{name}.py")
        assert not {m for m in imports if m.split(".")[0] in {"pennylane", "torch", "jax"}}
