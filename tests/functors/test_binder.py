"""The Binder executor functor (functors/binder.py): program text -> diagram -> run on SQLite
with a user's model; it agrees with the one-pass executor on every gold program of every
split, keeps the functor law, and counts and caches model calls."""

from __future__ import annotations

import pytest

from diagrammar.diagrams.table_programs import SQL, Answer, Map, Table, from_json, to_json
from diagrammar.functors.binder import Binder, Outcome, program_diagram
from diagrammar.symbolic import binder
from diagrammar.symbolic.binder import BinderError, BinderTimeout, execute, normalize_answer
from diagrammar.symbolic.tables import SPLITS, generate

GAMES = binder.Table(("week", "opponent", "result"), (
    ("1", "at Dallas", "W 24–17"), ("2", "vs. Miami", "lost 3-21"),
    ("3", "@ Denver", "won 30-10 (OT)"), ("4", "Boston (home)", "W 24–17")))


def model(kind, question, cell):
    if question == "did they win?":
        return "yes" if cell.lower().startswith("w") else "no"
    if question == "points?":
        return cell.split()[1].replace("–", "-").split("-")[0]
    return "yes" if cell.startswith(("at ", "@ ")) else "no"


@pytest.mark.parametrize("split", SPLITS)
def test_every_gold_program_runs_through_its_diagram_to_the_gold_answer(split):
    for example in generate(split, 40, seed=5):
        columns, rows = example.table.texts()
        table = binder.Table(columns, rows)
        diagram = program_diagram(example.question.program)
        assert from_json(to_json(diagram)) == diagram
        run = Binder(example.oracle_map(), example.oracle_answer())(diagram, table)
        assert run.answer == normalize_answer(example.question.answer), example.question
        one_pass = execute(example.question.program, table, example.oracle_map(),
                           example.oracle_answer())
        assert run.answer == one_pass.answer
        # the diagram asks every distinct cell of a mapped column; SQLite only those it needs
        assert run.map_calls >= one_pass.map_calls


def test_the_diagram_of_a_program():
    f = program_diagram("SELECT QA('ans@which team?', opponent) FROM w "
                        "WHERE QA('map@did they win?', result) = 'yes' "
                        "ORDER BY QA('map@points?', result) DESC")
    assert f == (Table() >> Map("did they win?", "result", "qa_map_0")
                 >> Map("points?", "result", "qa_map_1")
                 >> SQL("SELECT opponent FROM w WHERE qa_map_0 = 'yes' ORDER BY qa_map_1 DESC")
                 >> Answer("which team?", ["opponent"]))


def test_functor_law_for_composition():
    f = Table() >> Map("did they win?", "result", "won")
    g = SQL("SELECT week FROM w WHERE won = 'yes'")
    run = Binder(model)
    tables = {"w": GAMES}
    whole = run.meaning(f >> g, tables)([])
    stepwise = run.meaning(g, tables)(run.meaning(f, tables)([]))
    assert whole == stepwise
    assert whole[0].rows == ((1,), (3,), (4,))


def test_model_calls_are_cached_and_counted():
    executor = Binder(model, lambda question, table: table.rows[0][0])
    f = program_diagram("SELECT QA('ans@first?', opponent) FROM w "
                        "WHERE QA('map@did they win?', result) = 'yes'")
    first = executor(f, GAMES)
    assert isinstance(first, Outcome) and first.answer == "at dallas"
    assert (first.map_calls, first.answer_calls) == (3, 1)  # "W 24–17" twice: asked once
    again = executor(f, GAMES)
    assert (again.map_calls, again.answer_calls) == (0, 1)


def test_errors_are_clear():
    with pytest.raises(BinderError, match="not a Binder program: only a SELECT query may run"):
        program_diagram("DROP TABLE w")
    with pytest.raises(BinderError, match="no table named 'games' was given; given: w"):
        Binder(model)(Table("games") >> SQL("SELECT 1"), {"w": GAMES})
    with pytest.raises(BinderError, match="no answer_model"):
        Binder(model)(program_diagram("SELECT QA('ans@x?', week) FROM w"), GAMES)
    with pytest.raises(BinderError, match="its columns are week, opponent, result"):
        Binder(model)(program_diagram("SELECT QA('map@x?', venue) FROM w"), GAMES)
    with pytest.raises(BinderTimeout):
        Binder(model, timeout=0.2)(program_diagram(
            "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) "
            "SELECT COUNT(*) FROM r"), GAMES)
