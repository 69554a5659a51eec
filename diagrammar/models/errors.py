"""Errors about models: what went wrong, where, and what to do."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of model errors."""


class ModelLoadError(ModelError):
    """A model or tokenizer could not be loaded from the given path."""


class ContextTooLongError(ModelError, ValueError):
    """The prompt plus the requested new tokens do not fit in the model's context."""


def check_context(prompt_length: int, max_new_tokens: int, max_positions: int | None) -> None:
    """What every model's ``check_length`` checks: a prompt, and room for it and the new tokens
    in a context of ``max_positions`` (``None``: unbounded).

    >>> check_context(10, 30, 32)
    Traceback (most recent call last):
    ...
    diagrammar.models.errors.ContextTooLongError: the prompt has 10 tokens and 30 new tokens \
were asked for, but the model's context holds 32: shorten the prompt or ask for fewer new tokens
    """
    if prompt_length < 1:
        raise ValueError("the prompt is empty: give at least one token")
    if max_positions is not None and prompt_length + max_new_tokens > max_positions:
        raise ContextTooLongError(
            f"the prompt has {prompt_length} tokens and {max_new_tokens} new tokens were "
            f"asked for, but the model's context holds {max_positions}: shorten the "
            "prompt or ask for fewer new tokens")


class GenerationConfigError(ModelError, ValueError):
    """The model's generation config sets something (a repetition penalty, banned words, ...)
    that Hugging Face ``generate`` applies to greedy decoding and diagrammar's decoders do not;
    the message names the settings and how to switch them off."""
