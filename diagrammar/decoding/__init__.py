"""Implementations that ``Execute`` maps boxes to: drafters, acceptance, commit, the loop.

>>> from diagrammar.decoding import DraftTree
>>> DraftTree.chain([1, 2]).parents
[-1, 0]
"""

from diagrammar.decoding.acceptance import greedy_accept
from diagrammar.decoding.commit import commit
from diagrammar.decoding.drafters import EmptyDrafter, MergedDrafter, PromptLookupDrafter
from diagrammar.decoding.loop import Generation, decode
from diagrammar.decoding.state import Acceptance, DecodeState
from diagrammar.decoding.stats import DecodeStats
from diagrammar.decoding.tree import DraftTree

__all__ = ["greedy_accept", "commit", "EmptyDrafter", "MergedDrafter", "PromptLookupDrafter",
           "Generation", "decode", "Acceptance", "DecodeState", "DecodeStats", "DraftTree"]
