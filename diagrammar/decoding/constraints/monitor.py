"""Monitors: after ``obj.``, only the members that static analysis says ``obj`` has.

Monitor-guided decoding (Agrawal et al., "Monitor-Guided Decoding of Code LMs with Static
Analysis of Repository Context") pairs a code model with a static analysis of the code around
the cursor: at *trigger points* the analysis says which identifiers are type-consistent there,
and the model's tokens are masked to them. The trigger here is the paper's main one, an
object dereference: where the text so far ends in a member access ``expr.`` followed by a
(possibly empty) partial identifier ``p``, the analysis (jedi, on the code before the dot)
lists ``expr``'s members ``M``, and a token whose text is identifier characters ``i``
followed by other text ``r`` is allowed iff

- ``r`` is empty and ``p + i`` is a prefix of a member (the name goes on), or
- ``r`` is not empty and ``p + i`` is exactly a member (the name ends inside the token);

the end token is allowed only where ``p`` is a member. Everywhere else — outside a member
access, inside a string or a comment, after a float literal like ``1.``, where jedi finds no
member (an unknown type: the monitor cannot help, as in the paper), where the type has a
``__getattr__`` (its members are dynamic), or where ``p`` is already no member's prefix (the
name came from the prompt, or from a token that spans the dot) — every token is allowed, and
that path costs a short walk over the last tokens and no analysis.

A :class:`JediMonitor` plays the part of a compiled grammar for
:class:`~diagrammar.decoding.constraints.step.ConstrainStep`: ``matcher_for_prompt(ids)``
gives a :class:`MonitorMatcher` over the prompt's code (plus an optional extra *context* code
prepended: definitions the model does not see, as the paper's repository context), which
follows the generation token by token and rolls back exactly.

**Safety.** jedi analyses statically: it parses the code with parso and infers types from
source files and typeshed stubs. The model's text is never executed or evaluated.
(For a *compiled* extension module that the code imports, jedi lists its members by importing
the installed module in jedi's own helper subprocess, as an editor does.)

**Time.** Every analysis runs in one worker thread under a deadline (``timeout`` seconds); past
it the monitor is inactive at that position (all tokens allowed; counted in ``timeouts``) and
decoding goes on: a slow analysis never hangs the decoder. Results are cached per code before
the dot, masks per (code, partial name).

>>> monitor = JediMonitor(["import", " os", "\\n", "os", ".", "path", "pa", "th", "join",
...                        "(", "x", "<end>"], vocab_size=12, eos=11)
>>> matcher = monitor.matcher_for_prompt([0, 1, 2, 3, 4])      # import os\\nos.
>>> [monitor.texts[t] for t in range(12) if matcher.allowed()[t]]
['path', 'pa']
>>> matcher.advance([6]), [monitor.texts[t] for t in range(12) if matcher.allowed()[t]]
(True, ['th'])
>>> matcher.advance([10])                                     # os.pax: no such member
False
>>> matcher.advance([7, 4]), [monitor.texts[t] for t in range(12) if matcher.allowed()[t]]
(True, ['os', 'path', 'pa', 'join'])
>>> matcher.rollback(2); int(matcher.allowed().sum())         # back to "os.pa"
1
>>> matcher.rollback(1); matcher.advance([2])                 # "os.\\n": not a member
False
>>> bool(monitor.matcher_for_prompt([0, 1, 2, 3]).allowed().all())   # no dot: inactive
True
"""

from __future__ import annotations

import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diagrammar.decoding.constraints.step import ConstrainStep
from diagrammar.decoding.state import DecodeState

#: Leading and trailing identifier characters of a text (``\\w``: letters, digits, ``_``).
_HEAD = re.compile(r"\w*")
_TAIL = re.compile(r"\w*\Z")

#: Leaves after which a dot is a member access (besides names, strings and numbers).
_CLOSERS = (")", "]", "}")
_CONSTANTS = ("None", "True", "False")

#: How many identifier-only tokens the walk back from the end looks at before it gives up.
_MAX_NAME_TOKENS = 64

_MISSING = object()


class TokenTable:
    """What the monitor needs of each token of a vocabulary, computed once per tokenizer.

    Attributes:
        texts: each token's text (bytes decoded as UTF-8, a partial character as U+FFFD;
            special tokens and ids past the tokenizer: empty).
        code: each token's bytes in the code (special tokens: none).
        whole: identifier-only text -> the ids of the tokens with exactly that text.
        ending: identifier head ``i`` -> ids of the tokens ``i`` + other text (special tokens,
            empty tokens and partial UTF-8 ones have head ``""`` and other text).
        name_only: whether a token's text is identifier characters only (and not empty).
        tails: the identifier characters a token's text ends with.
        befores: the character before a token's tail (``"\\x00"`` for a special or empty
            token; ``""`` where the whole text is the tail).
    """

    def __init__(self, pieces: Sequence[bytes | None], eos: Iterable[int]) -> None:
        self.vocab_size = len(pieces)
        self.eos = frozenset(int(token) for token in eos)
        self.texts: list[str] = []
        self.code: list[bytes] = []
        self.tails: list[str] = []
        self.befores: list[str] = []
        name_only = np.zeros(self.vocab_size, dtype=bool)
        whole: dict[str, list[int]] = {}
        ending: dict[str, list[int]] = {}
        for token, piece in enumerate(pieces):
            if piece is None or piece == b"" or token in self.eos:
                self.texts.append("")
                self.code.append(b"")
                self.tails.append("")
                self.befores.append("\x00")
                if token not in self.eos:
                    ending.setdefault("", []).append(token)
                continue
            text = piece.decode("utf-8", "replace")
            self.texts.append(text)
            self.code.append(piece)
            head = _HEAD.match(text).group()
            tail = _TAIL.search(text).group()
            self.tails.append(tail)
            self.befores.append(text[-len(tail) - 1] if len(tail) < len(text) else "")
            if len(head) == len(text):
                name_only[token] = True
                whole.setdefault(text, []).append(token)
            else:
                ending.setdefault(head, []).append(token)
        self.name_only = name_only
        self.whole = {text: np.array(ids) for text, ids in whole.items()}
        self.ending = {head: np.array(ids) for head, ids in ending.items()}
        self.eos_ids = np.array(sorted(self.eos), dtype=np.int64)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, vocab_size: int, eos: Iterable[int]) -> TokenTable:
        """The table of a Hugging Face tokenizer (each token's bytes as xgrammar reads them),
        or of a sequence of token texts (``str`` or ``bytes``), padded to ``vocab_size``."""
        if isinstance(tokenizer, Sequence) and not isinstance(tokenizer, (str, bytes)):
            pieces: list[bytes | None] = [
                text.encode("utf-8") if isinstance(text, str) else bytes(text)
                for text in tokenizer]
        else:
            import xgrammar

            info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
            pieces = list(info.decoded_vocab)
            special = set(getattr(tokenizer, "all_special_ids", ()))
            special |= {int(token) for token in info.special_token_ids}
            known = len(tokenizer)
            pieces = [None if token in special or token >= known else piece
                      for token, piece in enumerate(pieces)]
        if len(pieces) > vocab_size:
            raise ValueError(f"the tokenizer has {len(pieces)} tokens, more than the model's "
                             f"vocabulary ({vocab_size})")
        pieces += [None] * (vocab_size - len(pieces))
        return cls(pieces, eos)


_TABLES: OrderedDict[tuple[Any, ...], tuple[Any, TokenTable]] = OrderedDict()
_TABLES_LOCK = threading.Lock()


def token_table(tokenizer: Any, vocab_size: int, eos: Iterable[int]) -> TokenTable:
    """:meth:`TokenTable.from_tokenizer`, cached per (tokenizer object, vocabulary size, end
    tokens); the cache keeps the tokenizer alive, so its id stays its own."""
    eos = tuple(sorted(int(token) for token in eos))
    key = (id(tokenizer), vocab_size, eos)
    with _TABLES_LOCK:
        entry = _TABLES.get(key)
        if entry is not None and entry[0] is tokenizer:
            _TABLES.move_to_end(key)
            return entry[1]
    table = TokenTable.from_tokenizer(tokenizer, vocab_size, eos)
    with _TABLES_LOCK:
        _TABLES[key] = (tokenizer, table)
        while len(_TABLES) > 8:
            _TABLES.popitem(last=False)
    return table


class _Worker:
    """The one daemon thread every analysis runs in (jedi's caches are not made for threads;
    a daemon, so that an analysis still running never holds up the interpreter's exit)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[str], Any], str, Future]] = \
            queue.SimpleQueue()
        threading.Thread(target=self._run, name="monitor", daemon=True).start()

    def _run(self) -> None:
        while True:
            work, argument, future = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work(argument))
            except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(error)

    def submit(self, work: Callable[[str], Any], argument: str) -> Future:
        future: Future = Future()
        self._queue.put((work, argument, future))
        return future


_WORKER: _Worker | None = None
_WORKER_LOCK = threading.Lock()


def _worker() -> _Worker:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = _Worker()
        return _WORKER


def dereferenced(code: str) -> bool:
    """Whether ``code`` ends in a dot that accesses a member of the expression before it: not
    in a comment or a string, not a float literal's point, not a relative import's dot.

    >>> [dereferenced(code) for code in ("counts.", "f(x).", "'abc'.", "x = 1.", "# a.",
    ...                                  "s = 'a.", "from .", "a. ")]
    [True, True, True, False, False, False, False, False]
    """
    import parso

    module = parso.parse(code)
    dot = module.get_last_leaf()
    if dot.type == "endmarker":
        if dot.prefix:                       # a comment or spaces after the dot
            return False
        dot = dot.get_previous_leaf()
    if dot is None or dot.type != "operator" or dot.value != ".":
        return False
    before = dot.get_previous_leaf()
    if before is None:
        return False
    if not (before.type in ("name", "string", "number", "fstring_end")
            or (before.type == "operator" and before.value in _CLOSERS)
            or (before.type == "keyword" and before.value in _CONSTANTS)):
        return False
    leaf = before                            # an unterminated string on the dot's line
    while leaf is not None and leaf.end_pos[0] == dot.start_pos[0]:
        if leaf.type == "error_leaf" and leaf.value[-1:] in ("'", '"'):
            return False
        leaf = leaf.get_previous_leaf()
    return True


@dataclass
class MonitorContext:
    """What the analysis sees besides the prompt: ``code`` prepended to it (definitions the
    model does not see) and a jedi ``project`` root (a folder whose modules imports find)."""

    code: str = ""
    project: str | None = None
    _jedi_project: Any = field(default=None, repr=False)

    def jedi_project(self) -> Any:
        if self.project is None:
            return None
        if self._jedi_project is None:
            import jedi

            self._jedi_project = jedi.Project(self.project)
        return self._jedi_project


class JediMonitor:
    """The monitor of member accesses, with jedi as the static analysis (see the module).

    Args:
        tokenizer: a Hugging Face tokenizer, or the token texts (``str`` or ``bytes``).
        vocab_size: the length of the masks (the model's vocabulary).
        eos: the end token id, or several.
        context: extra code prepended to the prompt for the analysis (``str``), or a
            :class:`MonitorContext` (code and a jedi project root).
        timeout: seconds one analysis may take; past it the monitor is inactive there.

    Attributes:
        analyses: analyses run (cache misses), across this monitor's matchers.
        timeouts: analyses that ran past the deadline.
        texts: each token's text (see :class:`TokenTable`).
    """

    def __init__(self, tokenizer: Any, vocab_size: int, eos: int | Iterable[int],
                 context: str | MonitorContext | None = None, timeout: float = 5.0,
                 cache_size: int = 256) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {timeout!r}")
        eos_ids = [eos] if isinstance(eos, int) else list(eos)
        self.table = token_table(tokenizer, vocab_size, eos_ids)
        self.vocab_size = vocab_size
        if context is None or isinstance(context, str):
            context = MonitorContext(code=context or "")
        self.context = context
        self._prefix = (context.code + "\n").encode("utf-8") if context.code else b""
        self.timeout = timeout
        self.cache_size = cache_size
        self.analyses = 0
        self.timeouts = 0
        self._members: OrderedDict[str, frozenset[str] | None] = OrderedDict()
        self._masks: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        everything = np.ones(vocab_size, dtype=bool)
        everything.flags.writeable = False
        self.everything = everything

    @property
    def texts(self) -> list[str]:
        return self.table.texts

    def matcher(self) -> MonitorMatcher:
        """A matcher for a generation with an empty prompt."""
        return MonitorMatcher(self, [])

    def matcher_for_prompt(self, prompt_ids: Sequence[int]) -> MonitorMatcher:
        """A matcher for a generation after ``prompt_ids`` (the code the analysis reads)."""
        return MonitorMatcher(self, prompt_ids)

    # -- the analysis ------------------------------------------------------------------
    def members(self, code: str) -> frozenset[str] | None:
        """The members jedi lists for the member access ``code`` ends in (its last character
        is the dot), or ``None`` where the monitor cannot help (no member access there, no
        member known, dynamic members, or the analysis ran out of time)."""
        found = self._members.get(code, _MISSING)
        if found is not _MISSING:
            self._members.move_to_end(code)
            return found
        self.analyses += 1
        future = _worker().submit(self._analyse, code)
        try:
            found = future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()
            self.timeouts += 1
            found = None
        except Exception:  # noqa: BLE001 - the analysis failed on odd code: no help here
            found = None
        self._members[code] = found
        while len(self._members) > self.cache_size:
            self._members.popitem(last=False)
        return found

    def _analyse(self, code: str) -> frozenset[str] | None:
        import jedi

        if not dereferenced(code):
            return None
        line = code.count("\n") + 1
        column = len(code) - code.rfind("\n") - 1
        script = jedi.Script(code, project=self.context.jedi_project())
        completions = script.complete(line, column)
        names = frozenset(completion.name for completion in completions
                          if completion.type != "keyword")
        if not names or "__getattr__" in names:
            return None
        return names

    def mask(self, code: str, partial: str, members: frozenset[str]) -> np.ndarray:
        """The tokens allowed after ``code`` (ending in the dot) and ``partial`` (read-only,
        cached)."""
        key = (code, partial)
        found = self._masks.get(key)
        if found is not None:
            self._masks.move_to_end(key)
            return found
        table = self.table
        mask = np.zeros(self.vocab_size, dtype=bool)
        for member in members:
            if not member.startswith(partial):
                continue
            rest = member[len(partial):]
            for end in range(1, len(rest) + 1):
                ids = table.whole.get(rest[:end])
                if ids is not None:
                    mask[ids] = True
            ids = table.ending.get(rest)
            if ids is not None:
                mask[ids] = True
        if partial in members:
            mask[table.eos_ids] = True
        mask.flags.writeable = False
        self._masks[key] = mask
        while len(self._masks) > 64:
            self._masks.popitem(last=False)
        return mask


@dataclass(frozen=True)
class _Position:
    """What the monitor says at one position: ``mask`` (``None``: inactive, all allowed)."""

    mask: np.ndarray | None
    accepting: bool


_INACTIVE = _Position(None, True)


class MonitorMatcher:
    """One generation's position under a :class:`JediMonitor` (the
    :class:`~diagrammar.decoding.constraints.protocol.Matcher` contract).

    Attributes:
        active: positions where the monitor restricted the tokens (since creation).
    """

    def __init__(self, monitor: JediMonitor, prompt_ids: Sequence[int]) -> None:
        self.monitor = monitor
        self.table = monitor.table
        prompt = [int(token) for token in prompt_ids]
        if any(not 0 <= token < self.table.vocab_size for token in prompt):
            raise ValueError("the prompt holds token ids outside the vocabulary")
        self._prompt_length = len(prompt)
        self._tokens: list[int] = prompt              # prompt, then the generated tokens
        self._prompt_code = monitor._prefix + b"".join(self.table.code[t] for t in prompt)
        self._positions: list[_Position | None] = [None]   # one per generated token, + 1
        self._ended = False
        self.active = 0

    # -- where we are ------------------------------------------------------------------
    def _position(self) -> _Position:
        known = self._positions[-1]
        if known is None:
            known = self._positions[-1] = self._find()
        return known

    def _find(self) -> _Position:
        table = self.table
        parts: list[str] = []
        before = "\n"                                  # the start of the text
        for count, token in enumerate(reversed(self._tokens)):
            if count >= _MAX_NAME_TOKENS:
                return _INACTIVE
            if table.name_only[token]:
                parts.append(table.texts[token])
                continue
            parts.append(table.tails[token])
            before = table.befores[token]
            break
        if before != ".":
            return _INACTIVE
        partial = "".join(reversed(parts))
        if partial[:1].isdigit():
            return _INACTIVE
        generated = b"".join(self.table.code[t] for t in self._tokens[self._prompt_length:])
        text = self._prompt_code + generated
        code = text[:len(text) - len(partial.encode("utf-8"))].decode("utf-8", "replace")
        members = self.monitor.members(code)
        if members is None or not any(member.startswith(partial) for member in members):
            return _INACTIVE
        self.active += 1
        return _Position(self.monitor.mask(code, partial, members), partial in members)

    # -- the Matcher contract ----------------------------------------------------------
    def allowed(self) -> np.ndarray:
        """Every token outside a member access; after ``expr.`` + ``p``, the tokens that keep
        or end a member's name (see the module); nothing after the end token. Read-only."""
        if self._ended:
            return np.zeros(self.table.vocab_size, dtype=bool)
        mask = self._position().mask
        return self.monitor.everything if mask is None else mask

    def advance(self, tokens: Sequence[int]) -> bool:
        """Consumes ``tokens``; false (and nothing consumed) when one is not allowed."""
        tokens = [int(token) for token in tokens]
        taken = 0
        for token in tokens:
            if self._ended or not 0 <= token < self.table.vocab_size:
                break
            mask = self._position().mask
            if mask is not None and not mask[token]:
                break
            self._tokens.append(token)
            self._positions.append(None)
            self._ended = token in self.table.eos
            taken += 1
        if taken < len(tokens):
            self.rollback(taken)
            return False
        return True

    def rollback(self, count: int) -> None:
        """Un-consumes the last ``count`` tokens (the end token counts as one)."""
        generated = len(self._tokens) - self._prompt_length
        if not 0 <= count <= generated:
            raise ValueError(f"monitor: cannot roll back {count} tokens; {generated} consumed")
        if count:
            del self._tokens[len(self._tokens) - count:]
            del self._positions[len(self._positions) - count:]
            self._ended = False

    def is_accepting(self) -> bool:
        """Whether the output may end here: anywhere but inside a member's partial name."""
        return self._ended or self._position().accepting

    def is_stopped(self) -> bool:
        """Only after the end token."""
        return self._ended


class MonitorStep(ConstrainStep):
    """The ``Monitor`` box's implementation: a :class:`ConstrainStep` over a monitor, whose
    counters add the monitor's analyses and timeouts since :meth:`start`."""

    def __init__(self, monitor: JediMonitor) -> None:
        super().__init__(monitor, draft_forced=0)
        self._analyses = monitor.analyses
        self._timeouts = monitor.timeouts

    def start(self, state: DecodeState) -> None:
        super().start(state)
        self._analyses = self.grammar.analyses
        self._timeouts = self.grammar.timeouts

    def counters(self) -> dict[str, float]:
        found = dict(super().counters())
        found["monitor_analyses"] = self.grammar.analyses - self._analyses
        found["monitor_timeouts"] = self.grammar.timeouts - self._timeouts
        found["monitor_active"] = getattr(self.matcher, "active", 0)
        return found


__all__ = ["JediMonitor", "MonitorMatcher", "MonitorContext", "MonitorStep", "TokenTable",
           "token_table", "dereferenced"]
