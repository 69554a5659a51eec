"""SQL a model wrote, parsed with sqlglot and run read-only on SQLite: :class:`SQLChecker`.

A query passes three gates before any row comes back:

1. **sqlglot** parses it (a syntax error is a ``fail`` with its line and column) and the
   checker accepts exactly one ``SELECT`` (or ``UNION``/``INTERSECT``/``EXCEPT`` of them, or
   ``VALUES``) with no writing, schema, ``ATTACH``, ``PRAGMA`` or transaction statement
   anywhere inside;
2. **SQLite** opens the database read-only (``mode=ro``), with ``PRAGMA query_only``, zero
   attachable databases and capped string lengths;
3. an **authorizer** allows only reads, selects, recursive CTEs and harmless functions, and a
   **progress handler** (backed by a watchdog thread) interrupts the query at its time limit
   (``unknown``).

The rows come back in ``detail``; with ``expected`` rows (or a gold query) the verdict says
whether they match (as a multiset, or in order when the query has a top-level ``ORDER BY``).

>>> import sqlite3, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "shop.db")
>>> with sqlite3.connect(path) as db:
...     _ = db.executescript("CREATE TABLE fruit(name TEXT, price REAL);"
...                          "INSERT INTO fruit VALUES ('apple', 1.5), ('pear', 2.0);")
>>> db.close()
>>> checker = SQLChecker(path, expected=[("pear",)])
>>> checker.check("SELECT name FROM fruit WHERE price > 1.8").status
'pass'
>>> checker.check("SELECT name FROM fruit").reason
'the result differs from the expected one: 2 rows, expected 1'
>>> checker.check("DELETE FROM fruit").reason
'only a SELECT query may run, not DELETE'
>>> checker.check("SELECT name FROM fruit; DROP TABLE fruit").reason
'expected one statement, found 2'
>>> checker.check("SELECT name FROM").reason
'syntax error at line 1, column 16: Expected table name...'
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError

from diagrammar.symbolic.limits import Deadline, Limits, watchdog
from diagrammar.symbolic.verdict import BaseChecker, Verdict

_QUERIES = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)
_FORBIDDEN = tuple(getattr(exp, name) for name in (
    "DML", "DDL", "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command",
    "Pragma", "Attach", "Detach", "Into", "Transaction", "Commit", "Rollback", "Set", "Use",
    "Copy", "TruncateTable", "LoadData", "Analyze", "Describe", "Show", "Lock")
    if hasattr(exp, name))
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                    getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
_ACTION_NAMES = {getattr(sqlite3, f"SQLITE_{name}"): name.lower().replace("_", " ") for name in (
    "ALTER_TABLE", "ANALYZE", "ATTACH", "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX",
    "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER", "CREATE_TEMP_VIEW", "CREATE_TRIGGER",
    "CREATE_VIEW", "CREATE_VTABLE", "DELETE", "DETACH", "DROP_INDEX", "DROP_TABLE",
    "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW",
    "DROP_TRIGGER", "DROP_VIEW", "DROP_VTABLE", "INSERT", "PRAGMA", "REINDEX", "SAVEPOINT",
    "TRANSACTION", "UPDATE") if hasattr(sqlite3, f"SQLITE_{name}")}
SQL_LIMITS = Limits(max_chars=20_000, max_depth=64)
"""Default limits on a query's text."""

FORBIDDEN_FUNCTIONS = frozenset({"load_extension", "readfile", "writefile", "edit",
                                 "fts3_tokenizer", "sqlite_dbpage"})


class SQLChecker(BaseChecker):
    """Checks an SQL query against a SQLite database (a file path, opened read-only, or a
    ``connect`` function returning a fresh connection that the checker then owns and closes).

    ``dialect`` is the dialect the model writes (sqlglot's name); other than ``"sqlite"``,
    the query is transpiled to SQLite before it runs. ``expected`` is a list of rows, or the
    text of a gold query run on the same database; ``ordered`` forces (True) or ignores
    (False) row order, None follows the query's top-level ``ORDER BY``. ``timeout`` bounds
    the run in seconds; at most ``max_rows`` rows are kept."""

    name = "sql"
    checkpoint = "sql"

    def __init__(self, database: str | os.PathLike | Callable[[], sqlite3.Connection], *,
                 dialect: str = "sqlite", expected: Sequence[Sequence[Any]] | str | None = None,
                 ordered: bool | None = None, timeout: float = 1.0, max_rows: int = 1000,
                 limits: Limits = SQL_LIMITS):
        if callable(database):
            self.connect = database
            self.database = getattr(database, "__name__", "connection")
        else:
            path = Path(database).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no database at {path}")
            uri = f"{path.as_uri()}?mode=ro"
            self.connect = lambda: sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.database = str(path)
        self.dialect, self.ordered, self.timeout = dialect, ordered, timeout
        self.max_rows, self.limits = max_rows, limits
        self.expected = expected
        self._gold: list[tuple] | None = None if isinstance(expected, str) or expected is None \
            else [tuple(row) for row in expected]

    def parse(self, text: str) -> tuple[exp.Expression | None, str]:
        """The single query in ``text`` and the SQLite text to run, or (None, reason)."""
        reason = self.limits.check_text(text, quotes="'\"`")
        if reason:
            return None, reason
        try:
            parsed = sqlglot.parse(text, read=self.dialect)
            statements = [node for node in parsed if node is not None]
        except ParseError as error:
            first = error.errors[0] if error.errors else {}
            where = (f" at line {first.get('line')}, column {first.get('col')}"
                     if first.get("line") is not None else "")
            description = str(first.get("description", error)).split(". ")[0].split(" but got")[0]
            return None, f"syntax error{where}: {description}"
        except TokenError as error:
            return None, f"could not read the query: {str(error)[:120]}"
        except RecursionError:
            return None, "the query is nested too deeply to parse"
        except (SqlglotError, ValueError) as error:
            return None, f"could not parse the query: {str(error)[:120]}"
        if len(statements) != 1:
            return None, f"expected one statement, found {len(statements)}"
        query = statements[0]
        kind = _kind(query)
        if not isinstance(query, _QUERIES):
            return None, f"only a SELECT query may run, not {kind}"
        for node in query.walk():
            if isinstance(node, _FORBIDDEN):
                return None, f"only a SELECT query may run; it contains {_kind(node)}"
            if (isinstance(node, exp.Anonymous | exp.Func)
                    and _function_name(node) in FORBIDDEN_FUNCTIONS):
                return None, f"the function {_function_name(node)} is not allowed"
        if self.dialect == "sqlite":
            return query, text
        try:
            return query, query.sql(dialect="sqlite")
        except (SqlglotError, ValueError) as error:
            return None, f"could not translate the query to SQLite: {str(error)[:120]}"

    def _check(self, text: str) -> Verdict:
        query, sql = self.parse(text)
        if query is None:
            return Verdict("fail", sql)
        result = self._run(sql)
        if isinstance(result, Verdict):
            return result
        columns, rows, truncated = result
        detail = {"sql": sql, "columns": columns, "rows": rows, "truncated": truncated}
        if self.expected is None:
            count = f"{len(rows)}{'+' if truncated else ''}"
            return Verdict("pass", f"ran; {count} row{'s' * (len(rows) != 1)}", detail=detail)
        expected = self._expected()
        if isinstance(expected, Verdict):
            return expected
        if truncated:
            return Verdict("unknown", f"more than {self.max_rows} rows; too many to compare",
                           detail=detail)
        ordered = self.ordered if self.ordered is not None else query.args.get("order") is not None
        if ordered:
            same = rows == expected
        else:
            same = Counter(rows) == Counter(expected)
        if same:
            return Verdict("pass", "the result matches the expected one", detail=detail)
        difference = (f"{len(rows)} row{'s' * (len(rows) != 1)}, expected {len(expected)}"
                      if len(rows) != len(expected) else
                      "the rows are in a different order" if Counter(rows) == Counter(expected)
                      else "different rows")
        return Verdict("fail", f"the result differs from the expected one: {difference}",
                       detail=detail)

    def _expected(self) -> list[tuple] | Verdict:
        if self._gold is None:
            query, sql = self.parse(self.expected)
            if query is None:
                return Verdict("unknown", f"the gold query is refused: {sql}")
            result = self._run(sql)
            if isinstance(result, Verdict):
                return Verdict("unknown", f"the gold query did not run: {result.reason}")
            self._gold = result[1]
        return self._gold

    def _run(self, sql: str) -> tuple[list[str], list[tuple], bool] | Verdict:
        try:
            connection = self.connect()
        except sqlite3.Error as error:
            return Verdict("unknown", f"could not open the database: {error}")
        denied: list[str] = []
        deadline = Deadline(self.timeout)
        try:
            connection.execute("PRAGMA query_only = ON")
            for limit, value in (("ATTACHED", 0), ("LENGTH", 10_000_000),
                                 ("SQL_LENGTH", 4 * self.limits.max_chars + 1000),
                                 ("EXPR_DEPTH", 4 * self.limits.max_depth),
                                 ("COMPOUND_SELECT", 64)):
                connection.setlimit(getattr(sqlite3, f"SQLITE_LIMIT_{limit}"), value)
            connection.set_authorizer(_authorizer(denied))
            connection.set_progress_handler(lambda: int(deadline.expired()), 1000)
            with watchdog(self.timeout + 0.05, connection.interrupt):
                cursor = connection.execute(sql)
                rows = cursor.fetchmany(self.max_rows + 1)
            columns = [column[0] for column in cursor.description or ()]
        except sqlite3.Error as error:
            message = str(error)
            if deadline.expired() or "interrupted" in message:
                return Verdict("unknown", f"the query ran past the {self.timeout:g} s limit")
            if denied:
                return Verdict("fail", f"the query tries to {denied[0]}, which is not allowed")
            return Verdict("fail", f"SQLite: {message}")
        finally:
            connection.close()
        truncated = len(rows) > self.max_rows
        return columns, [tuple(row) for row in rows[: self.max_rows]], truncated


def _authorizer(denied: list[str]) -> Callable[..., int]:
    def authorize(action: int, first: str | None, second: str | None, database: str | None,
                  trigger: str | None) -> int:
        if action in _ALLOWED_ACTIONS:
            if action == sqlite3.SQLITE_FUNCTION and (second or "").lower() in FORBIDDEN_FUNCTIONS:
                denied.append(f"call {second}")
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        target = f" {first}" if first else ""
        denied.append(_ACTION_NAMES.get(action, f"perform action {action}") + target)
        return sqlite3.SQLITE_DENY

    return authorize


def _kind(node: exp.Expression) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return type(node).__name__.upper()


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower() if hasattr(node, "sql_name") else type(node).__name__.lower()
