"""Whole-step compilation: a decoding step's boxes as array functions, composed into one
jitted step and run in ``lax.while_loop`` on the device (the JAX backend).

The per-step loop (:mod:`diagrammar.decoding.loop`) runs Python between the boxes of every
step. Here each box has an *array implementation* over fixed-shape device arrays, taking and
returning the values on its wires like the per-step implementations do, so the ``Execute``
functor composes them along the diagram exactly as it composes the Python ones; the composite
``Carry -> Carry`` is the body of a ``lax.while_loop`` that runs until the budget or an end
token. One concept per module:

- :mod:`.carry`: the ``Context`` wire (token buffer, KV cache, counters, box state);
- :mod:`.env`: what boxes read while traced (weights, architecture, end tokens);
- :mod:`.trees`: the ``Draft`` and ``Accepted`` wires as arrays, and the tree layout;
- :mod:`.drafters`: no draft, prompt lookup, Token Recycling;
- :mod:`.steps`: verification (bucketed pass sizes), greedy acceptance, commit;
- :mod:`.loop`: :class:`WholeStepLoop`, composing, compiling and running them.

Which boxes have array implementations, and the choice between the two loops, is the
functor's business: :mod:`diagrammar.functors.compiled`.
"""

from diagrammar.decoding.compiled.carry import Carry, capacity_for
from diagrammar.decoding.compiled.drafters import (
    NoDraftArray,
    PromptLookupArray,
    TokenRecyclingArray,
)
from diagrammar.decoding.compiled.env import StepEnv
from diagrammar.decoding.compiled.loop import LoopResult, WholeStepLoop
from diagrammar.decoding.compiled.steps import (
    CommitArray,
    GreedyAcceptArray,
    VerifyArray,
    row_buckets,
)
from diagrammar.decoding.compiled.trees import ArrayAcceptance, ArrayTree, chain, tree_layout

__all__ = ["ArrayAcceptance", "ArrayTree", "Carry", "CommitArray", "GreedyAcceptArray",
           "LoopResult", "NoDraftArray", "PromptLookupArray", "StepEnv", "TokenRecyclingArray",
           "VerifyArray", "WholeStepLoop", "capacity_for", "chain", "row_buckets",
           "tree_layout"]
