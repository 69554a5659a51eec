"""What a checker says about a piece of output text: a :class:`Verdict`, and the
:class:`Checker` protocol every checker of this layer follows.

A checker reads one piece of text that a model wrote, taken at a *checkpoint* (the end of a
line, a statement, an expression, an SQL query, a JSON value or the output) and answers
``pass``, ``fail`` or ``unknown``, always with a reason. ``unknown`` is the honest answer when
a solver times out, gives up or errs: a checker never raises on bad model text.

>>> verdict = Verdict("fail", "2 + 2 = 5 does not hold: 4 != 5")
>>> verdict.passed, verdict.failed, bool(verdict)
(False, True, False)
>>> verdict.status, verdict.reason
('fail', '2 + 2 = 5 does not hold: 4 != 5')

To write a checker, subclass :class:`BaseChecker` and implement ``_check``; ``check`` times
the call and turns any exception into an ``unknown`` verdict that names it:

>>> class NonEmpty(BaseChecker):
...     name, checkpoint = "non-empty", "line"
...     def _check(self, text):
...         return Verdict("pass" if text.strip() else "fail", "text is blank" * (not text.strip()))
>>> NonEmpty().check("  ").status
'fail'
>>> isinstance(NonEmpty(), Checker)
True
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

Status = Literal["pass", "fail", "unknown"]
Checkpoint = Literal["line", "statement", "expression", "sql", "json", "end"]

STATUSES: tuple[str, ...] = ("pass", "fail", "unknown")
CHECKPOINTS: tuple[str, ...] = ("line", "statement", "expression", "sql", "json", "end")
"""Where a checker wants its text cut: the end of a line, a statement, an expression, an SQL
query, a JSON value, or the end of the whole output."""


@dataclass(frozen=True)
class Verdict:
    """A checker's answer: ``status`` (``"pass"``, ``"fail"`` or ``"unknown"``), a
    human-readable ``reason``, the ``seconds`` the check took, and an optional ``detail``
    (rows of a query, a counterexample, the values that were checked...).

    >>> Verdict("pass", "holds identically").passed
    True
    >>> Verdict("maybe", "")
    Traceback (most recent call last):
    ...
    ValueError: a verdict's status is one of ('pass', 'fail', 'unknown'), not 'maybe'
    """

    status: Status
    reason: str
    seconds: float = 0.0
    detail: Any = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"a verdict's status is one of {STATUSES}, not {self.status!r}")

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def unknown(self) -> bool:
        return self.status == "unknown"

    def __bool__(self) -> bool:
        """True only for ``pass``: ``if checker.check(text): ...``."""
        return self.passed


@runtime_checkable
class Checker(Protocol):
    """Anything that checks a piece of text: a ``name``, the ``checkpoint`` kind it wants
    (one of :data:`CHECKPOINTS`), and ``check(text) -> Verdict``, which never raises on bad
    text and never executes it."""

    name: str
    checkpoint: Checkpoint

    def check(self, text: str) -> Verdict: ...


class BaseChecker:
    """A base for checkers: subclasses set ``name`` and ``checkpoint`` and implement
    ``_check(text) -> Verdict``. :meth:`check` fills in ``seconds`` and turns any exception
    (a bug, or a library that chokes on odd input) into ``unknown`` with the exception named,
    so one bad piece of text can never crash a decoding loop."""

    name: str = "checker"
    checkpoint: Checkpoint = "line"

    def check(self, text: str) -> Verdict:
        start = time.perf_counter()
        if not isinstance(text, str):
            verdict = Verdict("fail", f"expected text, got {type(text).__name__}")
        else:
            try:
                verdict = self._check(text)
            except Exception as error:  # the contract: a verdict, never a crash
                verdict = Verdict("unknown", f"{self.name} failed: {_describe(error)}")
        return dataclasses.replace(verdict, seconds=time.perf_counter() - start)

    def _check(self, text: str) -> Verdict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, checkpoint={self.checkpoint!r})"


def _describe(error: BaseException) -> str:
    message = str(error)
    if len(message) > 200:
        message = message[:200] + "..."
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
