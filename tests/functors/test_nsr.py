"""NSR's learner: the semantics functor, parsing, and deduction–abduction on SCAN."""

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from diagrammar.diagrams.grounded import tree_diagram
from diagrammar.functors.nsr import GroundedSymbolSystem, NSRConfig, Semantics
from diagrammar.symbolic.grounded import Tree, values
from diagrammar.symbolic.list_programs import ListProgram
from diagrammar.symbolic.scan import interpret, split

X, Y = ("var", 0), ("var", 1)
PROGRAMS = {"walk": ListProgram(("const", ("WALK",)), 0),
            "left": ListProgram(("concat", ("const", ("LTURN",)), X), 1),
            "opposite": ListProgram(("concat", ("first", X), X), 1),
            "after": ListProgram(("concat", Y, X), 2)}


def test_semantics_functor_agrees_with_tree_values():
    tree = Tree(("walk", "opposite", "left", "after", "walk"), (2, 3, 1, -1, 3))
    assert Semantics(PROGRAMS)(tree_diagram(tree.nested())) == values(tree, PROGRAMS)[3]
    assert Semantics(PROGRAMS)(tree_diagram(tree.nested())) == interpret(
        "walk opposite left after walk")
    assert Semantics({})(tree_diagram(("walk",))) is None
    # a box whose program takes another number of values has no meaning
    assert Semantics(PROGRAMS)(tree_diagram(("walk", ("walk",)))) is None


def test_parse_respects_known_arities():
    model = GroundedSymbolSystem(["walk", "left", "opposite", "after"])
    model.programs.update(PROGRAMS)
    for tree, logp in model.parse("walk opposite left after walk".split(), beam=8):
        assert logp <= 0
        for node, symbol in enumerate(tree.symbols):
            assert len(tree.children(node)) == PROGRAMS[symbol].arity
    assert model.run("walk after walk") == ("WALK", "WALK")


@pytest.fixture(scope="module")
def learned():
    train, test = split("length")
    short = [pair for pair in train if len(pair[0].split()) <= 4]
    vocabulary = sorted({w for s, _ in train for w in s.split()})
    model = GroundedSymbolSystem(vocabulary, NSRConfig(stage_size=160))
    records = model.fit(short, progress=False)
    return model, records, test


def test_learns_scan_meanings_from_short_commands(learned):
    model, records, _ = learned
    programs = {symbol: str(program) for symbol, program in model.programs.items()}
    assert programs["twice"] == "x + x" and programs["thrice"] == "x + x + x"
    assert programs["left"] == "[LTURN] + x" and programs["turn"] == "[]"
    assert programs["opposite"] == "first(x) + x"
    assert programs["around"] == "x + x + x + x"
    assert programs["and"] == "x + y" and programs["after"] == "y + x"
    assert records[0].stage == 1 and records[-1].stage == 4
    assert records[-1].accuracy >= 0.9


def test_generalises_to_longer_commands_than_seen(learned):
    model, _, test = learned
    sample = random.Random(0).sample(test, 60)  # 5 to 9 words, 24 to 48 actions
    assert model.accuracy(sample) >= 0.9


def test_example_compares_both_methods_end_to_end(tmp_path, monkeypatch, capsys):
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("scan_nsr_example",
                                                  root / "examples" / "scan_nsr.py")
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)  # dataclasses look it up
    spec.loader.exec_module(example)
    results = example.main(["--tiny", "--seeds", "0", "--splits", "add-jump",
                            "--report", str(tmp_path / "r.md"), "--plot",
                            str(tmp_path / "r.png")])
    assert [r.method for r in results] == ["NSR", "Transformer"]
    assert all(r.curve and 0 <= r.test_accuracy <= 1 for r in results)
    table = (tmp_path / "r.md").read_text()
    assert "| add-jump (40 test) | NSR | 1 |" in table and "`twice`: `x + x`" in table
    assert (tmp_path / "r.png").stat().st_size > 0
    assert "a grounded tree as a diagram" in capsys.readouterr().out
