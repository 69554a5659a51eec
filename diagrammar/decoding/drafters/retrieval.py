"""Retrieval drafting (REST) and its fusion with another drafter (RASD).

**REST** ("REST: Retrieval-Based Speculative Decoding", He et al., 2023) drafts from a
datastore of token sequences instead of a draft model.  The datastore is indexed with a suffix
array; to draft, the longest suffix of the context (trying lengths from ``max_suffix`` down to
``min_suffix``) that occurs in the datastore is looked up, the tokens that follow its
occurrences (up to ``max_matches`` of them) are gathered into a trie, and the most frequent
trie nodes (each with its parent) become the draft tree.

Kept from the paper: the suffix-array index over the concatenated datastore, exact-match
retrieval of the longest context suffix, a cap on how many occurrences are read, and a draft
tree of the most frequent trie nodes.  Changed (scaled down for a CPU-sized, pure-Python
setting): the index is built with ``pydivsufsort`` over an ``int32`` array (documents
separated by ``-1``, which no query contains); since a suffix occurs only if its shorter
suffixes do, the suffix length is found by a binary search over the length, which gives the
answer of trying lengths from long to short in fewer lookups; when a suffix occurs more
often than ``max_matches``, the occurrences read are spread evenly over its suffix-array range
(which is ordered by what follows) rather than taken from its start, so the counts approximate
the frequencies of the whole range; the defaults (16 nodes, depth 6, 128 matches) are
smaller than the paper's GPU settings.  Each node's ``prob`` is its empirical frequency,
``count(path) / matches read``.

**RASD** ("RASD: Retrieval-Augmented Speculative Decoding", Quan et al., 2025) combines a
retrieval tree with another drafter's tree.  *Pruning*: the retrieval tree keeps only the
branches whose first token the other drafter rates among its ``top_k`` first tokens (by the
probabilities its tree carries, at least ``min_prob``).  *Fusion*: each remaining retrieval
path is attached to the other tree at its longest prefix already there, so shared prefixes
merge, and the fused tree is cut to a node budget.  Changed: the paper prunes with the draft
model's full first-token distribution; a :class:`~diagrammar.decoding.tree.DraftTree` only
carries the probabilities of the drafted nodes, so the known candidates are the other tree's
first-level nodes (by probability; without probabilities, in the tree's order).  When they
are fewer than ``top_k`` (a chain drafter shows one), the other top-``k`` tokens are unknown:
with ``open_slots`` (the default) the retrieval tree's most frequent first tokens fill those
slots, provided the probability mass the drafter left unassigned could reach ``min_prob``;
``open_slots=False`` keeps only the drafted first tokens.  When the other tree is empty there
is nothing to prune by and the retrieval tree is kept whole.  Within the budget, the other
drafter's nodes come first, then the retrieval nodes in decreasing frequency.

>>> from diagrammar.decoding.state import DecodeState
>>> store = Datastore.from_token_lists([[1, 2, 3, 4], [1, 2, 3, 5], [9, 2, 3, 4]])
>>> drafter = RetrievalDrafter(store, max_nodes=3)
>>> tree = drafter(DecodeState(None, [7, 2, 3], prompt_length=3, max_new_tokens=8))
>>> tree.tokens, tree.parents
([4, 5], [-1, -1])
>>> [round(p, 2) for p in tree.probs]
[0.67, 0.33]
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydivsufsort import divsufsort

from diagrammar.decoding.drafters.base import BaseDrafter, learns
from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree

__all__ = [
    "FORMAT_VERSION",
    "SEPARATOR",
    "Datastore",
    "DatastoreError",
    "Match",
    "RasdDrafter",
    "RetrievalDrafter",
    "frequency_tree",
    "fuse_trees",
    "prefix_counts",
    "prune_by_first_tokens",
    "select_frequent",
]

#: Version of the on-disk layout written by :meth:`Datastore.save`.
FORMAT_VERSION = 1
#: The id written between documents; token ids are never negative, so it never matches.
SEPARATOR = -1

_TOKENS_FILE = "tokens.npy"
_SUFFIX_ARRAY_FILE = "suffix_array.npy"
_MANIFEST_FILE = "manifest.json"

PathLike = str | os.PathLike[str]


class DatastoreError(ValueError):
    """A datastore that cannot be built or opened: empty, wrong dtype, corrupted files."""


def _digest(tokens: np.ndarray) -> str:
    """SHA-256 of the token array's bytes (``int32``, little-endian)."""
    return hashlib.sha256(np.ascontiguousarray(tokens, dtype="<i4").tobytes()).hexdigest()


def _as_document(tokens: Any, index: int) -> np.ndarray:
    """One document as a 1-D ``int32`` array of non-negative ids, or a clear error."""
    array = np.asarray(tokens)
    if array.size == 0:
        return np.zeros(0, dtype=np.int32)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DatastoreError(f"document {index} is not a flat list of integer token ids "
                             f"(got dtype {array.dtype}, shape {array.shape})")
    if array.min() < 0 or array.max() > np.iinfo(np.int32).max:
        raise DatastoreError(f"document {index} has a token id outside [0, 2**31): "
                             f"{int(array.min())}..{int(array.max())}")
    return array.astype(np.int32)


@dataclass(frozen=True, slots=True)
class Match:
    """The longest context suffix found: its ``length`` and its suffix-array range
    ``[start, stop)`` (one entry per occurrence)."""

    length: int
    start: int
    stop: int

    @property
    def count(self) -> int:
        """How many times the suffix occurs in the datastore."""
        return self.stop - self.start


class Datastore:
    """Token sequences concatenated into one ``int32`` array, indexed by a suffix array.

    Documents are separated by :data:`SEPARATOR`, so no match or continuation crosses a
    document boundary.  Build one with :meth:`from_token_lists`, :meth:`from_texts` or
    :meth:`from_files`; :meth:`save` and :meth:`load` store it (loading memory-maps it), and
    :meth:`cached` builds once and loads from a cache directory afterwards.

    Args:
        tokens: the concatenated documents, each followed by :data:`SEPARATOR` (``int32``).
        suffix_array: the suffix array of ``tokens`` (``int32`` or ``int64``).
        documents: how many documents ``tokens`` holds.

    Raises:
        DatastoreError: empty arrays, a wrong dtype or shape, or arrays of different lengths.

    Example:
        >>> store = Datastore.from_token_lists([[5, 6, 7], [6, 7, 8]])
        >>> len(store), store.documents, store.find([6, 7]).tolist()
        (6, 2, [1, 4])
    """

    __slots__ = ("tokens", "suffix_array", "documents", "_lookup")

    def __init__(self, tokens: np.ndarray, suffix_array: np.ndarray, documents: int) -> None:
        if not isinstance(tokens, np.ndarray) or tokens.dtype != np.int32 or tokens.ndim != 1:
            raise DatastoreError("tokens must be a 1-D int32 array, got "
                                 f"{getattr(tokens, 'dtype', type(tokens).__name__)}")
        if not isinstance(suffix_array, np.ndarray) or suffix_array.ndim != 1 \
                or suffix_array.dtype not in (np.int32, np.int64):
            raise DatastoreError("the suffix array must be a 1-D int32 or int64 array, got "
                                 f"{getattr(suffix_array, 'dtype', type(suffix_array).__name__)}")
        if len(tokens) == 0:
            raise DatastoreError("the datastore is empty: give at least one non-empty document")
        if len(suffix_array) != len(tokens):
            raise DatastoreError(f"the suffix array has {len(suffix_array)} entries for "
                                 f"{len(tokens)} tokens")
        self.tokens = tokens
        self.suffix_array = suffix_array
        self.documents = documents
        # Plain ndarray views of the same (possibly memory-mapped) buffers: slicing a memmap
        # builds a memmap object each time, which dominates a binary search's cost.
        self._lookup = (tokens.view(np.ndarray), suffix_array.view(np.ndarray))

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_token_lists(cls, documents: Iterable[Sequence[int]]) -> Datastore:
        """Builds the datastore of token-id documents (empty ones are skipped).

        Example:
            >>> Datastore.from_token_lists([[1, 2], [], [3]]).tokens.tolist()
            [1, 2, -1, 3, -1]
        """
        if isinstance(documents, np.ndarray) and documents.ndim == 1:
            documents = [documents]
        parts: list[np.ndarray] = []
        separator = np.array([SEPARATOR], dtype=np.int32)
        for index, document in enumerate(documents):
            array = _as_document(document, index)
            if len(array):
                parts += [array, separator]
        if not parts:
            raise DatastoreError("the datastore is empty: give at least one non-empty document")
        tokens = np.concatenate(parts)
        return cls(tokens, divsufsort(tokens), documents=len(parts) // 2)

    @classmethod
    def from_texts(cls, texts: Iterable[str], encode: Callable[[str], Sequence[int]]
                   ) -> Datastore:
        """Builds the datastore of texts, each encoded with ``encode`` (text to token ids).

        Example:
            >>> encode = lambda text: [int(word) for word in text.split()]
            >>> Datastore.from_texts(["4 5 6", "5 6"], encode).find([5, 6]).size
            2
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        documents = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is a {type(text).__name__}, not a str")
            documents.append(encode(text))
        return cls.from_token_lists(documents)

    @classmethod
    def from_files(cls, paths: Iterable[PathLike], encode: Callable[[str], Sequence[int]]
                   ) -> Datastore:
        """Builds the datastore of UTF-8 text files, one document each.

        Raises:
            FileNotFoundError: a path that is not a file.
            DatastoreError: a file that is not UTF-8 text.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     _ = (Path(folder) / "a.txt").write_text("1 2 3")
            ...     words = lambda text: [int(word) for word in text.split()]
            ...     print(len(Datastore.from_files([Path(folder) / "a.txt"], words)))
            3
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        return cls.from_texts([_read_text(Path(path)) for path in paths],
                              lambda text: list(encode(text)))

    @classmethod
    def cached(cls, documents: Sequence[str] | Sequence[Sequence[int]], cache_dir: PathLike, *,
               encode: Callable[[str], Sequence[int]] | None = None,
               tokenizer: str = "") -> Datastore:
        """The datastore of ``documents`` (texts with ``encode``, or token lists), built once.

        The cache entry is named by a digest of the documents and of ``tokenizer`` (a string
        naming the tokenizer, e.g. its name and version: texts encoded differently must not
        share an entry).  A hit loads the arrays memory-mapped without encoding anything.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     first = Datastore.cached([[1, 2, 3]], folder)     # builds and saves
            ...     again = Datastore.cached([[1, 2, 3]], folder)     # loads
            ...     print(isinstance(again.tokens, np.memmap), again.tokens.tolist())
            True [1, 2, 3, -1]
        """
        if isinstance(documents, str):
            raise TypeError("documents must be a list of texts or token lists, not one string")
        documents = list(documents)
        key = _source_digest(documents, tokenizer)
        entry = Path(cache_dir) / key[:32]
        if (entry / _MANIFEST_FILE).is_file():
            return cls.load(entry, verify=False)
        if any(isinstance(document, str) for document in documents):
            if encode is None:
                raise TypeError("texts need encode= (text -> token ids) to be cached")
            store = cls.from_texts(documents, encode)  # type: ignore[arg-type]
        else:
            store = cls.from_token_lists(documents)  # type: ignore[arg-type]
        store._save_atomically(entry, source=key, tokenizer=tokenizer)
        return store

    # -- lookup ------------------------------------------------------------------------------

    def __len__(self) -> int:
        """How many tokens the documents hold (separators not counted)."""
        return len(self.tokens) - self.documents

    @property
    def memory_bytes(self) -> int:
        """Bytes of the token array and the suffix array."""
        return int(self.tokens.nbytes + self.suffix_array.nbytes)

    def search(self, pattern: Sequence[int]) -> tuple[int, int]:
        """The suffix-array range ``[start, stop)`` of the suffixes that begin with ``pattern``.

        A binary search over the suffix array comparing each suffix's first ``len(pattern)``
        tokens with the pattern (a suffix shorter than the pattern sorts before it when it is
        a prefix of it, as in the index).

        Example:
            >>> store = Datastore.from_token_lists([[3, 1, 3, 1, 2]])
            >>> start, stop = store.search([3, 1])
            >>> sorted(store.suffix_array[start:stop].tolist())
            [0, 2]
        """
        query = [int(token) for token in pattern]
        if not query:
            return 0, len(self.suffix_array)
        size = len(query)
        tokens, suffixes = self._lookup

        def prefix(position: Any) -> list[int]:
            return tokens[position:position + size].tolist()

        start = bisect.bisect_left(suffixes, query, key=prefix)
        stop = bisect.bisect_right(suffixes, query, lo=start, key=prefix)
        return start, stop

    def find(self, pattern: Sequence[int]) -> np.ndarray:
        """Start positions of every occurrence of ``pattern``, in suffix-array order.

        Example:
            >>> sorted(Datastore.from_token_lists([[4, 4, 4]]).find([4, 4]).tolist())
            [0, 1]
        """
        start, stop = self.search(pattern)
        return np.asarray(self.suffix_array[start:stop], dtype=np.int64)

    def longest_suffix_match(self, context: Sequence[int], max_suffix: int = 16,
                             min_suffix: int = 1) -> Match | None:
        """The longest suffix of ``context`` (``max_suffix`` tokens at most, ``min_suffix``
        at least) that occurs in the datastore, or ``None``.

        Example:
            >>> store = Datastore.from_token_lists([[1, 2, 3, 4]])
            >>> store.longest_suffix_match([9, 2, 3]).length
            2
        """
        # A suffix occurs only if every shorter one does, so the lengths that occur are
        # 1..L: a binary search over the length finds L with the answer that trying lengths
        # from long to short gives, in a few lookups.
        low, high = max(min_suffix, 1), min(max_suffix, len(context))
        best: Match | None = None
        while low <= high:
            length = (low + high) // 2
            start, stop = self.search(context[len(context) - length:])
            if stop > start:
                best, low = Match(length, start, stop), length + 1
            else:
                high = length - 1
        return best

    def continuations(self, match: Match, depth: int, max_matches: int | None = None
                      ) -> np.ndarray:
        """What follows the occurrences of a match: one row per occurrence read, ``depth``
        tokens each, padded with :data:`SEPARATOR` where a document ends.

        At most ``max_matches`` occurrences are read, spread evenly over the match's range.

        Example:
            >>> store = Datastore.from_token_lists([[1, 2, 3], [1, 5]])
            >>> match = store.longest_suffix_match([1])
            >>> sorted(store.continuations(match, 2).tolist())
            [[2, 3], [5, -1]]
        """
        if max_matches is not None and match.count > max_matches:
            read = np.linspace(match.start, match.stop - 1, max_matches).round().astype(np.int64)
        else:
            read = np.arange(match.start, match.stop)
        positions = np.asarray(self.suffix_array[read], dtype=np.int64) + match.length
        indices = positions[:, None] + np.arange(depth)[None, :]
        inside = indices < len(self.tokens)
        rows = np.where(inside, self.tokens[np.minimum(indices, len(self.tokens) - 1)],
                        SEPARATOR).astype(np.int32)
        # Everything after a document's end is cut: a row stays valid up to its first separator.
        valid = np.cumprod(rows >= 0, axis=1).astype(bool)
        return np.where(valid, rows, SEPARATOR)

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: PathLike, *, tokenizer: str = "") -> Path:
        """Writes ``tokens.npy``, ``suffix_array.npy`` and ``manifest.json`` into ``directory``.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     saved = Datastore.from_token_lists([[1, 2]]).save(folder)
            ...     print(sorted(p.name for p in saved.iterdir()))
            ['manifest.json', 'suffix_array.npy', 'tokens.npy']
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / _TOKENS_FILE, np.ascontiguousarray(self.tokens))
        np.save(directory / _SUFFIX_ARRAY_FILE, np.ascontiguousarray(self.suffix_array))
        manifest = {
            "format_version": FORMAT_VERSION,
            "tokens": int(len(self.tokens)),
            "documents": int(self.documents),
            "suffix_array_dtype": str(self.suffix_array.dtype),
            "digest": _digest(self.tokens),
            "tokenizer": tokenizer,
        }
        # The manifest is written last: a folder without one is an unfinished save.
        (directory / _MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        return directory

    def _save_atomically(self, entry: Path, *, source: str, tokenizer: str) -> None:
        """Saves into a temporary sibling folder, then renames it to ``entry``."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=entry.name + ".", dir=entry.parent))
        try:
            self.save(staging, tokenizer=tokenizer)
            manifest = json.loads((staging / _MANIFEST_FILE).read_text())
            manifest["source_digest"] = source
            (staging / _MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
            if (entry / _MANIFEST_FILE).is_file():    # a concurrent build finished first
                return
            if entry.exists():                         # an unfinished save: replace it
                shutil.rmtree(entry, ignore_errors=True)
            os.replace(staging, entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, directory: PathLike, *, verify: bool = True) -> Datastore:
        """Opens a saved datastore, its arrays memory-mapped (read-only).

        Args:
            directory: a folder written by :meth:`save`.
            verify: also check the tokens against the manifest's digest (reads them once).

        Raises:
            DatastoreError: a missing or unreadable manifest, another format version, or
                arrays that do not match the manifest.

        Example:
            >>> import tempfile
            >>> with tempfile.TemporaryDirectory() as folder:
            ...     saved = Datastore.from_token_lists([[1, 2]]).save(folder)
            ...     print(isinstance(Datastore.load(saved).suffix_array, np.memmap))
            True
        """
        directory = Path(directory)
        manifest = _read_manifest(directory)
        try:
            tokens = np.load(directory / _TOKENS_FILE, mmap_mode="r")
            suffix_array = np.load(directory / _SUFFIX_ARRAY_FILE, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise DatastoreError(f"cannot open the arrays in {directory}: {error}") from error
        if len(tokens) != manifest["tokens"] or len(suffix_array) != manifest["tokens"]:
            raise DatastoreError(
                f"{directory} does not match its manifest: {len(tokens)} tokens and "
                f"{len(suffix_array)} suffix-array entries, manifest says {manifest['tokens']}")
        store = cls(tokens, suffix_array, documents=int(manifest["documents"]))
        if verify and _digest(tokens) != manifest["digest"]:
            raise DatastoreError(f"the tokens in {directory} do not match the manifest's "
                                 "digest: the files are corrupted or were replaced")
        return store


def _read_text(path: Path) -> str:
    """A file's UTF-8 text, or a clear error."""
    if not path.is_file():
        raise FileNotFoundError(f"no such text file: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DatastoreError(f"{path} is not UTF-8 text ({error.reason} at byte "
                             f"{error.start})") from error


def _read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a saved datastore, checked for its format version and fields."""
    path = directory / _MANIFEST_FILE
    if not path.is_file():
        raise DatastoreError(f"{directory} holds no saved datastore (no {_MANIFEST_FILE})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DatastoreError(f"cannot read {path}: {error}") from error
    if not isinstance(manifest, dict):
        raise DatastoreError(f"{path} is not a datastore manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatastoreError(f"{path} has format version {manifest.get('format_version')!r}; "
                             f"this version reads {FORMAT_VERSION}")
    for field in ("tokens", "documents", "digest"):
        if field not in manifest:
            raise DatastoreError(f"{path} lacks the field {field!r}")
    return manifest


def _source_digest(documents: Sequence[Any], tokenizer: str) -> str:
    """A digest of cache inputs: the format version, the tokenizer identity and every
    document (length-prefixed, so that concatenations differ)."""
    if isinstance(documents, str):
        raise TypeError("documents must be a list of texts or token lists, not one string")
    digest = hashlib.sha256(f"diagrammar-datastore/{FORMAT_VERSION}\0".encode())
    digest.update(tokenizer.encode() + b"\0")
    for document in documents:
        if isinstance(document, str):
            data = b"t" + document.encode("utf-8")
        else:
            data = b"i" + _as_document(document, 0).astype("<i4").tobytes()
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


# -- the REST tree -------------------------------------------------------------------------


def prefix_counts(continuations: np.ndarray) -> dict[tuple[int, ...], int]:
    """How many continuations begin with each path: the trie of the continuations, with
    counts (rows are cut at their first :data:`SEPARATOR`).

    Example:
        >>> prefix_counts(np.array([[1, 2], [1, 3], [1, -1]]))
        {(1,): 3, (1, 2): 1, (1, 3): 1}
    """
    counts: dict[tuple[int, ...], int] = {}
    if continuations.size == 0:
        return counts
    get = counts.get
    for row in continuations.tolist():   # a few dozen short rows: a dict beats np.unique
        for depth, token in enumerate(row, start=1):
            if token < 0:
                break
            path = tuple(row[:depth])
            counts[path] = get(path, 0) + 1
    return counts


def select_frequent(counts: dict[tuple[int, ...], int], max_nodes: int
                    ) -> list[tuple[int, ...]]:
    """The ``max_nodes`` most frequent paths, best first; ties go to the shallower path, then
    to the smaller tokens.

    A path is never more frequent than its parent and is shallower, so every parent is
    picked before its children: the selection is a tree.

    Example:
        >>> select_frequent({(1,): 3, (1, 2): 2, (4,): 2, (1, 2, 5): 2}, 3)
        [(1,), (4,), (1, 2)]
    """
    order = sorted(counts, key=lambda path: (-counts[path], len(path), path))
    return order[:max(0, max_nodes)]


def frequency_tree(counts: dict[tuple[int, ...], int], total: int, max_nodes: int
                   ) -> DraftTree:
    """The draft tree of the ``max_nodes`` most frequent paths, each node's ``prob`` being
    ``count / total``.

    Example:
        >>> tree = frequency_tree({(1,): 3, (1, 2): 2, (4,): 1}, 4, 2)
        >>> tree.tokens, tree.parents, tree.probs
        ([1, 2], [-1, 0], [0.75, 0.5])
    """
    tree = DraftTree()
    nodes: dict[tuple[int, ...], int] = {(): -1}
    for path in select_frequent(counts, max_nodes):
        nodes[path] = tree.add(nodes[path[:-1]], path[-1], counts[path] / total)
    return tree


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class RetrievalDrafter(BaseDrafter):
    """REST: drafts the most frequent continuations of the context's longest suffix found in
    a :class:`Datastore`.

    Args:
        datastore: the token sequences to retrieve from.
        max_suffix, min_suffix: the suffix lengths tried, longest first (the last committed
            token is the suffix's last token).
        max_matches: at most this many occurrences are read (spread over all of them).
        max_nodes: the draft tree's size.
        max_depth: the draft tree's depth (also bounded by the state's draft budget).

    Example:
        >>> from diagrammar.decoding.state import DecodeState
        >>> store = Datastore.from_token_lists([[1, 2, 3, 4, 5]])
        >>> drafter = RetrievalDrafter(store, max_depth=2)
        >>> drafter(DecodeState(None, [2, 3], prompt_length=2, max_new_tokens=9)).tokens
        [4, 5]
    """

    def __init__(self, datastore: Datastore, max_suffix: int = 16, min_suffix: int = 1,
                 max_matches: int = 128, max_nodes: int = 16, max_depth: int = 6) -> None:
        if not isinstance(datastore, Datastore):
            raise TypeError(f"datastore must be a Datastore, got {type(datastore).__name__}")
        _check_positive(max_suffix=max_suffix, min_suffix=min_suffix, max_matches=max_matches,
                        max_nodes=max_nodes, max_depth=max_depth)
        if min_suffix > max_suffix:
            raise ValueError(f"min_suffix ({min_suffix}) exceeds max_suffix ({max_suffix})")
        self.datastore = datastore
        self.max_suffix = max_suffix
        self.min_suffix = min_suffix
        self.max_matches = max_matches
        self.max_nodes = max_nodes
        self.max_depth = max_depth

    def retrieve(self, context: Sequence[int], depth: int) -> np.ndarray:
        """The continuations (rows, see :meth:`Datastore.continuations`) of the context's
        longest matching suffix; no rows when nothing matches.

        Example:
            >>> drafter = RetrievalDrafter(Datastore.from_token_lists([[1, 2, 3]]))
            >>> drafter.retrieve([1, 2], 2).tolist(), drafter.retrieve([7], 2).shape
            ([[3, -1]], (0, 2))
        """
        nothing = np.zeros((0, max(depth, 0)), dtype=np.int32)
        if depth < 1:
            return nothing
        match = self.datastore.longest_suffix_match(context, self.max_suffix, self.min_suffix)
        if match is None:
            return nothing
        return self.datastore.continuations(match, depth, self.max_matches)

    def __call__(self, state: DecodeState) -> DraftTree:
        depth = min(self.max_depth, state.draft_budget)
        rows = self.retrieve(state.tokens, depth)
        if len(rows) == 0:
            return DraftTree()
        return frequency_tree(prefix_counts(rows), len(rows), self.max_nodes)


# -- RASD: pruning and fusion --------------------------------------------------------------


def _first_level(tree: DraftTree) -> list[int]:
    return [node for node, parent in enumerate(tree.parents) if parent == -1]


def _drafted_first_tokens(drafted: DraftTree, min_prob: float) -> tuple[list[int], float]:
    """The drafter's first tokens, most probable first (at least ``min_prob``; tree order when
    a probability is missing), and the probability mass it left to other first tokens."""
    first = _first_level(drafted)
    probs = [drafted.probs[node] for node in first]
    if any(prob is None for prob in probs):
        return [drafted.tokens[node] for node in first], 1.0
    ranked = sorted(zip(probs, first), key=lambda pair: -pair[0])  # type: ignore[arg-type]
    left = 1.0 - sum(probs)  # type: ignore[arg-type]
    return [drafted.tokens[node] for prob, node in ranked if prob >= min_prob], left


def prune_by_first_tokens(retrieved: DraftTree, drafted: DraftTree, top_k: int = 4,
                          min_prob: float = 0.0, open_slots: bool = True) -> DraftTree:
    """The retrieval tree without the branches whose first token the drafter does not rate.

    The allowed first tokens are the drafter's top ``top_k`` (its tree's first-level tokens,
    most probable first, each at least ``min_prob``; in the tree's order when a probability is
    missing).  With ``open_slots``, when the drafter shows fewer than ``top_k`` first tokens,
    the remaining slots take the retrieval tree's first tokens in its order (most frequent
    first), unless the probability mass the drafter left unassigned is below ``min_prob`` (no
    undrafted token could then reach it).  An empty drafted tree prunes nothing.

    Example:
        >>> retrieved = DraftTree(); _ = retrieved.add_path([1, 2]); _ = retrieved.add_path([3])
        >>> drafted = DraftTree(); _ = drafted.add(-1, 3, 0.6); _ = drafted.add(-1, 5, 0.3)
        >>> prune_by_first_tokens(retrieved, drafted, top_k=1).tokens
        [3]
        >>> prune_by_first_tokens(retrieved, drafted, top_k=3).tokens
        [1, 2, 3]
        >>> prune_by_first_tokens(retrieved, drafted, top_k=3, min_prob=0.2).tokens
        [3]
    """
    if not drafted.tokens:
        return retrieved
    candidates, left = _drafted_first_tokens(drafted, min_prob)
    allowed = candidates[:top_k]
    if open_slots and len(allowed) < top_k and (min_prob <= 0.0 or left >= min_prob):
        for node in _first_level(retrieved):
            if len(allowed) == top_k:
                break
            if retrieved.tokens[node] not in allowed:
                allowed.append(retrieved.tokens[node])
    return _keep_branches(retrieved, set(allowed))


def _keep_branches(tree: DraftTree, first_tokens: set[int]) -> DraftTree:
    """The tree without the branches whose first token is not in ``first_tokens``."""
    kept = DraftTree()
    mapping: dict[int, int] = {-1: -1}
    for node, (token, parent, prob) in enumerate(zip(tree.tokens, tree.parents, tree.probs)):
        if parent in mapping and (parent != -1 or token in first_tokens):
            mapping[node] = kept.add(mapping[parent], token, prob)
    return kept


def fuse_trees(drafted: DraftTree, retrieved: DraftTree, max_nodes: int) -> DraftTree:
    """One tree holding both: each retrieval node is attached below the longest prefix of
    its path already in the tree (shared prefixes merge), with at most ``max_nodes`` nodes.

    The drafter's nodes come first, in their order; retrieval nodes follow in theirs (a node
    whose parent did not fit is left out).

    Example:
        >>> fuse_trees(DraftTree.chain([1, 2]), DraftTree.chain([1, 2, 3, 4]), 3).paths()
        [[1, 2, 3]]
    """
    fused = DraftTree()
    for source in (drafted, retrieved):
        mapping: dict[int, int] = {-1: -1}
        for node, (token, parent, prob) in enumerate(zip(source.tokens, source.parents,
                                                         source.probs)):
            if parent not in mapping:
                continue
            at = mapping[parent]
            existing = fused.child(at, token)
            if existing is not None:
                mapping[node] = existing
            elif len(fused) < max_nodes:
                mapping[node] = fused.add(at, token, prob)
    return fused


class RasdDrafter(BaseDrafter):
    """RASD: a retrieval tree, pruned by another drafter's first-token probabilities, fused
    with that drafter's tree by longest-prefix matching.

    ``start`` and ``observe`` reach both drafters when they have them.

    Args:
        retrieval: the retrieval drafter (e.g. :class:`RetrievalDrafter`, or prompt lookup).
        drafter: the other drafter (e.g. a draft model), ``state -> DraftTree``.
        max_nodes: the fused tree's size.
        top_k: how many of the drafter's first tokens a retrieval branch may start with.
        min_prob: the least probability such a first token needs (when probabilities exist).
        open_slots: let retrieval fill the top-``k`` slots the drafter left unknown (see
            :func:`prune_by_first_tokens`); ``False`` keeps only the drafted first tokens.
        prune: ``False`` fuses the whole retrieval tree.

    Example:
        >>> from diagrammar.decoding.state import DecodeState
        >>> store = Datastore.from_token_lists([[1, 2, 3, 4], [1, 9, 9]])
        >>> chain = lambda state: DraftTree.chain([2, 3])
        >>> state = DecodeState(None, [1], prompt_length=1, max_new_tokens=9)
        >>> RasdDrafter(RetrievalDrafter(store), chain, max_nodes=8)(state).paths()
        [[9, 9], [2, 3, 4]]
        >>> RasdDrafter(RetrievalDrafter(store), chain, max_nodes=8, top_k=1)(state).paths()
        [[2, 3, 4]]
    """

    def __init__(self, retrieval: Any, drafter: Any, max_nodes: int = 24, top_k: int = 4,
                 min_prob: float = 0.0, open_slots: bool = True, prune: bool = True) -> None:
        _check_positive(max_nodes=max_nodes, top_k=top_k)
        if not 0.0 <= min_prob <= 1.0:
            raise ValueError(f"min_prob must lie in [0, 1], got {min_prob}")
        for name, value in (("retrieval", retrieval), ("drafter", drafter)):
            if not callable(value):
                raise TypeError(f"{name} must be a drafter (state -> DraftTree), got "
                                f"{type(value).__name__}")
        self.retrieval = retrieval
        self.drafter = drafter
        self.max_nodes = max_nodes
        self.top_k = top_k
        self.min_prob = min_prob
        self.open_slots = open_slots
        self.prune = prune

    def start(self, state: DecodeState) -> None:
        for inner in (self.drafter, self.retrieval):
            start = getattr(inner, "start", None)
            if start is not None:
                start(state)

    def __call__(self, state: DecodeState) -> DraftTree:
        drafted = self.drafter(state)
        retrieved = self.retrieval(state)
        if self.prune:
            retrieved = prune_by_first_tokens(retrieved, drafted, self.top_k, self.min_prob,
                                              self.open_slots)
        fused = fuse_trees(drafted, retrieved, self.max_nodes)
        return fused.prune(state.draft_budget)

    def parts(self) -> list[Any]:
        """The fused drafters: the retrieval drafter and the other one."""
        return [self.retrieval, self.drafter]

    def learns(self) -> bool:
        return learns(self.drafter) or learns(self.retrieval)

    def observe(self, state: DecodeState, verification: Verification) -> None:
        for inner in (self.drafter, self.retrieval):
            observe = getattr(inner, "observe", None)
            if observe is not None:
                observe(state, verification)
