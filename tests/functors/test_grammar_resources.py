"""Grammar resources: every kind of value a ``Constrain`` box's grammar may be becomes a
checked GrammarSpec, and bad ones fail naming what is wrong."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from diagrammar.decoding.constraints.engines import compile_grammar
from diagrammar.decoding.constraints.protocol import GrammarError, GrammarSpec
from diagrammar.diagrams.builtin_grammars import builtin
from diagrammar.functors.grammars import load_grammar


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_values_of_every_kind_become_specs(tmp_path):
    (tmp_path / "digits.regex").write_text("[0-9]+\n")
    (tmp_path / "point.json").write_text(json.dumps({"type": "object"}))
    (tmp_path / "yes.lark").write_text('start: "yes" | "no"\n')
    (tmp_path / "yes.gbnf").write_text('root ::= "yes" | "no"\n')
    assert load_grammar(tmp_path / "digits.regex") == GrammarSpec("regex", "[0-9]+", "digits")
    assert load_grammar(str(tmp_path / "point.json")).format == "json_schema"
    assert load_grammar(tmp_path / "yes.lark").format == "lark"
    assert load_grammar(tmp_path / "yes.gbnf").format == "lark"
    assert load_grammar("regex:a|b").source == "a|b"
    assert load_grammar('lark:start: "x"').format == "lark"
    assert load_grammar(re.compile("[ab]")).format == "regex"
    assert load_grammar(Point).source["required"] == ["x", "y"]
    assert load_grammar(builtin("json")).format == "lark"
    spec = GrammarSpec("regex", "x")
    assert load_grammar(spec) is spec


@pytest.mark.parametrize("name", ["json", "arithmetic", "sql_select", "python"])
def test_builtin_grammars_compile_on_both_engines(name, default_tiny):
    _, tokenizer = default_tiny
    spec = load_grammar(name)
    for engine in ("llguidance", "xgrammar"):
        compiled = compile_grammar(spec, tokenizer, len(tokenizer), engine=engine)
        assert compiled.matcher().allowed().any()


def test_bad_grammars_fail_with_the_fault(tmp_path):
    with pytest.raises(GrammarError, match="not a file, a 'regex:'"):
        load_grammar("no-such-grammar")
    with pytest.raises(GrammarError, match="cannot use 3"):
        load_grammar(3)
    (tmp_path / "bad.lark").write_text('start: "a" missing\n')
    with pytest.raises(GrammarError, match="missing"):
        load_grammar(tmp_path / "bad.lark")
    (tmp_path / "bad.json").write_text('{"type": "object",\n "properties": 3}')
    with pytest.raises(GrammarError, match="properties"):
        load_grammar(tmp_path / "bad.json")
    with pytest.raises(GrammarError, match="position|column"):
        load_grammar("regex:[a-")
    (tmp_path / "grammar.txt").write_text("x")
    with pytest.raises(GrammarError):
        load_grammar(tmp_path / "grammar.txt")
