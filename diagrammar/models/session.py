"""What every KV-cache session shares: the bookkeeping of ``verify``, ``keep`` and ``truncate``.

A session holds the cache of one sequence: every committed token but the last (the *root*).
:meth:`CachedSession.verify` scores the root and a draft tree in one pass and leaves their
entries at the end of the cache; :meth:`CachedSession.keep` keeps the root's and the accepted
path's entries and drops the rest; :meth:`CachedSession.truncate` rolls back.

A backend's session subclasses :class:`CachedSession` and implements three methods on its own
storage: :meth:`~CachedSession._score` (the forward pass), :meth:`~CachedSession._move` (copy
a few cache positions down, for a path that is not the tree's first branch) and
:meth:`~CachedSession._truncate`. The checks and counters live here once.

:meth:`CachedSession.synchronize` waits for the session's device: on an accelerator a forward
pass returns before the device has finished it, so a timer around ``verify`` must synchronize
to charge the time to the right box (on the CPU it does nothing).

>>> class Echo(CachedSession):        # a toy cache: a list of tokens, "logits" = the tokens
...     def __init__(self, prompt):
...         super().__init__(len(prompt) - 1)
...         self.cache = list(prompt[:-1])
...     def _score(self, ids, parents):
...         self.cache += ids
...         return ids
...     def _move(self, sources, destination):
...         for offset, source in enumerate(sources):
...             self.cache[destination + offset] = self.cache[source]
...     def _truncate(self, length):
...         del self.cache[length:]
>>> session = Echo([1, 2, 3])
>>> session.verify(3, [4, 5, 6], [-1, 0, -1])
[3, 4, 5, 6]
>>> session.keep([2]); session.cache, session.cache_length
([1, 2, 3, 6], 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:      # torch is imported where it is used: the JAX backend runs without it
    import torch


def synchronize_device(device: torch.device) -> None:
    """Waits until ``device`` has finished the work queued on it (nothing to do on the CPU).

    >>> import torch
    >>> synchronize_device(torch.device("cpu"))
    """
    if device.type == "cpu":
        return
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return
    backend = getattr(torch, device.type, None)      # mps, xpu, ...: their own synchronize
    sync = getattr(backend, "synchronize", None)
    if sync is None:
        torch.accelerator.synchronize(device)
    elif device.type == "mps":
        sync()
    else:
        sync(device)


class CachedSession:
    """Base of the sessions: tracks ``cache_length`` and the pending tree.

    Args:
        cache_length: how many committed tokens the cache holds after the prefill.

    Attributes:
        cache_length: how many committed tokens the cache holds (all but the root).
    """

    def __init__(self, cache_length: int = 0) -> None:
        self.cache_length = cache_length
        self._tree_length = 0

    # -- what a backend implements -------------------------------------------------------------
    def _score(self, ids: list[int], parents: Sequence[int]) -> Any:
        """Runs ``ids`` (the root, then the tree's nodes) after the cache and returns one row of
        scores per id; ``parents`` are the draft nodes' parents (-1 for the root)."""
        raise NotImplementedError

    def _move(self, sources: list[int], destination: int) -> None:
        """Copies the cache entries at positions ``sources`` to ``destination`` onwards."""
        raise NotImplementedError

    def _truncate(self, length: int) -> None:
        """Drops every cache entry from position ``length`` on."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Waits until the device has finished this session's work (a no-op here and on CPU).

        Sessions that run on an accelerator override it, e.g. with :func:`synchronize_device`.
        """

    # -- the contract ---------------------------------------------------------------------------
    def verify(self, root: int, tokens: Sequence[int], parents: Sequence[int]) -> Any:
        """Scores the root and a draft tree below it in one forward pass.

        Args:
            root: the last committed token (not yet in the cache).
            tokens: the draft tree's tokens, parents before children.
            parents: for each node, the index of its parent node, or -1 for the root.

        Returns:
            scores of shape ``(1 + len(tokens), vocab)``: row 0 scores the token after the
            root, row ``i + 1`` the token after node ``i``.
        """
        ids = self._check_tree(root, tokens, parents)
        scores = self._score(ids, parents)
        self._tree_length = len(ids)
        return scores

    def _check_tree(self, root: int, tokens: Sequence[int], parents: Sequence[int]
                    ) -> list[int]:
        """The ids a pass runs (root first), after checking that no tree is pending."""
        if self._tree_length:
            raise RuntimeError("verify() called twice: call keep() or truncate() in between")
        if len(tokens) != len(parents):
            raise ValueError(f"{len(tokens)} tokens but {len(parents)} parents")
        return [int(root), *tokens]

    def keep(self, path: Sequence[int]) -> None:
        """After :meth:`verify`, keeps the root's and the accepted nodes' cache entries.

        Costs O(len(path)): only a path that is not the tree's first branch moves entries.

        Args:
            path: indices of the accepted draft nodes, root to leaf.
        """
        if self._tree_length == 0:
            raise RuntimeError("keep() must follow verify()")
        start = self.cache_length + 1
        path = [int(node) for node in path]
        if any(not 0 <= node < self._tree_length - 1 for node in path):
            raise ValueError(f"path {path} names nodes outside the verified tree of "
                             f"{self._tree_length - 1} nodes")
        if path != list(range(len(path))):
            self._move([start + node for node in path], start)
        end = start + len(path)
        if end < self.cache_length + self._tree_length:
            self._truncate(end)
        self.cache_length = end
        self._tree_length = 0

    def truncate(self, length: int) -> None:
        """Rolls the cache back to its first ``length`` tokens (dropping a pending tree)."""
        if not 0 <= length <= self.cache_length:
            raise ValueError(f"cannot roll back to {length} tokens: the cache holds "
                             f"{self.cache_length}")
        if length < self.cache_length + self._tree_length:
            self._truncate(length)
        self.cache_length = length
        self._tree_length = 0


__all__ = ["CachedSession", "synchronize_device"]
