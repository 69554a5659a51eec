"""Datastores for retrieval drafting, from what a user binds to a ``Retrieval`` box's resource.

A :class:`~diagrammar.decoding.drafters.retrieval.Datastore` is token sequences indexed by a
suffix array; it is built once per corpus and tokenizer, cached on disk and loaded
memory-mapped. :func:`load_datastore` accepts:

- a ``Datastore`` (used as it is);
- a folder saved with ``Datastore.save`` (loaded memory-mapped);
- ``"default-corpus"``: the default model's training corpus (the Python standard library
  without the held-out modules), encoded with the target's tokenizer; ``"default-corpus:N"``
  its first ``N`` documents (by path: a small, quick datastore);
- a text file, a folder of text files (``.py``, ``.txt``, ``.md``, ``.rst``, ``.json``), or a
  list of texts: encoded with the target's tokenizer and indexed.

Built datastores are cached under ``$DIAGRAMMAR_CACHE/datastores`` (else the user cache
directory), keyed by a digest of the texts and of the tokenizer.

>>> from diagrammar.decoding.drafters.retrieval import Datastore
>>> store = Datastore.from_token_lists([[1, 2, 3]])
>>> load_datastore(store, model=None) is store
True
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from diagrammar.decoding.drafters.retrieval import Datastore

__all__ = ["DEFAULT_CORPUS", "TEXT_SUFFIXES", "datastore_cache_dir", "load_datastore",
           "tokenizer_identity"]

#: The resource value naming the default model's training corpus.
DEFAULT_CORPUS = "default-corpus"
#: Which files of a folder are indexed.
TEXT_SUFFIXES = (".py", ".txt", ".md", ".rst", ".json")


def datastore_cache_dir() -> Path:
    """Where built datastores are cached: ``$DIAGRAMMAR_CACHE/datastores``, else the user
    cache directory.

    >>> datastore_cache_dir().name
    'datastores'
    """
    root = os.environ.get("DIAGRAMMAR_CACHE")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("diagrammar")
    return Path(root) / "datastores"


def tokenizer_identity(model: Any) -> str:
    """A string that changes whenever the model's tokenization does (a digest of the
    tokenizer's full definition when it has one).

    >>> tokenizer_identity(None)
    'none'
    """
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        return "none"
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else repr(sorted(
        tokenizer.get_vocab().items()))
    return hashlib.sha256(definition.encode()).hexdigest()[:24]


def _texts_of(path: Path) -> list[str]:
    files = [path] if path.is_file() else sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
    if not files:
        raise ValueError(f"no text files ({', '.join(TEXT_SUFFIXES)}) under {path}")
    texts = []
    for file in files:
        try:
            texts.append(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            if path.is_file():
                raise ValueError(f"cannot read {file} as UTF-8 text") from None
    return [text for text in texts if text.strip()]


def _build(texts: Sequence[str], model: Any) -> Datastore:
    encode = getattr(model, "encode", None)
    if encode is None or getattr(model, "tokenizer", None) is None:
        raise ValueError("building a datastore from text needs the target's tokenizer; this "
                         "model has none (pass a Datastore built from token ids instead)")
    return Datastore.cached(list(texts), datastore_cache_dir(), encode=encode,
                            tokenizer=tokenizer_identity(model))


def load_datastore(value: Any, model: Any) -> Datastore:
    """The datastore ``value`` describes (see the module docstring), for ``model``'s tokens.

    Raises:
        ValueError: a path that does not exist or holds no text, a model without a tokenizer
            where text must be encoded, or a value of another kind.
    """
    if isinstance(value, Datastore):
        return value
    if isinstance(value, str) and value.split(":")[0] == DEFAULT_CORPUS:
        from diagrammar.models.default.corpus import training_documents

        _, _, count = value.partition(":")
        if count and not (count.isdigit() and int(count) > 0):
            raise ValueError(f"datastore {value!r}: write {DEFAULT_CORPUS}:N with N a positive "
                             "number of documents")
        documents = training_documents()[:int(count)] if count else training_documents()
        return _build([document.text for document in documents], model)
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if (path / "manifest.json").is_file() and (path / "suffix_array.npy").is_file():
            return Datastore.load(path, verify=False)
        if not path.exists():
            raise ValueError(f"datastore {str(value)!r}: no such file or folder (give a saved "
                             f"datastore folder, text files, or {DEFAULT_CORPUS!r})")
        return _build(_texts_of(path), model)
    if isinstance(value, (list, tuple)) and all(isinstance(text, str) for text in value):
        return _build(value, model)
    raise ValueError(f"cannot make a datastore of {type(value).__name__}: give a Datastore, a "
                     f"saved datastore folder, text files, a list of texts or {DEFAULT_CORPUS!r}")
