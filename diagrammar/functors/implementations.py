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

from diagrammar.decoding.check import CheckStep
from diagrammar.decoding.cost import CostModel
from diagrammar.decoding.drafters import (
    AdedDrafter,
    DraftModelDrafter,
    MergeDrafter,
    NoDraftDrafter,
    PromptLookupDrafter,
    RasdDrafter,
    RetrievalDrafter,
    TokenRecyclingDrafter,
)
from diagrammar.decoding.drafters.sized import CostSizedDrafter
from diagrammar.decoding.steps import (
    DrafterStep,
    GreedyAcceptStep,
    SamplingAcceptStep,
    as_drafter,
    commit_step,
    verify_step,
)
from diagrammar.diagrams.boxes import (
    Aded,
    Check,
    Commit,
    Constrain,
    DraftModel,
    GreedyAccept,
    Merge,
    Monitor,
    NoDraft,
    PromptLookup,
    Rasd,
    Retrieval,
    Sized,
    SpecTrAccept,
    SpeculativeSampling,
    TokenRecycling,
    Verify,
)
from diagrammar.functors.backends import ImplementationFactory
from diagrammar.functors.datastores import load_datastore
from diagrammar.functors.grammars import constrain_implementation
from diagrammar.functors.monitors import monitor_implementation


def _token_recycling(box: TokenRecycling, execute: Any) -> DrafterStep:
    spec = box.spec
    if spec["cost"] is not None:
        spec["cost"] = _cost_model(box, execute)
    try:
        return DrafterStep(TokenRecyclingDrafter(**spec))
    except ValueError as error:
        raise ValueError(f"{box.name}: {error}") from None


def _cost_model(box: Any, execute: Any) -> CostModel:
    """The cost model a box names: a bound ``CostModel``, or a measured curve."""
    cost = execute.resource(box, "cost")
    return cost if isinstance(cost, CostModel) else CostModel.from_curve(cost)


def _draft_model(box: DraftModel, execute: Any) -> DrafterStep:
    spec = box.spec
    model = execute.backend.load_model(execute.resource(box, "model"))
    cost = _cost_model(box, execute) if spec["cost"] is not None else None
    return DrafterStep(DraftModelDrafter(model, spec["num_tokens"], spec["stop_threshold"],
                                         spec["branches"], spec["sampling"], spec["frozen"],
                                         cost))


def _aded(box: Aded, execute: Any) -> DrafterStep:
    spec = box.spec
    corpus = spec.pop("corpus")
    drafter = AdedDrafter(**spec)
    if corpus is not None:
        try:
            store = load_datastore(execute.resource(box, "corpus"), execute.model)
        except ValueError as error:
            raise ValueError(f"{box.name}: {error}") from None
        drafter.seed(store.tokens)
    return DrafterStep(drafter)


def _retrieval(box: Retrieval, execute: Any) -> DrafterStep:
    spec = box.spec
    try:
        spec["datastore"] = load_datastore(execute.resource(box, "datastore"), execute.model)
    except ValueError as error:
        raise ValueError(f"{box.name}: {error}") from None
    return DrafterStep(RetrievalDrafter(**spec))


def _rasd(box: Rasd, execute: Any) -> DrafterStep:
    spec = box.spec
    del spec["retrieval"], spec["drafter"]
    return DrafterStep(RasdDrafter(as_drafter(execute.implement(box.retrieval)),
                                   as_drafter(execute.implement(box.drafter)), **spec))


def _sized(box: Sized, execute: Any) -> DrafterStep:
    cost = _cost_model(box, execute)
    return DrafterStep(CostSizedDrafter(as_drafter(execute.implement(box.drafter)), cost,
                                        prior=box.spec["prior"], frozen=box.spec["frozen"]))


def _merge(box: Merge, execute: Any) -> DrafterStep:
    return DrafterStep(MergeDrafter([as_drafter(execute.implement(d)) for d in box.drafters]))


def _check(box: Check, execute: Any) -> CheckStep:
    """The ``Check`` box: its checker resource, reading tokens with the model's tokenizer."""
    if getattr(execute.model, "tokenizer", None) is None:
        raise ValueError(f"box {box.name!r}: a checker reads the generated text, so it needs "
                         "the model's tokenizer, and this model has none: load a model folder "
                         "with its tokenizer files")
    spec = box.spec
    try:
        return CheckStep(execute.resource(box, "checker"), spec["checkpoint"], spec["retries"],
                         decode=execute.model.decode)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{box.name}: {error}") from None


#: Box class -> implementation factory, for every backend.
IMPLEMENTATIONS: dict[type, ImplementationFactory] = {
    NoDraft: lambda box, execute: DrafterStep(NoDraftDrafter()),
    PromptLookup: lambda box, execute: DrafterStep(PromptLookupDrafter(**box.spec)),
    TokenRecycling: _token_recycling,
    DraftModel: _draft_model,
    Aded: _aded,
    Retrieval: _retrieval,
    Rasd: _rasd,
    Sized: _sized,
    Merge: _merge,
    Verify: lambda box, execute: verify_step,
    GreedyAccept: lambda box, execute: GreedyAcceptStep(),
    SpeculativeSampling: lambda box, execute: SamplingAcceptStep("speculative"),
    SpecTrAccept: lambda box, execute: SamplingAcceptStep("spectr"),
    Constrain: constrain_implementation,
    Monitor: monitor_implementation,
    Check: _check,
    Commit: lambda box, execute: commit_step,
}

__all__ = ["IMPLEMENTATIONS"]
