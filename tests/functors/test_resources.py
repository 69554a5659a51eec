"""Boxes name resources in their JSON spec; ``Execute(..., resources=...)`` binds them."""

from __future__ import annotations

import pytest

from diagrammar.decoding import DraftTree
from diagrammar.decoding.steps import DrafterStep
from diagrammar.diagrams import Drafter, from_json, speculative, to_json
from diagrammar.functors import Execute, ExecuteError


class Table(Drafter):
    """Drafts from a lookup table that is a resource: the spec holds only its name."""

    resources = ("table",)

    def __init__(self, table: str = "table") -> None:
        super().__init__(table=table)


def implement_table(box, execute):
    table = execute.resource(box, "table")
    return DrafterStep(lambda state: DraftTree.chain(table.get(state.tokens[-1], [])))


@pytest.fixture
def model(model_factory):
    return model_factory("gpt2", 0)


def test_a_bound_resource_reaches_the_implementation_and_the_json_stays_pure(model):
    from diagrammar.diagrams import register_box_class

    register_box_class(Table)                  # the autouse fixture scopes it to this test
    step = speculative(Table(table="lookup"))
    assert from_json(to_json(step)) == step
    assert '"table": "lookup"' in to_json(step)
    reference = Execute(model, implementations={Table: implement_table},
                        resources={"none": {}})(speculative(Table(table="none")))
    plain = reference.generate([5, 6], 8).tokens
    oracle = {5: [], 6: plain[:3]}
    execute = Execute(model, implementations={Table: implement_table},
                      resources={"lookup": oracle})
    result = execute(step).generate([5, 6], 8)
    assert result.tokens == plain and result.stats.accepted_per_step[0] == 4


def test_an_unbound_resource_fails_at_compile_time_naming_box_and_resource(model):
    execute = Execute(model, implementations={Table: implement_table},
                      resources={"other": {}})
    with pytest.raises(ExecuteError, match=r"box 'Table\(table=\"lookup\"\)' needs the "
                                           r"resource 'lookup' \(its 'table'\).*bound: other"):
        execute(speculative(Table(table="lookup")))
