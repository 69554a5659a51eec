from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.diagrams import (
    Context,
    NoDraft,
    Pipeline,
    PipelineFormatError,
    PromptLookup,
    autoregressive,
    from_json,
    load_pipeline,
    save_pipeline,
    speculative,
    to_json,
)
from diagrammar.diagrams.serialize import from_dict, to_dict

lookups = st.builds(PromptLookup, num_tokens=st.integers(1, 20), max_ngram=st.integers(3, 5),
                    min_ngram=st.integers(1, 3), branches=st.integers(1, 4),
                    branch_tokens=st.integers(1, 5))
drafters = st.recursive(st.one_of(lookups, st.just(NoDraft())),
                        lambda inner: st.tuples(inner, inner).map(lambda ab: ab[0] | ab[1]),
                        max_leaves=4)


@given(drafters)
def test_json_round_trip(drafter):
    step = speculative(drafter)
    text = to_json(step)
    assert from_json(text) == step
    assert to_json(from_json(text)) == text


@given(drafters, drafters)
def test_json_round_trip_with_parallel_and_swaps(a, b):
    step = speculative(a) @ speculative(b)
    step = step >> Pipeline.swap(Context, Context)
    assert from_json(to_json(step)) == step


def test_save_and_load(tmp_path):
    step = speculative(PromptLookup(num_tokens=3) | NoDraft())
    path = save_pipeline(step, tmp_path / "step.json")
    assert load_pipeline(path) == step


@pytest.mark.parametrize("text,message", [
    ("{", "malformed pipeline JSON at line 1, column 2"),
    ("[]", "must be a JSON object"),
    ('{"format": "other"}', "not a diagrammar pipeline"),
    ('{"format": "diagrammar.pipeline", "version": 9}', "unsupported pipeline version 9"),
    ('{"format": "diagrammar.pipeline", "version": 1, "dom": ["Context"]}',
     'needs a list under "layers"'),
])
def test_bad_json_fails_fast_with_the_position(text, message):
    with pytest.raises(PipelineFormatError, match=message):
        from_json(text)


def test_bad_layers_name_the_layer():
    data = to_dict(autoregressive())
    data["layers"][2]["box"] = {"box": "Nope", "spec": {}}
    with pytest.raises(PipelineFormatError, match="layer 2: unknown box 'Nope'; known boxes:"):
        from_dict(data)
    data = to_dict(autoregressive())
    data["layers"][1], data["layers"][2] = data["layers"][2], data["layers"][1]
    with pytest.raises(PipelineFormatError, match="layer 1: cannot compose box 'NoDraft' with "
                                                  "box 'GreedyAccept'"):
        from_dict(data)
    data = to_dict(speculative(PromptLookup()))
    data["layers"][0]["box"]["spec"]["num_tokens"] = -1
    with pytest.raises(PipelineFormatError, match="layer 0: .*num_tokens must be an integer"):
        from_dict(data)
    data["layers"][0]["box"]["spec"] = {"bogus": 1}
    with pytest.raises(PipelineFormatError, match="bad spec for box PromptLookup"):
        from_dict(data)
    data = to_dict(autoregressive())
    data["cod"] = ["Draft"]
    with pytest.raises(PipelineFormatError, match='"cod" says Draft'):
        from_dict(data)


def test_load_missing_file(tmp_path):
    with pytest.raises(PipelineFormatError, match="cannot read pipeline file"):
        load_pipeline(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(PipelineFormatError, match="bad.json: not a diagrammar pipeline"):
        load_pipeline(tmp_path / "bad.json")
