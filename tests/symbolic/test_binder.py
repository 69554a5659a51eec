"""Binder programs (symbolic/binder.py): parsing and its refusals, read-only execution with a
time limit, model calls cached per (question, cell), ans calls over sub-tables, the paper's
step-by-step executor, and majority voting."""

from __future__ import annotations

import time

import pytest

from diagrammar.symbolic.binder import (
    BinderError,
    BinderTimeout,
    Cache,
    Table,
    ask,
    coerce,
    execute,
    map_column,
    normalize_answer,
    parse,
    plan,
    run_sql,
    vote,
)

GAMES = Table(("week", "opponent", "result"), (
    ("1", "at Dallas", "W 24–17"), ("2", "vs. Miami", "lost 3-21"),
    ("3", "@ Denver", "won 30-10 (OT)"), ("4", "Boston (home)", "W 24–17"),
    ("5", "at Chicago", "L 10-13")))


def won(cell: str) -> bool:
    return cell.lower().startswith("w")


class Model:
    """A stand-in model that reads the cells with rules, and records what it was asked."""

    def __init__(self):
        self.asked = []

    def __call__(self, kind, question, cell):
        self.asked.append((kind, question, cell))
        if question == "did they win?":
            return "Yes" if won(cell) else "no"
        if question == "was it away?":
            return "yes" if cell.startswith(("at ", "@ ")) else "no"
        if question == "points?":
            return cell.split()[1].replace("–", "-").split("-")[0]
        raise KeyError(question)


def test_map_calls_fill_a_column_one_cell_at_a_time():
    model = Model()
    run = execute("SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes' "
                  "AND QA('map@was it away?', opponent) = 'yes'", GAMES, model)
    assert run.answer == "2"
    assert {kind for kind, _, _ in model.asked} == {"map"}


def test_each_distinct_cell_is_asked_once():
    model = Model()
    run = execute("SELECT week FROM w WHERE QA('map@did they win?', result) = 'yes' "
                  "ORDER BY QA('map@points?', result) DESC, week", GAMES, model)
    assert run.values == [3, 1, 4]
    # "W 24–17" appears twice: 4 distinct results asked "did they win?"; SQLite asks
    # "points?" only of the rows the WHERE keeps, 2 distinct ones
    assert run.map_calls == 6 == len(model.asked) == len(set(model.asked))
    cache = Cache()
    execute("SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes'", GAMES,
            Model(), cache=cache)
    again = execute("SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'no'",
                    GAMES, Model(), cache=cache)
    assert again.map_calls == 0 and again.answer == "2" and cache.calls == 4


def test_sums_read_numbers_from_the_model():
    run = execute("SELECT SUM(QA('map@points?', result)) FROM w "
                  "WHERE QA('map@did they win?', result) = 'yes'", GAMES, Model())
    assert run.values == [24 + 30 + 24]


def test_the_papers_spelling_is_read_too():
    ours = parse("SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes'")
    paper = parse('SELECT COUNT(*) FROM w WHERE QA("map@did they win?"; result) = \'yes\'')
    assert paper.sql == ours.sql and paper.calls == ours.calls
    text = parse("SELECT ';' FROM w WHERE QA('map@a;b', result) = 'x;y'")
    assert text.calls[0].question == "a;b"


def test_parse_lists_the_calls():
    program = parse("SELECT QA('ans@which team?', opponent, result) FROM w "
                    "WHERE QA('map@was it away?', opponent) = 'yes' "
                    "AND QA('MAP@was it away?', w.opponent) = 'yes'")
    assert [(c.kind, c.question, c.columns) for c in program.calls] == [
        ("ans", "which team?", ("opponent", "result")),
        ("map", "was it away?", ("opponent",))]


def test_an_ans_call_answers_from_the_sub_table_it_selects():
    seen = []

    def answer(question, table):
        seen.append((question, table))
        return max(table.rows, key=lambda row: int(row[1].split()[1][:2]))[0]

    run = execute("SELECT QA('ans@who did they beat most soundly?', opponent, result) FROM w "
                  "WHERE QA('map@did they win?', result) = 'yes'", GAMES, Model(), answer)
    assert run.answer == "@ denver" and run.answer_calls == 1
    question, table = seen[0]
    assert question == "who did they beat most soundly?"
    assert table.columns == ("opponent", "result") and len(table.rows) == 3
    grouped = execute("SELECT QA('ans@how many?', week) FROM w "
                      "GROUP BY QA('map@did they win?', result)", GAMES, Model(),
                      lambda question, table: str(len(table.rows)))
    assert sorted(grouped.values) == [2, 3] and grouped.answer_calls == 2


@pytest.mark.parametrize("program, message", [
    ("DELETE FROM w", "only a SELECT query may run, not DELETE"),
    ("SELECT * FROM w; DROP TABLE w", "expected one statement, found 2"),
    ("UPDATE w SET week = 1", "only a SELECT query may run, not UPDATE"),
    ("import os", "only a SELECT query may run"),
    ("__import__('os').system('touch canary')", "only a SELECT query may run"),
    ("[row for row in w]", "not a Binder program"),
    ("lambda: open('/etc/passwd')", "not a Binder program"),
    ("SELECT load_extension('evil') FROM w", "the function load_extension is not allowed"),
    ("SELECT QA('ask@what?', result) FROM w", "'map@<question>' or 'ans@<question>'"),
    ("SELECT QA(result, 'map@what?') FROM w", "starts with a string"),
    ("SELECT QA('map@what?') FROM w", "a map call reads exactly one column, not 0"),
    ("SELECT QA('map@what?', week, result) FROM w", "exactly one column, not 2"),
    ("SELECT QA('map@what?', week + 1) FROM w", "reads columns by name"),
    ("SELECT QA('map@what?', QA('map@who?', week)) FROM w", "reads columns by name"),
    ("SELECT QA('map@ ', week) FROM w", "not 'map@ '"),
])
def test_bad_programs_are_refused_with_a_reason(program, message):
    with pytest.raises(BinderError, match=None) as error:
        execute(program, GAMES, Model())
    assert message in str(error.value)


def test_an_unknown_column_is_named():
    with pytest.raises(BinderError, match="reads column 'score', which the table does not "
                                          "have; its columns are week, opponent, result"):
        execute("SELECT QA('map@points?', score) FROM w", GAMES, Model())
    with pytest.raises(BinderError, match="a column the table does not have: venue"):
        execute("SELECT venue FROM w", GAMES, Model())


def test_a_query_that_runs_forever_hits_the_time_limit():
    start = time.perf_counter()
    with pytest.raises(BinderTimeout, match="ran past the 0.3 s limit"):
        execute("WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) "
                "SELECT COUNT(*) FROM r", GAMES, Model(), timeout=0.3)
    assert time.perf_counter() - start < 3


def test_model_text_is_data_never_code(tmp_path):
    canary = tmp_path / "canary"
    evil = f"__import__('os').system('touch {canary}'); DROP TABLE w; --"
    run = execute("SELECT QA('map@what?', week) FROM w", GAMES, lambda *args: evil)
    assert run.values == [evil] * 5 and not canary.exists()
    assert execute("SELECT COUNT(*) FROM w", GAMES, Model()).answer == "5"


def test_a_failing_model_is_named_with_its_question_and_cell():
    def broken(kind, question, cell):
        raise RuntimeError("out of tokens")

    with pytest.raises(BinderError, match=r"the model failed on QA\('map@x\?'\) for cell "
                                          r"'1': RuntimeError: out of tokens"):
        execute("SELECT QA('map@x?', week) FROM w", GAMES, broken)
    with pytest.raises(BinderError, match="not text"):
        execute("SELECT QA('map@x?', week) FROM w", GAMES, lambda *args: 3)
    with pytest.raises(BinderError, match="no answer_model"):
        execute("SELECT QA('ans@x?', week) FROM w", GAMES, Model())


def test_the_step_by_step_plan_agrees_with_the_one_pass_execution():
    program = ("SELECT QA('ans@best?', opponent, result) FROM w "
               "WHERE QA('map@did they win?', result) = 'yes' "
               "AND QA('map@was it away?', opponent) = 'yes'")
    steps = plan(program)
    assert [step[:2] for step in steps.maps] == [("did they win?", "result"),
                                                 ("was it away?", "opponent")]
    assert steps.answer == ("best?", ("opponent", "result"))
    table = GAMES
    for question, column, output in steps.maps:
        table = map_column(table, question, column, output, Model())
    selected = run_sql(table, steps.sql)
    answer = lambda question, sub: sub.rows[-1][0]  # noqa: E731
    assert ask(selected, *steps.answer, answer) == "@ Denver"
    assert execute(program, GAMES, Model(), answer).answer == "@ denver"
    with pytest.raises(BinderError, match="only thing the outer SELECT selects"):
        plan("SELECT week, QA('ans@x?', result) FROM w")
    with pytest.raises(BinderError, match="plain SQL"):
        run_sql(GAMES, "SELECT QA('map@x?', week) FROM w")


def test_answers_are_coerced_and_normalised():
    assert coerce("1,234") == 1234 and coerce("-2.5") == -2.5 and coerce("NO") == "no"
    assert coerce("12 points") == "12 points"
    assert normalize_answer("3.00") == normalize_answer(3) == "3"
    assert normalize_answer([2.0 / 3]) == "0.67"
    assert normalize_answer("  The  Dallas ") == "the dallas"
    assert normalize_answer(True) == "yes" and normalize_answer(None) == ""


def test_voting_takes_the_majority_and_breaks_ties_by_first_answer():
    assert vote(["4", "3", 3, "3.0", None]).answer == "3"
    assert vote(["4", "3", 3, "3.0", None]).counts == {"4": 1, "3": 3}
    assert vote(["Dallas", "miami", "MIAMI", "dallas "]).answer == "dallas"
    assert vote(["miami", "Dallas", "MIAMI", "dallas "]).answer == "miami"
    assert vote([None, None]).answer is None
    for _ in range(3):  # the same inputs, the same winner
        assert vote(["b", "a"]).answer == "b"


def test_tables_are_checked():
    with pytest.raises(BinderError, match="row 0 has 1 cells; the table has 2 columns"):
        Table(("a", "b"), (("x",),))
    with pytest.raises(BinderError, match="the table already has a column 'WEEK'"):
        map_column(GAMES, "x?", "result", "WEEK", Model())


def test_only_a_call_of_qa_reads_the_papers_spelling():
    assert parse('SELECT COUNT(*) FROM w WHERE qa ("map@won?"; result) = 1').calls[0].columns \
        == ("result",)
    with pytest.raises(BinderError, match="not a Binder program"):
        parse('SELECT COUNT(*) FROM w WHERE xqa("map@won?"; result) = 1')


def test_sampled_programs_vote_and_share_their_model_calls():
    from diagrammar.symbolic.binder import vote_programs

    model = Model()
    result, outcomes = vote_programs([
        "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes'",
        "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'no'",
        "SELECT 5 - COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'no'",
        "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', venue) = 'yes'",
    ], GAMES, model)
    assert (result.answer, result.count) == ("3", 2)
    assert isinstance(outcomes[3], BinderError) and "venue" in str(outcomes[3])
    assert len(model.asked) == 4  # four distinct results, asked once for all programs
