"""The ``Execute`` functor's second mapping: boxes to *array implementations*, composed into one
compiled decoding loop (whole-step compilation, JAX backend).

When every box of a step has an array implementation here (and nobody overrode the box's
implementation with a custom functor), :func:`whole_step_loop` composes them along the
diagram's wires into a :class:`~diagrammar.decoding.compiled.WholeStepLoop`: the step is one
traced function and decoding one ``lax.while_loop``. Otherwise it says which box (or setting)
keeps the step in the per-step loop; the decoder then runs that loop and its stats say why
(``stats.mode``, ``stats.mode_reason``).

A box's array factory takes the box and its per-step implementation (so both loops share the
drafter's learned state, e.g. Token Recycling's matrix) and returns the array implementation,
or raises :class:`Unsupported` with the reason; given ``None`` for the implementation, it only
checks the box (:func:`step_support`).

>>> from diagrammar.diagrams import PromptLookup, speculative
>>> reason = step_support(speculative(PromptLookup(branches=3)))
>>> reason.startswith("box 'PromptLookup(branches=3)' has no array implementation")
True
>>> reason.split(": ")[-1]
'side branches are drafted on the host; the chain (branches=1) compiles'
>>> step_support(speculative(PromptLookup())) is None
True
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from discopy.symmetric import Swap

from diagrammar.diagrams.boxes import (
    Commit,
    GreedyAccept,
    NoDraft,
    Pipeline,
    PromptLookup,
    TokenRecycling,
    Verify,
)


class Unsupported(ValueError):
    """A box (or one of its settings) has no array implementation; the message says why."""


def _no_draft(box: NoDraft, implementation: Any) -> Any:
    from diagrammar.decoding.compiled import NoDraftArray

    return NoDraftArray()


def _prompt_lookup(box: PromptLookup, implementation: Any) -> Any:
    from diagrammar.decoding.compiled import PromptLookupArray

    spec = box.spec
    if spec["branches"] != 1:
        raise Unsupported("side branches are drafted on the host; the chain (branches=1) "
                          "compiles")
    return PromptLookupArray(spec["num_tokens"], spec["max_ngram"], spec["min_ngram"],
                             spec["scan_limit"])


def _token_recycling(box: TokenRecycling, implementation: Any) -> Any:
    from diagrammar.decoding.compiled import TokenRecyclingArray

    if box.spec["dynamic"]:
        raise Unsupported("dynamic trees are grown on the host; the static template compiles")
    if implementation is None:                       # only checking the box
        return None
    drafter = getattr(implementation, "drafter", None)
    if drafter is None:
        raise Unsupported("its implementation keeps no TokenRecyclingDrafter")
    return TokenRecyclingArray(drafter)


def _verify(box: Verify, implementation: Any) -> Any:
    from diagrammar.decoding.compiled import VerifyArray

    return VerifyArray()


def _greedy_accept(box: GreedyAccept, implementation: Any) -> Any:
    from diagrammar.decoding.compiled import GreedyAcceptArray

    return GreedyAcceptArray()


def _commit(box: Commit, implementation: Any) -> Any:
    from diagrammar.decoding.compiled import CommitArray

    if type(box) is not Commit:
        raise Unsupported(f"{type(box).__name__} is a subclass of Commit with its own "
                          "behaviour")
    return CommitArray()


#: Box class -> array factory ``(box, per-step implementation) -> array implementation``.
ARRAY_IMPLEMENTATIONS: dict[type, Callable[[Any, Any], Any]] = {
    NoDraft: _no_draft,
    PromptLookup: _prompt_lookup,
    TokenRecycling: _token_recycling,
    Verify: _verify,
    GreedyAccept: _greedy_accept,
    Commit: _commit,
}


def _swap(env: Any, left: Any, right: Any) -> tuple[Any, Any]:
    return right, left


def _factory(box: Any) -> Callable[[Any, Any], Any] | None:
    return ARRAY_IMPLEMENTATIONS.get(type(box))


def step_support(diagram: Pipeline) -> str | None:
    """Why ``diagram`` cannot compile as a whole step (``None`` when every box can, as far as
    the boxes alone tell)."""
    for box in diagram.boxes:
        if isinstance(box, Swap):
            continue
        factory = _factory(box)
        if factory is None:
            return f"box {box.name!r} ({type(box).__name__}) has no array implementation"
        try:
            factory(box, None)
        except Unsupported as error:
            return f"box {box.name!r} has no array implementation: {error}"
    return None


def whole_step_loop(decoder: Any, custom: frozenset[type] = frozenset()) -> tuple[Any, str | None]:
    """The compiled loop of a decoder's step, or ``(None, reason)``.

    Args:
        decoder: a :class:`~diagrammar.functors.execute.Decoder` on the JAX backend.
        custom: box classes whose implementation the user replaced (custom functors): such a
            box runs its own implementation, so its step stays in the per-step loop.
    """
    model = decoder.model
    if not (hasattr(model, "params") and hasattr(model, "architecture")):
        return None, f"the model ({type(model).__name__}) is not a JAX model"
    from diagrammar.decoding.compiled import WholeStepLoop

    layers, slots = [], 0
    for (_left, box, _right), (name, implementation, offset, width) in zip(
            decoder.diagram.inside, decoder.layers, strict=True):
        if isinstance(box, Swap):
            layers.append((name, _swap, offset, width))
            continue
        if any(issubclass(type(box), cls) for cls in custom):
            return None, f"box {box.name!r} runs a custom implementation"
        factory = _factory(box)
        if factory is None:
            return None, f"box {box.name!r} ({type(box).__name__}) has no array implementation"
        try:
            array = factory(box, implementation)
        except Unsupported as error:
            return None, f"box {box.name!r} has no array implementation: {error}"
        slots += getattr(array, "slots", 0)
        layers.append((name, array, offset, width))
    drafters = [box for box in decoder.diagram.boxes if getattr(box, "role", "") == "drafter"]
    if len(drafters) > 1:
        return None, "a step with several drafters merges their trees on the host"
    from diagrammar.diagrams.serialize import to_dict

    step = json.dumps(to_dict(decoder.diagram), sort_keys=True)
    return WholeStepLoop(model, layers, slots, step), None


__all__ = ["ARRAY_IMPLEMENTATIONS", "Unsupported", "step_support", "whole_step_loop"]
