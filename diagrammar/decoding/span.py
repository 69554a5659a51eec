"""Extractive decoding: the answer is a span of a given passage, found exactly.

"How Optimal is Greedy Decoding for Extractive Question Answering?" (Castel et al., 2022)
proposes *exact-extract*: among all spans of the passage, return the one the model finds most
probable as a whole answer. :func:`best_span` is that search on any
:class:`~diagrammar.decoding.protocols.LanguageModel`; :func:`greedy_span` is constrained greedy
decoding (the best next token that keeps the output a substring of the passage), the baseline
the paper compares it with.

**What a span is.** The passage is tokenized once, on its own and without special tokens (or
given as token ids); a span is a non-empty contiguous run of those tokens, at most
``max_span_tokens`` long. The same text may tokenize differently elsewhere (a word at the start
of the passage has no leading space token, while after ``"Answer:"`` the model may expect
``" Paris"``): spans are the passage's own tokens, never a retokenization. Character offsets
index into the decoded passage (equal to the passage for byte-level BPE tokenizers).

**The score.** For a span ``s_1 .. s_m`` after the prompt ``x``::

    log_prob = sum_t log P(s_t | x, s_<t) + log P(END | x, s_1..s_m)

where ``P(END | ...)`` is the total probability of the *answer terminators*: the model's EOS
tokens and the tokens of ``end`` (a one-token string such as ``"\\n"``, a token id, or a set of
ids). The terminator term makes the score the probability that the whole answer is the span,
not merely that the answer starts with it. A token sequence that occurs several times in the
passage is one candidate, reported at its first occurrence.

**The search.** Every span starting at passage token ``i`` is a prefix of the suffix starting
at ``i``, so the trie of all suffixes (cut at ``max_span_tokens``) holds every span as a node;
one :meth:`~diagrammar.decoding.protocols.Session.verify` pass over that trie, with the prompt
cached, scores every span at once: the log-probabilities along a path are a cumulative sum, and
each node's own row gives the terminator term. Suffixes sharing a prefix share its nodes. The
trie is cut into passes of at most ``max_nodes_per_pass`` nodes (suffixes sorted so that shared
prefixes fall in one pass); a suffix longer than that is scored in chained segments, its
earlier segments kept in the cache. After each pass the session rolls back to the prompt with
``truncate``. The result is the exact argmax (and top-k) over all spans: no beam, no pruning.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from diagrammar.models.hf import HFCausalLM
>>> torch.manual_seed(0) and None
>>> lm = HFCausalLM(GPT2LMHeadModel(GPT2Config(
...     vocab_size=32, n_positions=64, n_embd=16, n_layer=1, n_head=2, eos_token_id=3)).double())
>>> passage = [5, 9, 12, 7, 9, 12, 20]
>>> spans = best_span(lm, [1, 2], passage, end=None, top_k=3)   # EOS ends the answer
>>> [len(s.token_ids) >= 1 for s in spans], spans[0].log_prob >= spans[1].log_prob
([True, True, True], True)
>>> best = spans[0]
>>> passage[best.start_token:best.start_token + len(best.token_ids)] == list(best.token_ids)
True
>>> best.log_prob >= greedy_span(lm, [1, 2], passage, end=None).log_prob
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from diagrammar.decoding.tree import DraftTree

__all__ = ["Span", "best_span", "greedy_span"]


@dataclass(frozen=True)
class Span:
    """One answer span of the passage and its score.

    Attributes:
        text: the span's text (``None`` when the model has no tokenizer).
        start_char: where it starts in the decoded passage (``None`` without a tokenizer).
        end_char: where it ends (exclusive) in the decoded passage.
        token_ids: the span's tokens, a contiguous run of the passage's tokens.
        log_prob: ``log P(span, then a terminator | prompt)`` (see the module docstring).
        start_token: the index of its first token in the passage's tokens.
    """

    text: str | None
    start_char: int | None
    end_char: int | None
    token_ids: tuple[int, ...]
    log_prob: float
    start_token: int


# -- inputs ------------------------------------------------------------------------------------
def _can_decode(model: Any) -> bool:
    try:
        model.decode([])
    except Exception:  # noqa: BLE001 - a model without a tokenizer raises its own error type
        return False
    return True


def _plain_ids(model: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens (no BOS before a passage or a terminator)."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and callable(tokenizer):
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(model.encode(text))


def _end_tokens(model: Any, end: str | int | Iterable[int] | None, eos: bool) -> list[int]:
    ends = set(model.eos_token_ids) if eos else set()
    if isinstance(end, str):
        if not end:
            raise ValueError("end is an empty string: give a one-token terminator such as '\\n'")
        ids = _plain_ids(model, end)
        if len(ids) != 1:
            raise ValueError(f"the terminator {end!r} is {len(ids)} tokens {ids}: give a "
                             "one-token string or the terminator token ids")
        ends.update(ids)
    elif isinstance(end, int):
        ends.add(end)
    elif end is not None:
        ends.update(int(token) for token in end)
    vocab = getattr(model, "vocab_size", None)
    bad = [t for t in ends if t < 0 or (vocab is not None and t >= vocab)]
    if bad:
        raise ValueError(f"terminator tokens {sorted(bad)} are outside the vocabulary")
    if not ends:
        raise ValueError("no answer terminator: the model has no EOS token and end is None; "
                         "give end (a one-token string or token ids)")
    return sorted(ends)


def _prepare(model: Any, prompt: str | Sequence[int], passage: str | Sequence[int],
             max_span_tokens: int | None) -> tuple[list[int], list[int], int]:
    prompt_ids = model.encode(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
    if not prompt_ids:
        raise ValueError("the prompt is empty: give at least one token")
    passage_ids = (_plain_ids(model, passage) if isinstance(passage, str)
                   else [int(t) for t in passage])
    if not passage_ids:
        raise ValueError("the passage is empty: there is no span to extract")
    if max_span_tokens is not None and max_span_tokens < 1:
        raise ValueError(f"max_span_tokens must be at least 1 (or None), got {max_span_tokens}")
    longest = len(passage_ids) if max_span_tokens is None else min(max_span_tokens,
                                                                    len(passage_ids))
    model.check_length(len(prompt_ids), longest)
    return prompt_ids, passage_ids, longest


def _span(model: Any, passage_ids: list[int], start: int, length: int, log_prob: float,
          decodes: bool) -> Span:
    ids = tuple(passage_ids[start:start + length])
    if not decodes:
        return Span(None, None, None, ids, float(log_prob), start)
    start_char = len(model.decode(passage_ids[:start]))
    end_char = len(model.decode(passage_ids[:start + length]))
    return Span(model.decode(ids), start_char, end_char, ids, float(log_prob), start)


# -- scores ------------------------------------------------------------------------------------
def _log_probs(scores: Any, rows: Sequence[int], cols: Sequence[int],
               ends: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Log-softmax of the score rows, read at ``(rows[k], cols[k])``, and the log of the total
    terminator probability of every row. A torch tensor is reduced on its device (only the
    small results are copied); anything else goes through NumPy."""
    if callable(getattr(scores, "log_softmax", None)):  # torch
        logp = scores.double().log_softmax(-1)
        picked = logp[list(rows), list(cols)].tolist() if len(rows) else []
        end = logp[:, list(ends)].logsumexp(-1).tolist()
        return np.asarray(picked, dtype=np.float64), np.asarray(end, dtype=np.float64)
    array = np.asarray(scores, dtype=np.float64)
    top = array.max(-1, keepdims=True)
    logp = array - (top + np.log(np.exp(array - top).sum(-1, keepdims=True)))
    end_part = logp[:, list(ends)]
    end_top = end_part.max(-1, keepdims=True)
    end = (end_top + np.log(np.exp(end_part - end_top).sum(-1, keepdims=True)))[:, 0]
    return logp[list(rows), list(cols)], end


def _score_tree(session: Any, root: int, tokens: list[int], parents: list[int],
                ends: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Verifies one tree; per node, ``log P(path)`` and ``log P(END | path)``."""
    scores = session.verify(root, tokens, parents)
    token_lp, end_lp = _log_probs(scores, [p + 1 for p in parents], tokens, ends)
    cumulative = np.empty(len(tokens))
    for node, parent in enumerate(parents):  # parents come before their children
        cumulative[node] = token_lp[node] + (cumulative[parent] if parent >= 0 else 0.0)
    return cumulative, end_lp[1:]


def _fill_pass(session, root, base, tree, first_start, depth, ends, found):
    """Scores one packed trie of suffixes and records each node as a span."""
    if not len(tree):
        return
    cumulative, end_lp = _score_tree(session, root, tree.tokens, tree.parents, ends)
    session.truncate(base)
    found.append((cumulative + end_lp, np.asarray(first_start), np.asarray(depth)))


def _score_long_suffix(session, root, base, path, start, cap, ends, found):
    """Scores every prefix of one suffix longer than a pass, segment by segment: each segment
    is a chain below the last token of the previous one, whose tokens stay in the cache."""
    offset = 0.0
    for begin in range(0, len(path), cap):
        segment = path[begin:begin + cap]
        cumulative, end_lp = _score_tree(session, root, segment,
                                         list(range(-1, len(segment) - 1)), ends)
        found.append((offset + cumulative + end_lp, np.full(len(segment), start),
                      np.arange(begin + 1, begin + len(segment) + 1)))
        offset += cumulative[-1]
        if begin + cap < len(path):
            session.keep(list(range(len(segment) - 1)))
            root = segment[-1]
        else:
            session.truncate(base)
    session.truncate(base)


# -- the searches ------------------------------------------------------------------------------
def best_span(model: Any, prompt: str | Sequence[int], passage: str | Sequence[int], *,
              end: str | int | Iterable[int] | None = "\n", eos: bool = True,
              max_span_tokens: int | None = None, top_k: int = 1,
              max_nodes_per_pass: int = 512) -> list[Span]:
    """The ``top_k`` most probable answer spans of ``passage`` after ``prompt``, exactly.

    Args:
        model: a :class:`~diagrammar.decoding.protocols.LanguageModel`.
        prompt: text (encoded with the model's special tokens) or token ids; the answer follows
            it directly.
        passage: text (tokenized once, without special tokens) or token ids.
        end: the answer terminator besides EOS: a one-token string (default ``"\\n"``), a token
            id, a set of ids, or ``None`` (EOS alone).
        eos: whether the model's EOS tokens also end an answer.
        max_span_tokens: the longest span in tokens (``None``: the whole passage).
        top_k: how many distinct spans (as token sequences) to return.
        max_nodes_per_pass: the most trie nodes one forward pass scores.

    Returns:
        Up to ``top_k`` :class:`Span` s, most probable first (ties: earlier, then shorter).

    Raises:
        ValueError: an empty prompt or passage, ``max_span_tokens``, ``top_k`` or
            ``max_nodes_per_pass`` below 1, or a terminator that is not one token.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if max_nodes_per_pass < 1:
        raise ValueError(f"max_nodes_per_pass must be at least 1, got {max_nodes_per_pass}")
    prompt_ids, passage_ids, longest = _prepare(model, prompt, passage, max_span_tokens)
    ends = _end_tokens(model, end, eos)
    session = model.session(prompt_ids)
    root, base = prompt_ids[-1], session.cache_length
    n = len(passage_ids)
    suffixes = {i: tuple(passage_ids[i:i + longest]) for i in range(n)}
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    tree, first_start, depth = DraftTree(), [], []
    for start in sorted(range(n), key=lambda i: (suffixes[i], i)):
        path = suffixes[start]
        if len(path) > max_nodes_per_pass:
            _score_long_suffix(session, root, base, list(path), start, max_nodes_per_pass,
                               ends, found)
            continue
        shared, node = 0, -1
        while shared < len(path):  # the prefix already in the trie costs no nodes
            node = tree.child(node, path[shared])
            if node is None:
                break
            shared += 1
        if len(tree) + len(path) - shared > max_nodes_per_pass:
            _fill_pass(session, root, base, tree, first_start, depth, ends, found)
            tree, first_start, depth = DraftTree(), [], []
        before = len(tree)
        for level, node in enumerate(tree.add_path(path), start=1):
            if node >= before:
                first_start.append(start)
                depth.append(level)
    _fill_pass(session, root, base, tree, first_start, depth, ends, found)

    scores = np.concatenate([f[0] for f in found])
    starts = np.concatenate([f[1] for f in found])
    lengths = np.concatenate([f[2] for f in found])
    order = np.lexsort((lengths, starts, -scores))
    decodes = _can_decode(model)
    best: list[Span] = []
    seen: set[tuple[int, ...]] = set()
    for index in order:
        start, length = int(starts[index]), int(lengths[index])
        key = tuple(passage_ids[start:start + length])
        if key in seen:
            continue
        seen.add(key)
        # the same tokens at an earlier position: report the first occurrence
        first = min((i for i in range(n - length + 1)
                     if tuple(passage_ids[i:i + length]) == key), default=start)
        best.append(_span(model, passage_ids, first, length, scores[index], decodes))
        if len(best) == top_k:
            break
    return best


def greedy_span(model: Any, prompt: str | Sequence[int], passage: str | Sequence[int], *,
                end: str | int | Iterable[int] | None = "\n", eos: bool = True,
                max_span_tokens: int | None = None) -> Span:
    """Constrained greedy extractive decoding, scored as :func:`best_span` scores spans.

    At each step the choice is the most probable of: every token that keeps the output a
    substring of the passage's tokens, and (once the output is non-empty) ending the answer,
    whose probability is the terminators' total. It stops when ending wins (ties end), when no
    token can extend the output, or at ``max_span_tokens``. Its ``log_prob`` includes the
    terminator term, so ``best_span(...)[0].log_prob >= greedy_span(...).log_prob`` always.
    Arguments as in :func:`best_span`.
    """
    prompt_ids, passage_ids, longest = _prepare(model, prompt, passage, max_span_tokens)
    ends = _end_tokens(model, end, eos)
    session = model.session(prompt_ids)
    root, n = prompt_ids[-1], len(passage_ids)
    matches = list(range(n))  # starts i where passage[i:i + len(output)] == output
    output: list[int] = []
    total = 0.0
    while True:
        allowed = sorted({passage_ids[i + len(output)] for i in matches
                          if i + len(output) < n}) if len(output) < longest else []
        scores = session.verify(root, [], [])
        token_lp, end_lp = _log_probs(scores, [0] * len(allowed), allowed, ends)
        session.keep([])
        stop = float(end_lp[0])
        best = int(np.argmax(token_lp)) if len(allowed) else -1
        if not allowed or (output and stop >= token_lp[best]):
            total += stop
            break
        token = allowed[best]
        total += float(token_lp[best])
        matches = [i for i in matches if i + len(output) < n
                   and passage_ids[i + len(output)] == token]
        output.append(token)
        root = token
    return _span(model, passage_ids, matches[0], len(output), total, _can_decode(model))
