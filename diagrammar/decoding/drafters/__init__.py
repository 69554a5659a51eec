"""Drafters: callables ``state -> DraftTree`` that propose tokens to verify, one per module.

Each follows the :class:`~diagrammar.decoding.protocols.Drafter` protocol (``start``,
``__call__``, ``observe``); :class:`BaseDrafter` gives the no-op hooks.

>>> from diagrammar.decoding.state import DecodeState
>>> drafter = PromptLookupDrafter(num_tokens=3, max_ngram=2)
>>> state = DecodeState(None, [7, 8, 9, 4, 7, 8], prompt_length=6, max_new_tokens=10)
>>> drafter.start(state)
>>> drafter(state).tokens
[9, 4, 7]
"""

from diagrammar.decoding.drafters.base import BaseDrafter
from diagrammar.decoding.drafters.merge import MergeDrafter
from diagrammar.decoding.drafters.no_draft import NoDraftDrafter
from diagrammar.decoding.drafters.prompt_lookup import PromptLookupDrafter

__all__ = ["BaseDrafter", "MergeDrafter", "NoDraftDrafter", "PromptLookupDrafter"]
