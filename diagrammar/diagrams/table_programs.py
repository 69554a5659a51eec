"""Binder programs as diagrams: a table flows through model calls and an SQL step.

Binder (Cheng et al. 2023) runs a program in steps: each ``map`` call adds a column by asking
a model a sub-question about every cell of a column, then SQL runs over the widened table,
then (optionally) an ``ans`` call asks one question about the rows the SQL selected. Here each
step is a box on two wire types, :data:`Relation` (a table) and :data:`Text` (an answer):

- :class:`Table` ``(name)``: ``Ty() -> Relation``, the input table;
- :class:`Map` ``(question, column, output)``: ``Relation -> Relation``, a model call per cell;
- :class:`SQL` ``(query)``: ``Relation -> Relation``, plain read-only SQL;
- :class:`Answer` ``(question, columns)``: ``Relation -> Text``, one model call on a
  sub-table.

>>> f = from_calls([("did they win?", "result", "qa_map_0")],
...                "SELECT COUNT(*) FROM w WHERE qa_map_0 = 'yes'")
>>> [box.name for box in f.boxes]
["Table('w')", "Map('did they win?', result -> qa_map_0)", 'SQL']
>>> print(f.dom, "->", f.cod)
Ty() -> Relation
>>> from_json(json.loads(json.dumps(to_json(f)))) == f
True

Boxes hold frozen JSON specs (strings), never models; the meaning (execution on SQLite with a
user's model) is the functor :mod:`diagrammar.functors.binder`. Composition checks the wires
and names both boxes and both types when they do not match:

>>> Table() >> Answer("who?", ["team"]) >> SQL("SELECT 1")
Traceback (most recent call last):
...
diagrammar.diagrams.errors.WiringError: cannot compose box "Answer('who?', team)" with box \
'SQL': the left side outputs Text but the right side expects Relation
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from discopy import symmetric
from discopy.utils import factory

from diagrammar.diagrams.errors import DiagramError, check_then
from diagrammar.diagrams.types import Ty

Relation = Ty("Relation")
"""A table: column names and rows."""
Text = Ty("Text")
"""An answer."""
WIRES = {"Relation": Relation, "Text": Text}


class TableProgramError(DiagramError):
    """A table program that cannot be built or read; the message says where.

    >>> Map("q?", "a", "a")
    Traceback (most recent call last):
    ...
    diagrammar.diagrams.table_programs.TableProgramError: a map call writes a new column, \
not 'a' itself
    """


@factory
class TableProgram(symmetric.Diagram):
    """A diagram of table-program boxes: what ``>>`` and ``@`` build from them.

    >>> print((Table() >> SQL("SELECT 1")).cod)
    Relation
    """

    ty_factory = Ty

    def then(self, *others: symmetric.Diagram) -> TableProgram:
        left = self
        for other in others:
            check_then(left, other, TableProgram,
                       "only table-program boxes compose into a table program")
            left = symmetric.Diagram.then(left, other)
        return left


class Swap(symmetric.Swap, TableProgram):
    """The swap of two wires inside a table program.

    >>> print(TableProgram.swap(Relation, Text).cod)
    Text @ Relation
    """

    __ambiguous_inheritance__ = (symmetric.Swap,)


TableProgram.braid_factory = Swap


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TableProgramError(f"{what} is non-empty text, not {value!r}")
    return value


class TableBox(symmetric.Box, TableProgram):
    """A box of a table program; its ``spec`` (frozen JSON data) says everything about it.
    ``kind`` names the class; :func:`box_from_json` rebuilds a box from
    ``{"kind": ..., **spec}``.

    >>> isinstance(SQL("SELECT 1"), TableBox), SQL("SELECT 1").kind
    (True, 'sql')
    """

    __ambiguous_inheritance__ = (symmetric.Box,)
    kind = "box"

    def __init__(self, label: str, dom: Ty, cod: Ty, /, **spec: Any) -> None:
        self._spec_json = json.dumps(spec, sort_keys=True)
        symmetric.Box.__init__(self, label, dom, cod, data=self._spec_json)

    @property
    def spec(self) -> dict[str, Any]:
        """A fresh copy of the box's parameters, as JSON data."""
        return json.loads(self._spec_json)

    def __repr__(self) -> str:
        return self.name


class Table(TableBox):
    """The input table, by its SQL ``name``: ``Ty() -> Relation``.

    >>> Table("games").spec
    {'name': 'games'}
    """

    kind = "table"

    def __init__(self, name: str = "w") -> None:
        super().__init__(f"Table({_text(name, 'a table name')!r})", Ty(), Relation, name=name)

    @property
    def table(self) -> str:
        return self.spec["name"]


class Map(TableBox):
    """A model call per cell: ``question`` asked of each cell of ``column``, the answers a new
    column ``output``: ``Relation -> Relation``.

    >>> Map("was it away?", "opponent", "away").question
    'was it away?'
    """

    kind = "map"

    def __init__(self, question: str, column: str, output: str) -> None:
        _text(question, "a map question")
        _text(column, "a column name")
        _text(output, "an output column name")
        if column.lower() == output.lower():
            raise TableProgramError(f"a map call writes a new column, not {column!r} itself")
        super().__init__(f"Map({question!r}, {column} -> {output})", Relation, Relation,
                         question=question, column=column, output=output)

    @property
    def question(self) -> str:
        return self.spec["question"]

    @property
    def column(self) -> str:
        return self.spec["column"]

    @property
    def output(self) -> str:
        return self.spec["output"]


class SQL(TableBox):
    """A plain SQL query over the table (read-only, no model calls): ``Relation -> Relation``.

    >>> SQL("SELECT week FROM w").query
    'SELECT week FROM w'
    """

    kind = "sql"

    def __init__(self, query: str) -> None:
        super().__init__("SQL", Relation, Relation, query=_text(query, "an SQL query"))

    @property
    def query(self) -> str:
        return self.spec["query"]


class Answer(TableBox):
    """One model call on a sub-table: ``question`` about the rows, restricted to ``columns``:
    ``Relation -> Text``.

    >>> Answer("who won?", ["team", "score"]).columns
    ('team', 'score')
    """

    kind = "answer"

    def __init__(self, question: str, columns: Sequence[str]) -> None:
        _text(question, "an ans question")
        if isinstance(columns, str) or not columns:
            raise TableProgramError(f"an ans call reads a list of columns, not {columns!r}")
        columns = [_text(column, "a column name") for column in columns]
        super().__init__(f"Answer({question!r}, {', '.join(columns)})", Relation, Text,
                         question=question, columns=columns)

    @property
    def question(self) -> str:
        return self.spec["question"]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.spec["columns"])


BOX_KINDS: dict[str, type[TableBox]] = {cls.kind: cls for cls in (Table, Map, SQL, Answer)}


def box_from_json(data: Any) -> TableBox:
    """Rebuilds a box from ``{"kind": ..., **spec}`` (:func:`box_to_json`).

    >>> box_from_json({"kind": "table", "name": "games"})
    Table('games')
    """
    if not isinstance(data, Mapping) or data.get("kind") not in BOX_KINDS:
        raise TableProgramError(f"a table-program box is an object with a kind among "
                                f"{', '.join(BOX_KINDS)}, not {data!r}")
    spec = {key: value for key, value in data.items() if key != "kind"}
    try:
        return BOX_KINDS[data["kind"]](**spec)
    except TypeError as error:
        raise TableProgramError(f"bad spec for a {data['kind']} box: {error}") from None


def box_to_json(box: TableBox) -> dict[str, Any]:
    """A box as ``{"kind": ..., **spec}``.

    >>> box_to_json(Map("won?", "result", "won"))
    {'kind': 'map', 'column': 'result', 'output': 'won', 'question': 'won?'}
    """
    return {"kind": box.kind, **box.spec}


def _wires(ty: Ty) -> list[str]:
    return [ob.name for ob in ty.inside]


def to_json(diagram: TableProgram) -> dict[str, Any]:
    """A table program as JSON data: its input wires and its layers ``[offset, box]`` (a swap
    is ``{"kind": "swap"}`` of two single wires).

    >>> to_json(Table() >> SQL("SELECT 1"))["layers"][1]
    [0, {'kind': 'sql', 'query': 'SELECT 1'}]
    """
    layers = []
    for left, box, _ in diagram.inside:
        if isinstance(box, TableBox):
            layers.append([len(left), box_to_json(box)])
        elif isinstance(box, symmetric.Swap) and len(box.dom) == 2:
            layers.append([len(left), {"kind": "swap"}])
        else:
            raise TableProgramError(f"cannot write {box!r} as JSON: not a table-program box")
    return {"dom": _wires(diagram.dom), "layers": layers}


def from_json(data: Any) -> TableProgram:
    """The inverse of :func:`to_json`, with an error that says which layer is at fault.

    >>> from_json({"dom": [], "layers": [[0, {"kind": "sql", "query": "SELECT 1"}]]})
    Traceback (most recent call last):
    ...
    diagrammar.diagrams.table_programs.TableProgramError: layer 0: box SQL does not fit the \
wires at offset 0
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("dom"), list) \
            or not isinstance(data.get("layers"), list):
        raise TableProgramError("a table program is an object with lists 'dom' and 'layers'")
    unknown = [name for name in data["dom"] if name not in WIRES]
    if unknown:
        raise TableProgramError(f"unknown wire types {unknown}; known: {', '.join(WIRES)}")
    current = Ty().tensor(*(WIRES[name] for name in data["dom"]))
    result = TableProgram.id(current)
    for index, layer in enumerate(data["layers"]):
        try:
            offset, item = layer
            if item.get("kind") == "swap":
                box = TableProgram.swap(current[offset:offset + 1],
                                        current[offset + 1:offset + 2])
            else:
                box = box_from_json(item)
            if isinstance(offset, bool) or not isinstance(offset, int) \
                    or not 0 <= offset <= len(current) - len(box.dom) \
                    or current[offset:offset + len(box.dom)] != box.dom:
                raise TableProgramError(f"box {box!r} does not fit the wires at offset {offset}")
            step = (TableProgram.id(current[:offset]) @ box
                    @ TableProgram.id(current[offset + len(box.dom):]))
        except (TableProgramError, TypeError, ValueError, AttributeError) as error:
            raise TableProgramError(f"layer {index}: {error}") from None
        result, current = result >> step, step.cod
    return result


def from_calls(maps: Sequence[Sequence[str]], sql: str,
               answer: Sequence[Any] | None = None, table: str = "w") -> TableProgram:
    """The diagram of a Binder program given as its steps (plain strings, as
    :func:`diagrammar.symbolic.binder.plan` gives them): ``maps`` are ``(question, column,
    output)``, ``sql`` the query over the widened table, ``answer`` an optional
    ``(question, columns)``.

    >>> print(from_calls([], "SELECT city FROM w", ("which is oldest?", ["city"])).cod)
    Text
    """
    diagram = Table(table)
    for index, step in enumerate(maps):
        if isinstance(step, str) or len(step) != 3:
            raise TableProgramError(f"map step {index} is (question, column, output), "
                                    f"not {step!r}")
        diagram = diagram >> Map(*step)
    diagram = diagram >> SQL(sql)
    if answer is not None:
        if isinstance(answer, str) or len(answer) != 2:
            raise TableProgramError(f"the answer step is (question, columns), not {answer!r}")
        diagram = diagram >> Answer(answer[0], list(answer[1]))
    return diagram


__all__ = ["Answer", "BOX_KINDS", "Map", "Relation", "SQL", "Swap", "Table", "TableBox",
           "TableProgram", "TableProgramError", "Text", "box_from_json", "box_to_json",
           "from_calls", "from_json", "to_json"]
