"""Bounds on what a checker will read and how long it may think: :class:`Limits` on the size
and nesting of the text, a :class:`Deadline`, and a :class:`Worker` process that runs a call
with a wall-clock limit.

Model text is untrusted: before anything parses it, the checkers measure it, and each
measurement that is too big becomes a ``fail`` with a reason that names the limit.

>>> limits = Limits(max_chars=20, max_depth=3)
>>> limits.check_text("(((((x)))))")
'brackets nest 5 deep; the limit is 3'
>>> limits.check_text("x" * 30)
'the text has 30 characters; the limit is 20'
>>> limits.check_text("(x + 1) * 2") is None
True

Solvers are bounded in the way each one allows: z3 by its own ``timeout`` parameter, SQLite by
a progress handler that reads a :class:`Deadline`, and sympy (whose simplification can run for
ever, and whose big-number arithmetic cannot be interrupted) by running in a :class:`Worker`: a
reusable child process that is killed and replaced when a call runs past its limit.

>>> import math
>>> worker = Worker(preload=())
>>> worker.call(math.factorial, 10, timeout=30.0)
3628800
>>> import time
>>> worker.call(time.sleep, 5, timeout=0.2)
Traceback (most recent call last):
...
diagrammar.symbolic.limits.TimeLimitExceeded: the call ran past its 0.2 s limit
>>> worker.close()
"""

from __future__ import annotations

import ast
import atexit
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

GIB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """Size limits on model text, each checked before the text is parsed or solved.

    ``max_chars``: length of the text; ``max_depth``: nesting of brackets and of the syntax
    tree; ``max_nodes``: nodes of the syntax tree; ``max_digits``: the size of any number the
    text writes or implies (``9**9**9`` implies hundreds of millions of digits)."""

    max_chars: int = 10_000
    max_depth: int = 100
    max_nodes: int = 5_000
    max_digits: int = 2_000

    def check_text(self, text: str, quotes: str = "") -> str | None:
        """The reason ``text`` is too big, or None. Brackets inside the ``quotes`` characters
        (e.g. ``"'\\""`` for SQL) are not counted."""
        if len(text) > self.max_chars:
            return f"the text has {len(text)} characters; the limit is {self.max_chars}"
        depth = nesting_depth(text, quotes)
        if depth > self.max_depth:
            return f"brackets nest {depth} deep; the limit is {self.max_depth}"
        return None

    def check_tree(self, tree: ast.AST) -> str | None:
        """The reason a Python syntax tree is too deep or too big, or None (walked without
        recursion, so a deep tree cannot overflow the stack here)."""
        depth, nodes = tree_size(tree, stop_depth=self.max_depth + 1, stop_nodes=self.max_nodes + 1)
        if depth > self.max_depth:
            return f"the expression nests more than {self.max_depth} deep"
        if nodes > self.max_nodes:
            return f"the syntax tree has more than {self.max_nodes} nodes"
        return None


def nesting_depth(text: str, quotes: str = "") -> int:
    """The deepest nesting of ``()``, ``[]`` and ``{}`` in ``text`` (unbalanced closers are
    ignored; brackets inside ``quotes`` are skipped).

    >>> nesting_depth("f(a[1], (b))")
    2
    >>> nesting_depth("'((('", quotes="'")
    0
    """
    depth = deepest = 0
    quote = ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in quotes:
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}" and depth:
            depth -= 1
    return deepest


def tree_size(tree: ast.AST, stop_depth: int = 1 << 30,
              stop_nodes: int = 1 << 30) -> tuple[int, int]:
    """(depth, node count) of a Python syntax tree, without recursion; the walk stops early
    once either passes its ``stop_`` value."""
    stack = [(tree, 1)]
    deepest = count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if deepest >= stop_depth or count >= stop_nodes:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest, count


DEFAULT_LIMITS = Limits()


class Deadline:
    """A point in time ``seconds`` from now (monotonic clock).

    >>> Deadline(60).expired()
    False
    >>> Deadline(0).expired()
    True
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() >= self.end

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


@contextmanager
def watchdog(seconds: float, interrupt: Callable[[], Any]) -> Iterator[None]:
    """Call ``interrupt()`` from a timer thread if the block runs past ``seconds``: a second
    guard for solvers whose own timeout is checked only now and then (z3's
    ``Context.interrupt``; SQLite's ``Connection.interrupt``).

    >>> import time
    >>> fired = []
    >>> with watchdog(0.01, lambda: fired.append(True)):
    ...     time.sleep(0.1)
    >>> fired
    [True]
    """
    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class TimeLimitExceeded(Exception):
    """A bounded call ran past its limit (and its worker was replaced)."""

    def __init__(self, seconds: float):
        super().__init__(f"the call ran past its {seconds:g} s limit")
        self.seconds = seconds


class WorkerError(Exception):
    """A bounded call raised in the worker (the message names the exception), or the worker
    died (out of memory, killed)."""


# The child: loads only diagrammar's symbolic layer (the layer rule says it imports nothing
# else of diagrammar), so it starts without the package's heavier imports; caps its own
# memory; then serves (function, args) calls from a pipe, one at a time.
_CHILD = r"""
import os, pickle, sys, types
root, read_fd, write_fd, memory = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
try:
    import resource
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
except (ImportError, ValueError, OSError):
    pass
if "diagrammar" not in sys.modules:
    parent = None
    for name in ("diagrammar", "diagrammar.symbolic"):
        package = types.ModuleType(name)
        package.__path__ = [os.path.join(root, *name.split("."))]
        sys.modules[name] = package
        if parent is not None:
            parent.symbolic = package
        parent = package
from multiprocessing.connection import Connection
requests = Connection(read_fd, writable=False)
replies = Connection(write_fd, readable=False)
import importlib
for name in sys.argv[5:]:
    importlib.import_module(name)
replies.send(("ready", os.getpid()))
while True:
    try:
        message = requests.recv_bytes()
    except (EOFError, OSError):
        break
    try:
        function, args = pickle.loads(message)
        reply = ("ok", function(*args))
    except BaseException as error:
        text = str(error)
        reply = ("error", type(error).__name__ + (": " + text[:500] if text else ""))
    try:
        replies.send(reply)
    except Exception as error:
        replies.send(("error", "unpicklable result: " + type(error).__name__))
"""

_ROOT = str(Path(__file__).resolve().parents[2])


class Worker:
    """A reusable child process that runs picklable calls with a wall-clock limit.

    ``call(fn, *args, timeout=...)`` sends the call to the child and waits at most ``timeout``
    seconds for the answer; past that the child is killed (work in C, such as a huge integer
    power, cannot be interrupted any other way), a fresh one is started at once in the
    background, and :class:`TimeLimitExceeded` is raised. An exception in the call comes back
    as :class:`WorkerError`. The child imports ``preload`` on start, so the first call does not
    pay for them, and caps its address space at ``memory_bytes`` (0: no cap).

    A call costs a pipe round trip (tens of microseconds) plus pickling; a replacement child
    costs its start (a fraction of a second with sympy) and is started ahead of the next call.
    Calls from several threads take turns; a forked copy of the parent starts its own child.
    ``fn`` must be importable by name in the child: a function of the standard library or of
    diagrammar's symbolic layer."""

    def __init__(self, preload: tuple[str, ...] = ("sympy",), memory_bytes: int = 2 * GIB,
                 start_timeout: float = 60.0):
        self.preload = tuple(preload)
        self.memory_bytes = memory_bytes
        self.start_timeout = start_timeout
        self.starts = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._replies: Connection | None = None
        self._ready = False
        self._owner = os.getpid()

    def start(self) -> None:
        """Start the child now (in the background) if none is running."""
        with self._lock:
            self._adopt()
            if self._process is None:
                self._spawn()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """``fn(*args)`` in the child, within ``timeout`` seconds (not counting the child's
        start)."""
        payload = pickle.dumps((fn, args))
        with self._lock:
            self._adopt()
            if self._process is None:
                self._spawn()
            self._wait_ready()
            try:
                self._requests.send_bytes(payload)
            except OSError as error:
                self._replace()
                raise WorkerError(f"the worker is gone: {error}") from None
            if not self._replies.poll(timeout):
                self._replace()
                raise TimeLimitExceeded(timeout)
            try:
                kind, value = self._replies.recv()
            except (EOFError, OSError):
                code = self._process.poll()
                self._replace()
                raise WorkerError(f"the worker died (exit code {code}); out of memory?") from None
        if kind == "error":
            raise WorkerError(value)
        return value

    def close(self) -> None:
        """Stop the child (a later call starts a new one)."""
        with self._lock:
            if os.getpid() == self._owner:
                self._kill()

    def _spawn(self) -> None:
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        quiet = not os.environ.get("DIAGRAMMAR_WORKER_STDERR")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, _ROOT, str(request_read), str(reply_write),
                 str(self.memory_bytes), *self.preload],
                pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if quiet else None,
                close_fds=True)
        finally:
            os.close(request_read)
            os.close(reply_write)
        self._requests = Connection(request_write, readable=False)
        self._replies = Connection(reply_read, writable=False)
        self._ready = False
        self.starts += 1

    def _wait_ready(self) -> None:
        if self._ready:
            return
        try:
            if not self._replies.poll(self.start_timeout):
                raise WorkerError(f"the worker did not start in {self.start_timeout:g} s")
            kind, _ = self._replies.recv()
        except (EOFError, OSError):
            code = self._process.wait()
            self._kill()
            raise WorkerError(f"the worker failed to start (exit code {code})") from None
        except WorkerError:
            self._kill()
            raise
        self._ready = kind == "ready"

    def _replace(self) -> None:
        self._kill()
        self._spawn()

    def _kill(self) -> None:
        for connection in (self._requests, self._replies):
            if connection is not None:
                connection.close()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
        self._process = self._requests = self._replies = None
        self._ready = False

    def _adopt(self) -> None:
        # After a fork, the child process's copy must not use (or kill) the parent's worker.
        if os.getpid() != self._owner:
            self._owner = os.getpid()
            self._process = self._requests = self._replies = None
            self._ready = False
            self._lock = threading.Lock()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


_shared: dict[tuple[str, ...], Worker] = {}
_shared_lock = threading.Lock()


def shared_worker(preload: tuple[str, ...] = ("sympy",)) -> Worker:
    """The process's shared worker for ``preload`` (started on first use, stopped at exit)."""
    with _shared_lock:
        worker = _shared.get(preload)
        if worker is None:
            worker = _shared[preload] = Worker(preload)
        return worker


@atexit.register
def _close_shared() -> None:
    for worker in _shared.values():
        worker.close()
