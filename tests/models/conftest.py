"""Fixtures for the default model's training machinery (all prefixed ``default_``).

``default_tiny_path`` and ``default_tiny`` (the tiny model, trained once per cache) live in
``tests/conftest.py``, shared by all tests.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def default_short_recipe():
    """A 3-step variant of the tiny recipe, for tests of the training machinery itself."""
    from diagrammar.models.default import RECIPES

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
