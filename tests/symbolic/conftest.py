"""Fixtures of the symbolic checkers' tests: a small SQLite database, and a canary file that
must never appear (it would, if any checker executed the text it was given)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sql") / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE fruit(name TEXT, price REAL, stock INT);"
            "INSERT INTO fruit VALUES ('apple', 1.5, 10), ('pear', 2.0, 0), ('fig', 3.25, 4);"
            "CREATE TABLE orders(id INT, fruit TEXT, quantity INT);"
            "INSERT INTO orders VALUES (1, 'apple', 3), (2, 'fig', 1), (3, 'apple', 2);")
    connection.close()
    return path


@pytest.fixture(scope="module")
def digest():
    """A function giving a file's SHA-256, to prove that a database did not change."""
    return lambda path: hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A folder for canaries: bad inputs name files in it that only execution would create."""
    return tmp_path_factory.mktemp("canary")
