"""Builders for the standard decoding steps, and the registry of named pipelines.

>>> from diagrammar.diagrams.builders import autoregressive, speculative, read_pipeline
>>> from diagrammar.diagrams.boxes import PromptLookup
>>> [box.name for box in autoregressive().boxes]
['NoDraft', 'Verify', 'GreedyAccept', 'Commit']
>>> read_pipeline("prompt-lookup") == speculative(PromptLookup())
True
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from diagrammar.diagrams.boxes import (
    Accept,
    Commit,
    Drafter,
    GreedyAccept,
    NoDraft,
    Pipeline,
    PromptLookup,
    Verify,
)
from diagrammar.diagrams.errors import PipelineFormatError

#: Named pipelines: name -> builder. Add yours with :func:`register_pipeline`.
PIPELINES: dict[str, Callable[[], Pipeline]] = {}


def speculative(drafter: Drafter, accept: Accept | None = None) -> Pipeline:
    """One speculative step: draft, verify the tree in one pass, accept, commit."""
    if not isinstance(drafter, Drafter):
        raise TypeError(f"speculative() takes a Drafter box, not {drafter!r}")
    return drafter >> Verify() >> (accept if accept is not None else GreedyAccept()) >> Commit()


def autoregressive() -> Pipeline:
    """Plain greedy decoding: the speculative step with an empty draft."""
    return speculative(NoDraft())


def register_pipeline(name: str) -> Callable[[Callable[[], Pipeline]], Callable[[], Pipeline]]:
    """Registers a zero-argument pipeline builder under ``name`` (a decorator)."""

    def register(builder: Callable[[], Pipeline]) -> Callable[[], Pipeline]:
        PIPELINES[name] = builder
        return builder

    return register


register_pipeline("autoregressive")(autoregressive)


@register_pipeline("prompt-lookup")
def prompt_lookup() -> Pipeline:
    """Prompt lookup decoding: a chain of up to 10 tokens copied from the context."""
    return speculative(PromptLookup())


@register_pipeline("prompt-lookup-tree")
def prompt_lookup_tree() -> Pipeline:
    """Prompt lookup with up to two side branches where earlier matches disagree."""
    return speculative(PromptLookup(branches=3))


def read_pipeline(name_or_json: str) -> Pipeline:
    """A pipeline from a registered name, a JSON file path, or a JSON string."""
    from diagrammar.diagrams import serialize

    text = name_or_json.strip()
    if text in PIPELINES:
        return PIPELINES[text]()
    if text.startswith("{"):
        return serialize.from_json(text)
    if text.endswith(".json") or Path(text).is_file():
        return serialize.load_pipeline(text)
    known = ", ".join(sorted(PIPELINES))
    raise PipelineFormatError(
        f"unknown pipeline {name_or_json!r}: use one of {known}, a path to a pipeline JSON "
        "file, or a JSON string"
    )


__all__ = ["PIPELINES", "speculative", "autoregressive", "register_pipeline", "read_pipeline",
           "prompt_lookup", "prompt_lookup_tree"]
