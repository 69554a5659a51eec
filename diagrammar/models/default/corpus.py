"""The training corpus of the embedded default model: the Python standard library.

The default model (:mod:`diagrammar.models.default`) is trained on the pure-Python source of the
standard library of the interpreter it runs on, minus a fixed set of **held-out modules** that it
never sees.  Those held-out modules are real, mid-sized, docstring-rich code, and they are what
held-out loss/accuracy, benchmarks and demos use as prompts.

What is left out of training, and why:

* ``HELDOUT_MODULES`` (below): the evaluation set.
* test suites (``test/``, ``tests/``, ``idle_test/``): they would leak held-out modules' code
  (``test_difflib.py`` quotes ``difflib``) and are mostly fixtures.
* ``site-packages``/``dist-packages``: not the standard library.
* ``encodings/`` and ``pydoc_data/``: generated tables and documentation text, not code.
* ``_sysconfigdata_*``: machine-specific build configuration.
* files that are not UTF-8.

Example:
    >>> from diagrammar.models.default.corpus import HELDOUT_MODULES, heldout_sources
    >>> sources = heldout_sources()
    >>> sorted(sources) == sorted(HELDOUT_MODULES)
    True
    >>> "def unified_diff" in sources["difflib"]
    True
"""

from __future__ import annotations

import hashlib
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HELDOUT_MODULES",
    "Document",
    "corpus_digest",
    "heldout_sources",
    "module_name",
    "stdlib_dir",
    "training_documents",
]

#: Standard-library modules that are never trained on (sorted).  Chosen to be pure Python,
#: stable across 3.10-3.13, mid-sized (300-2100 lines each, about 300 kB in all) and rich in
#: functions, classes and docstrings, so that held-out prompts of every kind (code completion,
#: repetitive editing, long-context lookup, docstring prose) can be cut from them.
HELDOUT_MODULES: tuple[str, ...] = (
    "calendar",
    "configparser",
    "difflib",
    "fractions",
    "pprint",
    "shlex",
    "statistics",
    "textwrap",
)

_EXCLUDED_DIRS = frozenset(
    {
        "test",
        "tests",
        "idle_test",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "encodings",
        "pydoc_data",
    }
)


@dataclass(frozen=True)
class Document:
    """One source file of the corpus: its path relative to the stdlib root and its text."""

    path: str
    text: str

    @property
    def module(self) -> str:
        """Dotted module name, e.g. ``"json.decoder"`` or ``"json"`` for ``json/__init__.py``."""
        return module_name(self.path)


def stdlib_dir() -> Path:
    """Directory of the running interpreter's pure-Python standard library.

    Example:
        >>> (stdlib_dir() / "os.py").exists()
        True
    """
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def module_name(relpath: str) -> str:
    """Dotted module name of a ``.py`` path relative to the stdlib root.

    Args:
        relpath: POSIX path of a ``.py`` file, relative to the stdlib root.

    Returns:
        The dotted name; a package's ``__init__.py`` gives the package's name.

    Example:
        >>> module_name("json/__init__.py"), module_name("os.py")
        ('json', 'os')
    """
    parts = list(Path(relpath).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_excluded(rel: Path) -> bool:
    if any(part in _EXCLUDED_DIRS for part in rel.parts[:-1]):
        return True
    # `config-3.11-x86_64-linux-gnu/` and similar build folders.
    if rel.parts and rel.parts[0].startswith("config-"):
        return True
    if rel.name.startswith("_sysconfigdata"):
        return True
    return module_name(rel.as_posix()) in HELDOUT_MODULES


def training_documents(root: Path | None = None) -> list[Document]:
    """All training documents, sorted by path (deterministic).  Held-out modules are excluded.

    Args:
        root: the stdlib folder to read; default :func:`stdlib_dir`.

    Returns:
        One :class:`Document` per non-empty UTF-8 ``.py`` file that is not left out.

    Example:
        >>> docs = training_documents()
        >>> any(d.module == "difflib" for d in docs)
        False
        >>> any(d.module == "json.decoder" for d in docs)
        True
    """
    root = stdlib_dir() if root is None else Path(root)
    docs: list[Document] = []
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root)
        if _is_excluded(rel) or not path.is_file():
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip():
            docs.append(Document(rel.as_posix(), text))
    return docs


def heldout_sources(root: Path | None = None) -> dict[str, str]:
    """Source text of each held-out module, keyed by module name (in ``HELDOUT_MODULES`` order).

    Args:
        root: the stdlib folder to read; default :func:`stdlib_dir`.

    Returns:
        ``{module name: source text}`` for every module of ``HELDOUT_MODULES``.

    Raises:
        FileNotFoundError: if this interpreter's standard library lacks one of them.

    Example:
        >>> src = heldout_sources()
        >>> "class Fraction" in src["fractions"]
        True
    """
    root = stdlib_dir() if root is None else Path(root)
    out: dict[str, str] = {}
    for name in HELDOUT_MODULES:
        path = root / (name.replace(".", "/") + ".py")
        if not path.is_file():
            raise FileNotFoundError(
                f"held-out module {name!r} not found at {path}; the default model's corpus "
                "needs the pure-Python standard library (CPython 3.10+)"
            )
        out[name] = path.read_bytes().decode("utf-8")
    return out


def corpus_digest(docs: Iterable[Document]) -> str:
    """SHA-256 over the documents' paths and texts (identifies the exact corpus).

    Args:
        docs: the documents, in the order they are trained on.

    Returns:
        The hex digest; it changes with any path, text or order.

    Example:
        >>> corpus_digest([Document("a.py", "x = 1\\n")])[:12]
        'afc521d7035a'
    """
    h = hashlib.sha256()
    for doc in docs:
        h.update(doc.path.encode())
        h.update(b"\0")
        h.update(doc.text.encode())
        h.update(b"\0")
    return h.hexdigest()
