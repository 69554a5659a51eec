"""Running a batch job over Ray actors: one model per actor, prompts sharded in chunks.

The driver (this process) cuts the jobs into chunks and keeps them on a queue. Each actor
(:class:`BatchWorker`, one CPU) builds its decoder once, then decodes the chunks the driver
hands it, up to two at a time so that it never waits between chunks; it returns each chunk's
outcomes, which the driver yields as they arrive (and a batch job writes at once). When an
actor dies (its process killed, its node lost), the chunks it still held go back on the
queue and a replacement actor starts, up to ``max_restarts`` times; after that the run stops
with a :class:`~diagrammar.jobs.errors.JobError` (the results so far are kept, and a re-run
resumes). A worker's results equal the in-process run's: each prompt decodes as it would
alone (greedy decoding gives identical tokens; seeded sampling too, unless the batch policy
cuts a sampling step's trees differently).

Ray is optional (``pip install 'diagrammar[ray]'``) and imported only when a run starts.
Where it runs:

* ``address=None`` or ``"auto"``: a Ray instance this process already joined, else the cluster
  named by ``$RAY_ADDRESS`` or the latest one started on this machine (``ray start``), else a
  new local instance (stopped again when the run ends);
* any other text: the address of a running cluster (``"HOST:6379"``, ``"ray://HOST:10001"``).

On a cluster, every node needs diagrammar installed and the model reachable under the name
the factory gives (a ``default:SIZE`` model ships with the package).

>>> RayRunner(lambda: None, workers=0)
Traceback (most recent call last):
...
ValueError: workers must be at least 1, got 0
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagrammar.jobs.decode import DecodeOptions, Outcome, decode_jobs
from diagrammar.jobs.errors import JobError
from diagrammar.jobs.inputs import Job

#: Chunks an actor holds at once: one decoding, one waiting, so it never idles between them.
CHUNKS_PER_ACTOR = 2


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        JobError: Ray is not installed, saying how to install it.
    """
    try:
        import ray
    except ImportError:
        raise JobError("running on Ray needs the ray package: pip install 'diagrammar[ray]'"
                       ) from None
    return ray


class BatchWorker:
    """What each Ray actor runs: one decoder, built once, decoding the chunks it is given.

    A decoder that cannot be built is not an actor failure to retry: the error is kept and
    :meth:`ready` reports it, so the driver stops with that message.

    >>> worker = BatchWorker(lambda: None, DecodeOptions())
    >>> worker.ready()["error"] is None
    True
    """

    def __init__(self, make_decoder: Callable[[], Any], options: DecodeOptions) -> None:
        self.options = options
        self.decoder: Any = None
        self.error: str | None = None
        try:
            self.decoder = make_decoder()
        except Exception as error:  # reported by ready(), see the class docstring
            self.error = str(error) or type(error).__name__

    def ready(self) -> dict[str, Any]:
        """``{"pid", "host", "error"}``: where the actor runs, and why it cannot decode."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "error": self.error}

    def run(self, jobs: Sequence[Job]) -> list[Outcome]:
        """The outcomes of one chunk of jobs (see :func:`~diagrammar.jobs.decode.decode_jobs`)."""
        return list(decode_jobs(self.decoder, jobs, self.options))


@dataclass(eq=False)
class _Actor:
    handle: Any
    number: int
    ready: bool = False
    pid: int | None = None
    host: str | None = None
    chunks: list[list[Job]] = field(default_factory=list)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


class RayRunner:
    """Decodes jobs over Ray actors (see the module docstring).

    Args:
        make_decoder: builds one actor's decoder; it travels to the actors, so it must be
            picklable (e.g. a :class:`~diagrammar.jobs.factory.DecoderFactory`).
        options: budget, generation config and batch size, the same on every actor (the
            defaults when ``None``).
        address: where Ray runs (``None`` or ``"auto"``: see the module docstring).
        workers: actors to start (one CPU each); by default the cluster's CPUs. No more are
            started than there are chunks.
        chunk_size: jobs per chunk; by default ``2 * max_batch``, fewer when that would leave
            an actor without work.
        max_restarts: replacement actors started over the run before giving up; by default
            as many as ``workers``.
        report: prints a line about the run (an actor lost); stderr by default.

    Attributes:
        actors: the live actors (their handles, pids and held chunks), for monitoring.
        restarts: actors replaced so far.
        requeued: chunks put back on the queue after their actor died.
    """

    def __init__(self, make_decoder: Callable[[], Any], options: DecodeOptions | None = None,
                 *, address: str | None = None, workers: int | None = None,
                 chunk_size: int | None = None, max_restarts: int | None = None,
                 report: Callable[[str], None] | None = None) -> None:
        for name, value in (("workers", workers), ("chunk_size", chunk_size)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if max_restarts is not None and max_restarts < 0:
            raise ValueError(f"max_restarts must be at least 0, got {max_restarts}")
        self.make_decoder = make_decoder
        self.options = options or DecodeOptions()
        self.address = address
        self.workers = workers
        self.chunk_size = chunk_size
        self.max_restarts = max_restarts
        self.report = report or _stderr
        self.actors: list[_Actor] = []
        self.restarts = 0
        self.requeued = 0
        self._started = 0

    # -- connecting ----------------------------------------------------------------------------
    def _connect(self, ray: Any) -> bool:
        """Joins Ray; whether this run started it (and must shut it down)."""
        if ray.is_initialized():
            return False
        try:
            if self.address in (None, "auto"):
                ray.init(logging_level=logging.ERROR)
            else:
                ray.init(address=self.address, logging_level=logging.ERROR)
        except (ConnectionError, ValueError, RuntimeError) as error:
            where = "a local Ray instance" if self.address in (None, "auto") else \
                f"Ray at {self.address}"
            raise JobError(f"cannot connect to {where}: {error}") from None
        return True

    # -- the run -------------------------------------------------------------------------------
    def run(self, jobs: Sequence[Job]) -> Iterator[Outcome]:
        """Each job's result record (or the :class:`~diagrammar.jobs.inputs.LineError` that
        skipped it), as its chunk comes back.

        Raises:
            JobError: Ray is missing or unreachable, an actor cannot build its decoder, a
                chunk fails with an error, or actors died more than ``max_restarts`` times.
        """
        if not jobs:
            return
        ray = import_ray()
        started = self._connect(ray)
        try:
            yield from self._run(ray, list(jobs))
        finally:
            for actor in self.actors:
                ray.kill(actor.handle)
            self.actors = []
            if started:
                ray.shutdown()

    def _sizes(self, ray: Any, count: int) -> tuple[int, int]:
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = self.chunk_size or max(1, min(2 * self.options.max_batch,
                                             math.ceil(count / (CHUNKS_PER_ACTOR * workers))))
        return min(workers, math.ceil(count / size)), size

    def _start(self, ray: Any, pending: dict[Any, tuple[_Actor, list[Job] | None]]) -> None:
        remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(BatchWorker)
        self._started += 1
        actor = _Actor(remote.remote(self.make_decoder, self.options), self._started)
        self.actors.append(actor)
        pending[actor.handle.ready.remote()] = (actor, None)

    def _run(self, ray: Any, jobs: list[Job]) -> Iterator[Outcome]:
        workers, size = self._sizes(ray, len(jobs))
        limit = workers if self.max_restarts is None else self.max_restarts
        queue = deque(jobs[start:start + size] for start in range(0, len(jobs), size))
        pending: dict[Any, tuple[_Actor, list[Job] | None]] = {}
        for _ in range(workers):
            self._start(ray, pending)
        while True:
            for actor in self.actors:
                while actor.ready and queue and len(actor.chunks) < CHUNKS_PER_ACTOR:
                    chunk = queue.popleft()
                    actor.chunks.append(chunk)
                    pending[actor.handle.run.remote(chunk)] = (actor, chunk)
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            actor, chunk = pending.pop(done[0])
            try:
                value = ray.get(done[0])
            except ray.exceptions.RayActorError as error:
                self._lost(ray, actor, pending, queue, error, limit)
                continue
            except ray.exceptions.RayTaskError as error:
                cause = getattr(error, "cause", None) or error
                raise JobError(f"a Ray worker failed: {cause}") from None
            if chunk is None:
                if value["error"] is not None:
                    raise JobError(f"a Ray worker could not build its decoder: {value['error']}")
                actor.ready, actor.pid, actor.host = True, value["pid"], value["host"]
                continue
            actor.chunks.remove(chunk)
            yield from value

    def _lost(self, ray: Any, actor: _Actor, pending: dict[Any, tuple[_Actor, Any]],
              queue: deque[list[Job]], error: Exception, limit: int) -> None:
        """An actor died: its chunks go back on the queue, and a replacement starts."""
        for ref in [ref for ref, (owner, _) in pending.items() if owner is actor]:
            del pending[ref]
        queue.extendleft(reversed(actor.chunks))
        self.requeued += len(actor.chunks)
        self.actors.remove(actor)
        ray.kill(actor.handle)
        where = f" (pid {actor.pid} on {actor.host})" if actor.pid is not None else ""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if self.restarts >= limit:
            raise JobError(f"a Ray worker{where} died with no restart left ({self.restarts} "
                           f"of max_restarts={limit} used): {first}; the results so far are "
                           "kept, and a re-run resumes")
        self.restarts += 1
        self.report(f"ray: worker {actor.number}{where} died; {len(actor.chunks)} chunk(s) "
                    f"re-queued, starting a replacement ({self.restarts} of {limit} restarts)")
        if queue:
            self._start(ray, pending)


__all__ = ["BatchWorker", "CHUNKS_PER_ACTOR", "RayRunner", "import_ray"]
