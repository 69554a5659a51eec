"""Fixtures of the benchmark tests.

The tiny default model comes from the same cache as everywhere else (``$DIAGRAMMAR_CACHE`` or
the user cache directory, as :func:`diagrammar.models.default.default` resolves it), so it is
trained at most once per cache.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bench_tiny_lm(default_tiny):
    """The tiny default model wrapped for tree verification (trained here if not cached)."""
    from diagrammar.models.hf import HFCausalLM

    return HFCausalLM(*default_tiny)


@pytest.fixture(scope="session")
def bench_full_prompts(bench_tiny_lm):
    """The full run's prompts (20 per category), counted with the default tokenizer."""
    from diagrammar.bench.prompts import build_prompts

    lm = bench_tiny_lm
    limit = lm.max_positions - 128 - 1
    return build_prompts(20, count_tokens=lambda text: len(lm.encode(text)),
                         max_prompt_tokens=limit)
