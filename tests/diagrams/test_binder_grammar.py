"""Binder's SQL grammar bound to a table's columns."""

import pytest

from diagrammar.diagrams.builtin_grammars import binder_sql
from diagrammar.functors.grammar import accepts
from diagrammar.symbolic.tables import SPLITS, generate


def test_every_gold_program_of_every_split_is_in_its_tables_language():
    for split in SPLITS:
        for example in generate(split, 15, seed=7):
            grammar = binder_sql(example.table.columns)
            question = example.question
            for program in (question.program, question.map_program, question.sql_program):
                assert accepts(grammar, program), program


def test_columns_tables_functions_and_prompts_outside_the_language_are_refused():
    grammar = binder_sql(["team", "result"])
    assert accepts(grammar, "SELECT team FROM w WHERE LOWER(result) LIKE 'w%' LIMIT 1")
    assert accepts(grammar, "SELECT QA('ans@who won?', team, result) FROM w")
    assert not accepts(grammar, "SELECT team FROM games")          # another table
    assert not accepts(grammar, "SELECT score FROM w")             # another column
    assert not accepts(grammar, "SELECT SHELL(team) FROM w")       # not an SQLite function
    assert not accepts(grammar, "SELECT QA('ask@x', team) FROM w")  # neither map@ nor ans@
    assert accepts(binder_sql(["team", "home team"]), 'SELECT "home team" FROM w')
    with pytest.raises(ValueError, match="needs the table's columns"):
        binder_sql([])
