"""The torch backend: boxes implemented with Hugging Face models and our decoding code.

>>> from diagrammar.functors.torch_backend import TORCH
>>> from diagrammar.diagrams import PromptLookup, Verify
>>> PromptLookup in TORCH.implementations and Verify in TORCH.implementations
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diagrammar.decoding.acceptance import greedy_accept
from diagrammar.decoding.commit import commit
from diagrammar.decoding.drafters import EmptyDrafter, MergedDrafter, PromptLookupDrafter
from diagrammar.decoding.state import Acceptance, DecodeState
from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams.boxes import Commit, GreedyAccept, Merge, NoDraft, PromptLookup, Verify
from diagrammar.functors.backends import Backend, Implementation
from diagrammar.models.hf import HFCausalLM, load_model


def load_torch_model(model: Any) -> HFCausalLM:
    """An :class:`HFCausalLM` from one, from a Hugging Face model (or ``(model, tokenizer)``),
    or from a local model folder."""
    if isinstance(model, HFCausalLM):
        return model
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        return load_model(model)
    if isinstance(model, tuple) and len(model) == 2:
        return HFCausalLM(*model)
    if hasattr(model, "config") and hasattr(model, "forward"):
        return HFCausalLM(model)
    raise TypeError(f"the torch backend takes an HFCausalLM, a Hugging Face model, "
                    f"(model, tokenizer) or a model folder, not {type(model).__name__}")


class DrafterStep:
    """Wires a drafter ``state -> DraftTree`` as ``Context -> Context @ Draft``."""

    __slots__ = ("drafter",)

    def __init__(self, drafter: Callable[[DecodeState], DraftTree]) -> None:
        self.drafter = drafter

    def start(self, state: DecodeState) -> None:
        start = getattr(self.drafter, "start", None)
        if start is not None:
            start(state)

    def __call__(self, state: DecodeState) -> tuple[DecodeState, DraftTree]:
        return state, self.drafter(state)


class UnwiredDrafter:
    """The inverse of :class:`DrafterStep`: any drafter implementation as ``state -> tree``."""

    __slots__ = ("implementation",)

    def __init__(self, implementation: Implementation) -> None:
        self.implementation = implementation

    def start(self, state: DecodeState) -> None:
        start = getattr(self.implementation, "start", None)
        if start is not None:
            start(state)

    def __call__(self, state: DecodeState) -> DraftTree:
        return self.implementation(state)[1]


def verify(state: DecodeState, tree: DraftTree) -> tuple[DecodeState, DraftTree, Any]:
    """Scores the root and the whole tree in one forward pass of the target model."""
    return state, tree, state.session.verify(state.tokens[-1], tree.tokens, tree.parents)


def accept_greedy(state: DecodeState, tree: DraftTree, scores: Any
                  ) -> tuple[DecodeState, Acceptance]:
    return state, greedy_accept(tree, scores)


def commit_step(state: DecodeState, accepted: Acceptance) -> tuple[DecodeState]:
    commit(state, accepted)
    return (state,)


def _merge(box: Merge, execute: Any) -> DrafterStep:
    return DrafterStep(MergedDrafter([UnwiredDrafter(execute.implement(d)) for d in box.drafters]))


TORCH = Backend(
    name="torch",
    load_model=load_torch_model,
    implementations={
        NoDraft: lambda box, execute: DrafterStep(EmptyDrafter()),
        PromptLookup: lambda box, execute: DrafterStep(PromptLookupDrafter(**box.spec)),
        Merge: _merge,
        Verify: lambda box, execute: verify,
        GreedyAccept: lambda box, execute: accept_greedy,
        Commit: lambda box, execute: commit_step,
    },
)

__all__ = ["TORCH", "load_torch_model", "DrafterStep", "UnwiredDrafter", "verify",
           "accept_greedy", "commit_step"]
