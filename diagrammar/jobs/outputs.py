"""The output of a batch job: a JSONL file that results are appended to as they finish.

One line per finished prompt, ``{"id": ..., "text": ..., "tokens": [...], "stats": {...}}``,
written whole and flushed at once, so that a job killed at any point loses only the prompts
still running. A re-run opens the same file with :class:`ResultsFile`: the ids already there
are skipped, and an unfinished last line (a run killed while writing it) is cut off.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "results.jsonl"
>>> with ResultsFile(path) as results:
...     results.write({"id": "a", "text": "x", "tokens": [1], "stats": {}})
True
>>> _ = open(path, "a").write('{"id": "b", "te')          # a run killed mid-line
>>> results = ResultsFile(path)
>>> sorted(results.done), results.notes[0].endswith("cut off (an interrupted run?)")
(['a'], True)
>>> list(read_results(path))
['a']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from diagrammar.jobs.inputs import id_key


def _records(data: bytes) -> Iterator[tuple[int, int, bytes, bool]]:
    """``(line number, offset, line, complete)`` of each non-blank line of ``data``."""
    offset = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        complete = offset + len(line) < len(data)
        if line.strip():
            yield number, offset, line, complete
        offset += len(line) + 1


def _result_id(line: bytes) -> Any:
    """The id of a result line, or ``None`` when the line is not a result record."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    found = record.get("id")
    return found if isinstance(found, str | int) and not isinstance(found, bool) else None


class ResultsFile:
    """An append-only JSONL file of results that a re-run resumes.

    Opening it reads what an earlier run wrote: the ids done (:attr:`done`), and repairs an
    unfinished last line (cut off) or a last record without its newline (completed). Lines
    that are not result records are left alone and noted; their prompts run again.

    Args:
        path: the file (created on the first write if missing; its folder must exist).

    Attributes:
        done: the ids (as text, see :func:`~diagrammar.jobs.inputs.id_key`) with a result.
        notes: what was repaired or ignored, one line each, for the user.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.done: set[str] = set()
        self.notes: list[str] = []
        self._file: Any = None
        self._scan()

    def _scan(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        cut: int | None = None
        for number, offset, line, complete in _records(data):
            found = _result_id(line)
            if not complete and found is None:
                cut = offset
                self.notes.append(f"{self.path} line {number}: an unfinished record was cut "
                                  "off (an interrupted run?)")
            elif found is None:
                self.notes.append(f"{self.path} line {number}: not a result record (no "
                                  "\"id\"), ignored")
            else:
                self.done.add(id_key(found))
        if cut is not None:
            with open(self.path, "r+b") as file:
                file.truncate(cut)
        elif data and not data.endswith(b"\n"):
            with open(self.path, "ab") as file:
                file.write(b"\n")

    def write(self, record: dict[str, Any]) -> bool:
        """Appends one result (a JSON object with an ``"id"``) and flushes it; returns
        ``False``, writing nothing, when a result with that id is already there."""
        key = id_key(record["id"])
        if key in self.done:
            return False
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        self.done.add(key)
        return True

    def close(self) -> None:
        """Closes the file (a later :meth:`write` opens it again)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def read_results(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The results in a JSONL output file by id (as text), in file order; lines that are not
    complete result records are skipped (the first result of a repeated id is kept)."""
    found: dict[str, dict[str, Any]] = {}
    for _, _, line, _ in _records(Path(path).read_bytes()):
        if _result_id(line) is not None:
            record = json.loads(line)
            found.setdefault(id_key(record["id"]), record)
    return found


__all__ = ["ResultsFile", "read_results"]
