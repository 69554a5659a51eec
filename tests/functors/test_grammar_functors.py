"""Grammar functors (Lark, GBNF, specs, parsing, pictures) and front-ends (Lark/GBNF text,
JSON Schema, regex, Python types), checked against lark, Python's ``re``, jsonschema and —
where installed — the engines themselves (llguidance, xgrammar)."""

from __future__ import annotations

import enum
import itertools
import json
import re
from dataclasses import asdict, dataclass, field, make_dataclass
from typing import Literal as TypingLiteral
from typing import Optional

import pytest

from diagrammar.decoding.constraints.protocol import GrammarError, GrammarSpec
from diagrammar.diagrams.builtin_grammars import BUILTIN_GRAMMARS, builtin
from diagrammar.diagrams.grammar import (
    Definition,
    Grammar,
    GrammarDefinitionError,
    Literal,
    Pattern,
    Refs,
    Seq,
    derivation_text,
)
from diagrammar.functors.grammar import (
    DrawGrammar,
    TextParseError,
    ToGBNF,
    ToLark,
    accepts,
    parse,
    regex_to_gbnf,
    to_gbnf,
    to_lark,
    to_spec,
    words,
)
from diagrammar.functors.grammar_sources import (
    GrammarSourceError,
    as_spec,
    check_schema,
    from_gbnf,
    from_lark,
    json_schema_spec,
    load_schema,
    regex_spec,
    schema_of,
    type_spec,
)

r = Refs()

# Samples every built-in must accept (good) and reject (bad). llguidance does not allow
# ignored white space before the first or after the last lexeme, so samples avoid it.
SAMPLES = {
    "json": (
        ['{"name": "Ada", "tags": ["a", "b"], "age": 36, "ok": true, "x": null}',
         '[1, -2.5e3, 0.25, {"nested": {"deep": []}}]', '"caf\\u00e9 \\"q\\""', "0", "{}"],
        ['{"a": 1,}', "[01]", "{'a': 1}", '"tab\there"', "[1 2]", "", "tru", '{"a" 1}'],
    ),
    "arithmetic": (
        ["1 + 2 * (3 - x)", "-f(1, 2)^2", "a/b/c", "sin(x)*cos(y) - 1.5e-3", "g()"],
        ["1 +", "(1", "1 2", "* 3", "f(,)", "2 ^", ""],
    ),
    "sql_select": (
        ["SELECT a, b FROM t WHERE a > 1 ORDER BY b DESC LIMIT 10;",
         "select count(*) from users u join orders o on u.id = o.user_id group by u.id "
         "having count(*) > 2",
         "SELECT name FROM t WHERE x IN (SELECT y FROM z) AND name LIKE 'a%' -- comment",
         "SELECT CASE WHEN a IS NULL THEN 0 ELSE a END AS v FROM t UNION ALL SELECT 1",
         "SELECT DISTINCT t.* FROM t LIMIT 5 OFFSET 10"],
        ["SELECT FROM t", "SELEC a FROM t", "SELECT a FROM", "SELECT a WHERE",
         "DELETE FROM t", "SELECT a FROM t WHERE", "SELECT a FROM t ORDER b"],
    ),
}
PYTHON_GOOD = [
    "def add(a, b):\n    return a + b\n",
    'def f(x: int, *args, y=2, **kw) -> int:\n    """Doc "string".\n\n    More."""\n'
    "    # comment\n    total = 0\n    for i in range(x):\n"
    "        if i % 2 == 0 and not i in [1, 2]:\n            total += i\n"
    "        elif i > 3:\n            continue\n        else:\n            pass\n\n"
    "    while total > 10:\n        total -= 1\n    try:\n"
    "        y = {k: v for k, v in kw.items() if v is not None}\n"
    "    except ValueError as e:\n        raise e from None\n"
    "    return total if total else -1\n",
    "import os\nfrom a.b import c as d, e\nx = [i ** 2 for i in range(10)]\n"
    "print(x[1:3], x[::2], f(*x, key=lambda a, b: a))\nclass A(B):\n    def m(self):\n"
    "        return self.x.y(1)\n",
]
PYTHON_BAD = [
    "def f(x):\nreturn x\n",
    "def f(x):\n    return x\n      y = 1\n",
    "def f(x)\n    return x\n",
    "def f(x):\n    if x:\n    return 1\n",
    "x = = 1\n",
    "def if(x):\n    pass\n",
]


# ------------------------------------------------------------------------- Lark


def small() -> Grammar:
    return Grammar("expr", {"expr": r.expr + "+" + r.NUMBER | r.NUMBER,
                            "NUMBER": Pattern("[0-9]+")}, ignore=(Pattern(" +"),))


def test_to_lark_text():
    assert to_lark(small()) == ('start: expr\nexpr: expr "+" NUMBER | NUMBER\n'
                                "NUMBER: /[0-9]+/\n%ignore / +/\n")
    g = Grammar("start", {"start": r.a.rep(2) + r.a.rep(1, 3) + r.a.rep(2, 2)
                          + (r.a | Seq(())) + r.a.opt().star(), "a": "x"})
    assert to_lark(g, "lark").splitlines()[0] == (
        'start: a ~ 2 a* a ~ 1..3 a ~ 2 a? (a?)*')
    assert to_lark(g, "llguidance").splitlines()[0] == "start: a{2,} a{1,3} a{2} a? (a?)*"


def test_to_lark_renames_a_rule_called_start_that_is_not_the_start():
    g = Grammar("top", {"top": r.start, "start": "x"})
    assert to_lark(g) == 'start: top\ntop: start_1\nstart_1: "x"\n'
    assert from_lark(to_lark(g)).replace(start="top", allow_unreachable=True)


def test_to_lark_writes_imports_priorities_and_declarations():
    g = from_lark('start: A B\nA.2: "a"\n%import common (INT, WS)\nB: INT\n%ignore WS\n')
    text = ToLark("lark")(g)
    assert "A.2:" in text and "%import common (INT, WS)" in text
    assert "INT: /[0-9]+/" in ToLark("lark", imports=False)(g)
    with pytest.raises(GrammarError, match="priorities"):
        to_lark(g)
    with pytest.raises(ValueError, match="unknown Lark dialect"):
        ToLark("bison")


@pytest.mark.parametrize("pattern, feature", [
    ("a+?", "lazy repeat"), ("(?=a)a", "look-around"), ("(a)\\1", "back-reference"),
])
def test_llguidance_dialect_names_what_it_cannot_read(pattern, feature):
    g = Grammar("s", {"s": Pattern(pattern)})
    assert to_lark(g, "lark")
    with pytest.raises(GrammarError, match=feature):
        to_lark(g)


def test_text_functors_are_compositional():
    # The image of a sequence is the images side by side, of alternatives the images joined
    # by "|": the translations are algebra maps, fixed by what they do to the leaves.
    a, b = Literal("x"), Pattern("[0-9]+")
    for functor in (ToLark("lark").expr, lambda e: ToGBNF().expr(e, {}, None)):
        assert functor(a + b) == f"{functor(a)} {functor(b)}"
        assert functor(a | b) == f"{functor(a)} | {functor(b)}"
        assert functor((a + b).star()) == f"({functor(a + b)})*"


def test_to_spec_is_a_lark_grammar_spec():
    spec = to_spec(small(), name="sums")
    assert spec == GrammarSpec("lark", to_lark(small()), "sums")
    assert to_spec(small()).name == "expr"
    with pytest.raises(GrammarError, match="post-lexer"):
        to_spec(builtin("python"))


@pytest.mark.parametrize("name", sorted(BUILTIN_GRAMMARS))
@pytest.mark.parametrize("dialect", ["lark", "llguidance"])
def test_lark_text_round_trips_to_the_same_grammar(name, dialect):
    g = builtin(name)
    if dialect == "llguidance" and g.declared:
        with pytest.raises(GrammarError, match="declared terminals"):
            ToLark(dialect)(g)
        return
    again = from_lark(ToLark(dialect)(g))
    if g.start != "start":
        again = Grammar(g.start, [d for d in again.definitions if d.name != "start"],
                        again.ignore, again.declared)
    assert again == g.replace(indentation=None)


# ------------------------------------------------------------------------- Lark front-end


def test_from_lark_reads_the_lark_language():
    g = from_lark("""
// a comment
?start: item+            # another
item: "[" [KEY] ("," KEY)* "]" -> listing
    | !word
    | NUM~2 | NUM~1..3 | CH{2,} | CH{,2}
!word: /[a-z]+/i "x"i
KEY: "a".."c"
NUM: INT
CH: DIG
%import common.INT
%import common.DIGIT -> DIG
%ignore \\
    " "
""", allow_unreachable=True)
    assert g.start == "start" and g["start"] == r.item.plus()
    assert g["word"] == Pattern("[a-z]+", "i") + Literal("x", ignore_case=True)
    assert g["KEY"] == Pattern("[a-c]")
    assert g.by_name["INT"].origin == "common" and g.by_name["DIG"].origin is None
    item = str(g["item"])
    assert "NUM{2}" in item and "NUM{1,3}" in item and "CH{2,}" in item and "CH{0,2}" in item


@pytest.mark.parametrize("text, message, line, column", [
    ("start: a\na: \"x\" ]\n", "unexpected ']'", 2, 8),
    ("start: a\n\na: b\n", "rule 'a' refers to undefined symbol 'b'", 3, 4),
    ("start: /[a/\n", "invalid pattern /[a/", 1, 8),
    ("start: \"x\"\n%override a: \"y\"\n", "%override is not supported", 2, 1),
    ("start: \"x\"\n%import foo.BAR\n", "only Lark's 'common'", 2, 9),
    ("start: \"x\"\n%import common.FOO\n", "common has no terminal 'FOO'", 2, 9),
    ("start: \"x\"\n%import .common.INT\n", "relative imports", 2, 9),
    ("start: a\na{x}: \"y\"\n", "templates are not supported", 2, 1),
    ("start: A\nA: A \"x\"\n", "terminal 'A' is recursive", 2, 1),
    ("start: \"x\"\nb: \"y\"\n", "unreachable", 2, 1),
])
def test_from_lark_errors_point_at_the_fault(text, message, line, column):
    with pytest.raises(GrammarSourceError) as caught:
        from_lark(text)
    assert message in str(caught.value)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert isinstance(caught.value, GrammarError) and isinstance(caught.value,
                                                                 GrammarDefinitionError)
    assert "^" in str(caught.value)  # the offending line is shown with a caret


def test_from_lark_without_start_lists_the_rules():
    with pytest.raises(GrammarSourceError, match="the rules are: a"):
        from_lark('a: "x"')
    assert from_lark('a: "x"', start="a").start == "a"


# ------------------------------------------------------------------------- GBNF


def test_to_gbnf_text():
    assert to_gbnf(small()) == ('root ::= expr ws\nexpr ::= expr ws "+" ws NUMBER | ws NUMBER\n'
                                'NUMBER ::= [0-9]+\nws ::= (" "+)*\n')
    g = Grammar("a_b", {"a_b": Literal("Hi", ignore_case=True) + r._X.opt(), "_X": "\n"})
    assert ToGBNF()(g) == 'root ::= a-b\na-b ::= ([Hh] [Ii]) X?\nX ::= "\\n"\n'
    with pytest.raises(GrammarError, match="INDENT/DEDENT"):
        to_gbnf(builtin("python"))


@pytest.mark.parametrize("regex, expected", [
    ("abc", '"abc"'),
    ("a|bc", '("a" | "bc")'),
    ("[^\\n]*", "[^\\n]*"),
    (".", "[^\\n]"),
    ("(?s:.)", "[\\x00-\\U0010FFFF]"),
    ("\\d{2,4}", "[0-9]{2,4}"),
    ("\\w+\\s?", "[0-9A-Z_a-z]+ [\\t-\\r ]?"),
    ("(?i)ab", "[Aa] [Bb]"),
    ("^x$", '"x"'),
    ("[\\]\\-^]", "[\\-\\]-\\^]"),
    ("(ab)*?c", '"ab"* "c"'),
    ("\\D", "[^0-9]"),
])
def test_regex_to_gbnf(regex, expected):
    assert regex_to_gbnf(regex) == expected


@pytest.mark.parametrize("regex, feature", [
    ("a(?=b)", "look-around"), ("(a)\\1", "back-reference"), ("a\\bb", "anchor"),
    ("a^b", "anchor"),
])
def test_regex_to_gbnf_refuses_what_grammars_cannot_say(regex, feature):
    with pytest.raises(GrammarError, match=feature):
        regex_to_gbnf(regex)


REGEXES = ["a(b|c)*d?", "[a-c]{1,2}x*", "(ab|a)(c|bc)", "[^a]b+", "(?i)ab|c", "a{2}|b{0,1}c",
           "\\d+(\\.\\d+)?", "(a|)b"]


@pytest.mark.parametrize("regex", REGEXES)
def test_regex_to_gbnf_keeps_the_language_of_re(regex):
    # Reference: Python's re on every short string; the GBNF is read back and parsed by lark.
    g = from_gbnf(f"root ::= {regex_to_gbnf(regex)}")
    for length in range(0, 4):
        for chars in itertools.product("abcdx.1B", repeat=length):
            text = "".join(chars)
            assert accepts(g, text) == bool(re.fullmatch(regex, text)), (regex, text)


def test_from_gbnf_reads_llama_cpp_grammars():
    g = from_gbnf(r'''
# a comment
root   ::= object
object ::=
  "{" ws (
    pair ("," ws pair)*
  )? "}" ws
pair   ::= str-ing ":" ws [0-9]{1,3} ws
str-ing ::= "\"" [^"\\\x00]* "\"" | "\u00e9" .
ws ::= | [ \t\n] ws
''')
    assert set(g.rules) == {"root", "object", "pair", "str_ing", "ws"}
    assert accepts(g, '{"a": 12, "b":3}') and accepts(g, '{é!:1}')
    assert not accepts(g, '{"a": 1234}')


@pytest.mark.parametrize("text, message, line, column", [
    ('root ::= "a" b\n', "undefined symbol 'b'", 1, 14),
    ('root ::= "a\n', "unexpected", 1, 10),
    ("root ::= (a\na ::= \"x\"", "expected ')'", 2, 1),
    ('root ::= "\\q"', "unknown escape", 1, 10),
    ("root ::= a\nA ::= \"x\"\na ::= \"y\"", "both become rule", 2, 1),
    ("", "no rules", 1, 1),
    ('root ::= "a"{3,2}', "bad repetition", 1, 13),
])
def test_from_gbnf_errors_point_at_the_fault(text, message, line, column):
    with pytest.raises(GrammarSourceError) as caught:
        from_gbnf(text)
    assert message in str(caught.value)
    assert (caught.value.line, caught.value.column) == (line, column)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_gbnf_round_trip_keeps_the_language(name):
    g = builtin(name)
    back = from_gbnf(to_gbnf(g))
    good, bad = SAMPLES[name]
    for text in good[:3] + bad:
        assert accepts(back, text) == accepts(g, text), text


# ------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_builtins_accept_and_reject_samples(name):
    g = builtin(name)
    good, bad = SAMPLES[name]
    for text in good:
        tree = parse(g, text)
        assert g.check(tree)
        assert re.sub(r"\s+", "", derivation_text(tree)) == re.sub(
            r"\s+|--[^\n]*", "", text)
    for text in bad:
        assert not accepts(g, text), text


@pytest.mark.parametrize("name", ["python", "python_unrolled"])
def test_python_builtins_accept_functions_and_reject_bad_indentation(name):
    g = builtin(name)
    for text in PYTHON_GOOD:
        assert g.check(parse(g, text))
    for text in PYTHON_BAD:
        assert not accepts(g, text), text


def test_indentation_tokens_are_empty_words_of_the_derivation():
    tree = parse(builtin("python"), "def f():\n    pass\n")
    assert "_INDENT" in str(tree.to_diagram()) and words(tree)[-3:] == ["pass", "\n", ""]
    assert derivation_text(tree) == "deff():\n    pass\n"


def test_parse_errors_give_line_column_and_expected():
    g = builtin("json")
    with pytest.raises(TextParseError) as caught:
        parse(g, '{"a": 1,\n "b" 2}')
    error = caught.value
    assert (error.line, error.column) == (2, 6)
    assert '":"' in error.expected and "line 2, column 6" in str(error)
    with pytest.raises(TextParseError, match="the end of the text") as caught:
        parse(g, '{"a": ')
    assert caught.value.line == 1
    with pytest.raises(TextParseError, match="line 3"):
        parse(builtin("python"), "def f():\n        x = 1\n    y = 2\n")


def test_parse_uses_exact_lexeme_types():
    g = Grammar("s", {"s": r.A + "k" + Pattern("[0-9]+"), "A": "k"})
    tree = parse(g, "kk12")
    assert [str(b.cod) for b in tree.branches] == ["A", '"k"', "/[0-9]+/"]
    assert g.check(tree)


def test_parse_reports_grammars_lark_cannot_build():
    g = Grammar("s", {"s": r.a + r._NEWLINE | r.b + r._NEWLINE, "a": r.NAME, "b": r.NAME,
                      "NAME": Pattern("[a-z]+"),
                      "_NEWLINE": "\n", "LPAR": "(", "RPAR": ")", "LSQB": "[", "RSQB": "]",
                      "LBRACE": "{", "RBRACE": "}"},
                declared=("_INDENT", "_DEDENT"), indentation=builtin("python").indentation)
    with pytest.raises(GrammarError, match="lark cannot build a parser"):
        parse(g, "a\n")


# ------------------------------------------------------------------------- engines

SPEC_BUILTINS = ["arithmetic", "json", "python_unrolled", "sql_select"]


def _byte_tokenizer(llguidance):
    class Bytes:
        eos_token_id = 256
        bos_token_id = None
        tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
        special_token_ids = [256]

        def __call__(self, text):
            return list(text)

    return llguidance.LLTokenizer(llguidance.TokenizerWrapper(Bytes()))


def test_llguidance_reads_the_specs_and_agrees_on_samples():
    llguidance = pytest.importorskip("llguidance")
    tokenizer = _byte_tokenizer(llguidance)

    def agrees(spec_text: str, text: str) -> bool:
        matcher = llguidance.LLMatcher(tokenizer, llguidance.LLMatcher.grammar_from_lark(
            spec_text), log_level=0)
        return bool(matcher.consume_tokens(list(text.encode())) and matcher.is_accepting())

    for name in SPEC_BUILTINS:
        spec = to_spec(builtin(name))
        grammar = llguidance.LLMatcher.grammar_from_lark(spec.source)
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
        assert not is_error and not messages, (name, messages)
        good, bad = SAMPLES.get(name, (PYTHON_GOOD, PYTHON_BAD))
        assert all(agrees(spec.source, t) for t in good), name
        assert not any(agrees(spec.source, t) for t in bad), name


def test_xgrammar_reads_the_gbnf_and_agrees_on_samples():
    xgrammar = pytest.importorskip("xgrammar")
    from xgrammar.testing import _is_grammar_accept_string as accepted

    for name in SPEC_BUILTINS:
        compiled = xgrammar.Grammar.from_ebnf(to_gbnf(builtin(name)))
        good, bad = SAMPLES.get(name, (PYTHON_GOOD, PYTHON_BAD))
        assert all(accepted(compiled, t) for t in good), name
        assert not any(accepted(compiled, t) for t in bad), name


def test_llguidance_reads_schemas_made_from_types():
    llguidance = pytest.importorskip("llguidance")
    schema = json.dumps(type_spec(Order).source)
    grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
    assert not llguidance.LLMatcher.validate_grammar_with_warnings(grammar)[0]


# ------------------------------------------------------------------------- pictures


def test_derivations_and_grammars_are_drawn(tmp_path):
    draw = DrawGrammar()
    tree = parse(builtin("json"), '{"price $": [1, true]}')
    assert draw(tree, tmp_path / "json.png").stat().st_size > 0
    assert draw.grammar(builtin("arithmetic"), tmp_path / "g.png").stat().st_size > 0
    assert draw.grammar(builtin("json"), tmp_path / "o.png", names=["object"]).exists()
    assert draw.label("a $ b") == "a \\$ b" and draw.label("\n  ") == "'\\n  '"
    assert len(draw.label("x" * 100)) == draw.max_label
    with pytest.raises(FileNotFoundError):
        draw(tree, tmp_path / "missing" / "x.png")
    with pytest.raises(ValueError, match="no rules"):
        draw.grammar(builtin("json"), tmp_path / "n.png", names=["nope"])


# ------------------------------------------------------------------------- JSON Schema


def test_load_schema_from_dict_text_and_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"type": "string"}')
    assert load_schema({"type": "string"}) == load_schema('{"type": "string"}')
    assert load_schema(path) == load_schema(str(path)) == {"type": "string"}
    with pytest.raises(GrammarSourceError) as caught:
        load_schema('{\n  "type": "object",\n  "properties": {,}\n}')
    assert (caught.value.line, caught.value.column) == (3, 18)
    with pytest.raises(GrammarSourceError, match="does not exist"):
        load_schema(tmp_path / "nope.json")
    with pytest.raises(GrammarSourceError, match="is an object"):
        load_schema("[1]")
    with pytest.raises(GrammarSourceError, match="not int"):
        load_schema(3)


@pytest.mark.parametrize("schema, path", [
    ({"type": "object", "properties": {"age": {"type": "integr"}}}, "/properties/age/type"),
    ({"type": "array", "minItems": -1}, "/minItems"),
    ({"type": "object", "required": "name"}, "/required"),
    ({"properties": {"a": {"$ref": "#/$defs/missing"}}}, "/properties/a/$ref"),
])
def test_invalid_schemas_name_the_faulty_path(schema, path):
    with pytest.raises(GrammarSourceError) as caught:
        json_schema_spec(schema)
    assert caught.value.path == path and path in str(caught.value)


def test_json_schema_spec():
    spec = json_schema_spec('{"title": "Point", "type": "object"}')
    assert spec == GrammarSpec("json_schema", {"title": "Point", "type": "object"}, "Point")
    assert json_schema_spec({"type": "integer"}, name="n").name == "n"
    check_schema({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"})


# ------------------------------------------------------------------------- regex


def test_regex_spec():
    assert regex_spec(re.compile("[a-z]+"), "word") == GrammarSpec("regex", "[a-z]+", "word")
    with pytest.raises(GrammarSourceError) as caught:
        regex_spec("ab[c")
    assert caught.value.column == 3 and "unterminated character set" in str(caught.value)
    with pytest.raises(GrammarSourceError) as caught:
        regex_spec("ab(?=c)")
    assert "look-around" in str(caught.value) and caught.value.column == 3
    with pytest.raises(GrammarSourceError, match="lazy repeat"):
        regex_spec("a+?")
    with pytest.raises(GrammarSourceError, match="non-empty"):
        regex_spec("")


# ------------------------------------------------------------------------- Python types


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Item:
    """One line of an order."""

    sku: str
    quantity: int = 1


@dataclass
class Order:
    id: int
    items: list[Item]
    colour: Colour
    note: Optional[str] = None  # noqa: UP045 - the typing form is what users write too
    status: TypingLiteral["new", "paid"] = "new"
    tags: dict[str, float] = field(default_factory=dict)
    point: tuple[int, int] = (0, 0)
    parent: Optional[Order] = None  # noqa: UP045


def test_dataclass_schema():
    schema = schema_of(Order)
    assert schema["type"] == "object" and schema["title"] == "Order"
    assert schema["required"] == ["id", "items", "colour"]
    assert schema["properties"]["items"] == {"type": "array", "items": {"$ref": "#/$defs/Item"}}
    assert schema["properties"]["colour"] == {"enum": ["red", "blue"], "title": "Colour"}
    assert schema["properties"]["status"] == {"enum": ["new", "paid"], "default": "new"}
    assert schema["properties"]["parent"]["anyOf"][0] == {"$ref": "#/$defs/Order"}
    assert schema["$defs"]["Item"]["description"] == "One line of an order."
    check_schema(schema)
    jsonschema = pytest.importorskip("jsonschema")
    order = Order(7, [Item("a", 2)], Colour.RED, tags={"x": 1.5}, point=(1, 2))
    instance = json.loads(json.dumps(asdict(order), default=lambda v: v.value))
    jsonschema.validate(instance, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**instance, "extra": 1}, schema)


@pytest.mark.parametrize("tp, schema", [
    (int, {"type": "integer"}),
    (list[str], {"type": "array", "items": {"type": "string"}}),
    (set[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
    (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
    (TypingLiteral["a"], {"const": "a"}),
    (dict, {"type": "object"}),
])
def test_schema_of_simple_types(tp, schema):
    assert schema_of(tp) == schema


def test_schema_of_refuses_what_json_cannot_say():
    with pytest.raises(GrammarSourceError, match="keys are strings"):
        schema_of(dict[int, str])
    class Opaque:
        pass

    with pytest.raises(GrammarSourceError, match="no JSON Schema"):
        schema_of(Opaque)


def test_other_types_go_through_pydantic():
    pytest.importorskip("pydantic")
    typing_extensions = pytest.importorskip("typing_extensions")

    class Movie(typing_extensions.TypedDict):
        title: str
        year: int

    schema = schema_of(list[Movie])
    assert schema["type"] == "array" and schema["items"]["title"] == "Movie"
    assert schema["items"]["required"] == ["title", "year"]
    check_schema(schema)


def test_pydantic_models_use_pydantic_schemas():
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):
        name: str
        age: int = pydantic.Field(ge=0)

    spec = type_spec(Person)
    assert spec.format == "json_schema" and spec.name == "Person"
    assert spec.source == Person.model_json_schema()
    assert spec.source["properties"]["age"]["minimum"] == 0

    team = schema_of(make_dataclass("Team", [("lead", Person)]))
    assert team["properties"]["lead"] == {"$ref": "#/$defs/Person"}
    assert team["$defs"]["Person"]["properties"]["name"] == {"title": "Name", "type": "string"}


def test_as_spec_dispatches_on_the_source():
    assert as_spec(small()).format == "lark"
    assert as_spec(re.compile("x")).format == "regex"
    assert as_spec({"type": "string"}).format == "json_schema"
    assert as_spec(Item).name == "Item" and as_spec(list[int]).format == "json_schema"
    spec = GrammarSpec("regex", "a")
    assert as_spec(spec) is spec
    with pytest.raises(GrammarSourceError, match="from_lark"):
        as_spec("start: a")


def test_definitions_keep_positions_from_text():
    g = from_lark('start: a\n\na: "x"\n')
    assert g.by_name["a"].position == (3, 1)
    assert Definition("a", "x") == g.by_name["a"]  # positions are not part of equality
