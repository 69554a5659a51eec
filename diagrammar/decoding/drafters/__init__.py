"""Drafters: callables ``state -> DraftTree`` that propose tokens to verify, one per module.

Each follows the :class:`~diagrammar.decoding.protocols.Drafter` protocol (``start``,
``__call__``, ``observe``); :class:`BaseDrafter` gives the no-op hooks.

>>> from diagrammar.decoding.state import DecodeState
>>> state = DecodeState(None, [1, 2, 3, 1, 2], prompt_length=5, max_new_tokens=10)
>>> both = MergeDrafter([NoDraftDrafter(), PromptLookupDrafter(num_tokens=2)])
>>> both.start(state)
>>> both(state).paths()
[[3, 1]]
"""

from diagrammar.decoding.drafters.aded import AdedDrafter
from diagrammar.decoding.drafters.base import BaseDrafter
from diagrammar.decoding.drafters.draft_model import DraftModelDrafter
from diagrammar.decoding.drafters.merge import MergeDrafter
from diagrammar.decoding.drafters.no_draft import NoDraftDrafter
from diagrammar.decoding.drafters.prompt_lookup import PromptLookupDrafter
from diagrammar.decoding.drafters.retrieval import Datastore, RasdDrafter, RetrievalDrafter
from diagrammar.decoding.drafters.token_recycling import TokenRecyclingDrafter

__all__ = [
    "AdedDrafter",
    "BaseDrafter",
    "Datastore",
    "DraftModelDrafter",
    "MergeDrafter",
    "NoDraftDrafter",
    "PromptLookupDrafter",
    "RasdDrafter",
    "RetrievalDrafter",
    "TokenRecyclingDrafter",
]
