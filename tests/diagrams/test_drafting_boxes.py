"""The drafting-suite boxes: validation with clear errors, JSON round trips (nested boxes
included), names, resources, and the named pipelines that use them."""

from __future__ import annotations

import pytest

from diagrammar.diagrams import (
    PIPELINES,
    Aded,
    DraftModel,
    NoDraft,
    PipelineFormatError,
    PromptLookup,
    Rasd,
    Retrieval,
    Sized,
    SpecTrAccept,
    SpeculativeSampling,
    WiringError,
    from_json,
    is_lossless,
    required_resources,
    speculative,
    to_json,
)


@pytest.mark.parametrize("box", [
    Aded(), Aded(top_k=4, decay=0.5, simulations=3, exploration=0.0, max_nodes=0,
                 hot_start=False, frozen=True, corpus="docs"),
    Retrieval(), Retrieval(datastore="docs", max_suffix=4, min_suffix=4, max_nodes=1),
    Rasd(Retrieval(), DraftModel(num_tokens=3)),
    Rasd(Retrieval(max_nodes=3), PromptLookup(num_tokens=2), max_nodes=5, top_k=2,
         min_prob=0.1, open_slots=False, prune=False),
    DraftModel(branches=[2, 1], sampling="without-replacement"),
    DraftModel(branches=[3], sampling="sequences"),
    Sized(PromptLookup() | Aded()), Sized(Retrieval(), cost="curve", prior=0.2, frozen=True),
])
@pytest.mark.parametrize("accept", [None, SpeculativeSampling(), SpecTrAccept()])
def test_boxes_round_trip_through_json(box, accept):
    step = speculative(box | NoDraft(), accept)
    assert from_json(to_json(step)) == step
    assert is_lossless(step)


@pytest.mark.parametrize("make,message", [
    (lambda: Aded(decay=0.0), r"Aded: decay must be a number in \(0.0, 1.0\]"),
    (lambda: Aded(top_k=0), "Aded: top_k must be an integer from 1 to 256, got 0"),
    (lambda: Aded(frozen="yes"), "Aded: frozen must be true or false"),
    (lambda: Aded(exploration=-1), r"Aded: exploration must be a number in \[0.0"),
    (lambda: Aded(corpus=""), "Aded: corpus must be null or name a resource"),
    (lambda: Retrieval(datastore=""), "Retrieval: datastore must name a resource"),
    (lambda: Retrieval(min_suffix=5, max_suffix=4), r"min_suffix \(5\) > max_suffix \(4\)"),
    (lambda: Retrieval(max_nodes=0), "Retrieval: max_nodes must be an integer from 1"),
    (lambda: Rasd(Retrieval(), DraftModel(), min_prob=2), "Rasd: min_prob must be"),
    (lambda: DraftModel(branches=[]), "DraftModel: branches must be null or a non-empty"),
    (lambda: DraftModel(branches=[2], stop_threshold=0.5), "applies to chains only"),
    (lambda: DraftModel(sampling="beam"), "DraftModel: sampling must be"),
    (lambda: Sized(PromptLookup(), prior=1.0), r"Sized: prior must be a number in \(0.0"),
    (lambda: Sized(PromptLookup(), cost=""), "Sized: cost must name a resource"),
])
def test_bad_hyper_parameters_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_rasd_takes_a_retrieval_box_and_one_drafter():
    with pytest.raises(WiringError, match="Rasd takes a Retrieval box first"):
        Rasd(DraftModel(), Retrieval())
    with pytest.raises(WiringError, match="Rasd fuses retrieval with one drafter box"):
        Rasd(Retrieval(), PromptLookup() | NoDraft())
    with pytest.raises(PipelineFormatError, match="needs \"retrieval\" and \"drafter\""):
        Rasd.from_spec({"drafter": {"box": "NoDraft"}})
    box = Rasd(Retrieval(datastore="docs"), DraftModel(model="tiny"))
    assert box.name == 'Rasd(Retrieval(datastore="docs"), DraftModel(model="tiny"))'
    assert required_resources(speculative(box)) == {"docs", "tiny"}


def test_the_drafting_suite_has_named_pipelines():
    names = {"aded", "aded-corpus", "rest", "rest-sized", "rasd", "rasd-sized", "draft-model-tree",
             "composed-sized", "speculative-sampling", "specinfer", "rsd", "spectr",
             "prompt-lookup-sampling", "token-recycling-sampling"}
    assert names <= set(PIPELINES)
    assert required_resources(PIPELINES["rest"]()) == {"datastore"}
    assert required_resources(PIPELINES["aded-corpus"]()) == {"datastore"}
    assert required_resources(PIPELINES["rasd"]()) == {"datastore", "draft", "cost"}
    assert required_resources(PIPELINES["rasd-sized"]()) == {"datastore", "draft", "cost"}
    assert required_resources(PIPELINES["spectr"]()) == {"draft"}
    assert required_resources(PIPELINES["composed-sized"]()) == {"cost"}
    assert all(is_lossless(PIPELINES[name]()) for name in names)
