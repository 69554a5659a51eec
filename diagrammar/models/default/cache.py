"""Where the default models live on disk, and how they are written there safely.

The cache root is ``cache_dir=``, else ``$DIAGRAMMAR_CACHE``, else the user cache directory of
``platformdirs``, plus ``default-model``::

    <cache>/default-model/tokenizer/      shared tokenizer (+ tokenizer_manifest.json)
    <cache>/default-model/tiny/           save_pretrained model + tokenizer + manifest.json
    <cache>/default-model/small/

Folders are written atomically (:func:`atomic_dir`: built in a temporary sibling, then renamed
into place) under an inter-process file lock (:func:`locked`); a folder's manifest is the
record of what was trained, and :func:`is_current` compares its recipe hash with today's.

Example:
    >>> from diagrammar.models.default.cache import default_path, tokenizer_path
    >>> default_path("small", "/tmp/c").as_posix(), tokenizer_path("/tmp/c").name
    ('/tmp/c/default-model/small', 'tokenizer')
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .recipes import check_size, recipe_hash

__all__ = [
    "CACHE_ENV",
    "MANIFEST",
    "TOKENIZER_MANIFEST",
    "CacheDirError",
    "atomic_dir",
    "cache_root",
    "default_path",
    "ensure_writable",
    "is_current",
    "locked",
    "manifest",
    "tokenizer_path",
    "write_json",
]

CACHE_ENV = "DIAGRAMMAR_CACHE"
MANIFEST = "manifest.json"
TOKENIZER_MANIFEST = "tokenizer_manifest.json"
_SUBDIR = "default-model"

PathArg = str | os.PathLike[str] | None


class CacheDirError(OSError):
    """The model cache directory cannot be created or written."""


# --------------------------------------------------------------------------- paths


def cache_root(cache_dir: PathArg = None) -> Path:
    """Root of the default-model cache.

    Args:
        cache_dir: base folder; default ``$DIAGRAMMAR_CACHE``, else the user cache directory of
            ``platformdirs`` (e.g. ``~/.cache/diagrammar``).

    Returns:
        ``cache_dir / "default-model"`` (it may not exist yet).

    Example:
        >>> cache_root("/tmp/somewhere").as_posix()
        '/tmp/somewhere/default-model'
    """
    if cache_dir is None:
        env = os.environ.get(CACHE_ENV)
        if env:
            cache_dir = env
        else:
            import platformdirs

            cache_dir = platformdirs.user_cache_dir("diagrammar", appauthor=False)
    return Path(cache_dir).expanduser() / _SUBDIR


def default_path(size: str = "small", cache_dir: PathArg = None) -> Path:
    """Folder of the cached ``size`` model (``save_pretrained`` layout, tokenizer included).

    The folder may not exist yet; :func:`~diagrammar.models.default.train_default` or
    :func:`~diagrammar.models.default.default` create it.

    Args:
        size: one of ``SIZES``.
        cache_dir: see :func:`cache_root`.

    Raises:
        ValueError: unknown ``size``.

    Example:
        >>> default_path("tiny", "/tmp/c").as_posix()
        '/tmp/c/default-model/tiny'
    """
    check_size(size)
    return cache_root(cache_dir) / size


def tokenizer_path(cache_dir: PathArg = None) -> Path:
    """Folder of the shared tokenizer (loadable with ``AutoTokenizer.from_pretrained``)."""
    return cache_root(cache_dir) / "tokenizer"


# --------------------------------------------------------------------------- manifests


def manifest(size: str = "small", cache_dir: PathArg = None) -> dict:
    """The ``manifest.json`` of the cached ``size`` model.

    Args:
        size: one of ``SIZES``.
        cache_dir: see :func:`cache_root`.

    Returns:
        The manifest: recipe and its hash, parameters, training time, held-out scores,
        versions (see :func:`~diagrammar.models.default.train_default`).

    Raises:
        ValueError: unknown ``size``.
        FileNotFoundError: when that model has not been trained yet.

    Example (needs a trained tiny model, so not a doctest)::

        m = manifest("tiny")
        m["heldout_accuracy"], m["parameters"], m["recipe_hash"]
    """
    path = default_path(size, cache_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(
            f"the default model {size!r} is not trained yet (no {path}); run "
            f"`diagrammar train-default --size {size}` or call "
            f"diagrammar.models.default.train_default({size!r})"
        ) from None


def is_current(size: str, cache_dir: PathArg = None) -> bool:
    """Whether a ``size`` model is cached and was trained with today's recipe."""
    try:
        return manifest(size, cache_dir).get("recipe_hash") == recipe_hash(size)
    except (OSError, ValueError):
        return False


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` as indented JSON with sorted keys."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- safe writes


def ensure_writable(root: Path) -> None:
    """Create ``root`` if needed and check a file can be written in it.

    Raises:
        CacheDirError: naming ``root`` and how to choose another folder.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CacheDirError(
            f"cannot write the diagrammar model cache at {root} ({err.strerror or err}); "
            f"set {CACHE_ENV} to a writable directory or pass cache_dir="
        ) from err


@contextlib.contextmanager
def locked(root: Path, name: str) -> Iterator[None]:
    """Exclusive inter-process lock on ``root/.name.lock`` (no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(root / f".{name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary sibling of ``final``; on success it replaces ``final``.

    On any exception the temporary folder is removed and ``final`` is left untouched.

    Example:
        >>> with tempfile.TemporaryDirectory() as base:
        ...     final = Path(base) / "model"
        ...     with atomic_dir(final) as tmp:
        ...         _ = (tmp / "weights").write_text("w")
        ...     sorted(p.name for p in Path(base).iterdir()), (final / "weights").read_text()
        (['model'], 'w')
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, trash / final.name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
