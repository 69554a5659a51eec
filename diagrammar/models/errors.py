"""Errors about models: what went wrong, where, and what to do."""

from __future__ import annotations


class ModelError(Exception):
    """Base class of model errors."""


class ModelLoadError(ModelError):
    """A model or tokenizer could not be loaded from the given path."""


class ContextTooLongError(ModelError, ValueError):
    """The prompt plus the requested new tokens do not fit in the model's context."""
