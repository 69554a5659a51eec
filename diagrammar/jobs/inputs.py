"""The input of a batch job: a JSONL file, one prompt per line.

Each line is a JSON object with

* ``"prompt"``: the prompt text, **or** ``"ids"``: its token ids (exactly one of the two);
* ``"id"`` (optional): a string or an integer naming the prompt in the results; the line's
  number (counted from 1) when absent. Ids are compared as text, so ``7`` and ``"7"`` are the
  same id;
* ``"max_new_tokens"`` (optional): this prompt's budget, an integer >= 0; the job's default
  when absent.

Other keys are ignored (a line may carry its own metadata). Blank lines are skipped. A line
that is not such an object, or repeats an id seen on an earlier line, becomes a
:class:`LineError` naming its line number; the other lines are not affected. Whether a
prompt fits the model (known token ids, not too long for its context) is checked later, by
the model (see :mod:`diagrammar.jobs.decode`).

>>> job = parse_job('{"id": "a", "prompt": "def f(x):", "max_new_tokens": 16}', line=1)
>>> job.id, job.prompt, job.max_new_tokens
('a', 'def f(x):', 16)
>>> parse_job('{"ids": [1, 2, 3]}', line=4).id
4
>>> parse_job('{"prompt": 3}', line=5)
Traceback (most recent call last):
...
diagrammar.jobs.inputs.InputLineError: "prompt" must be a string, got 3
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

JobId = str | int


class InputLineError(ValueError):
    """One input line is not a valid prompt record (the message says why)."""


@dataclass(frozen=True)
class Job:
    """One prompt of a batch job.

    Attributes:
        id: the prompt's id in the results (a string or an integer).
        line: the input line it came from, counted from 1.
        prompt: the prompt text, or its token ids as a tuple.
        max_new_tokens: this prompt's budget; ``None`` takes the job's default.
    """

    id: JobId
    line: int
    prompt: str | tuple[int, ...]
    max_new_tokens: int | None = None

    @property
    def key(self) -> str:
        """The id as compared for duplicates and resuming (see :func:`id_key`)."""
        return id_key(self.id)


@dataclass(frozen=True)
class LineError:
    """An input line that was skipped, and why.

    >>> print(LineError(3, "not valid JSON").describe("prompts.jsonl"))
    prompts.jsonl line 3: not valid JSON
    """

    line: int
    message: str

    def describe(self, source: str | os.PathLike[str]) -> str:
        """``"SOURCE line N: MESSAGE"``, the line a report prints."""
        return f"{os.fspath(source)} line {self.line}: {self.message}"


def id_key(job_id: JobId) -> str:
    """An id as compared for duplicates and resuming: its text.

    >>> id_key(7) == id_key("7")
    True
    """
    return str(job_id)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_job(text: str, line: int) -> Job:
    """The :class:`Job` on one input line.

    Args:
        text: the line (without its newline).
        line: its number, counted from 1 (the default id).

    Raises:
        InputLineError: the line is not a JSON object with a valid prompt, id and budget.
    """
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputLineError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise InputLineError(f"expected a JSON object with \"prompt\" or \"ids\", got "
                             f"{_describe(record)}")
    if ("prompt" in record) == ("ids" in record):
        raise InputLineError("give exactly one of \"prompt\" (text) or \"ids\" (token ids)"
                             if "prompt" in record else
                             "no \"prompt\" (text) or \"ids\" (token ids)")
    prompt: str | tuple[int, ...]
    if "prompt" in record:
        prompt = record["prompt"]
        if not isinstance(prompt, str):
            raise InputLineError(f"\"prompt\" must be a string, got {_describe(prompt)}")
    else:
        ids = record["ids"]
        if not isinstance(ids, list) or not all(_is_int(token) for token in ids):
            raise InputLineError(f"\"ids\" must be a list of integer token ids, got "
                                 f"{_describe(ids)}")
        prompt = tuple(ids)
    job_id = record.get("id", line)
    if not (_is_int(job_id) or isinstance(job_id, str)):
        raise InputLineError(f"\"id\" must be a string or an integer, got {_describe(job_id)}")
    budget = record.get("max_new_tokens")
    if budget is not None and not (_is_int(budget) and budget >= 0):
        raise InputLineError(f"\"max_new_tokens\" must be an integer >= 0, got "
                             f"{_describe(budget)}")
    return Job(job_id, line, prompt, budget)


def parse_jobs(lines: list[bytes] | list[str]) -> tuple[list[Job], list[LineError]]:
    """The jobs of a file's lines, and the lines skipped (bad records, repeated ids).

    >>> jobs, errors = parse_jobs(['{"prompt": "a"}', '', '{"id": 1, "prompt": "b"}', '[]'])
    >>> [job.id for job in jobs]
    [1]
    >>> for error in errors:
    ...     print(error.describe("prompts.jsonl"))
    prompts.jsonl line 3: id 1 was already used on line 1: ids must be unique
    prompts.jsonl line 4: expected a JSON object with "prompt" or "ids", got []
    """
    jobs: list[Job] = []
    errors: list[LineError] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                errors.append(LineError(number, f"not valid UTF-8 (byte 0x{raw[error.start]:02x}"
                                                f" at position {error.start})"))
                continue
        text = raw.strip()
        if not text:
            continue
        try:
            job = parse_job(text, number)
        except InputLineError as error:
            errors.append(LineError(number, str(error)))
            continue
        if job.key in seen:
            errors.append(LineError(number, f"id {_describe(job.id)} was already used on line "
                                            f"{seen[job.key]}: ids must be unique"))
            continue
        seen[job.key] = number
        jobs.append(job)
    return jobs, errors


def read_jobs(path: str | os.PathLike[str]) -> tuple[list[Job], list[LineError]]:
    """The jobs of a JSONL input file, and the lines skipped (see :func:`parse_jobs`).

    Raises:
        OSError: the file cannot be read.
    """
    return parse_jobs(Path(path).read_bytes().splitlines())


__all__ = ["Job", "JobId", "LineError", "InputLineError", "id_key", "parse_job", "parse_jobs",
           "read_jobs"]
