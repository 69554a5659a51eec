"""Binder programs (Cheng et al. 2023, "Binding Language Models in Symbolic Languages"): SQL
over one table, extended with model calls, run read-only on SQLite.

The concrete syntax is SQLite's, with one extra function, ``QA``:

- ``QA('map@<sub-question>', <column>)`` asks the model the sub-question about each cell of the
  column, one cell at a time, and stands for the answer wherever an expression may stand
  (``SELECT``, ``WHERE``, ``ORDER BY``, inside ``SUM``/``COUNT``...);
- ``QA('ans@<question>', <column>, ...)`` asks the model the question about the sub-table of
  the rows the query selects, restricted to those columns; it is the only thing its
  ``SELECT`` selects (``SELECT QA('ans@...', a, b) FROM w WHERE ...``) and answers once.

The paper's own spelling, ``QA("map@<sub-question>"; <column>)``, is read too. Answers are read
by :func:`coerce`: numbers become numbers (``"61,512"`` is 61512), ``yes``/``no`` (and
``true``/``false``) become ``'yes'``/``'no'``, anything else stays text; model text is never
executed. The table is ``w`` (as in the paper).

>>> table = Table(("team", "result"), (("Dallas", "W 24-17"), ("Miami", "lost 3-21"),
...                                     ("Boston", "won 30-10")))
>>> def model(kind, question, cell):  # a stand-in for a language model
...     return "yes" if cell.lower().startswith("w") else "no"
>>> run = execute("SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes'",
...               table, model)
>>> run.answer, run.map_calls
('2', 3)
>>> execute("DELETE FROM w", table, model)
Traceback (most recent call last):
...
diagrammar.symbolic.binder.BinderError: not a Binder program: only a SELECT query may run, \
not DELETE

Every distinct (sub-question, cell) is asked once (:class:`Cache`); several sampled programs
vote on one answer with :func:`vote`. :func:`plan` splits a program into the steps of the
paper's executor (add a column per map call, run the SQL, ask the ans question), which
:func:`map_column`, :func:`run_sql` and :func:`ask` run one by one.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from diagrammar.symbolic.sql import SQLChecker

MapModel = Callable[[str, str, str], str]
"""``model(kind, question, cell_text) -> answer text``; ``kind`` is ``"map"``."""
AnswerModel = Callable[[str, "Table"], str]
"""``model(question, sub_table) -> answer text``."""

KINDS = ("map", "ans")
TABLE_NAME = "w"
MAP_PREFIX = "qa_map_"
_NUMBER = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?|[+-]?\.\d+")
_INTEGER = re.compile(r"-?(0|[1-9]\d{0,17})")
_YES = {"yes", "true", "y"}
_NO = {"no", "false", "n"}


class BinderError(ValueError):
    """A program that cannot run: not one read-only SELECT, a malformed ``QA`` call, a column
    the table lacks, an SQLite error or a failing model call; the message says which.

    >>> parse("SELECT QA('guess@x', a) FROM w")
    Traceback (most recent call last):
    ...
    diagrammar.symbolic.binder.BinderError: QA('guess@x', a): the first argument is \
'map@<question>' or 'ans@<question>', not 'guess@x'
    """


class BinderTimeout(BinderError):
    """The program ran past its time limit.

    >>> forever = ("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x FROM r) "
    ...            "SELECT COUNT(*) FROM r")
    >>> execute(forever, Table(("a",), ()), print, timeout=0.1)
    Traceback (most recent call last):
    ...
    diagrammar.symbolic.binder.BinderTimeout: the query ran past the 0.1 s limit
    """


@dataclass(frozen=True)
class Table:
    """A table of cells: column names and rows (cell texts as the model reads them, or numbers
    once a column holds model answers). ``name`` is the table's SQL name.

    >>> Table(("a", "b"), (("1", "x"),)).column("b")
    ('x',)
    >>> Table(("a", "a"), ())
    Traceback (most recent call last):
    ...
    diagrammar.symbolic.binder.BinderError: the table names column 'a' twice
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    name: str = TABLE_NAME

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "rows", tuple(tuple(row) for row in self.rows))
        seen: set[str] = set()
        for column in self.columns:
            if not isinstance(column, str) or not column.strip():
                raise BinderError(f"a column name is non-empty text, not {column!r}")
            if column.lower() in seen:
                raise BinderError(f"the table names column {column!r} twice")
            seen.add(column.lower())
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise BinderError(f"row {index} has {len(row)} cells; the table has "
                                  f"{len(self.columns)} columns")

    def index(self, column: str) -> int:
        """The position of ``column`` (case-insensitive, as SQL reads names)."""
        for position, name in enumerate(self.columns):
            if name.lower() == column.lower():
                return position
        raise BinderError(f"the table has no column {column!r}; its columns are "
                          f"{', '.join(self.columns)}")

    def column(self, column: str) -> tuple[Any, ...]:
        """The cells of one column, top to bottom."""
        position = self.index(column)
        return tuple(row[position] for row in self.rows)


@dataclass(frozen=True)
class ModelCall:
    """One ``QA`` call of a program: ``kind`` (``map`` or ``ans``), the ``question``, the
    ``columns`` it reads and the SQL ``function`` (or, in a :class:`Plan`, the new column)
    that stands for it.

    >>> parse("SELECT QA('map@how many?', score) FROM w").calls[0].question
    'how many?'
    """

    kind: str
    question: str
    columns: tuple[str, ...]
    function: str


@dataclass(frozen=True)
class Program:
    """A parsed Binder program: its ``text``, the SQLite ``sql`` with each call replaced by a
    registered function, and its model ``calls``.

    >>> print(parse("SELECT QA('map@q?', a) FROM w").sql)
    SELECT QA_MAP_0(a) FROM w
    """

    text: str
    sql: str
    calls: tuple[ModelCall, ...]


@dataclass(frozen=True)
class Plan:
    """A program as the paper's executor runs it: ``maps`` (``(question, column, output)``:
    add column ``output`` by asking ``question`` of each cell of ``column``), then the plain
    ``sql`` over the widened table, then (when ``answer`` is ``(question, columns)``) one
    question about the rows the SQL selected.

    >>> plan("SELECT QA('ans@who?', name) FROM w WHERE QA('map@old?', age) = 'yes'")
    Plan(maps=(('old?', 'age', 'qa_map_0'),), sql="SELECT name FROM w WHERE qa_map_0 = 'yes'", \
answer=('who?', ('name',)))
    """

    maps: tuple[tuple[str, str, str], ...]
    sql: str
    answer: tuple[str, tuple[str, ...]] | None = None


@dataclass
class Cache:
    """Model answers by ``(question, cell)``, shared by the calls of one program (and, when
    passed along, by several programs): each distinct cell is asked once. ``calls`` counts
    the model calls made, ``hits`` the answers taken from the cache.

    >>> cache = Cache()
    >>> cache.get("q", "x", lambda: "yes"), cache.get("q", "x", lambda: "no")
    ('yes', 'yes')
    >>> cache.calls, cache.hits
    (1, 1)
    """

    answers: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: int = 0
    hits: int = 0

    def get(self, question: str, cell: str, ask: Callable[[], str]) -> str:
        key = (question, cell)
        if key in self.answers:
            self.hits += 1
            return self.answers[key]
        answer = ask()
        if not isinstance(answer, str):
            raise BinderError(f"the model answered {type(answer).__name__}, not text, to "
                              f"{question!r} about {cell!r}")
        self.calls += 1
        self.answers[key] = answer
        return answer


@dataclass(frozen=True)
class Execution:
    """What a program gave: the result ``columns`` and ``rows``, the model calls made
    (``map_calls`` after caching, ``answer_calls``), and the ``sql`` that ran.
    ``answer`` is the result normalised by :func:`normalize_answer`.

    >>> run = execute("SELECT a, QA('map@double?', a) FROM w", Table(("a",), (("2",),)),
    ...               lambda kind, question, cell: str(2 * int(cell)))
    >>> run.rows, run.values, run.answer, run.map_calls
    (((2, 4),), [2, 4], '2 | 4', 1)
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    map_calls: int
    answer_calls: int
    sql: str

    @property
    def values(self) -> list[Any]:
        """The result's cells, row by row."""
        return [value for row in self.rows for value in row]

    @property
    def answer(self) -> str:
        return normalize_answer(self.values)


def coerce(text: str) -> int | float | str:
    """A model's answer as an SQL value: a number (commas grouping thousands allowed), ``'yes'``
    or ``'no'``, or the stripped text. Never evaluated.

    >>> coerce(" 61,512 "), coerce("2.50"), coerce("True."), coerce("Dallas")
    (61512, 2.5, 'yes', 'Dallas')
    """
    stripped = text.strip().strip("\"'").strip()
    bare = stripped.rstrip(".").strip()
    if _NUMBER.fullmatch(bare):
        number = float(bare.replace(",", ""))
        return int(number) if number.is_integer() and "." not in bare else number
    if bare.lower() in _YES:
        return "yes"
    if bare.lower() in _NO:
        return "no"
    return stripped


def normalize_answer(value: Any) -> str:
    """A canonical text for comparing and voting on answers: numbers to at most 2 decimals,
    yes/no in lower case, text case-folded with single spaces; a list of one value is that
    value, a longer one its sorted items joined by ``' | '``; None is ``''``.

    >>> normalize_answer([20.3333]), normalize_answer("3.0"), normalize_answer(["B", "a"])
    ('20.33', '3', 'a | b')
    """
    if isinstance(value, list | tuple):
        if len(value) == 1:
            return normalize_answer(value[0])
        return " | ".join(sorted(normalize_answer(item) for item in value))
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        value = coerce(value)
    if isinstance(value, int | float):
        rounded = round(float(value), 2)
        return str(int(rounded)) if rounded.is_integer() else f"{rounded:.2f}".rstrip("0")
    return " ".join(str(value).casefold().split())


@dataclass(frozen=True)
class Vote:
    """The outcome of :func:`vote`: the winning normalised ``answer`` (None when no program
    gave one), its ``count`` of votes and every answer's ``counts``.

    >>> vote(["Yes", "no", "yes"])
    Vote(answer='yes', count=2, counts={'yes': 2, 'no': 1})
    """

    answer: str | None
    count: int
    counts: dict[str, int]


def vote(answers: Sequence[Any]) -> Vote:
    """Majority vote over the answers of several sampled programs (None: a program that failed,
    which does not vote). Answers are compared by :func:`normalize_answer`; a tie goes to the
    answer given first, so the order of the samples decides, deterministically.

    >>> vote(["3", 3.0, "4", None, "4"]).answer, vote(["b", "a", "a", "b"]).answer
    ('3', 'b')
    """
    normal = [normalize_answer(answer) for answer in answers if answer is not None]
    counts = Counter(normal)
    if not counts:
        return Vote(None, 0, {})
    best = max(counts.values())
    winner = next(answer for answer in normal if counts[answer] == best)
    return Vote(winner, best, dict(counts))


def vote_programs(programs: Sequence[str], table: Table, map_model: MapModel,
                  answer_model: AnswerModel | None = None, *, timeout: float = 2.0
                  ) -> tuple[Vote, list[Execution | BinderError]]:
    """Binder's last step: runs several sampled programs on ``table`` (sharing one
    :class:`Cache`, so a cell asked by one program is not asked again by the next) and votes
    on their answers; a program that fails (its :class:`BinderError` is kept in the list of
    outcomes) does not vote.

    >>> table = Table(("n",), (("one",), ("two",), ("three",)))
    >>> numbers = lambda kind, question, cell: str(["one", "two", "three"].index(cell) + 1)
    >>> result, outcomes = vote_programs([
    ...     "SELECT SUM(QA('map@value?', n)) FROM w",
    ...     "SELECT MAX(QA('map@value?', n)) * 2 FROM w",
    ...     "DROP TABLE w"], table, numbers)
    >>> result.answer, result.count, [type(o).__name__ for o in outcomes]
    ('6', 2, ['Execution', 'Execution', 'BinderError'])
    >>> sum(o.map_calls for o in outcomes[:2])
    3
    """
    cache = Cache()
    outcomes: list[Execution | BinderError] = []
    for program in programs:
        try:
            outcomes.append(execute(program, table, map_model, answer_model, cache=cache,
                                    timeout=timeout))
        except BinderError as error:
            outcomes.append(error)
    answers = [o.values for o in outcomes if isinstance(o, Execution)]
    return vote(answers), outcomes


# --- reading programs -----------------------------------------------------------------------


def _paper_syntax(text: str) -> str:
    """``QA("map@q"; col)`` (the paper's spelling) as ``QA('map@q', col)``: inside a ``QA``
    call's own brackets, ``;`` becomes ``,`` and a double-quoted first argument a string."""
    out: list[str] = []
    depth, quote, call_depth = 0, "", None
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            out.append(char)
            if char == quote:
                quote = ""
        elif char in "'`":
            quote = char
            out.append(char)
        elif char == '"':
            end = text.find('"', index + 1)
            inner = text[index + 1:end] if end > 0 else ""
            if call_depth == depth and end > 0 and out and out[-1].rstrip().endswith("(") \
                    and inner.split("@")[0].strip().lower() in KINDS:
                out.append("'" + inner.replace("'", "''") + "'")
                index = end + 1
                continue
            quote = char
            out.append(char)
        elif char == "(":
            depth += 1
            if call_depth is None and _names_qa(text, index):
                call_depth = depth
            out.append(char)
        elif char == ")":
            if call_depth == depth:
                call_depth = None
            depth -= 1
            out.append(char)
        elif char == ";" and call_depth is not None and call_depth == depth:
            out.append(",")
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _names_qa(text: str, index: int) -> bool:
    """Whether the bracket at ``index`` opens a call of ``QA`` (the word ``QA``, then spaces)."""
    end = index
    while end > 0 and text[end - 1].isspace():
        end -= 1
    before = text[end - 3:end - 2] if end >= 3 else ""
    return text[max(end - 2, 0):end].lower() == "qa" and not (before.isalnum() or before in "_.$")


def _query(text: str) -> exp.Expression:
    if not isinstance(text, str):
        raise BinderError(f"a program is text, not {type(text).__name__}")
    checker = SQLChecker(_no_database)
    if len(text) <= checker.limits.max_chars:  # (a longer text is refused by parse)
        text = _paper_syntax(text)
    query, reason = checker.parse(text)
    if query is None:
        raise BinderError(f"not a Binder program: {reason}")
    return query


def _calls(query: exp.Expression) -> list[tuple[exp.Anonymous, str, str, list[exp.Expression]]]:
    found = []
    for node in query.find_all(exp.Anonymous):
        if str(node.this).upper() != "QA":
            continue
        where = node.sql(dialect="sqlite")[:80]
        args = list(node.expressions)
        first = args[0] if args else None
        if isinstance(first, exp.Literal) and first.is_string:
            head = first.this
        elif isinstance(first, exp.Column) and not first.table and first.this.quoted:
            head = first.name
        else:
            raise BinderError(f"{where}: a QA call starts with a string 'map@<question>' or "
                              "'ans@<question>'")
        kind, at, question = head.partition("@")
        kind = kind.strip().lower()
        if not at or kind not in KINDS or not question.strip():
            raise BinderError(f"{where}: the first argument is 'map@<question>' or "
                              f"'ans@<question>', not {head!r}")
        columns = args[1:]
        for column in columns:
            if not isinstance(column, exp.Column):
                raise BinderError(f"{where}: a QA call reads columns by name, not "
                                  f"{column.sql(dialect='sqlite')!r}")
        if kind == "map" and len(columns) != 1:
            raise BinderError(f"{where}: a map call reads exactly one column, not {len(columns)}")
        if kind == "ans" and not columns:
            raise BinderError(f"{where}: an ans call reads at least one column")
        if any(str(inner.this).upper() == "QA" for inner in node.find_all(exp.Anonymous)
               if inner is not node):
            raise BinderError(f"{where}: QA calls do not nest")
        found.append((node, kind, question.strip(), columns))
    return found


def parse(text: str) -> Program:
    """Reads a Binder program: exactly one read-only SELECT whose ``QA`` calls are well formed.
    Raises :class:`BinderError` saying what is wrong.

    >>> [(call.kind, call.columns) for call in parse(
    ...     "SELECT QA('ans@best?', team, score) FROM w WHERE QA('map@home?', place) = 'yes'"
    ... ).calls]
    [('ans', ('team', 'score')), ('map', ('place',))]
    >>> parse("SELECT 1; SELECT 2")
    Traceback (most recent call last):
    ...
    diagrammar.symbolic.binder.BinderError: not a Binder program: expected one statement, found 2
    """
    query = _query(text)
    calls: list[ModelCall] = []
    names: dict[tuple[str, str], str] = {}
    for node, kind, question, columns in _calls(query):
        column_names = tuple(column.name for column in columns)
        if kind == "map":
            key = (question, column_names[0].lower())
            if key not in names:
                names[key] = f"{MAP_PREFIX}{len(names)}"
                calls.append(ModelCall(kind, question, column_names, names[key]))
            function = names[key]
        else:
            function = f"qa_ans_{sum(call.kind == 'ans' for call in calls)}"
            calls.append(ModelCall(kind, question, column_names, function))
        node.replace(exp.Anonymous(this=function, expressions=[c.copy() for c in columns]))
    return Program(text, query.sql(dialect="sqlite"), tuple(calls))


def plan(text: str) -> Plan:
    """The steps of a program (:class:`Plan`): each map call becomes a new column
    ``qa_map_<i>``; an ans call must be the only thing the outer SELECT selects, with no
    GROUP BY, and becomes the question asked of the rows the rest of the query selects.

    >>> plan("SELECT SUM(QA('map@points?', result)) FROM w").sql
    'SELECT SUM(qa_map_0) FROM w'
    """
    query = _query(text)
    maps: dict[tuple[str, str], tuple[str, str]] = {}  # (question, column) -> (spelling, new)
    answer = None
    for node, kind, question, columns in _calls(query):
        if kind == "ans":
            outer = query if isinstance(query, exp.Select) else None
            if outer is None or node.parent is not outer or len(outer.expressions) != 1 \
                    or outer.args.get("group") is not None:
                raise BinderError("an ans call must be the only thing the outer SELECT selects, "
                                  "with no GROUP BY")
            answer = (question, tuple(column.name for column in columns))
            outer.set("expressions", [column.copy() for column in columns])
            continue
        column = columns[0]
        key = (question, column.name.lower())
        _, name = maps.setdefault(key, (column.name, f"{MAP_PREFIX}{len(maps)}"))
        node.replace(exp.column(name, table=column.table or None))
    steps = tuple((question, spelling, name)
                  for (question, _), (spelling, name) in maps.items())
    return Plan(steps, query.sql(dialect="sqlite"), answer)


# --- running programs -----------------------------------------------------------------------


def _no_database() -> sqlite3.Connection:
    raise sqlite3.OperationalError("no database")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _load(table: Table) -> sqlite3.Connection:
    """An in-memory database holding ``table``: a column whose every cell is a whole number
    (or its plain text) is INTEGER, the others keep their values as given."""
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    declared, converted = [], []
    for position, name in enumerate(table.columns):
        cells = [row[position] for row in table.rows]
        whole = bool(cells) and all(
            (isinstance(cell, int) and not isinstance(cell, bool))
            or (isinstance(cell, str) and _INTEGER.fullmatch(cell)) for cell in cells)
        declared.append(f"{_quote(name)}{' INTEGER' if whole else ''}")
        converted.append(whole)
    connection.execute(f"CREATE TABLE {_quote(table.name)} ({', '.join(declared)})")
    rows = [tuple(int(cell) if whole and cell is not None else cell
                  for cell, whole in zip(row, converted)) for row in table.rows]
    marks = ", ".join("?" * len(table.columns))
    connection.executemany(f"INSERT INTO {_quote(table.name)} VALUES ({marks})", rows)
    connection.commit()
    return connection


def _cell_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


class _Answer:
    """The aggregate behind an ans call: collects the selected rows, asks once."""

    def __init__(self, ask: Callable[[list[tuple]], Any]) -> None:
        self.ask, self.rows = ask, []

    def step(self, *cells: Any) -> None:
        self.rows.append(cells)

    def finalize(self) -> Any:
        return self.ask(self.rows)


def _run(table: Table, sql: str, register: Callable[[sqlite3.Connection], None],
         errors: list[str], timeout: float, max_rows: int) -> tuple[tuple[str, ...], list]:
    def connect() -> sqlite3.Connection:
        connection = _load(table)
        register(connection)
        return connection

    verdict = SQLChecker(connect, timeout=timeout, max_rows=max_rows).check(sql)
    if errors:
        raise BinderError(errors[0])
    if verdict.unknown and "limit" in verdict.reason:
        raise BinderTimeout(verdict.reason)
    if not verdict.passed:
        reason = verdict.reason
        missing = re.search(r"no such column: (\S+)", reason)
        if missing:
            reason = (f"the program reads a column the table does not have: {missing.group(1)} "
                      f"(its columns are {', '.join(table.columns)})")
        raise BinderError(reason)
    if verdict.detail["truncated"]:
        raise BinderError(f"the program selects more than {max_rows} rows")
    return tuple(verdict.detail["columns"]), verdict.detail["rows"]


def execute(program: str | Program, table: Table, map_model: MapModel,
            answer_model: AnswerModel | None = None, *, cache: Cache | None = None,
            timeout: float = 2.0, max_rows: int = 1000) -> Execution:
    """Runs a Binder program on ``table`` in a read-only in-memory SQLite database, the model
    calls registered as SQL functions: a map call asks ``map_model("map", question, cell)``
    once per distinct cell (``cache`` may be shared between programs), an ans call asks
    ``answer_model(question, sub_table)`` once per group of selected rows. The whole run,
    model calls included, is bounded by ``timeout`` seconds (:class:`BinderTimeout`).

    >>> table = Table(("city", "people"), (("Lyon", "513k"), ("Nice", "342,000")))
    >>> numbers = {"513k": "513000", "342,000": "342000"}
    >>> execute("SELECT city FROM w ORDER BY QA('map@how many people?', people) DESC LIMIT 1",
    ...         table, lambda kind, question, cell: numbers[cell]).answer
    'lyon'
    """
    parsed = program if isinstance(program, Program) else parse(program)
    for call in parsed.calls:
        for column in call.columns:
            if column.lower() not in {name.lower() for name in table.columns}:
                raise BinderError(f"QA('{call.kind}@{call.question}') reads column {column!r}, "
                                  f"which the table does not have; its columns are "
                                  f"{', '.join(table.columns)}")
    if any(call.kind == "ans" for call in parsed.calls) and answer_model is None:
        raise BinderError("the program has an ans call but no answer_model was given")
    cache = cache if cache is not None else Cache()
    before = cache.calls
    errors: list[str] = []
    answers = [0]

    def mapper(call: ModelCall) -> Callable[[Any], Any]:
        def function(cell: Any) -> Any:
            if cell is None:
                return None
            text = _cell_text(cell)
            try:
                return coerce(cache.get(call.question, text,
                                        lambda: map_model("map", call.question, text)))
            except Exception as error:
                errors.append(f"the model failed on QA('map@{call.question}') for cell "
                              f"{text!r}: {type(error).__name__}: {error}")
                raise
        return function

    def answerer(call: ModelCall) -> Callable[[list[tuple]], Any]:
        def ask_rows(rows: list[tuple]) -> Any:
            sub = Table(call.columns, tuple(tuple(None if c is None else _cell_text(c)
                                                  for c in row) for row in rows))
            try:
                answers[0] += 1
                reply = answer_model(call.question, sub)
                if not isinstance(reply, str):
                    raise TypeError(f"answered {type(reply).__name__}, not text")
                return coerce(reply)
            except Exception as error:
                errors.append(f"the model failed on QA('ans@{call.question}'): "
                              f"{type(error).__name__}: {error}")
                raise
        return ask_rows

    def register(connection: sqlite3.Connection) -> None:
        for call in parsed.calls:
            if call.kind == "map":
                connection.create_function(call.function, 1, mapper(call), deterministic=True)
            else:
                ask_rows = answerer(call)
                connection.create_aggregate(call.function, len(call.columns),
                                            lambda ask_rows=ask_rows: _Answer(ask_rows))

    columns, rows = _run(table, parsed.sql, register, errors, timeout, max_rows)
    return Execution(columns, tuple(rows), cache.calls - before, answers[0], parsed.sql)


def map_column(table: Table, question: str, column: str, output: str, map_model: MapModel,
               *, cache: Cache | None = None) -> Table:
    """``table`` with a new column ``output``: the model's answer (by :func:`coerce`) to
    ``question`` about each cell of ``column``, each distinct cell asked once.

    >>> table = Table(("score",), (("W 3-1",), ("L 0-2",), ("W 3-1",)))
    >>> cache = Cache()
    >>> map_column(table, "won?", "score", "won", lambda k, q, c: c[0] == "W" and "yes" or "no",
    ...            cache=cache).column("won"), cache.calls
    (('yes', 'no', 'yes'), 2)
    """
    position = table.index(column)
    if output.lower() in {name.lower() for name in table.columns}:
        raise BinderError(f"the table already has a column {output!r}")
    cache = cache if cache is not None else Cache()
    rows = []
    for row in table.rows:
        cell = row[position]
        if cell is None:
            rows.append((*row, None))
            continue
        text = _cell_text(cell)
        rows.append((*row, coerce(cache.get(question, text,
                                            lambda text=text: map_model("map", question, text)))))
    return Table((*table.columns, output), tuple(rows), table.name)


def run_sql(table: Table, sql: str, *, timeout: float = 2.0, max_rows: int = 1000) -> Table:
    """The rows a plain SQL query (no ``QA`` calls) selects from ``table``, run read-only with
    a time limit, as a table named like the input.

    >>> run_sql(Table(("n",), (("1",), ("2",))), "SELECT SUM(n) AS total FROM w").rows
    ((3,),)
    """
    parsed = parse(sql)
    if parsed.calls:
        raise BinderError("run_sql runs plain SQL; a program with QA calls runs with execute")
    columns, rows = _run(table, parsed.sql, lambda connection: None, [], timeout, max_rows)
    names: list[str] = []
    for index, name in enumerate(columns):  # result columns may repeat a name
        names.append(name if name.lower() not in {n.lower() for n in names} else f"{name}_{index}")
    return Table(tuple(names), tuple(tuple(row) for row in rows), table.name)


def ask(table: Table, question: str, columns: Sequence[str], answer_model: AnswerModel) -> str:
    """The answer model's reply (by :func:`coerce`, as text) to ``question`` about ``table``
    restricted to ``columns``.

    >>> ask(Table(("a", "b"), (("x", "1"),)), "which?", ["a"], lambda q, t: str(t.rows))
    "(('x',),)"
    """
    positions = [table.index(column) for column in columns]
    sub = Table(tuple(table.columns[p] for p in positions),
                tuple(tuple(None if row[p] is None else _cell_text(row[p]) for p in positions)
                      for row in table.rows), table.name)
    reply = answer_model(question, sub)
    if not isinstance(reply, str):
        raise BinderError(f"the answer model answered {type(reply).__name__}, not text")
    return str(coerce(reply))


__all__ = ["AnswerModel", "BinderError", "BinderTimeout", "Cache", "Execution", "KINDS",
           "MapModel", "ModelCall", "Plan", "Program", "Table", "ask", "coerce", "execute",
           "map_column", "normalize_answer", "parse", "plan", "run_sql", "vote", "vote_programs"]
