"""Grammar diagrams: the expression algebra, validation, rules as boxes, derivations, built-ins."""

from __future__ import annotations

import itertools
import keyword
import re

import pytest
from discopy import monoidal
from discopy.grammar import cfg

from diagrammar.diagrams.builtin_grammars import (
    BUILTIN_GRAMMARS,
    SQL_KEYWORDS,
    arithmetic,
    builtin,
    json_grammar,
    python_subset,
    python_unrolled,
    sql_select,
)
from diagrammar.diagrams.errors import DiagramError
from diagrammar.diagrams.grammar import (
    COMMON_TERMINALS,
    Alt,
    Definition,
    DerivationError,
    Grammar,
    GrammarDefinitionError,
    Indentation,
    Literal,
    Pattern,
    Ref,
    Refs,
    Repeat,
    Seq,
    derivation_diagram,
    derivation_leaves,
    derivation_text,
    identifier,
    is_terminal_name,
    leaf,
    node,
    symbol_type,
)

r = Refs()


def small() -> Grammar:
    return Grammar("expr", {
        "expr": r.expr + "+" + r.term | r.term,
        "term": r.NUMBER | "(" + r.expr + ")",
        "NUMBER": Pattern("[0-9]+"),
    }, ignore=(Pattern(" +"),))


# ------------------------------------------------------------------ expressions


def test_operators_build_flat_sequences_and_alternatives():
    e = r.a + "b" + r.c | r.d | "e"
    assert isinstance(e, Alt) and len(e.options) == 3
    assert e.options[0] == Seq((Ref("a"), Literal("b"), Ref("c")))
    assert "x" + r.a == Seq((Literal("x"), Ref("a")))
    assert ("x" | r.a) == Alt((Literal("x"), Ref("a")))
    assert str(e) == 'a "b" c | d | "e"'


def test_repetitions_and_their_text():
    assert r.a.opt() == Repeat(Ref("a"), 0, 1)
    assert str(r.a.star()) == "a*" and str(r.a.plus()) == "a+"
    assert str(r.a.rep(2)) == "a{2,}" and str(r.a.rep(2, 2)) == "a{2}"
    assert str((r.a + r.b).rep(1, 3)) == "(a b){1,3}"
    assert str((r.a | r.b).star()) == "(a | b)*"
    assert str(r.a.opt().star()) == "(a?)*"
    assert str(Seq(())) == "()"


def test_leaf_text_escapes():
    assert str(Literal('a"b\\\n\x01')) == '"a\\"b\\\\\\n\\x01"'
    assert str(Literal("select", ignore_case=True)) == '"select"i'
    assert str(Pattern("a/b", "i")) == "/a\\/b/i"


def test_walk_refs_and_map_leaves():
    e = (r.a + "x").star() | r.b
    assert [ref.name for ref in e.refs()] == ["a", "b"]
    assert len(list(e.walk())) == 6
    mapped = e.map_leaves(lambda x: Ref(x.name.upper()) if isinstance(x, Ref) else x)
    assert [ref.name for ref in mapped.refs()] == ["A", "B"]


@pytest.mark.parametrize("build, message", [
    (lambda: Literal(""), "non-empty"),
    (lambda: Pattern("[0-9"), "position 0"),
    (lambda: Pattern("a", "q"), "unknown flags"),
    (lambda: Repeat(r.a, 3, 2), "bad repetition"),
    (lambda: Alt(()), "at least one"),
])
def test_bad_expressions_fail_when_built(build, message):
    with pytest.raises(GrammarDefinitionError, match=message):
        build()


def test_expressions_accept_only_expressions_and_strings():
    with pytest.raises(TypeError, match="Expr or a str"):
        r.a + 3  # noqa: B018
    assert Seq(("", r.a)) == Seq((Seq(()), Ref("a")))


def test_pattern_python_regex_and_empty_match():
    assert Pattern("a", "is").python_regex() == "(?is:a)"
    assert Pattern("a*").matches_empty and not Pattern("a+").matches_empty


def test_terminal_names_and_refs_helper():
    assert is_terminal_name("_NL") and not is_terminal_name("_nl")
    assert Refs().x == Ref("x")
    with pytest.raises(AttributeError):
        Refs().__wrapped__  # noqa: B018


# ------------------------------------------------------------------ grammars


def test_grammar_accessors():
    g = small()
    assert list(g.rules) == ["expr", "term"] and list(g.terminals) == ["NUMBER"]
    assert g["NUMBER"] == Pattern("[0-9]+") and "term" in g and "foo" not in g
    assert g.by_name["expr"].name == "expr"
    with pytest.raises(KeyError, match="no definition"):
        g["foo"]  # noqa: B018
    assert g.reachable() == {"expr", "term", "NUMBER"}
    assert g.replace(ignore=()).ignore == ()
    assert g == small() and hash(g) == hash(small())


def test_definitions_may_be_given_as_objects_with_positions():
    g = Grammar("a", [Definition("a", "x", position=(3, 1))])
    assert g.definitions[0].body == Literal("x") and g.definitions[0].position == (3, 1)
    with pytest.raises(TypeError, match="Definition objects"):
        Grammar("a", [("a", "x")])


@pytest.mark.parametrize("start, defs, kwargs, message", [
    ("expr", {"expr": r.trm, "term": "x"}, {},
     "rule 'expr' refers to undefined symbol 'trm'; did you mean 'term'"),
    ("strat", {"start": "x"}, {}, "start rule 'strat' is not defined; did you mean 'start'"),
    ("A", {"A": "x"}, {}, "must be a rule"),
    ("a", {"a": r.A, "A": r.b, "b": "x"}, {}, "terminal 'A' refers to rule 'b'"),
    ("a", {"a": r.A, "A": r.B + "x", "B": r.A}, {}, "recursive"),
    ("a", {"a": "x" + r.a}, {}, "derives no finite string"),
    ("a", {"a": r.b, "b": "x", "c": "y"}, {}, "unreachable from the start rule 'a': 'c'"),
    ("a", {"a": "x", "Bad-Name": "y"}, {}, "bad terminal name"),
    ("a", {"a": r.A, "A": Pattern("x*")}, {}, "matches the empty string"),
    ("a", {"a": Pattern("x*")}, {}, "matches the empty string"),
    ("a", {"a": "x"}, {"ignore": (r.a,)}, "%ignore refers to 'a'"),
    ("a", {"a": r.X}, {"declared": ("X", "x")}, "only terminals can be declared"),
    ("a", {"a": "x"}, {"indentation": Indentation()}, "must be declared"),
])
def test_invalid_grammars_fail_with_a_message(start, defs, kwargs, message):
    with pytest.raises(GrammarDefinitionError, match=re.escape(message)):
        Grammar(start, defs, **kwargs)


def test_duplicates_and_positions_are_reported():
    defs = [Definition("a", "x", position=(1, 1)), Definition("a", "y", position=(4, 2))]
    with pytest.raises(GrammarDefinitionError) as caught:
        Grammar("a", defs)
    assert "defined twice" in str(caught.value)
    assert (caught.value.line, caught.value.column, caught.value.symbol) == (4, 2, "a")
    with pytest.raises(GrammarDefinitionError) as caught:
        Grammar("a", [Definition("a", Ref("nope", position=(2, 7)), position=(2, 1))])
    assert (caught.value.line, caught.value.column) == (2, 7)
    assert isinstance(caught.value, DiagramError)


def test_unreachable_may_be_allowed():
    g = Grammar("a", {"a": "x", "b": "y"}, allow_unreachable=True)
    assert g.reachable() == {"a"}


# ------------------------------------------------------------------ rules as boxes


def test_productions_are_cfg_rules_with_desugared_operators():
    g = Grammar("s", {"s": "(" + (r.x + ",").star() + r.x.opt() + r.x.plus() + r.x.rep(1, 2)
                      + ")", "x": "a"})
    boxes = g.productions()
    assert all(isinstance(b, cfg.Rule) for b in boxes)
    by_name = {}
    for b in boxes:
        by_name.setdefault(b.name, []).append([str(o.name) for o in b.dom.inside])
    assert by_name["s"] == [['"("', "s__1", "s__2", "s__3", "s__4", '")"']]
    assert by_name["s__1"] == [[], ["s__1", "s__5"]]  # star: empty or itself then item
    assert by_name["s__5"] == [["x", '","']]  # the group inside the star
    assert by_name["s__2"] == [[], ["x"]]  # optional
    assert by_name["s__3"] == [["x"], ["s__3", "x"]]  # plus
    assert by_name["s__4"] == [["x"], ["x", "x"]]  # bounded
    assert by_name["x"] == [['"a"']]
    assert all(b.cod == monoidal.Ty(b.name) for b in boxes)


def test_productions_of_terminals_on_request():
    g = small()
    assert len(g.productions()) == 4
    assert {b.name for b in g.productions(terminals=True)} == {"expr", "term", "NUMBER"}


def test_terminal_regex_spells_terminals_out():
    g = Grammar("a", {"a": r.FLOAT, "FLOAT": r.INT + "." + r.INT.opt(), "INT": Pattern("[0-9]+"),
                      "WORD": Literal("ab", ignore_case=True) + Pattern("c").rep(2, 3)},
                allow_unreachable=True)
    regex = g.terminal_regex("FLOAT")
    assert re.fullmatch(regex, "1.") and re.fullmatch(regex, "12.5")
    assert not re.fullmatch(regex, ".5")
    word = g.terminal_regex("WORD")
    assert re.fullmatch(word, "aBccc") and not re.fullmatch(word, "abc")
    with pytest.raises(GrammarDefinitionError, match="not a"):
        g.terminal_regex(r.a)


def test_symbol_types():
    assert symbol_type(Ref("x")) == monoidal.Ty("x")
    assert small().symbol_of(Literal("+")) == monoidal.Ty('"+"')
    with pytest.raises(TypeError):
        symbol_type(r.a + r.b)


# ------------------------------------------------------------------ derivations


def one_plus_two() -> cfg.Tree:
    one = node("expr", node("term", leaf("1", "NUMBER")))
    return node("expr", one, leaf("+", Literal("+")), node("term", leaf("2", "NUMBER")))


def test_derivations_are_checked_against_the_rules():
    g = small()
    tree = one_plus_two()
    assert g.check(tree)
    assert derivation_text(tree) == "1+2" and derivation_text(tree, " ") == "1 + 2"
    assert [w.name for w in derivation_leaves(tree)] == ["1", "+", "2"]
    assert str(tree) == "expr(expr(term(1)), +, term(2))"


@pytest.mark.parametrize("tree, message", [
    (node("term", leaf("1", "NUMBER")), "not the start rule"),
    (node("expr", node("term", leaf("x", "NUMBER"))), "does not match its lexeme"),
    (node("expr", node("term", leaf("1", "NUMBER"), leaf("1", "NUMBER"))), "do not match"),
    (node("expr", node("nope", leaf("1", "NUMBER"))), "do not match"),
    (node("expr", node("term", node("NUMBER", leaf("1", "X")))), "not a rule"),
    (node("expr", leaf("1", "term")), "neither a terminal"),
    (node("expr", node("expr", node("term", leaf("1", "NUMBER"))), leaf("-", Literal("+")),
          node("term", leaf("2", "NUMBER"))), "does not match its lexeme"),
])
def test_bad_derivations_name_the_node(tree, message):
    with pytest.raises(DerivationError, match=message):
        small().check(tree)


def test_literal_words_may_be_typed_by_a_named_terminal():
    g = Grammar("s", {"s": "k" + r.X, "X": "x", "PLUS": "k"}, allow_unreachable=True)
    assert g.check(node("s", leaf("k", "PLUS"), leaf("x", "X")))
    ci = Grammar("s", {"s": Literal("select", ignore_case=True)})
    assert ci.check(node("s", leaf("SeLeCt", Literal("select", ignore_case=True))))
    with pytest.raises(DerivationError):
        ci.check(node("s", leaf("SELEKT", Literal("select", ignore_case=True))))


def test_derivation_diagram_is_the_operad_algebra_into_monoidal_diagrams():
    # A node is its branches side by side, then its rule: the map Tree -> Diagram is the
    # algebra of the operad (composition of trees goes to composition of diagrams).
    tree = one_plus_two()
    d = derivation_diagram(tree)
    assert d.dom == monoidal.Ty() and d.cod == monoidal.Ty("expr")
    branches = monoidal.Id().tensor(*[derivation_diagram(b) for b in tree.branches])
    assert d == branches >> tree.root.to_diagram()
    assert len(d.boxes) == 3 + 4  # three words, four rule applications


def test_node_rejects_non_trees():
    with pytest.raises(TypeError, match="nodes or leaves"):
        node("s", "x")
    assert node("s") == cfg.Rule(monoidal.Ty(), monoidal.Ty("s"), name="s")


# ------------------------------------------------------------------ identifiers


def test_identifier_excludes_reserved_words_like_the_obvious_reference():
    reserved = ["if", "in", "is", "i", "for", "form"]
    plain = re.compile("[A-Za-z_][A-Za-z0-9_]*")
    pattern = re.compile(identifier(reserved).regex)
    folded = re.compile(identifier(reserved, ignore_case=True).regex)
    alphabet = "ifnorsmx_1"
    for length in range(1, 5):
        for chars in itertools.product(alphabet, repeat=length):
            word = "".join(chars)
            ok = bool(plain.fullmatch(word))
            assert bool(pattern.fullmatch(word)) == (ok and word not in reserved), word
            upper = word.upper()
            assert bool(folded.fullmatch(upper)) == (ok and word not in reserved), upper


def test_identifier_without_reserved_words_and_custom_classes():
    assert re.fullmatch(identifier().regex, "abc_1")
    assert identifier(["1x", "a-b"]).regex == identifier().regex  # not identifiers: ignored
    digits = identifier(["12"], first="0-9", rest="0-9").regex
    assert re.fullmatch(digits, "123") and not re.fullmatch(digits, "12")


# ------------------------------------------------------------------ common terminals


@pytest.mark.parametrize("name, good, bad", [
    ("NUMBER", ["1", "1.5e3", ".5", "2."], ["e3", "1e"]),
    ("SIGNED_NUMBER", ["-1.5", "+3"], ["--1"]),
    ("FLOAT", ["1e5", "1.5"], ["15"]),
    ("ESCAPED_STRING", ['"a\\"b"', '""'], ['"a', '"a"b"']),
    ("CNAME", ["_a1"], ["1a"]),
    ("C_COMMENT", ["/* a * b */", "/***/"], ["/* a */ */"]),
    ("WS", [" \t\n"], [""]),
])
def test_common_terminals(name, good, bad):
    regex = COMMON_TERMINALS[name].python_regex()
    assert all(re.fullmatch(regex, s) for s in good)
    assert not any(re.fullmatch(regex, s) for s in bad)


# ------------------------------------------------------------------ built-ins


def test_builtins_are_valid_grammars():
    assert set(BUILTIN_GRAMMARS) == {"json", "arithmetic", "sql_select", "python",
                                     "python_unrolled"}
    for name in BUILTIN_GRAMMARS:
        assert isinstance(builtin(name), Grammar)
    assert json_grammar().start == "value" and arithmetic().start == "expr"
    assert sql_select().start == "statement" and python_subset().indentation is not None
    with pytest.raises(KeyError, match="no built-in grammar 'yaml'"):
        builtin("yaml")


def test_sql_names_exclude_keywords_in_any_case():
    name = sql_select().terminal_regex("NAME")
    for word in SQL_KEYWORDS:
        assert not re.fullmatch(name, word) and not re.fullmatch(name, word.lower())
    assert re.fullmatch(name, "users") and re.fullmatch(name, '"select"')
    assert re.fullmatch(name, "selected")


def test_python_unrolled_has_a_rule_per_depth():
    g = python_unrolled(max_depth=2, indent=2)
    assert {"stmt_0", "stmt_1", "stmt_2", "if_stmt_2", "suite_2"} <= set(g.rules)
    assert re.fullmatch(g.terminal_regex("_NL2"), "\n    ")
    assert re.fullmatch(g.terminal_regex("_NL2"), "\n  # note\n\n    ")
    assert not re.fullmatch(g.terminal_regex("_NL2"), "\n   ")
    name = g.terminal_regex("NAME")
    assert all(not re.fullmatch(name, k) for k in keyword.kwlist)
    with pytest.raises(ValueError):
        python_unrolled(max_depth=-1)
