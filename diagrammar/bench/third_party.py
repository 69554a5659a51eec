"""Third-party code for the benchmark: modules of installed packages the default model never saw.

The ``third-party`` prompt category continues function bodies cut from real packages that users
run (Hugging Face, SymPy, NetworkX, Jinja, ...), with no artificial repetition: the closest
category to everyday use. Only packages outside the default models' training corpus qualify:
the standard library and the packages any default recipe trains on
(:attr:`~diagrammar.models.default.recipes.Recipe.packages`) are left out, and so is this
project.

Modules are chosen deterministically: packages in :data:`CANDIDATE_PACKAGES` order (those
installed), and in each package the modules of a moderate size ranked by a SHA-256 of their
path. The prompts therefore depend on the installed versions, which the benchmark records.

Example:
    >>> sources = third_party_sources(max_packages=2, per_package=1)
    >>> len(sources) <= 2 and all("." in name for name in sources)
    True
    >>> any(name.split(".")[0] in {"torch", "numpy"} for name in sources)
    False
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "CANDIDATE_PACKAGES",
    "excluded_packages",
    "installed_versions",
    "third_party_sources",
]

#: Pure-Python packages commonly installed next to this project (most come with torch,
#: transformers or the test tools), in the order they are tried.
CANDIDATE_PACKAGES: tuple[str, ...] = (
    "transformers",
    "huggingface_hub",
    "sympy",
    "networkx",
    "jinja2",
    "fsspec",
    "packaging",
    "pygments",
    "hypothesis",
    "rich",
    "requests",
    "yaml",
    "markdown_it",
    "mpmath",
    "filelock",
    "idna",
)

#: Module sizes (lines) that give several functions but no generated tables.
MIN_LINES, MAX_LINES = 120, 2500

_SKIPPED_DIRS = frozenset(
    {"test", "tests", "testing", "_vendor", "vendor", "examples", "benchmarks", "__pycache__"}
)


def excluded_packages() -> frozenset[str]:
    """Top-level packages never used: the default models' training packages and this one."""
    from diagrammar.models.default.recipes import RECIPES

    trained = {name for recipe in RECIPES.values() for name in recipe.packages}
    return frozenset(trained | {"diagrammar"})


def _package_root(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) if locations else None


def _candidate_modules(name: str, root: Path) -> Iterable[tuple[str, str]]:
    paths = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if any(part in _SKIPPED_DIRS for part in rel.parts[:-1]):
            continue
        paths.append(rel)
    paths.sort(key=lambda rel: hashlib.sha256(f"{name}/{rel.as_posix()}".encode()).hexdigest())
    for rel in paths:
        try:
            text = (root / rel).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not MIN_LINES <= text.count("\n") <= MAX_LINES:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        functions = sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                        for n in ast.walk(tree))
        if functions >= 4:
            parts = [name, *rel.with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join(parts), text


def third_party_sources(max_packages: int = 8, per_package: int = 2,
                        packages: Iterable[str] = CANDIDATE_PACKAGES) -> dict[str, str]:
    """Source text of third-party modules for benchmark prompts, keyed by dotted module name.

    Args:
        max_packages: how many installed packages to draw from (in ``packages`` order).
        per_package: modules per package.
        packages: the candidate top-level packages; excluded ones are skipped.

    Returns:
        ``{"package.module": source}``; empty when none of the candidates is installed.
    """
    excluded = excluded_packages()
    sources: dict[str, str] = {}
    used = 0
    for name in packages:
        if used == max_packages:
            break
        if name in excluded:
            continue
        root = _package_root(name)
        if root is None:
            continue
        picked = 0
        for module, text in _candidate_modules(name, root):
            sources[module] = text
            picked += 1
            if picked == per_package:
                break
        used += picked > 0
    return sources


def installed_versions(modules: Iterable[str]) -> dict[str, str | None]:
    """The installed version of each module's top-level package (for the benchmark record)."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    distributions = packages_distributions()
    out: dict[str, str | None] = {}
    for top in sorted({m.split(".")[0] for m in modules}):
        try:
            out[top] = version(distributions.get(top, [top])[0])
        except PackageNotFoundError:
            out[top] = None
    return out
