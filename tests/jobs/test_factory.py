from __future__ import annotations

import pickle

import pytest

from diagrammar.diagrams import PromptLookup, to_json
from diagrammar.functors.execute import Decoder, ExecuteError
from diagrammar.jobs import DecoderFactory
from diagrammar.jobs.factory import default_resource


def test_a_factory_pickles_and_builds_a_decoder(factory):
    again = pickle.loads(pickle.dumps(factory))
    assert again == factory
    decoder = again()
    assert isinstance(decoder, Decoder)
    assert decoder.generate("def f():", 5).tokens == factory().generate("def f():", 5).tokens


def test_the_pipeline_may_be_json(saved_model_dir):
    decoder = DecoderFactory(str(saved_model_dir), to_json(PromptLookup()))
    with pytest.raises(ExecuteError, match="needs a decoding step"):
        decoder()


def test_resources_are_resolved_by_kind(saved_model_dir):
    seen = []

    def resolve(kind, value, model, dtype):
        seen.append((kind, value, dtype))
        return default_resource(kind, value, model, dtype)

    make = DecoderFactory(str(saved_model_dir), "draft-model",
                          (("draft", str(saved_model_dir)),), "float32", resolve_resource=resolve)
    assert len(make().generate("x", 3).tokens) == 3
    assert seen == [("model", str(saved_model_dir), "float32")]


def test_default_resource_passes_other_kinds_through():
    assert default_resource("datastore", "corpus/", None, "auto") == "corpus/"
