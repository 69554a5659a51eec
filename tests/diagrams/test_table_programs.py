"""Binder programs as diagrams (diagrams/table_programs.py): boxes, wiring errors, the
constructor from a call list, and the JSON round trip with its errors."""

from __future__ import annotations

import json

import pytest

from diagrammar.diagrams.errors import WiringError
from diagrammar.diagrams.table_programs import (
    SQL,
    Answer,
    Map,
    Relation,
    Table,
    TableProgram,
    TableProgramError,
    Text,
    box_from_json,
    from_calls,
    from_json,
    to_json,
)

STEPS = [("did they win?", "result", "qa_map_0"), ("was it away?", "opponent", "qa_map_1")]
SQL_TEXT = "SELECT opponent, result FROM w WHERE qa_map_0 = 'yes' AND qa_map_1 = 'yes'"


def test_a_program_is_a_chain_from_the_table_to_an_answer():
    f = from_calls(STEPS, SQL_TEXT, ("which team?", ["opponent", "result"]))
    assert [box.kind for box in f.boxes] == ["table", "map", "map", "sql", "answer"]
    assert f.dom == Relation[:0] and f.cod == Text
    assert f.boxes[1].question == "did they win?" and f.boxes[2].column == "opponent"
    assert f.boxes[3].query == SQL_TEXT and f.boxes[4].columns == ("opponent", "result")
    assert from_calls([], "SELECT 1").cod == Relation


@pytest.mark.parametrize("answer", [None, ("which team?", ["opponent"])])
def test_json_round_trip(answer):
    f = from_calls(STEPS, SQL_TEXT, answer, table="games")
    data = json.loads(json.dumps(to_json(f)))
    assert from_json(data) == f
    assert data["layers"][0] == [0, {"kind": "table", "name": "games"}]


def test_side_by_side_programs_and_swaps_round_trip():
    one = from_calls([], "SELECT 1", ("a?", ["x"]))
    two = from_calls(STEPS[:1], "SELECT 2")
    f = (one @ two) >> TableProgram.swap(Text, Relation) >> (Answer("b?", ["y"]) @ Text)
    assert f.cod == Text @ Text
    assert from_json(json.loads(json.dumps(to_json(f)))) == f


def test_boxes_with_equal_specs_are_equal_and_others_differ():
    assert Map("q?", "a", "b") == Map("q?", "a", "b") != Map("q?", "a", "c")
    assert SQL("SELECT 1") != SQL("SELECT 2")


def test_wiring_errors_name_both_boxes_and_both_types():
    with pytest.raises(WiringError, match=r"cannot compose box \"Answer\('who\?', team\)\" "
                                          r"with box \"Map\('q\?', a -> b\)\": the left side "
                                          r"outputs Text but the right side expects Relation"):
        Table() >> Answer("who?", ["team"]) >> Map("q?", "a", "b")
    with pytest.raises(WiringError, match="the left side outputs Relation but the right side "
                                          "expects Ty()"):
        Table() >> Table()


@pytest.mark.parametrize("build, message", [
    (lambda: Map("", "a", "b"), "a map question is non-empty text"),
    (lambda: Map("q?", "a", "A"), "a map call writes a new column"),
    (lambda: Answer("q?", "team"), "a list of columns"),
    (lambda: Answer("q?", []), "a list of columns"),
    (lambda: SQL(3), "an SQL query is non-empty text"),
    (lambda: from_calls([("q?", "a")], "SELECT 1"), "map step 0 is (question, column, output)"),
    (lambda: from_calls([], "SELECT 1", "q?"), "the answer step is (question, columns)"),
])
def test_bad_boxes_are_refused(build, message):
    with pytest.raises(TableProgramError, match=None) as error:
        build()
    assert message in str(error.value)


@pytest.mark.parametrize("data, message", [
    ([], "an object with lists 'dom' and 'layers'"),
    ({"dom": ["Table"], "layers": []}, "unknown wire types ['Table']"),
    ({"dom": [], "layers": [[0, {"kind": "loop"}]]}, "layer 0: a table-program box is an "
                                                     "object with a kind among"),
    ({"dom": [], "layers": [[0, {"kind": "table"}], [0, {"kind": "sql"}]]},
     "layer 1: bad spec for a sql box"),
    ({"dom": [], "layers": [[0, {"kind": "table", "name": "w"}],
                            [1, {"kind": "sql", "query": "SELECT 1"}]]},
     "layer 1: box SQL does not fit the wires at offset 1"),
])
def test_bad_json_says_where(data, message):
    with pytest.raises(TableProgramError) as error:
        from_json(data)
    assert message in str(error.value)


def test_box_json_is_its_kind_and_spec():
    box = Answer("who?", ["a", "b"])
    assert box_from_json({"kind": "answer", "question": "who?", "columns": ["a", "b"]}) == box
    assert box.spec == {"question": "who?", "columns": ["a", "b"]}
