"""Errors about models: what went wrong, where, and what to do."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of model errors."""


class ModelLoadError(ModelError):
    """A model or tokenizer could not be loaded from the given path."""


class ContextTooLongError(ModelError, ValueError):
    """The prompt plus the requested new tokens do not fit in the model's context."""


class GenerationConfigError(ModelError, ValueError):
    """The model's generation config sets something (a repetition penalty, banned words, ...)
    that Hugging Face ``generate`` applies to greedy decoding and diagrammar's decoders do not;
    the message names the settings and how to switch them off."""
