"""The ``Execute`` functor's mapping on boxes: each box class to its implementation.

An implementation is built per box by a factory ``(box, execute) -> implementation`` and
takes the values on the box's input wires. Every factory reads all of its hyper-parameters
from the box's spec, so the pipeline JSON describes exactly what runs. The table is shared by
all backends: the wiring only talks to the model through the ``Session`` contract.

A new method is a new box, its implementation in ``decoding/``, and one line here.

>>> from diagrammar.diagrams import PromptLookup
>>> IMPLEMENTATIONS[PromptLookup](PromptLookup(num_tokens=4), None).drafter.num_tokens
4
"""

from __future__ import annotations

from typing import Any

from diagrammar.decoding.drafters import MergeDrafter, NoDraftDrafter, PromptLookupDrafter
from diagrammar.decoding.steps import (
    DrafterStep,
    GreedyAcceptStep,
    as_drafter,
    commit_step,
    verify_step,
)
from diagrammar.diagrams.boxes import Commit, GreedyAccept, Merge, NoDraft, PromptLookup, Verify
from diagrammar.functors.backends import ImplementationFactory


def _merge(box: Merge, execute: Any) -> DrafterStep:
    return DrafterStep(MergeDrafter([as_drafter(execute.implement(d)) for d in box.drafters]))


#: Box class -> implementation factory, for every backend.
IMPLEMENTATIONS: dict[type, ImplementationFactory] = {
    NoDraft: lambda box, execute: DrafterStep(NoDraftDrafter()),
    PromptLookup: lambda box, execute: DrafterStep(PromptLookupDrafter(**box.spec)),
    Merge: _merge,
    Verify: lambda box, execute: verify_step,
    GreedyAccept: lambda box, execute: GreedyAcceptStep(),
    Commit: lambda box, execute: commit_step,
}

__all__ = ["IMPLEMENTATIONS"]
