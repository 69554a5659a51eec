"""SQL checked with sqlglot and read-only SQLite: results and expected results, refusal of
everything but one SELECT (by the parser gate and, behind it, by the authorizer and the
read-only connection), time limits, dialects; the database file never changes."""

from __future__ import annotations

import sqlite3

import pytest

from diagrammar.symbolic import SQLChecker


def test_rows_and_expected_results(database):
    checker = SQLChecker(database)
    verdict = checker.check("SELECT name, price FROM fruit WHERE stock > 0 ORDER BY price")
    assert verdict.status == "pass" and verdict.reason == "ran; 2 rows"
    assert verdict.detail["rows"] == [("apple", 1.5), ("fig", 3.25)]
    assert verdict.detail["columns"] == ["name", "price"]
    expected = SQLChecker(database, expected=[("fig",), ("apple",)])
    assert expected.check("SELECT name FROM fruit WHERE stock > 0").status == "pass"
    ordered = expected.check("SELECT name FROM fruit WHERE stock > 0 ORDER BY name")
    assert ordered.reason.endswith("expected one: the rows are in a different order")
    assert SQLChecker(database, expected=[("fig",), ("apple",)], ordered=False).check(
        "SELECT name FROM fruit WHERE stock > 0 ORDER BY name").status == "pass"
    assert expected.check("SELECT name FROM fruit").reason.endswith("3 rows, expected 2")
    assert expected.check("SELECT 'fig' UNION ALL SELECT 'pear'").reason.endswith("different rows")


def test_gold_query(database):
    gold = "SELECT fruit, SUM(quantity) FROM orders GROUP BY fruit"
    checker = SQLChecker(database, expected=gold)
    assert checker.check("SELECT o.fruit, SUM(o.quantity) FROM orders AS o "
                         "JOIN fruit AS f ON f.name = o.fruit GROUP BY o.fruit").status == "pass"
    assert checker.check("SELECT fruit, COUNT(*) FROM orders GROUP BY fruit").status == "fail"
    refused = SQLChecker(database, expected="DELETE FROM fruit")
    assert refused.check("SELECT 1").status == "unknown"


@pytest.mark.parametrize("query, reason", [
    ("SELECT name FROM", "syntax error at line 1, column 16"),
    ("SELECT * FROM fruit WHERE name = 'unterminated", "could not read the query"),
    ("", "expected one statement, found 0"),
    ("SELECT 1; SELECT 2", "expected one statement, found 2"),
    ("SELECT 1; DROP TABLE fruit", "expected one statement, found 2"),
    ("DROP TABLE fruit", "not DROP"),
    ("DELETE FROM fruit", "not DELETE"),
    ("UPDATE fruit SET price = 0", "not UPDATE"),
    ("INSERT INTO fruit VALUES ('kiwi', 1, 1)", "not INSERT"),
    ("CREATE TABLE t(a)", "not CREATE"),
    ("ATTACH DATABASE 'other.db' AS other", "not ATTACH"),
    ("DETACH other", "not DETACH"),
    ("PRAGMA writable_schema = 1", "not PRAGMA"),
    ("VACUUM", "not VACUUM"),
    ("BEGIN", "not TRANSACTION"),
    ("SELECT * INTO copy FROM fruit", "it contains INTO"),
    ("SELECT load_extension('evil')", "load_extension is not allowed"),
    ("SELECT * FROM nowhere", "SQLite: no such table: nowhere"),
    ("SELECT zeroblob(1000000000)", "string or blob too big"),
    ("SELECT * FROM pragma_table_info('fruit')", "is not allowed"),
    ("SELECT " + "(" * 100 + "1" + ")" * 100, "brackets nest 100 deep"),
    ("SELECT 1 " + "x" * 30_000, "the limit is 20000"),
])
def test_refusals(database, digest, query, reason):
    before = digest(database)
    verdict = SQLChecker(database).check(query)
    assert verdict.status == "fail"
    assert reason in verdict.reason, verdict.reason
    assert digest(database) == before


def test_the_engine_refuses_writes_even_past_the_parser(database, digest, sandbox):
    """The authorizer and the read-only connection are a second line: run writes directly."""
    before = digest(database)
    checker = SQLChecker(database)
    canary = sandbox / "attached.db"
    for sql in ["DELETE FROM fruit", "INSERT INTO fruit VALUES ('kiwi', 1, 1)",
                "DROP TABLE orders", "CREATE TABLE t(a)", f"ATTACH DATABASE '{canary}' AS x",
                "PRAGMA query_only = OFF", "UPDATE fruit SET stock = 0"]:
        result = checker._run(sql)
        assert result.status == "fail", sql
        assert "not allowed" in result.reason or "SQLite:" in result.reason
    assert not canary.exists()
    assert digest(database) == before


def test_connection_factory_and_dialects(tmp_path):
    path = tmp_path / "m.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t(a INT)")
        connection.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    connection.close()
    checker = SQLChecker(lambda: sqlite3.connect(path), dialect="mysql", expected=[(2,)])
    verdict = checker.check("SELECT `a` FROM t ORDER BY `a` DESC LIMIT 1")
    assert verdict.status == "pass", verdict.reason
    assert verdict.detail["sql"] == 'SELECT "a" FROM t ORDER BY "a" DESC LIMIT 1'
    assert SQLChecker(lambda: sqlite3.connect(path)).check("DELETE FROM t").status == "fail"
    with pytest.raises(FileNotFoundError):
        SQLChecker(tmp_path / "missing.db")


def test_time_limit_and_row_cap(database):
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT COUNT(*) FROM n")
    verdict = SQLChecker(database, timeout=0.2).check(endless)
    assert verdict.status == "unknown"
    assert verdict.reason == "the query ran past the 0.2 s limit"
    assert verdict.seconds < 1.5
    many = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 50) "
            "SELECT i FROM n")
    capped = SQLChecker(database, max_rows=10).check(many)
    assert capped.status == "pass" and capped.detail["truncated"]
    assert len(capped.detail["rows"]) == 10
    assert SQLChecker(database, max_rows=10, expected=[(1,)]).check(many).status == "unknown"
