"""Box metadata declared once on the class, and the registry that keeps keys unique."""

from __future__ import annotations

import pytest

from diagrammar.diagrams import (
    BOX_CLASSES,
    Accept,
    Commit,
    Merge,
    NoDraft,
    PipelineFormatError,
    PromptLookup,
    StepBox,
    Verify,
    autoregressive,
    box_registry,
    from_json,
    is_lossless,
    speculative,
    to_json,
)
from diagrammar.diagrams.boxes import box_from_json


def test_roles_and_losslessness_are_declared_on_the_classes():
    assert [box.role for box in speculative(PromptLookup()).boxes] == [
        "drafter", "verify", "accept", "commit"]
    assert is_lossless(autoregressive()) and is_lossless(speculative(PromptLookup() | NoDraft()))

    class Typical(Accept):
        lossless = False

        def __init__(self):
            super().__init__()

    assert not is_lossless(speculative(PromptLookup(), Typical()))
    assert not is_lossless(PromptLookup() >> Verify())          # nothing accepts
    with pytest.raises(TypeError, match="role 'judge' is not one of"):
        class Judge(StepBox):
            role = "judge"


def test_two_classes_with_one_name_do_not_replace_each_other():
    def mine():
        class Twin(Commit):
            pass
        return Twin

    def theirs():
        class Twin(Commit):
            pass
        return Twin

    first = mine()
    with pytest.raises(TypeError, match="box key 'Twin' is taken by .*mine.*give .*theirs"):
        theirs()
    assert BOX_CLASSES["Twin"] is first

    class Twin(Commit):                                   # its own key: fine
        key = "tests.Twin"

    assert BOX_CLASSES["tests.Twin"] is Twin
    assert box_from_json({"box": "tests.Twin"}) == Twin()


def test_box_registry_scopes_definitions():
    with box_registry():
        class Scoped(Commit):
            pass
        assert "Scoped" in BOX_CLASSES
    assert "Scoped" not in BOX_CLASSES


def test_abstract_roles_are_refused_by_the_reader():
    assert "Accept" not in BOX_CLASSES and "Drafter" not in BOX_CLASSES
    for name, concrete in (("Accept", "GreedyAccept"), ("Drafter", "NoDraft")):
        with pytest.raises(PipelineFormatError, match=f"box '{name}' is abstract.*{concrete}"):
            box_from_json({"box": name})


def test_nested_merges_flatten_and_deep_json_is_one_clear_error():
    deep = PromptLookup()
    for _ in range(300):
        deep = Merge(deep, NoDraft())
    assert len(deep.drafters) == 301
    step = speculative(deep)
    assert from_json(to_json(step)) == step
    levels = 2000
    nested = ('{"box": "Merge", "spec": {"drafters": [' * levels + '{"box": "NoDraft"}'
              + ', {"box": "NoDraft"}]}}' * levels)
    with pytest.raises(PipelineFormatError, match="nested too deeply"):
        from_json('{"format": "diagrammar.pipeline", "version": 1, "dom": ["Context"], '
                  '"cod": ["Context"], "layers": [{"left": [], "right": [], "box": '
                  + nested + "}]}")
    with pytest.raises(PipelineFormatError, match="nested too deeply"):
        from_json("[" * 100_000 + "]" * 100_000)


def test_every_hyper_parameter_is_in_the_spec():
    import inspect

    from diagrammar.decoding.drafters import PromptLookupDrafter

    implementation = set(inspect.signature(PromptLookupDrafter).parameters)
    assert implementation == set(PromptLookup().spec)
