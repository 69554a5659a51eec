"""The Binder executor as a functor: a table-program diagram
(:mod:`diagrammar.diagrams.table_programs`) becomes a run on SQLite with the user's model.

Each box maps to one step of :mod:`diagrammar.symbolic.binder`: :class:`~diagrammar.diagrams.
table_programs.Table` to the input table, ``Map`` to :func:`~diagrammar.symbolic.binder.
map_column` (one model call per distinct cell, cached), ``SQL`` to the read-only, time-limited
:func:`~diagrammar.symbolic.binder.run_sql`, ``Answer`` to :func:`~diagrammar.symbolic.binder.
ask`. :func:`program_diagram` reads a program's text into the diagram.

This is the paper's executor: a ``Map`` box fills its whole column before the SQL runs, so the
model can be asked every distinct cell at once (and outside the SQL step's time limit), where
:func:`~diagrammar.symbolic.binder.execute` asks lazily, only of the rows SQLite evaluates.
Both give the same answers (tested on every gold program of the generated splits).

>>> from diagrammar.symbolic.binder import Table
>>> games = Table(("team", "result"), (("Dallas", "W 24-17"), ("Miami", "L 3-21")))
>>> f = program_diagram("SELECT team FROM w WHERE QA('map@did they win?', result) = 'yes'")
>>> [box.name for box in f.boxes]
["Table('w')", "Map('did they win?', result -> qa_map_0)", 'SQL']
>>> run = Binder(lambda kind, question, cell: "yes" if cell[0] == "W" else "no")(f, games)
>>> run.answer, run.map_calls
('dallas', 2)

Why a hand-written walker rather than ``discopy.symmetric.Functor`` into ``discopy.python``:
the wires carry tables whose columns grow as the program runs, and the steps share one cache
and one count of model calls; :meth:`Binder.meaning` walks ``diagram.inside`` and maps boxes
one by one, and the functor law (``F(f >> g) = F(g) . F(f)``) is a test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from discopy import symmetric

from diagrammar.diagrams.table_programs import (
    SQL,
    Answer,
    Map,
    TableBox,
    TableProgram,
    TableProgramError,
    from_calls,
)
from diagrammar.diagrams.table_programs import Table as TableInput
from diagrammar.symbolic import binder
from diagrammar.symbolic.binder import AnswerModel, BinderError, Cache, MapModel


@dataclass(frozen=True)
class Outcome:
    """What a table program gave: its ``value`` (a :class:`~diagrammar.symbolic.binder.Table`
    or, after an ``Answer`` box, text) and the model calls made (``map_calls`` after caching,
    ``answer_calls``). ``answer`` is the value normalised for comparison and voting.

    >>> Outcome(" Dallas ", 3, 1).answer
    'dallas'
    """

    value: Any
    map_calls: int
    answer_calls: int

    @property
    def answer(self) -> str:
        if isinstance(self.value, binder.Table):
            return binder.normalize_answer([cell for row in self.value.rows for cell in row])
        return binder.normalize_answer(self.value)


def program_diagram(text: str, table: str = "w") -> TableProgram:
    """The diagram of a Binder program's text (read by
    :func:`diagrammar.symbolic.binder.plan`; a bad program raises its ``BinderError``).

    >>> print(program_diagram("SELECT QA('ans@who?', team) FROM w").cod)
    Text
    """
    steps = binder.plan(text)
    return from_calls(steps.maps, steps.sql, steps.answer, table=table)


class Binder:
    """Runs table programs with a ``map_model`` (``(kind, question, cell_text) -> text``) and
    an optional ``answer_model`` (``(question, sub_table) -> text``); ``cache`` (shared by
    every run of this executor unless given) keeps each (question, cell) asked once; each SQL
    step is bounded by ``timeout`` seconds.

    >>> from diagrammar.symbolic.binder import Table
    >>> f = program_diagram("SELECT SUM(QA('map@how many?', n)) FROM w")
    >>> Binder(lambda kind, question, cell: cell.split()[0])(
    ...     f, Table(("n",), (("3 apples",), ("4 pears",)))).value.rows
    ((7,),)
    """

    def __init__(self, map_model: MapModel, answer_model: AnswerModel | None = None, *,
                 cache: Cache | None = None, timeout: float = 2.0) -> None:
        self.map_model, self.answer_model = map_model, answer_model
        self.cache = cache if cache is not None else Cache()
        self.timeout = timeout
        self.answer_calls = 0

    def box(self, box: TableBox, args: list[Any],
            tables: Mapping[str, binder.Table]) -> list[Any]:
        """A box's meaning on its input values."""
        if isinstance(box, TableInput):
            if box.table not in tables:
                raise BinderError(f"no table named {box.table!r} was given; given: "
                                  f"{', '.join(tables) or 'none'}")
            return [dataclasses.replace(tables[box.table], name=box.table)]
        (table,) = args
        if isinstance(box, Map):
            return [binder.map_column(table, box.question, box.column, box.output,
                                      self.map_model, cache=self.cache)]
        if isinstance(box, SQL):
            return [binder.run_sql(table, box.query, timeout=self.timeout)]
        if isinstance(box, Answer):
            if self.answer_model is None:
                raise BinderError("the program has an Answer box but no answer_model was given")
            self.answer_calls += 1
            return [binder.ask(table, box.question, box.columns, self.answer_model)]
        raise TableProgramError(f"{type(self).__name__} has no meaning for box {box!r}")

    def meaning(self, diagram: TableProgram,
                tables: Mapping[str, binder.Table] | None = None
                ) -> Callable[[Sequence[Any]], list[Any]]:
        """The function on the diagram's input values (a list, one per input wire) that
        running it is; ``tables`` are the inputs of its ``Table`` boxes, by name."""
        named = dict(tables or {})

        def function(values: Sequence[Any]) -> list[Any]:
            values = list(values)
            if len(values) != len(diagram.dom):
                raise TableProgramError(f"the program takes {len(diagram.dom)} inputs, "
                                        f"not {len(values)}")
            for left, box, _ in diagram.inside:
                start, end = len(left), len(left) + len(box.dom)
                args = values[start:end]
                if isinstance(box, TableBox):
                    result = self.box(box, args, named)
                elif isinstance(box, symmetric.Swap):
                    result = args[len(box.left):] + args[:len(box.left)]
                else:
                    raise TableProgramError(f"{type(self).__name__} has no meaning for box "
                                            f"{box!r}")
                values[start:end] = result
            return values

        return function

    def __call__(self, diagram: TableProgram,
                 tables: binder.Table | Mapping[str, binder.Table]) -> Outcome:
        """Runs a program ``Ty() -> Relation`` or ``Ty() -> Text`` on ``tables`` (one table,
        read by every ``Table`` box, or tables by name)."""
        if len(diagram.dom) or len(diagram.cod) != 1:
            raise TableProgramError(f"a program to run goes from no wires to one, not "
                                    f"{diagram.dom} -> {diagram.cod}")
        if isinstance(tables, binder.Table):
            names = {box.table for box in diagram.boxes if isinstance(box, TableInput)}
            tables = {name: tables for name in names}
        calls, answers = self.cache.calls, self.answer_calls
        (value,) = self.meaning(diagram, tables)([])
        return Outcome(value, self.cache.calls - calls, self.answer_calls - answers)


__all__ = ["Binder", "Outcome", "program_diagram"]
