"""A batch job: prompts from a JSONL file, results appended to another as they finish.

:func:`run_batch` reads the input (:mod:`~diagrammar.jobs.inputs`), opens the output
(:mod:`~diagrammar.jobs.outputs`: the ids already there are skipped, an interrupted last line
repaired), hands the remaining jobs to a runner (in this process,
:class:`~diagrammar.jobs.local.LocalRunner`, or over Ray,
:class:`~diagrammar.jobs.ray_runner.RayRunner`) and writes each result the moment it comes
back, under a progress bar on stderr. Bad lines, in the input or refused by the model, are
reported as ``"INPUT line N: what"`` and skipped; they never stop the others.

>>> import pathlib, tempfile
>>> from diagrammar.jobs.inputs import LineError
>>> class Echo:                       # a runner that "decodes" a prompt into its own ids
...     def run(self, jobs):
...         for job in jobs:
...             yield {"id": job.id, "text": None, "tokens": list(job.prompt), "stats": {}}
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "in.jsonl").write_text('{"ids": [1, 2]}\\n{"ids": "x"}\\n{"ids": [3]}\\n')
>>> reports = []
>>> summary = run_batch(folder / "in.jsonl", folder / "out.jsonl", Echo(), progress=False,
...                     report=reports.append)
>>> print(reports[0].replace(str(folder), "TMP"))
TMP/in.jsonl line 2: "ids" must be a list of integer token ids, got "x"
>>> summary.done, summary.already_done, [error.line for error in summary.skipped]
(2, 0, [2])
>>> run_batch(folder / "in.jsonl", folder / "out.jsonl", Echo(), progress=False,
...           report=reports.append).already_done          # a re-run: nothing left to do
2
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from diagrammar.jobs.decode import Outcome
from diagrammar.jobs.errors import JobError
from diagrammar.jobs.inputs import Job, LineError, read_jobs
from diagrammar.jobs.outputs import ResultsFile


class Runner(Protocol):
    """Decodes jobs somewhere, yielding each one's outcome (a result record with its
    ``"id"``, or the :class:`~diagrammar.jobs.inputs.LineError` that skipped it)."""

    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        ...


@dataclass
class BatchSummary:
    """What a batch job did.

    Attributes:
        source: the input file, as named in reports.
        output: the output file.
        prompts: valid prompt lines in the input.
        already_done: of them, those whose result was already in the output.
        done: results written by this run.
        skipped: the lines skipped (bad records, repeated ids, prompts the model refused).
    """

    source: str
    output: Path
    prompts: int = 0
    already_done: int = 0
    done: int = 0
    skipped: list[LineError] = field(default_factory=list)

    def describe(self) -> str:
        """One line for the user.

        >>> print(BatchSummary("in.jsonl", Path("out.jsonl"), 5, 1, 3, [LineError(4, "x")])
        ...       .describe())
        out.jsonl: 3 results written, 1 already there; 1 line of in.jsonl skipped (line 4)
        """
        text = f"{self.output}: {self.done} results written, {self.already_done} already there"
        if self.skipped:
            lines = sorted(error.line for error in self.skipped)
            shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
            plural = "s" if len(lines) > 1 else ""
            text += (f"; {len(lines)} line{plural} of {self.source} skipped (line{plural} "
                     f"{shown})")
        return text


def stderr_report(message: str) -> None:
    """Prints a report line on stderr without breaking a progress bar there."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def _check_paths(source: Path, output: Path) -> None:
    if not source.is_file():
        raise JobError(f"cannot read {source}: " + (
            "it is a folder" if source.is_dir() else "no such file"))
    if output.is_dir():
        raise JobError(f"cannot write results to {output}: it is a folder")
    if not output.parent.is_dir():
        raise JobError(f"cannot write {output}: folder {output.parent} does not exist")
    if output.exists() and os.path.samefile(source, output):
        raise JobError(f"the output {output} is the input file: give another --output")


def run_batch(source: str | os.PathLike[str], output: str | os.PathLike[str], runner: Runner,
              *, progress: bool = True,
              report: Callable[[str], None] = stderr_report) -> BatchSummary:
    """Runs the prompts of ``source`` not yet in ``output`` and appends their results.

    Args:
        source: the JSONL input (see :mod:`diagrammar.jobs.inputs`).
        output: the JSONL output (see :mod:`diagrammar.jobs.outputs`); created if missing.
        runner: decodes the jobs (a :class:`Runner`).
        progress: show a progress bar on stderr.
        report: prints one line: a skipped input line, a repaired output line.

    Raises:
        JobError: the input cannot be read or the output cannot be written (and whatever
            the runner raises; the results written until then stay in the output).
    """
    source_path, output_path = Path(source), Path(output)
    _check_paths(source_path, output_path)
    name = os.fspath(source)
    try:
        jobs, skipped = read_jobs(source_path)
    except OSError as error:
        raise JobError(f"cannot read {source_path}: {error.strerror}") from None
    summary = BatchSummary(name, output_path, prompts=len(jobs), skipped=list(skipped))
    for error in skipped:
        report(error.describe(name))
    try:
        results = ResultsFile(output_path)
    except OSError as error:
        raise JobError(f"cannot read or repair {output_path}: {error.strerror}") from None
    for note in results.notes:
        report(note)
    pending = [job for job in jobs if job.key not in results.done]
    summary.already_done = len(jobs) - len(pending)
    from tqdm.auto import tqdm

    with results, tqdm(total=len(pending), desc="batch", unit="prompt", file=sys.stderr,
                       disable=not progress or not pending, dynamic_ncols=True) as bar:
        for outcome in runner.run(pending):
            if isinstance(outcome, LineError):
                summary.skipped.append(outcome)
                report(outcome.describe(name))
            else:
                try:
                    written = results.write(outcome)
                except OSError as error:
                    raise JobError(f"cannot write {output_path}: {error.strerror}") from None
                summary.done += written
            bar.update(1)
    return summary


__all__ = ["BatchSummary", "Runner", "run_batch", "stderr_report"]
