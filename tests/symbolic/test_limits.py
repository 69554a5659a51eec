"""Limits on text, and the worker process that bounds calls: results come back, a call past
its limit is killed and the worker replaced, exceptions and memory exhaustion come back as
errors, and concurrent callers take turns."""

from __future__ import annotations

import ast
import math
import threading
import time

import pytest

from diagrammar.symbolic.limits import (
    Deadline,
    Limits,
    TimeLimitExceeded,
    Worker,
    WorkerError,
    nesting_depth,
    tree_size,
)


@pytest.fixture(scope="module")
def worker():
    worker = Worker(preload=())
    yield worker
    worker.close()


def test_text_limits():
    limits = Limits(max_chars=10, max_depth=2)
    assert limits.check_text("x" * 10) is None
    assert "11 characters" in limits.check_text("x" * 11)
    assert "3 deep" in limits.check_text("((( )))")
    assert nesting_depth("'(((' (x)", quotes="'") == 1
    assert nesting_depth(")))(") == 1


def test_tree_size_is_iterative():
    tree = ast.parse("-" * 500 + "1", mode="eval")
    depth, nodes = tree_size(tree)
    assert depth > 500 and nodes > 1000
    assert tree_size(tree, stop_depth=10)[0] == 10
    assert "nests more than 10" in Limits(max_depth=10).check_tree(tree)


def test_deadline():
    deadline = Deadline(0.05)
    assert not deadline.expired() and 0 < deadline.remaining() <= 0.05
    time.sleep(0.06)
    assert deadline.expired() and deadline.remaining() == 0


def test_worker_calls_and_overhead(worker):
    assert worker.call(math.factorial, 20, timeout=30) == math.factorial(20)
    start = time.perf_counter()
    for _ in range(200):
        worker.call(math.sqrt, 2.0, timeout=5)
    assert (time.perf_counter() - start) / 200 < 0.01  # a pipe round trip, not a process start


def test_worker_timeout_replaces_the_child(worker):
    starts = worker.starts
    begin = time.perf_counter()
    with pytest.raises(TimeLimitExceeded, match="0.2 s"):
        worker.call(pow, 7, 10**9, timeout=0.2)  # big-integer work that cannot be interrupted
    assert time.perf_counter() - begin < 2
    assert worker.starts == starts + 1
    assert worker.call(abs, -3, timeout=30) == 3


def test_worker_errors_come_back(worker):
    with pytest.raises(WorkerError, match="ZeroDivisionError"):
        worker.call(divmod, 1, 0, timeout=30)
    with pytest.raises(WorkerError, match="MemoryError"):
        worker.call(bytearray, 4 << 30, timeout=30)  # over the 2 GiB cap of the child
    assert worker.call(len, "abc", timeout=30) == 3


def test_worker_threads_take_turns(worker):
    results = {}

    def run(index):
        results[index] = worker.call(math.factorial, index, timeout=30)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {index: math.factorial(index) for index in range(8)}


def test_worker_close_and_restart():
    worker = Worker(preload=())
    assert worker.call(max, 1, 2, timeout=30) == 2
    worker.close()
    assert worker.call(min, 1, 2, timeout=30) == 1
    assert worker.starts == 2
    worker.close()
