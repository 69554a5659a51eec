"""Batched decoding: many sequences, one target forward pass per step, rows coming and going.

Each row is a sequence with its own :class:`~diagrammar.decoding.state.DecodeState`, its own
copy of the step (so drafters keep per-sequence data: n-gram indices, draft-model caches) and
its own row of a :class:`~diagrammar.decoding.protocols.BatchSession`. A step drafts every
row's tree, verifies all trees in **one** pass (:meth:`BatchSession.verify_rows`: trees padded
to the largest, per-row masks and positions), then accepts and commits row by row. A row that
finishes (end token or budget) leaves, and the next waiting prompt takes its slot: continuous
batching, without recomputing the other rows.

Exactness does not depend on the batch: every row's verification scores its tree exactly as a
single-sequence pass would, so greedy rows are token-identical to decoding each prompt alone.

The step of a row is a :class:`RowStep`: its ``draft`` half runs the boxes before ``Verify``
and returns the tree; its ``finish`` half runs the rest on the scores. A step that cannot be
split (no single ``Verify`` box) runs whole, row by row, each row verifying on its own.

>>> from diagrammar.decoding.drafters import NoDraftDrafter
>>> from diagrammar.decoding.steps import DrafterStep
>>> import numpy as np
>>> class Model:                          # a stand-in: always predicts (last token + 1) % 9
...     eos_token_ids, vocab_size = frozenset({8}), 9
...     def check_length(self, prompt_length, max_new_tokens): pass
...     def session(self, ids): return Row(ids)
>>> class Row:
...     def __init__(self, ids): self.cache_length = len(ids) - 1
...     def verify(self, root, tokens, parents):
...         scores = np.zeros((1 + len(tokens), 9))
...         for row, token in enumerate([root, *tokens]):
...             scores[row, (token + 1) % 9] = 1
...         return scores
...     def keep(self, path): self.cache_length += 1 + len(path)
...     def truncate(self, length): self.cache_length = length
>>> run = decode_batch(lambda: SplitStep(DrafterStep(NoDraftDrafter())), Model(),
...                    [[1], [5], [7, 0]], max_new_tokens=4, max_batch=2)
>>> sorted((index, result.tokens) for index, result in run)
[(0, [2, 3, 4, 5]), (1, [6, 7, 8]), (2, [1, 2, 3, 4])]
>>> run.stats.rows_per_step
[2, 2, 2, 2, 1, 1, 1]
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from diagrammar.decoding.acceptance import greedy_accept
from diagrammar.decoding.commit import commit
from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.loop import (
    Generation,
    check_budget,
    check_progress,
    check_token_ids,
    generation_of,
    progress_mark,
)
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.steps import prepare_verification, record_verification
from diagrammar.decoding.tree import DraftTree


class RowStep(Protocol):
    """One row's decoding step, split around its verification pass.

    ``draft`` returns ``(resume, tree)``: what ``finish`` needs to go on, and the checked tree
    to verify (or ``None`` when the step cannot be split: then ``step`` runs it whole);
    ``skip_draft`` does the same without running the drafter, when a policy predicts that
    drafting this row does not pay.
    """

    box_seconds: dict[str, float]

    def start(self, state: DecodeState) -> None:
        ...

    def draft(self, state: DecodeState) -> tuple[Any, DraftTree] | None:
        ...

    def skip_draft(self, state: DecodeState) -> tuple[Any, DraftTree] | None:
        """Like ``draft`` with an empty tree, without running the drafter (``None``: the
        step cannot skip it)."""
        ...

    def finish(self, resume: Any, tree: DraftTree, scores: Any) -> DecodeState:
        ...

    def step(self, state: DecodeState) -> DecodeState:
        ...


class SplitStep:
    """A :class:`RowStep` from a drafter step (``state -> (state, tree)``): draft, greedy
    acceptance, commit. The compiled pipelines of :mod:`diagrammar.functors.execute` give
    their own split; this one serves tests and plain loops.

    Args:
        drafter_step: ``state -> (state, tree)``, e.g. a
            :class:`~diagrammar.decoding.steps.DrafterStep`.
    """

    def __init__(self, drafter_step: Any) -> None:
        self.drafter_step = drafter_step
        self.box_seconds: dict[str, float] = {}

    def start(self, state: DecodeState) -> None:
        start = getattr(self.drafter_step, "start", None)
        if start is not None:
            start(state)

    def draft(self, state: DecodeState) -> tuple[Any, DraftTree]:
        state, tree = self.drafter_step(state)
        return state, prepare_verification(state, tree)

    def skip_draft(self, state: DecodeState) -> tuple[Any, DraftTree]:
        return state, DraftTree()

    def finish(self, resume: Any, tree: DraftTree, scores: Any) -> DecodeState:
        state = resume
        if scores is None:                         # ended before verifying
            return state
        scores = record_verification(state, tree, scores)
        commit(state, greedy_accept(tree, scores))
        return state

    def step(self, state: DecodeState) -> DecodeState:
        resume, tree = self.draft(state)
        scores = state.session.verify(state.tokens[-1], tree.tokens, tree.parents)
        return self.finish(resume, tree, scores)


class SerialBatch:
    """A :class:`~diagrammar.decoding.protocols.BatchSession` for a model that cannot batch:
    each row is the model's own session, and :meth:`verify_rows` verifies them one by one.
    Correct everywhere, faster nowhere; models with a batched forward bring their own.

    Args:
        model: a :class:`~diagrammar.decoding.protocols.LanguageModel`.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.rows: list[Any] = []

    def add(self, prompts: Sequence[Sequence[int]]) -> list[Any]:
        sessions = [self.model.session(list(prompt)) for prompt in prompts]
        self.rows.extend(sessions)
        return sessions

    def remove(self, row: Any) -> None:
        self.rows = [other for other in self.rows if other is not row]

    def verify_rows(self, requests: Sequence[tuple[Any, int, Sequence[int], Sequence[int]]]
                    ) -> list[Any]:
        return [row.verify(root, tokens, parents) for row, root, tokens, parents in requests]


def batch_session(model: Any, max_batch: int) -> Any:
    """The model's batched session, or a :class:`SerialBatch` when it has none."""
    make = getattr(model, "batch_session", None)
    return make(max_batch) if make is not None else SerialBatch(model)


@dataclass
class BatchStats:
    """What a batched decode did, step by step.

    Attributes:
        rows_per_step: rows verified together at each step.
        width_per_step: tokens per row of each step's pass (the largest tree plus its root;
            smaller trees are padded to it).
        depth_cap_per_step: the deepest cut the policy made at each step (``None``: no
            policy, trees as drafted; 0: no row verified a draft).
        prefill_seconds: time spent prefilling prompts.
        verify_seconds: time spent in the batched verification passes.
        seconds: wall time of the whole run.
        new_tokens: tokens generated over all rows.
        policy: what the policy reports about itself (its time curve, estimates), if any.
    """

    rows_per_step: list[int] = field(default_factory=list)
    width_per_step: list[int] = field(default_factory=list)
    depth_cap_per_step: list[int | None] = field(default_factory=list)
    prefill_seconds: float = 0.0
    verify_seconds: float = 0.0
    seconds: float = 0.0
    new_tokens: int = 0
    policy: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Batched steps (verification passes)."""
        return len(self.rows_per_step)

    @property
    def tokens_per_second(self) -> float:
        """Total throughput of the run."""
        return self.new_tokens / self.seconds if self.seconds else 0.0


@dataclass
class _Row:
    index: int
    state: DecodeState
    step: Any
    started: float
    prefill_seconds: float


class BatchRun:
    """An iterator over ``(prompt index, Generation)`` as rows finish; see :func:`decode_batch`.

    Attributes:
        stats: the run's :class:`BatchStats` (complete once the iterator is exhausted).
    """

    def __init__(self, make_step: Callable[[], Any], model: Any,
                 prompts: Sequence[Sequence[int]], max_new_tokens: int | Sequence[int],
                 config: GenerationConfig | None, max_batch: int, policy: Any) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        prompts = list(prompts)
        if isinstance(max_new_tokens, Sequence):
            budgets = list(max_new_tokens)
            if len(budgets) != len(prompts):
                raise ValueError(f"{len(budgets)} budgets for {len(prompts)} prompts: give one "
                                 "max_new_tokens, or one per prompt")
        else:
            budgets = [max_new_tokens] * len(prompts)
        for budget in budgets:
            check_budget(budget)
        vocab_size = getattr(model, "vocab_size", None)
        self.prompts = []
        for number, (prompt, budget) in enumerate(zip(prompts, budgets, strict=True)):
            try:
                ids = check_token_ids(prompt, vocab_size)
                if not ids:
                    raise ValueError("the prompt is empty: give at least one token")
                model.check_length(len(ids), budget)
            except ValueError as error:
                raise type(error)(f"prompt {number}: {error}") from error
            self.prompts.append((ids, budget))
        self.make_step, self.model = make_step, model
        self.max_batch, self.policy = max_batch, policy
        self.config = config if config is not None else GenerationConfig()
        self.stats = BatchStats()
        self._iterator = self._run()

    def __iter__(self) -> Iterator[tuple[int, Generation]]:
        return self._iterator

    def __next__(self) -> tuple[int, Generation]:
        return next(self._iterator)

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> Iterator[tuple[int, Generation]]:
        clock = time.perf_counter
        began = clock()
        stats = self.stats
        batch = batch_session(self.model, self.max_batch)
        waiting = deque(enumerate(self.prompts))
        spare: list[Any] = []
        active: list[_Row] = []
        eos = frozenset(self.model.eos_token_ids)
        vocab_size = getattr(self.model, "vocab_size", None)
        while waiting or active:
            if waiting and len(active) < self.max_batch:
                entering = []
                while waiting and len(active) + len(entering) < self.max_batch:
                    entering.append(waiting.popleft())
                filled = clock()
                sessions = batch.add([ids for _, (ids, _) in entering])
                prefill = clock() - filled
                stats.prefill_seconds += prefill
                for (index, (ids, budget)), session in zip(entering, sessions, strict=True):
                    step = spare.pop() if spare else self.make_step()
                    for name in step.box_seconds:
                        step.box_seconds[name] = 0.0
                    state = DecodeState(session, list(ids), len(ids), budget, eos,
                                        config=self.config, vocab_size=vocab_size,
                                        done=budget == 0)
                    step.start(state)
                    active.append(_Row(index, state, step, clock(), prefill))
            if any(not row.state.done for row in active):
                self._step([row for row in active if not row.state.done], batch)
            still = []
            for row in active:
                if row.state.done:
                    batch.remove(row.state.session)
                    if self.policy is not None:
                        self.policy.forget_row(row.state)
                    spare.append(row.step)
                    yield row.index, self._result(row, clock())
                else:
                    still.append(row)
            active = still
        stats.seconds = clock() - began
        if self.policy is not None:
            stats.policy = self.policy.report()

    def _step(self, rows: list[_Row], batch: Any) -> None:
        clock = time.perf_counter
        stats = self.stats
        began = clock()
        drafts: list[tuple[_Row, Any, DraftTree]] = []
        draft_seconds: list[float] = []
        whole: list[_Row] = []
        policy = self.policy
        for row in rows:
            drafting = clock()
            drafted = None
            if policy is not None and not policy.wants_draft(row.state):
                drafted = row.step.skip_draft(row.state)
            if drafted is None:
                drafted = row.step.draft(row.state)
            if drafted is None:
                whole.append(row)
            else:
                drafts.append((row, *drafted))
                draft_seconds.append(clock() - drafting)
        for row in whole:                       # steps that cannot be split run on their own
            length = progress_mark(row.state)
            row.state = row.step.step(row.state)
            check_progress(row.state, length)
        for row, resume, tree in [d for d in drafts if d[0].state.done]:
            row.state = row.step.finish(resume, tree, None)    # ended by a box (a grammar)
        drafts = [d for d in drafts if not d[0].state.done]
        if not drafts:
            return
        cap = None
        if self.policy is not None:
            caps = self.policy.choose(batch, [(row.state, tree) for row, _, tree in drafts],
                                      draft_seconds)
            drafts = [(row, resume, tree.prune(cap) if cap else DraftTree())
                      for (row, resume, tree), cap in zip(drafts, caps, strict=True)]
            cap = max(caps, default=0)
        requests = [(row.state.session, row.state.tokens[-1], tree.tokens, tree.parents)
                    for row, _, tree in drafts]
        verified = clock()
        all_scores = batch.verify_rows(requests)
        synchronize = getattr(batch, "synchronize", None)
        if synchronize is not None:
            synchronize()
        pass_seconds = clock() - verified
        stats.verify_seconds += pass_seconds
        for (row, resume, tree), scores in zip(drafts, all_scores, strict=True):
            length = progress_mark(row.state)
            row.state = row.step.finish(resume, tree, scores)
            row.step.box_seconds["Verify"] = row.step.box_seconds.get("Verify", 0.0) \
                + pass_seconds
            check_progress(row.state, length)
        stats.rows_per_step.append(len(drafts))
        stats.width_per_step.append(1 + max(len(tree) for _, _, tree in drafts))
        stats.depth_cap_per_step.append(cap)
        if self.policy is not None:
            self.policy.observe([(row.state, tree) for row, _, tree in drafts], pass_seconds,
                                clock() - began - pass_seconds - sum(draft_seconds))

    def _result(self, row: _Row, now: float) -> Generation:
        self.stats.new_tokens += row.state.generated
        return generation_of(row.state, row.prefill_seconds, now - row.started,
                             row.step.box_seconds)


def decode_batch(make_step: Callable[[], Any], model: Any, prompts: Sequence[Sequence[int]],
                 max_new_tokens: int | Sequence[int], *, config: GenerationConfig | None = None,
                 max_batch: int = 8, policy: Any = None) -> BatchRun:
    """Decodes many prompts, up to ``max_batch`` at a time, one verification pass per step.

    Args:
        make_step: builds one row's :class:`RowStep` (called once per slot; a slot's step is
            reused, restarted, for the next prompt that takes it).
        model: a :class:`~diagrammar.decoding.protocols.LanguageModel`; batched when it has
            ``batch_session`` (else rows are verified one by one, see :class:`SerialBatch`).
        prompts: token ids, one list per prompt (all checked before anything runs).
        max_new_tokens: the budget of every row, or one budget per prompt.
        config: how tokens are chosen (greedy by default); each row gets its own random
            generator seeded from it, so a row samples as it would alone.
        max_batch: rows held at once (bounds memory).
        policy: chooses each step how deep the trees are verified (e.g.
            :class:`~diagrammar.decoding.batch_policy.BatchCostPolicy`); ``None`` verifies
            the trees as drafted.

    Returns:
        a :class:`BatchRun`: iterate it for ``(prompt index, Generation)`` in the order rows
        finish; its ``stats`` describe the run.

    Raises:
        ValueError: a prompt that is not token ids, is empty or does not fit, naming it.
    """
    return BatchRun(make_step, model, prompts, max_new_tokens, config, max_batch, policy)


__all__ = ["RowStep", "SplitStep", "SerialBatch", "BatchStats", "BatchRun", "batch_session",
           "decode_batch"]
