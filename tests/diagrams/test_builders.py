from __future__ import annotations

import pytest

from diagrammar.diagrams import (
    PIPELINES,
    Commit,
    GreedyAccept,
    NoDraft,
    PipelineFormatError,
    PromptLookup,
    Verify,
    autoregressive,
    read_pipeline,
    register_pipeline,
    save_pipeline,
    speculative,
    to_json,
)


def test_autoregressive_and_speculative():
    assert autoregressive() == NoDraft() >> Verify() >> GreedyAccept() >> Commit()
    assert speculative(PromptLookup()) == PromptLookup() >> Verify() >> GreedyAccept() >> Commit()
    with pytest.raises(TypeError, match="takes a Drafter"):
        speculative(Verify())


def test_named_pipelines_and_registration():
    assert {"autoregressive", "prompt-lookup", "prompt-lookup-tree"} <= set(PIPELINES)

    @register_pipeline("test-only")
    def build():
        return speculative(PromptLookup(num_tokens=2))

    try:
        assert read_pipeline("test-only") == build()
    finally:
        del PIPELINES["test-only"]


def test_pipeline_reads_names_json_and_files(tmp_path):
    step = speculative(PromptLookup(num_tokens=4))
    assert read_pipeline(to_json(step)) == step
    path = save_pipeline(step, tmp_path / "p.json")
    assert read_pipeline(str(path)) == step
    with pytest.raises(PipelineFormatError, match="unknown pipeline 'nope': use one of"):
        read_pipeline("nope")
    with pytest.raises(PipelineFormatError, match="cannot read pipeline file"):
        read_pipeline(str(tmp_path / "missing.json"))
