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


def committed_tokens(state: DecodeState, tokens: tuple[int, ...] | list[int]
                     ) -> tuple[tuple[int, ...], bool]:
    """The tokens a commit of ``tokens`` appends, and whether they end the generation.

    They are cut at the generation budget and after the first end-of-sequence token.

    >>> from diagrammar.decoding.state import DecodeState
    >>> state = DecodeState(None, [1], prompt_length=1, max_new_tokens=5,
    ...                     eos_token_ids=frozenset({0}))
    >>> committed_tokens(state, (4, 0, 5)), committed_tokens(state, (4, 5))
    (((4, 0), True), ((4, 5), False))
    """
    new = tuple(tokens)
    done = False
    left = state.max_new_tokens - state.generated
    if len(new) >= left:
        new = new[:left]
        done = True
    eos = state.eos_token_ids
    if eos:
        for index, token in enumerate(new):
            if token in eos:
                new = new[:index + 1]
                done = True
                break
    return new, done


def commit(state: DecodeState, accepted: Acceptance) -> None:
    """Keeps the accepted path's cache entries and appends the new tokens.

    New tokens are cut at the generation budget and after the first end-of-sequence token
    (:func:`committed_tokens`); either ends the generation. Then every observer (drafters
    that learn) receives the step's verification pass, completed with the acceptance.

    A rolled-back acceptance (a ``Check`` box already rolled the state back) keeps and
    appends nothing: the step counts 0 tokens and its pass is not observed.
    """
    if state.done and not accepted.tokens:    # ended before verifying (e.g. by a grammar)
        return
    if accepted.rolled_back:
        state.accepted_per_step.append(0)
        state.verification = None
        return
    state.session.keep(accepted.path)
    new, done = committed_tokens(state, accepted.tokens)
    if done:
        state.done = True
    state.tokens.extend(new)
    state.accepted_per_step.append(len(new))
    verification = state.verification
    if verification is not None:
        verification.acceptance = accepted
        state.verification = None
        for observer in state.observers:
            observer.observe(state, verification)


__all__ = ["commit", "committed_tokens"]
