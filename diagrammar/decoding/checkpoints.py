"""Checkpoints: where a ``Check`` box cuts generated text into segments to check.

:func:`find_checkpoint` returns the end offset (in characters) of the first complete
checkpoint in a text, or ``None`` while there is none yet:

- ``"line"``: the first newline (the offset just after it);
- ``"statement"``: the first newline at bracket depth 0 outside string literals (Python-ish:
  a call spread over several lines is one statement);
- ``"sql"``: the first ``;`` outside quotes;
- ``"json"``: the end of the first complete top-level JSON value (its closing bracket or
  quote; a bare number, ``true``, ``false`` or ``null`` ends at the first character after it);
- ``"end"``: never (the text is checked when the generation ends).

The scan is lexical, not a parser: it counts brackets and skips quoted text, so it finds the
place worth checking and leaves deciding whether the segment is right to the checker.

>>> find_checkpoint("line", "x = 1\\ny = 2")
6
>>> find_checkpoint("statement", "f(1,\\n  2)\\nz")
10
>>> find_checkpoint("sql", "SELECT ';' FROM t; SELECT 2;")
18
>>> find_checkpoint("json", ' {"a": [1, "}"]} trailing')
16
>>> find_checkpoint("json", '{"a": 1') is None, find_checkpoint("end", "x\\n") is None
(True, True)
"""

from __future__ import annotations

#: The kinds of checkpoint :func:`find_checkpoint` knows.
CHECKPOINTS = ("line", "statement", "sql", "json", "end")

_OPEN, _CLOSE = "([{", ")]}"


def find_checkpoint(kind: str, text: str) -> int | None:
    """The end offset of the first complete checkpoint of ``kind`` in ``text``, or ``None``.

    Raises:
        ValueError: for an unknown kind.
    """
    if kind == "line":
        at = text.find("\n")
        return None if at < 0 else at + 1
    if kind == "statement":
        return _statement(text)
    if kind == "sql":
        return _sql(text)
    if kind == "json":
        return _json(text)
    if kind == "end":
        return None
    raise ValueError(f"unknown checkpoint {kind!r}; known: {', '.join(CHECKPOINTS)}")


def _statement(text: str) -> int | None:
    depth, quote, index = 0, "", 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 2
                continue
            if text.startswith(quote, index):
                index += len(quote)
                quote = ""
                continue
            if char == "\n" and len(quote) == 1:      # an unterminated one-line string
                quote = ""
                if depth == 0:
                    return index + 1
        elif char in "\"'":
            quote = char * 3 if text.startswith(char * 3, index) else char
            index += len(quote)
            continue
        elif char == "#":
            end = text.find("\n", index)
            if end < 0:
                return None
            index = end
            continue
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth = max(0, depth - 1)
        elif char == "\n" and depth == 0:
            return index + 1
        index += 1
    return None


def _sql(text: str) -> int | None:
    quote = ""
    for index, char in enumerate(text):
        if quote:
            if char == quote:      # a doubled quote ('') closes and reopens: same result
                quote = ""
        elif char in "'\"`":
            quote = char
        elif char == ";":
            return index + 1
    return None


def _json(text: str) -> int | None:
    depth, in_string, escaped, started = 0, False, False, False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                if depth == 0:
                    return index + 1
            continue
        if char == '"':
            in_string, started = True, True
        elif char in "[{":
            depth, started = depth + 1, True
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                return index + 1
        elif depth == 0:
            if char.isspace() or char == ",":
                if started:                           # the end of a bare scalar
                    return index
            else:
                started = True
    return None


__all__ = ["CHECKPOINTS", "find_checkpoint"]
