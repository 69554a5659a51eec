"""Built-in grammars: JSON, arithmetic, a SQLite ``SELECT`` subset and a Python subset.

Each is a :class:`~diagrammar.diagrams.grammar.Grammar` written with the expression algebra,
so it is syntax like any other diagram: the functors of :mod:`diagrammar.functors.grammar`
turn it into Lark for llguidance (:func:`~diagrammar.functors.grammar.to_spec`) or GBNF for
xgrammar / llama.cpp, and parse outputs into derivations.

>>> sorted(BUILTIN_GRAMMARS)
['arithmetic', 'json', 'python', 'python_unrolled', 'sql_select']
>>> builtin("json").start, builtin("arithmetic")["atom"] is not None
('value', True)

Python's blocks are marked by indentation, which no context-free grammar states directly:
Python's own tokenizer (and Lark's ``Indenter``) turns line starts into INDENT/DEDENT tokens
with a stack. Two forms are given. :func:`python_subset` is that grammar, with the
:class:`~diagrammar.diagrams.grammar.Indentation` post-lexer in its syntax; ``lark`` parses
with it, but llguidance and GBNF have no post-lexer and refuse it. :func:`python_unrolled` is
the engine form: a rule per nesting depth up to ``max_depth`` whose lines start with exactly
that many indentation units, spaces handled explicitly after each lexeme (not ``%ignore``d, so
a line cannot start with extra spaces). This is SynCode's observation made static: the
indentation allowed at a line start is determined by the enclosing blocks, so a bounded
depth is a context-free grammar.

>>> python_unrolled(max_depth=2)["suite_2"]
Ref(name='simple_stmt')
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence

from diagrammar.diagrams.grammar import (
    Alt,
    Expr,
    Grammar,
    Indentation,
    Literal,
    Ref,
    Refs,
    identifier,
    is_terminal_name,
)
from diagrammar.diagrams.grammar import Pattern as P

__all__ = [
    "BUILTIN_GRAMMARS",
    "SQL_FUNCTIONS",
    "SQL_KEYWORDS",
    "arithmetic",
    "binder_sql",
    "builtin",
    "json_grammar",
    "python_subset",
    "python_unrolled",
    "sql_select",
]

r = Refs()


def _list(item: Expr, separator: str = ",", trailing: bool = False) -> Expr:
    body = item + (separator + item).star()
    return body + Literal(separator).opt() if trailing else body


def json_grammar() -> Grammar:
    """JSON (RFC 8259): strict strings and numbers, white space between lexemes.

    >>> print(json_grammar()["object"])
    "{" (pair ("," pair)*)? "}"
    """
    return Grammar("value", {
        "value": r.object | r.array | r.STRING | r.NUMBER | "true" | "false" | "null",
        "object": "{" + _list(r.pair).opt() + "}",
        "pair": r.STRING + ":" + r.value,
        "array": "[" + _list(r.value).opt() + "]",
        "STRING": P(r'"([^"\\\x00-\x1f]|\\(["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'),
        "NUMBER": P(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"),
    }, ignore=(P(r"[ \t\n\r]+"),))


def arithmetic() -> Grammar:
    """Arithmetic expressions: ``+ - * / ^``, unary signs, parentheses, names and calls.
    Left-recursive, as Earley parsers (lark, llguidance) prefer.

    >>> print(arithmetic()["expr"])
    expr "+" term | expr "-" term | term
    """
    return Grammar("expr", {
        "expr": r.expr + "+" + r.term | r.expr + "-" + r.term | r.term,
        "term": r.term + "*" + r.factor | r.term + "/" + r.factor | r.factor,
        "factor": "-" + r.factor | "+" + r.factor | r.power,
        "power": r.atom + ("^" + r.factor).opt(),
        "atom": r.NUMBER | r.NAME | r.NAME + "(" + _list(r.expr).opt() + ")" | "(" + r.expr + ")",
        "NUMBER": P(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?"),
        "NAME": P(r"[A-Za-z_][A-Za-z0-9_]*"),
    }, ignore=(P(r"[ \t]+"),))


def _kw(*words: str) -> Expr:
    """Case-insensitive SQL keywords in sequence."""
    items = [Literal(w, ignore_case=True) for w in words]
    out = items[0]
    for item in items[1:]:
        out = out + item
    return out


#: The keywords :func:`sql_select` reserves (they are not identifiers unless quoted).
SQL_KEYWORDS = (
    "ALL", "AND", "AS", "ASC", "BETWEEN", "BY", "CASE", "CAST", "CROSS", "DESC", "DISTINCT",
    "ELSE", "END", "EXCEPT", "EXISTS", "FROM", "GLOB", "GROUP", "HAVING", "IN", "INNER",
    "INTERSECT", "IS", "ISNULL", "JOIN", "LEFT", "LIKE", "LIMIT", "NATURAL", "NOT", "NOTNULL",
    "NULL", "OFFSET", "ON", "OR", "ORDER", "OUTER", "SELECT", "THEN", "UNION", "USING", "WHEN",
    "WHERE",
)


def sql_select() -> Grammar:
    """A SQLite ``SELECT`` subset: joins, ``WHERE``, ``GROUP BY``/``HAVING``, ``ORDER BY``,
    ``LIMIT``/``OFFSET``, compound selects, sub-queries, ``CASE``, ``CAST``, ``IN``,
    ``LIKE``, ``BETWEEN``, ``IS [NOT]``; keywords in any case; comments ``--``.

    Identifiers exclude the keywords this grammar uses (:data:`SQL_KEYWORDS`, any case) unless
    quoted, so ``SELECT from FROM t`` is rejected as SQLite rejects it.

    >>> print(sql_select()["limit_clause"])
    "LIMIT"i expr (("OFFSET"i | ",") expr)?
    """
    k = _kw
    return Grammar("statement", {
        "statement": r.select_stmt + Literal(";").opt(),
        "select_stmt": r.select_core + (r.compound_op + r.select_core).star()
        + r.order_by.opt() + r.limit_clause.opt(),
        "compound_op": k("UNION") + k("ALL").opt() | k("INTERSECT") | k("EXCEPT"),
        "select_core": k("SELECT") + (k("DISTINCT") | k("ALL")).opt() + _list(r.result_column)
        + (k("FROM") + r.join_source).opt() + (k("WHERE") + r.expr).opt() + r.group_by.opt(),
        "result_column": Literal("*") | r.NAME + "." + "*" | r.expr + r.alias.opt(),
        "alias": k("AS").opt() + r.NAME,
        "join_source": r.table_or_subquery
        + (r.join_op + r.table_or_subquery + r.join_constraint.opt()).star(),
        "table_or_subquery": r.NAME + ("." + r.NAME).opt() + r.alias.opt()
        | "(" + r.select_stmt + ")" + r.alias.opt(),
        "join_op": Literal(",") | k("NATURAL").opt()
        + (k("LEFT") + k("OUTER").opt() | k("INNER") | k("CROSS")).opt() + k("JOIN"),
        "join_constraint": k("ON") + r.expr | k("USING") + "(" + _list(r.NAME) + ")",
        "group_by": k("GROUP", "BY") + _list(r.expr) + (k("HAVING") + r.expr).opt(),
        "order_by": k("ORDER", "BY") + _list(r.ordering_term),
        "ordering_term": r.expr + (k("ASC") | k("DESC")).opt(),
        "limit_clause": k("LIMIT") + r.expr + ((k("OFFSET") | ",") + r.expr).opt(),
        "expr": r.expr + k("OR") + r.and_expr | r.and_expr,
        "and_expr": r.and_expr + k("AND") + r.not_expr | r.not_expr,
        "not_expr": k("NOT") + r.not_expr | r.predicate,
        "predicate": r.sum + (r.comparison_op + r.sum).star()
        | r.sum + k("NOT").opt() + k("IN") + "(" + (r.select_stmt | _list(r.expr)) + ")"
        | r.sum + k("NOT").opt() + (k("LIKE") | k("GLOB")) + r.sum
        | r.sum + k("NOT").opt() + k("BETWEEN") + r.sum + k("AND") + r.sum
        | r.sum + k("IS") + k("NOT").opt() + r.sum
        | r.sum + (k("ISNULL") | k("NOTNULL") | k("NOT", "NULL")),
        "comparison_op": Literal("=") | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=",
        "sum": r.sum + (Literal("+") | "-" | "||") + r.product | r.product,
        "product": r.product + (Literal("*") | "/" | "%") + r.unary | r.unary,
        "unary": (Literal("-") | "+") + r.unary | r.primary,
        "primary": r.literal | r.column_ref | r.function_call | "(" + r.expr + ")"
        | "(" + r.select_stmt + ")" | r.case_expr | k("EXISTS") + "(" + r.select_stmt + ")"
        | k("CAST") + "(" + r.expr + k("AS") + r.NAME + ")",
        "function_call": r.NAME + "(" + (k("DISTINCT").opt() + _list(r.expr) | "*").opt() + ")",
        "case_expr": k("CASE") + r.expr.opt() + (k("WHEN") + r.expr + k("THEN") + r.expr).plus()
        + (k("ELSE") + r.expr).opt() + k("END"),
        "column_ref": r.NAME + ("." + r.NAME).opt(),
        "literal": r.NUMBER | r.STRING | k("NULL") | k("TRUE") | k("FALSE")
        | k("CURRENT_DATE") | k("CURRENT_TIME") | k("CURRENT_TIMESTAMP"),
        "NAME": identifier(SQL_KEYWORDS, ignore_case=True)
        | P(r'"([^"]|"")+"|`[^`]+`|\[[^\]]+\]'),
        "STRING": P(r"'([^']|'')*'"),
        "NUMBER": P(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?"
                    r"|0[xX][0-9a-fA-F]+"),
    }, ignore=(P(r"[ \t\n\r]+"), P(r"--[^\n]*")))


# --------------------------------------------------------------------------------- Python



#: SQLite functions a Binder program may call besides ``QA`` (:func:`binder_sql`).
SQL_FUNCTIONS = ("COUNT", "SUM", "AVG", "MIN", "MAX", "TOTAL", "ABS", "ROUND", "LENGTH",
                 "LOWER", "UPPER", "SUBSTR", "INSTR", "REPLACE", "TRIM", "COALESCE", "IFNULL")


def binder_sql(columns: Sequence[str], table: str = "w", *,
               leading_space: bool = False) -> Grammar:
    """Binder's language for one table: :func:`sql_select` over the single table ``table``
    whose column references are its ``columns`` (bare, or double-quoted), whose functions
    are :data:`SQL_FUNCTIONS` (any case) and Binder's model calls
    ``QA('map@<question>', column)`` and ``QA('ans@<question>', column, ...)``. A
    schema-bound grammar, as constrained decoders of SQL bind theirs (no column or table the
    table lacks can be written). ``leading_space``: the text may start with one space (for
    tokenizers whose words carry the space before them: the engines allow ignored white
    space only *between* lexemes).

    >>> from diagrammar.functors.grammar import accepts
    >>> grammar = binder_sql(["team", "result"])
    >>> accepts(grammar, "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', result) = 'yes'")
    True
    >>> accepts(grammar, "SELECT score FROM w"), accepts(grammar, "SELECT QA('x', team) FROM w")
    (False, False)
    >>> accepts(binder_sql(["team"], leading_space=True), " SELECT team FROM w")
    True
    """
    if not columns:
        raise ValueError("a Binder grammar needs the table's columns")
    base, k = sql_select(), _kw
    column: Expr = Alt(tuple(Literal(name) if _BARE.fullmatch(name) else Literal(f'"{name}"')
                             for name in columns))
    rules = dict(base.rules)
    rules.update({
        "table_or_subquery": Literal(table) + r.alias.opt() | "(" + r.select_stmt + ")"
        + r.alias.opt(),
        "column_ref": column,
        "result_column": Literal("*") | Literal(table) + "." + "*" | r.expr + r.alias.opt(),
        "function_call": r.FUNCTION + "(" + (k("DISTINCT").opt() + _list(r.expr) | "*").opt()
        + ")" | r.model_call,
        "model_call": Literal("QA") + "(" + r.PROMPT + ("," + column).plus() + ")",
        "join_constraint": k("ON") + r.expr,
    })
    terminals = dict(base.terminals)
    terminals["FUNCTION"] = Alt(tuple(Literal(name, ignore_case=True)
                                      for name in SQL_FUNCTIONS))
    terminals["PROMPT"] = P(r"'(map|ans)@([^']|'')*'")
    if leading_space:
        rules["spaced_statement"] = Literal(" ").opt() + r.statement
    return Grammar("spaced_statement" if leading_space else "statement",
                   {**rules, **terminals}, ignore=base.ignore, allow_unreachable=True)


_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _python_expressions(name: Expr) -> dict[str, Expr]:
    """Python expressions and simple statements (no line structure), shared by both forms."""
    aug = [Literal(op) for op in ("+=", "-=", "*=", "/=", "//=", "%=", "**=", "@=", "&=",
                                  "|=", "^=", "<<=", ">>=")]
    return {
        "small_stmt": r.expr_stmt | "pass" | "break" | "continue" | r.return_stmt
        | r.raise_stmt | r.assert_stmt | r.del_stmt | r.global_stmt | r.import_stmt,
        "expr_stmt": r.testlist + (r.annassign | r.augassign + r.testlist
                                   | ("=" + r.testlist).star()),
        "annassign": ":" + r.test + ("=" + r.test).opt(),
        "augassign": _alt(aug),
        "return_stmt": "return" + r.testlist.opt(),
        "raise_stmt": "raise" + (r.test + ("from" + r.test).opt()).opt(),
        "assert_stmt": "assert" + r.test + ("," + r.test).opt(),
        "del_stmt": "del" + r.exprlist,
        "global_stmt": (Literal("global") | "nonlocal") + _list(r.NAME),
        "import_stmt": "import" + _list(r.dotted_as_name)
        | "from" + r.dotted_name + "import" + (Literal("*") | _list(r.import_as_name)),
        "dotted_as_name": r.dotted_name + ("as" + r.NAME).opt(),
        "import_as_name": r.NAME + ("as" + r.NAME).opt(),
        "dotted_name": _list(r.NAME, "."),
        "parameters": _list(r.param, trailing=True),
        "param": r.NAME + (":" + r.test).opt() + ("=" + r.test).opt()
        | "*" + r.NAME.opt() | "**" + r.NAME,
        "test": r.or_test + ("if" + r.or_test + "else" + r.test).opt() | r.lambdef,
        "lambdef": "lambda" + _list(r.NAME).opt() + ":" + r.test,
        "or_test": _list(r.and_test, "or"),
        "and_test": _list(r.not_test, "and"),
        "not_test": "not" + r.not_test | r.comparison,
        "comparison": r.expr + (r.comp_op + r.expr).star(),
        "comp_op": _alt([Literal(op) for op in ("<", ">", "==", ">=", "<=", "!=", "in")])
        | Literal("not") + "in" | Literal("is") | Literal("is") + "not",
        "expr": r.arith_expr + (_alt([Literal(op) for op in ("|", "&", "^", "<<", ">>")])
                                + r.arith_expr).star(),
        "arith_expr": r.term + ((Literal("+") | "-") + r.term).star(),
        "term": r.factor + (_alt([Literal(op) for op in ("*", "/", "//", "%", "@")])
                            + r.factor).star(),
        "factor": (Literal("+") | "-" | "~") + r.factor | r.power,
        "power": Literal("await").opt() + r.atom_expr + ("**" + r.factor).opt(),
        "atom_expr": r.atom + r.trailer.star(),
        "trailer": r.LPAR + r.arguments.opt() + r.RPAR | r.LSQB + r.subscripts + r.RSQB
        | "." + r.NAME,
        "arguments": _list(r.argument, trailing=True),
        "argument": r.test + ("=" + r.test).opt() | r.test + r.comp_for
        | "*" + r.test | "**" + r.test,
        "subscripts": _list(r.subscript, trailing=True),
        "subscript": r.test | r.test.opt() + ":" + r.test.opt() + (":" + r.test.opt()).opt(),
        "atom": r.LPAR + r.testlist_comp.opt() + r.RPAR
        | r.LSQB + r.testlist_comp.opt() + r.RSQB
        | r.LBRACE + r.dictorsetmaker.opt() + r.RBRACE
        | r.NAME | r.NUMBER | r.string.plus() | "None" | "True" | "False" | "...",
        "string": r.STRING | r.LONG_STRING,
        "testlist_comp": r.test + (r.comp_for | ("," + r.test).star() + Literal(",").opt()),
        "comp_for": "for" + r.exprlist + "in" + r.or_test + r.comp_iter.opt(),
        "comp_iter": r.comp_for | "if" + r.or_test + r.comp_iter.opt(),
        "exprlist": _list(r.expr, trailing=True),
        "testlist": _list(r.test, trailing=True),
        "dictorsetmaker": r.test + ":" + r.test + (r.comp_for | ("," + r.test + ":" + r.test)
                                                   .star() + Literal(",").opt())
        | r.test + (r.comp_for | ("," + r.test).star() + Literal(",").opt()),
        "LPAR": "(",
        "RPAR": ")",
        "LSQB": "[",
        "RSQB": "]",
        "LBRACE": "{",
        "RBRACE": "}",
        "NAME": name,
        "NUMBER": P(r"0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+"
                    r"|([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9][0-9_]*)([eE][+-]?[0-9]+)?[jJ]?"),
        "STRING": P(r"""[rRbBuUfF]{0,2}("([^"\\\n]|\\.)*"|'([^'\\\n]|\\.)*')"""),
        "LONG_STRING": P(r'''[rRbBuUfF]{0,2}("""([^"\\]|\\[\s\S]|"{1,2}([^"\\]|\\[\s\S]))*"""'''
                         r"""|'''([^'\\]|\\[\s\S]|'{1,2}([^'\\]|\\[\s\S]))*''')"""),
    }


def _alt(options: list[Expr]) -> Expr:
    out = options[0]
    for option in options[1:]:
        out = out | option
    return out


def _compound(suite: Expr, line: Expr | None) -> dict[str, Expr]:
    """Compound statements whose clauses continue after ``line`` (None: directly)."""
    cont = (lambda x: x) if line is None else (lambda x: line + x)
    return {
        "if_stmt": "if" + r.test + ":" + suite + cont("elif" + r.test + ":" + suite).star()
        + cont("else" + Literal(":") + suite).opt(),
        "while_stmt": "while" + r.test + ":" + suite + cont("else" + Literal(":") + suite).opt(),
        "for_stmt": "for" + r.exprlist + "in" + r.testlist + ":" + suite
        + cont("else" + Literal(":") + suite).opt(),
        "try_stmt": "try" + Literal(":") + suite
        + (cont("except" + (r.test + ("as" + r.NAME).opt()).opt() + ":" + suite).plus()
           + cont("else" + Literal(":") + suite).opt()
           + cont("finally" + Literal(":") + suite).opt()
           | cont("finally" + Literal(":") + suite)),
        "with_stmt": "with" + _list(r.test + ("as" + r.expr).opt()) + ":" + suite,
        "funcdef": "def" + r.NAME + r.LPAR + r.parameters.opt() + r.RPAR
        + ("->" + r.test).opt() + ":" + suite,
        "classdef": "class" + r.NAME + (r.LPAR + r.arguments.opt() + r.RPAR).opt() + ":" + suite,
    }


def python_subset() -> Grammar:
    """A Python subset with INDENT/DEDENT from an indentation post-lexer (Lark's
    ``Indenter``): functions, classes, ``if``/``while``/``for``/``try``/``with``, simple
    statements, the full expression syntax minus f-string internals and walrus.
    For ``lark`` (LALR); engines need :func:`python_unrolled`.

    >>> python_subset().indentation.indent
    '_INDENT'
    """
    compound = _compound(r.suite, None)
    rules: dict[str, Expr] = {
        "file_input": (r._NEWLINE | r.stmt).star(),
        "stmt": r.simple_stmt | r.compound_stmt,
        "simple_stmt": _list(r.small_stmt, ";", trailing=True) + r._NEWLINE,
        "compound_stmt": _alt([getattr(r, name) for name in compound]),
        **compound,
        "suite": r.simple_stmt | r._NEWLINE + r._INDENT + r.stmt.plus() + r._DEDENT,
        # lark's LALR lexer keeps keywords apart from NAME itself (and a NAME pattern that
        # excludes them would match their prefixes), so NAME is the plain pattern here.
        **_python_expressions(P(r"[A-Za-z_][A-Za-z0-9_]*")),
        "COMMENT": P(r"#[^\n]*"),
        "_NEWLINE": (P(r"\r?\n[\t ]*") | r.COMMENT).plus(),
    }
    return Grammar("file_input", rules,
                   ignore=(P(r"[\t \f]+"), P(r"\\[\t \f]*\r?\n"), r.COMMENT),
                   declared=("_INDENT", "_DEDENT"), indentation=Indentation())


def python_unrolled(max_depth: int = 4, indent: int = 4) -> Grammar:
    """The Python subset as a plain context-free grammar for engines: blocks nest at most
    ``max_depth`` deep, each level indented by exactly ``indent`` spaces. Statement rules are
    indexed by depth (``stmt_0`` ... ``stmt_<max_depth>``); a line break lexeme ``_NL<d>``
    (blank and comment-only lines included) ends with exactly ``d * indent`` spaces, and the
    next lexeme cannot be a space, so over- or under-indented lines are rejected. Within a
    line, spaces and tabs may follow any lexeme; lines are not joined inside brackets.

    >>> g = python_unrolled(max_depth=1)
    >>> sorted(n for n in g.terminals if n.startswith("_NL"))
    ['_NL0', '_NL1']
    """
    if max_depth < 0 or indent < 1:
        raise ValueError("max_depth must be >= 0 and indent >= 1")
    expressions = _python_expressions(identifier(keyword.kwlist))
    spaced = {name: body if is_terminal_name(name) else body.map_leaves(_then_space)
              for name, body in expressions.items()}
    spaced["simple_stmt"] = _list(r.small_stmt, ";", trailing=True).map_leaves(_then_space)
    rules: dict[str, Expr] = {
        "file_input": r._NL0.opt() + r.stmt_0 + (r._NL0 + r.stmt_0).star() + r._NL0.opt(),
    }
    blank = r"(?:[ \t]*(?:#[^\n]*)?\r?\n)+"
    for depth in range(max_depth + 1):
        newline = getattr(r, f"_NL{depth}")
        if depth < max_depth:
            inner = getattr(r, f"_NL{depth + 1}") + getattr(r, f"stmt_{depth + 1}")
            suite: Expr = r.simple_stmt | inner.plus()
        else:
            suite = r.simple_stmt
        compound = {f"{name}_{depth}": body.map_leaves(_then_space)
                    for name, body in _compound(getattr(r, f"suite_{depth}"), newline).items()}
        rules[f"stmt_{depth}"] = r.simple_stmt | _alt([getattr(r, n) for n in compound])
        rules.update(compound)
        rules[f"suite_{depth}"] = suite
    rules.update(spaced)
    for depth in range(max_depth + 1):
        rules[f"_NL{depth}"] = P(blank + (f" {{{depth * indent}}}" if depth else ""))
    rules["_WS"] = P(r"[ \t]+")
    return Grammar("file_input", rules)


def _then_space(leaf: Expr) -> Expr:
    """A lexeme followed by optional spaces (rules and line breaks are left alone)."""
    if isinstance(leaf, Ref) and (not is_terminal_name(leaf.name)
                                  or leaf.name.startswith("_NL")):
        return leaf
    return leaf + r._WS.opt()


#: Built-in grammars by name.
BUILTIN_GRAMMARS: dict[str, Callable[[], Grammar]] = {
    "json": json_grammar,
    "arithmetic": arithmetic,
    "sql_select": sql_select,
    "python": python_subset,
    "python_unrolled": python_unrolled,
}


def builtin(name: str) -> Grammar:
    """A built-in grammar by name (see :data:`BUILTIN_GRAMMARS`).

    >>> builtin("yaml")
    Traceback (most recent call last):
    ...
    KeyError: "no built-in grammar 'yaml'; known: arithmetic, json, python, python_unrolled, \
sql_select"
    """
    try:
        factory = BUILTIN_GRAMMARS[name]
    except KeyError:
        raise KeyError(f"no built-in grammar {name!r}; known: "
                       f"{', '.join(sorted(BUILTIN_GRAMMARS))}") from None
    return factory()

