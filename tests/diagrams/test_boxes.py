from __future__ import annotations

import json

import pytest

from diagrammar.diagrams import (
    BOX_CLASSES,
    Accepted,
    Commit,
    Context,
    Draft,
    Drafter,
    GreedyAccept,
    Merge,
    NoDraft,
    Pipeline,
    PromptLookup,
    Scores,
    StepBox,
    Verify,
    WiringError,
)


def test_boxes_have_the_step_types():
    assert (PromptLookup().dom, PromptLookup().cod) == (Context, Context @ Draft)
    assert (Verify().dom, Verify().cod) == (Context @ Draft, Context @ Draft @ Scores)
    assert (GreedyAccept().dom, GreedyAccept().cod) == (Context @ Draft @ Scores,
                                                        Context @ Accepted)
    assert (Commit().dom, Commit().cod) == (Context @ Accepted, Context)


def test_spec_is_frozen_json_and_a_copy():
    box = PromptLookup(num_tokens=7, branches=2)
    spec = box.spec
    assert spec == {"num_tokens": 7, "max_ngram": 3, "min_ngram": 1, "branches": 2,
                    "branch_tokens": 3, "scan_limit": 64}
    spec["num_tokens"] = 99
    assert box.spec["num_tokens"] == 7
    json.dumps(box.spec)
    assert box == PromptLookup(num_tokens=7, branches=2)
    assert box != PromptLookup(num_tokens=8, branches=2)
    assert box.name == "PromptLookup(num_tokens=7, branches=2)"


def test_spec_rejects_non_json_values():
    class Bad(Drafter):
        def __init__(self, thing=None):
            super().__init__(thing=thing)

    with pytest.raises(TypeError, match="only JSON data"):
        Bad(thing=object())


def test_prompt_lookup_validates_its_hyper_parameters():
    with pytest.raises(ValueError, match="num_tokens must be an integer from 1 to 1024"):
        PromptLookup(num_tokens=0)
    with pytest.raises(ValueError, match="max_ngram must be an integer from 1 to 64"):
        PromptLookup(max_ngram=10**9)          # used to hang: a loop over 10**9 n-gram sizes
    with pytest.raises(ValueError, match="scan_limit"):
        PromptLookup(scan_limit=True)
    with pytest.raises(ValueError, match="min_ngram"):
        PromptLookup(max_ngram=1, min_ngram=2)


def test_miswiring_names_both_boxes_and_both_types():
    with pytest.raises(WiringError) as error:
        PromptLookup() >> Commit()
    message = str(error.value)
    assert "'PromptLookup'" in message and "'Commit'" in message
    assert "Context @ Draft" in message and "Context @ Accepted" in message
    with pytest.raises(WiringError, match="'Verify'.*'Verify'"):
        NoDraft() >> Verify() >> Verify()


def test_wiring_error_is_a_value_error_and_rejects_foreign_diagrams():
    from discopy.symmetric import Box

    assert issubclass(WiringError, ValueError)
    with pytest.raises(WiringError, match="only diagrammar boxes"):
        NoDraft() >> Box("f", Context @ Draft, Context)


def test_composition_and_tensor_stay_pipelines():
    step = NoDraft() >> Verify() >> GreedyAccept() >> Commit()
    assert isinstance(step, Pipeline)
    assert (step.dom, step.cod) == (Context, Context)
    both = step @ step
    assert isinstance(both, Pipeline) and both.dom == Context @ Context
    swapped = Pipeline.swap(Context, Draft)
    assert swapped.cod == Draft @ Context


def test_merge_with_bar_flattens_and_checks():
    a, b, c = PromptLookup(num_tokens=4), NoDraft(), PromptLookup(max_ngram=2)
    merged = a | b | c
    assert isinstance(merged, Merge) and merged.drafters == (a, b, c)
    assert merged.name == "PromptLookup(num_tokens=4) | NoDraft | PromptLookup(max_ngram=2)"
    assert (merged.dom, merged.cod) == (Context, Context @ Draft)
    with pytest.raises(WiringError, match="both sides of | must be drafters"):
        a | Verify()
    with pytest.raises(ValueError, match="at least two"):
        Merge(a)


def test_user_boxes_register_by_name():
    class Shout(StepBox):
        dom, cod = Context, Context

        def __init__(self, volume: int = 1):
            super().__init__(volume=volume)

    assert BOX_CLASSES["Shout"] is Shout
    assert Shout(volume=3).spec == {"volume": 3}
    assert Shout().name == "Shout"
