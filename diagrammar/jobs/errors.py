"""The error of a batch job that cannot go on (as opposed to one bad input line, which is
reported and skipped: see :class:`~diagrammar.jobs.inputs.LineError`).

>>> raise JobError("the Ray workers died 3 times")
Traceback (most recent call last):
...
diagrammar.jobs.errors.JobError: the Ray workers died 3 times
"""

from __future__ import annotations


class JobError(RuntimeError):
    """A batch job stopped: the message says why and what to do. The results written so far
    stay in the output file, and a re-run resumes from them."""


__all__ = ["JobError"]
