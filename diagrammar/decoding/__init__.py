"""Decoding: the implementations ``Execute`` maps boxes to, and the loop that runs a step.

Holds the contracts (:mod:`~diagrammar.decoding.protocols`: ``LanguageModel``, ``Session``,
``Drafter``), the wire values (:class:`DecodeState`, :class:`DraftTree`, :class:`Acceptance`,
:class:`GenerationConfig`), drafters (one per module), acceptance rules, the commit, the
backend-neutral step wiring and the loop. It knows nothing of diagrams and imports no tensor
library: scores are any array with ``argmax``/``tolist``. It may import ``models`` and
``kernels``.

>>> from diagrammar.decoding import DraftTree
>>> DraftTree.chain([1, 2]).parents
[-1, 0]
"""

from diagrammar.decoding.acceptance import greedy_accept
from diagrammar.decoding.commit import commit
from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.drafters import (
    BaseDrafter,
    MergeDrafter,
    NoDraftDrafter,
    PromptLookupDrafter,
)
from diagrammar.decoding.loop import Generation, decode
from diagrammar.decoding.protocols import Drafter, LanguageModel, Session
from diagrammar.decoding.state import Acceptance, DecodeState, Verification
from diagrammar.decoding.stats import DecodeStats
from diagrammar.decoding.steps import DecodingError, DrafterStep
from diagrammar.decoding.tree import DraftTree

__all__ = ["greedy_accept", "commit", "GenerationConfig", "BaseDrafter", "MergeDrafter",
           "NoDraftDrafter", "PromptLookupDrafter", "Generation", "decode", "Drafter",
           "LanguageModel", "Session", "Acceptance", "DecodeState", "Verification",
           "DecodeStats", "DecodingError", "DrafterStep", "DraftTree"]
