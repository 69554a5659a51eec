"""The training corpus of the embedded default model: the Python standard library, and more.

The default model (:mod:`diagrammar.models.default`) is trained on the pure-Python source of
the standard library of the interpreter it runs on, minus a fixed set of **held-out modules**
that it never sees; a recipe may add the Python source of installed packages
(:func:`package_documents`: ``small`` adds numpy, matplotlib, torch and a few more of the
project's own dependencies, whose files sharing lines with a held-out module are dropped).
Those held-out modules are real, mid-sized, docstring-rich code, and they are what held-out
loss/accuracy, benchmarks and demos use as prompts.

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
    "package_dir",
    "package_documents",
    "shares_heldout_lines",
    "stdlib_dir",
    "stream_documents",
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

#: Folders left out of an installed package: test suites and test helpers (``torch.testing``
#: is mostly generated test tables), vendored third-party code, and build debris.
_PACKAGE_EXCLUDED_DIRS = frozenset(
    {"test", "tests", "testing", "_vendor", "vendor", "__pycache__", "benchmarks", "examples"}
)

#: A package file repeating this many long lines of a held-out module is left out (it may
#: copy held-out code: e.g. ``click/_textwrap.py`` subclasses ``textwrap.TextWrapper``).
_HELDOUT_LINE_LIMIT = 3
_HELDOUT_LINE_MIN_CHARS = 40


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


def _long_lines(text: str) -> set[str]:
    return {
        line.strip() for line in text.splitlines() if len(line.strip()) >= _HELDOUT_LINE_MIN_CHARS
    }


def shares_heldout_lines(text: str, heldout_lines: set[str]) -> bool:
    """Whether ``text`` repeats :data:`_HELDOUT_LINE_LIMIT` or more long held-out lines.

    Args:
        text: a candidate training document.
        heldout_lines: the stripped lines of 40+ characters of the held-out modules.

    Example:
        >>> line = "return self._fill_value_for_the_missing_entries(table)"
        >>> shares_heldout_lines(f"{line}\\n" * 3, {line}), shares_heldout_lines("x = 1", {line})
        (True, False)
    """
    # Every occurrence counts, so a file repeating one held-out line is caught too.
    count = sum(
        1
        for line in map(str.strip, text.splitlines())
        if len(line) >= _HELDOUT_LINE_MIN_CHARS and line in heldout_lines
    )
    return count >= _HELDOUT_LINE_LIMIT


def package_dir(name: str) -> Path:
    """Folder of the installed top-level package ``name``.

    Raises:
        ModuleNotFoundError: ``name`` is not installed, or is a single module, not a package.

    Example:
        >>> package_dir("numpy").name
        'numpy'
    """
    import importlib.util

    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModuleNotFoundError(
            f"the default model's corpus needs the Python source of package {name!r}, "
            "which is not installed here (pip install it, or train a size without it)"
        )
    return Path(locations[0]).resolve()


def package_documents(name: str, root: Path | None = None) -> list[Document]:
    """The ``.py`` files of an installed package, sorted by path, as training documents.

    Test suites, test helpers, vendored code and examples are left out, and so is every file
    that repeats long lines of a held-out module (:func:`shares_heldout_lines`).  Paths are
    relative to the folder holding the package (``"numpy/linalg/_linalg.py"``).

    Args:
        name: the top-level package (``"numpy"``).
        root: the package folder; default :func:`package_dir`.

    Returns:
        One :class:`Document` per non-empty UTF-8 source file kept.

    Example:
        >>> docs = package_documents("numpy")
        >>> docs[0].path.startswith("numpy/"), any("/tests/" in d.path for d in docs)
        (True, False)
    """
    root = package_dir(name) if root is None else Path(root)
    heldout_lines = set().union(*(_long_lines(t) for t in heldout_sources().values()))
    docs: list[Document] = []
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root)
        if any(part in _PACKAGE_EXCLUDED_DIRS for part in rel.parts[:-1]) or not path.is_file():
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if text.strip() and not shares_heldout_lines(text, heldout_lines):
            docs.append(Document(f"{name}/{rel.as_posix()}", text))
    return docs


def stream_documents(
    packages: Iterable[str] = (), stdlib_repeats: int = 1, root: Path | None = None
) -> list[Document]:
    """The documents of a recipe's token stream, in stream order.

    ``stdlib_repeats`` copies of :func:`training_documents`, then :func:`package_documents`
    of each package.  Training draws windows from the whole stream in random order, so a
    repeated standard library weighs the in-domain code (the held-out modules are standard
    library modules) against the larger package corpus.

    Args:
        packages: installed top-level packages whose source joins the corpus.
        stdlib_repeats: copies of the standard library, at least 1.
        root: the stdlib folder; default :func:`stdlib_dir`.

    Raises:
        ValueError: ``stdlib_repeats`` is below 1.
        ModuleNotFoundError: a package is not installed.

    Example:
        >>> docs = stream_documents(stdlib_repeats=2)
        >>> len(docs) == 2 * len(training_documents())
        True
    """
    if stdlib_repeats < 1:
        raise ValueError(f"stdlib_repeats must be at least 1, got {stdlib_repeats}")
    docs = training_documents(root) * stdlib_repeats
    for name in packages:
        docs.extend(package_documents(name))
    return docs
