"""The ``Check`` box's implementation: commit accepted tokens only up to the first checkpoint
whose text a checker rejects, and decode that segment again without its failed first token.

A *checker* is anything with ``check(text) -> verdict`` where ``verdict.status`` is
``"pass"``, ``"fail"`` or ``"unknown"`` and ``verdict.reason`` a string (the symbolic
checkers follow it; this module does not import them). The generated text is cut into
*segments* at checkpoints (:mod:`diagrammar.decoding.checkpoints`: lines, statements, SQL
statements, JSON values, or the whole text at the end); each complete segment is checked once.

On a failure the step backs off to the segment's first token and excludes it: the next
verification pass masks the tokens of every failed attempt at that position (row 0 of its
scores), so greedy acceptance takes the next-best token there — the *first differing
position* between a failed continuation and its retry is the segment's first position, and
each retry excludes one more token at it. Past ``retries`` retries the segment is accepted as
it is and the checker's reason is recorded (``gave_up``, :attr:`CheckStep.reasons`).
A segment that started in an earlier step is rolled back: the tokens leave the sequence and
the session's cache (:meth:`Session.truncate`), and the step commits nothing.

>>> import numpy as np
>>> from types import SimpleNamespace
>>> from diagrammar.decoding.commit import commit
>>> from diagrammar.decoding.state import Acceptance, DecodeState
>>> class NoDigits:                                    # fails any line holding a digit
...     def check(self, text):
...         bad = any(c.isdigit() for c in text)
...         return SimpleNamespace(status="fail" if bad else "pass", reason="a digit")
>>> class Session:
...     def keep(self, path): pass
>>> decode = lambda ids: "".join(chr(i) for i in ids)
>>> check = CheckStep(NoDigits(), "line", retries=2, decode=decode)
>>> state = DecodeState(Session(), [ord(">")], prompt_length=1, max_new_tokens=20)
>>> check.start(state)
>>> state, accepted = check(state, Acceptance((0, 1, 2), tuple(map(ord, "ok\\n7\\n"))))
>>> commit(state, accepted); decode(state.tokens), sorted(map(chr, state.excluded))
('>ok\\n', ['7'])
>>> check.counters()["failures"], check.counters()["checkpoints"]
(1, 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from diagrammar.decoding.checkpoints import CHECKPOINTS, find_checkpoint
from diagrammar.decoding.commit import committed_tokens
from diagrammar.decoding.state import Acceptance, DecodeState

#: The statuses a checker's verdict may have.
STATUSES = ("pass", "fail", "unknown")


class CheckStep:
    """``(Context, Accepted) -> (Context, Accepted)``: the ``Check`` box, between acceptance
    and commit.

    Args:
        checker: ``check(text) -> verdict`` (``verdict.status``, ``verdict.reason``).
        checkpoint: where segments end (one of :data:`CHECKPOINTS`).
        retries: how many times one segment is decoded again after a failure.
        decode: token ids -> text (the model's tokenizer).

    Attributes:
        reasons: why each segment given up on failed (its offset in generated tokens and
            the checker's reason), for the generation since :meth:`start`.
    """

    def __init__(self, checker: Any, checkpoint: str = "line", retries: int = 3,
                 decode: Callable[[Sequence[int]], str] | None = None) -> None:
        if not callable(getattr(checker, "check", None)):
            raise TypeError(f"a checker has a check(text) method; {checker!r} has none")
        if checkpoint not in CHECKPOINTS:
            raise ValueError(f"unknown checkpoint {checkpoint!r}; known: "
                             f"{', '.join(CHECKPOINTS)}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number >= 0, not {retries!r}")
        if decode is None:
            raise ValueError("a Check box needs the model's tokenizer to read tokens as text")
        self.checker = checker
        self.checkpoint = checkpoint
        self.retries = retries
        self.decode = decode
        self.segment_start = 0
        self.lead = ""
        self.prompt_length = 0
        self.tried: dict[int, list[int]] = {}
        self.given_up: set[int] = set()
        self.reasons: list[str] = []
        self._reset_counters()

    def _reset_counters(self) -> None:
        self.checked = self.failures = self.repairs = self.gave_up = self.rollbacks = 0
        self.solver_seconds = 0.0

    def start(self, state: DecodeState) -> None:
        """Starts a generation: the first segment begins after the prompt (for ``line`` and
        ``statement`` checkpoints its text starts with the prompt's unfinished last line, so
        that the checker sees whole lines; the prompt itself is never decoded again)."""
        self.segment_start = self.prompt_length = state.prompt_length
        self.lead = ""
        if self.checkpoint in ("line", "statement") and state.prompt_length:
            self.lead = self.decode(state.tokens[:state.prompt_length]).rpartition("\n")[2]
        self.tried = {}
        self.given_up = set()
        self.reasons = []
        self._reset_counters()

    def counters(self) -> dict[str, Any]:
        """What this box did since :meth:`start` (reported in the decode's stats)."""
        return {"checkpoints": self.checked, "failures": self.failures,
                "repairs": self.repairs, "gave_up": self.gave_up, "rollbacks": self.rollbacks,
                "solver_seconds": self.solver_seconds, "reasons": list(self.reasons)}

    def __call__(self, state: DecodeState, accepted: Acceptance
                 ) -> tuple[DecodeState, Acceptance]:
        if accepted.rolled_back or not accepted.tokens:
            return state, accepted
        new, ends = committed_tokens(state, accepted.tokens)
        base = len(state.tokens)
        tokens = state.tokens + list(new)
        position = max(self.segment_start, base)
        while position < len(tokens):
            text = self._lead() + self.decode(tokens[self.segment_start:position + 1])
            boundary = find_checkpoint(self.checkpoint, text)
            if boundary is not None:
                if not self._passes(text[:boundary], tokens):
                    return state, self._back_off(state, accepted, base)
                self.segment_start = position + 1
            position += 1
        if ends and self.checkpoint == "end" and self.segment_start < len(tokens):
            if not self._passes(self._lead() + self.decode(tokens[self.segment_start:]),
                                tokens):
                return state, self._back_off(state, accepted, base)
            self.segment_start = len(tokens)
        return state, accepted

    def _lead(self) -> str:
        """The prompt's text before the segment, when the segment is the first one."""
        return self.lead if self.segment_start == self.prompt_length else ""

    def _passes(self, text: str, tokens: list[int]) -> bool:
        """Checks the segment at :attr:`segment_start`; ``False`` when it must be decoded
        again (it failed, and retries are left)."""
        start = self.segment_start
        began = time.perf_counter()
        verdict = self.checker.check(text)
        self.solver_seconds += time.perf_counter() - began
        self.checked += 1
        status = getattr(verdict, "status", None)
        if status not in STATUSES:
            raise ValueError(f"checker {self.checker!r} returned a verdict with status "
                             f"{status!r}; a verdict's status is one of {', '.join(STATUSES)}")
        if status != "fail":
            if start in self.tried and start not in self.given_up:
                self.repairs += 1
            return True
        self.failures += 1
        if start in self.given_up:
            return True
        tried = self.tried.setdefault(start, [])
        tried.append(tokens[start])
        if len(tried) > self.retries:
            self.given_up.add(start)
            self.gave_up += 1
            self.reasons.append(f"segment at generated token {start - self.prompt_length} "
                                f"failed {len(tried)} times: "
                                f"{getattr(verdict, 'reason', '') or 'no reason given'}")
            return True
        return False

    def _back_off(self, state: DecodeState, accepted: Acceptance, base: int) -> Acceptance:
        """Backs off to the failed segment's start: cuts this step's acceptance there, or
        rolls back tokens committed by earlier steps; the next pass excludes the tried
        tokens at that position."""
        start = self.segment_start
        state.excluded = frozenset(self.tried[start])
        if start > base:                         # the segment starts in this step's tokens
            kept = start - base
            return Acceptance(accepted.path[:kept - 1], accepted.tokens[:kept])
        del state.tokens[start:]
        state.session.truncate(start - 1)        # the cache holds all tokens but the root
        state.rollbacks += 1
        self.rollbacks += 1
        return Acceptance((), (), rolled_back=True)


__all__ = ["CheckStep", "STATUSES"]
