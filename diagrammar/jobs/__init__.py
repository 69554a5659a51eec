"""Batch jobs: many prompts from a JSONL file, decoded in this process or over Ray actors,
results appended to a JSONL file as they finish so that an interrupted job resumes.

* :mod:`~diagrammar.jobs.inputs`: the input lines, checked one by one (:class:`Job`,
  :class:`LineError`);
* :mod:`~diagrammar.jobs.outputs`: the resumable output (:class:`ResultsFile`);
* :mod:`~diagrammar.jobs.decode`: decoding jobs with one decoder (what every runner does);
* :mod:`~diagrammar.jobs.factory`: a picklable recipe for the decoder (:class:`DecoderFactory`);
* :mod:`~diagrammar.jobs.local` and :mod:`~diagrammar.jobs.ray_runner`: the runners;
* :mod:`~diagrammar.jobs.batch`: the job itself (:func:`run_batch`), behind ``diagrammar batch``.

>>> from diagrammar.jobs import parse_job
>>> parse_job('{"id": 7, "prompt": "import os"}', line=1).id
7
"""

from __future__ import annotations

from diagrammar.jobs.batch import BatchSummary, Runner, run_batch, stderr_report
from diagrammar.jobs.decode import DecodeOptions, Outcome, decode_jobs, result_record
from diagrammar.jobs.errors import JobError
from diagrammar.jobs.factory import DecoderFactory
from diagrammar.jobs.inputs import Job, LineError, parse_job, parse_jobs, read_jobs
from diagrammar.jobs.local import LocalRunner
from diagrammar.jobs.outputs import ResultsFile, read_results
from diagrammar.jobs.ray_runner import RayRunner

__all__ = ["BatchSummary", "DecodeOptions", "DecoderFactory", "Job", "JobError", "LineError",
           "LocalRunner", "Outcome", "RayRunner", "ResultsFile", "Runner", "decode_jobs",
           "parse_job", "parse_jobs", "read_jobs", "read_results", "result_record", "run_batch",
           "stderr_report"]
