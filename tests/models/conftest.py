"""Fixtures for the embedded default model (all prefixed ``default_``).

The ``tiny`` default model is trained once per cache: in ``$DIAGRAMMAR_CACHE`` when set, else in
the user cache directory, exactly where :func:`diagrammar.models.default.default` looks.  When it
is already cached (and current) it is loaded instead of trained.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_tiny_path() -> Path:
    """Folder of the tiny default model, trained here if it is not cached yet."""
    from diagrammar.models.default import train_default

    return train_default("tiny", progress=False)


@pytest.fixture(scope="session")
def default_tiny(default_tiny_path):
    """``(model, tokenizer)`` of the tiny default model."""
    from diagrammar.models.default import default

    return default("tiny", train_if_missing=False, progress=False)


@pytest.fixture(scope="session")
def default_short_recipe():
    """A 3-step variant of the tiny recipe, for tests of the training machinery itself."""
    from diagrammar.models.default_training import RECIPES

    return dataclasses.replace(
        RECIPES["tiny"], steps=3, warmup_steps=2, batch_size=2, eval_max_tokens=2048
    )


@pytest.fixture(scope="session")
def default_short_cache(tmp_path_factory, default_short_recipe) -> Path:
    """A cache dir holding a tiny model trained with ``default_short_recipe`` (treat read-only)."""
    from diagrammar.models.default import train_default

    cache = tmp_path_factory.mktemp("default-short-cache")
    train_default("tiny", cache_dir=cache, recipe=default_short_recipe, progress=False)
    return cache
