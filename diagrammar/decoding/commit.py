"""Committing accepted tokens to a sequence.

>>> from diagrammar.decoding.state import Acceptance, DecodeState
>>> class Session:
...     def keep(self, path): self.kept = list(path)
>>> state = DecodeState(Session(), [1, 2], prompt_length=2, max_new_tokens=3,
...                     eos_token_ids=frozenset({0}))
>>> commit(state, Acceptance((0,), (4, 5)))
>>> state.tokens, state.done
([1, 2, 4, 5], False)
>>> commit(state, Acceptance((0, 1), (6, 7, 8)))   # the budget allows one more token
>>> state.tokens, state.done, state.accepted_per_step
([1, 2, 4, 5, 6], True, [2, 1])
"""

from __future__ import annotations

from diagrammar.decoding.state import Acceptance, DecodeState


def commit(state: DecodeState, accepted: Acceptance) -> None:
    """Keeps the accepted path's cache entries and appends the new tokens.

    New tokens are cut at the generation budget and after the first end-of-sequence token;
    either ends the generation. Then every observer (drafters that learn) receives the
    step's verification pass, completed with the acceptance.
    """
    if state.done and not accepted.tokens:    # ended before verifying (e.g. by a grammar)
        return
    state.session.keep(accepted.path)
    new = accepted.tokens
    left = state.max_new_tokens - state.generated
    if len(new) >= left:
        new = new[:left]
        state.done = True
    eos = state.eos_token_ids
    if eos:
        for index, token in enumerate(new):
            if token in eos:
                new = new[:index + 1]
                state.done = True
                break
    state.tokens.extend(new)
    state.accepted_per_step.append(len(new))
    verification = state.verification
    if verification is not None:
        verification.acceptance = accepted
        state.verification = None
        for observer in state.observers:
            observer.observe(state, verification)


__all__ = ["commit"]
