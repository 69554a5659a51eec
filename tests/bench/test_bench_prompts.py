"""Prompt builders: counts, determinism, held-out sources only, context fit."""

from __future__ import annotations

from collections import Counter

import pytest

from diagrammar.bench.prompts import (
    CATEGORIES,
    LONG_MIN_TOKENS,
    PromptError,
    approx_tokens,
    build_prompts,
)
from diagrammar.models.default import HELDOUT_MODULES, heldout_sources


def test_twenty_prompts_per_category_with_unique_ids(bench_full_prompts):
    counts = Counter(p.category for p in bench_full_prompts)
    assert counts == {c: 20 for c in CATEGORIES}
    assert len({p.id for p in bench_full_prompts}) == len(bench_full_prompts)
    # Categories come in report order, and several modules feed each category.
    assert [p.category for p in bench_full_prompts] == sorted(
        (p.category for p in bench_full_prompts), key=CATEGORIES.index)
    for category in CATEGORIES:
        modules = {p.module for p in bench_full_prompts if p.category == category}
        assert len(modules) >= 5, (category, modules)


def test_prompts_are_deterministic(bench_tiny_lm, bench_full_prompts):
    lm = bench_tiny_lm
    again = build_prompts(20, count_tokens=lambda text: len(lm.encode(text)),
                          max_prompt_tokens=lm.max_positions - 128 - 1)
    assert again == bench_full_prompts


def test_prompts_fit_the_context_with_128_new_tokens(bench_tiny_lm, bench_full_prompts):
    lm = bench_tiny_lm
    for prompt in bench_full_prompts:
        length = len(lm.encode(prompt.text))
        lm.check_length(length, 128)  # raises ContextTooLongError when it does not fit
        assert length + 128 <= lm.max_positions
        if prompt.category == "retrieval":
            assert length >= LONG_MIN_TOKENS, prompt.id


def test_prompts_come_from_held_out_modules_or_untrained_packages_only(bench_full_prompts):
    from diagrammar.bench.third_party import excluded_packages, third_party_sources

    sources = {**heldout_sources(), **third_party_sources()}
    lines_of = {name: {line.strip() for line in text.splitlines()}
                for name, text in sources.items()}
    for prompt in bench_full_prompts:
        if prompt.category == "third-party":
            assert prompt.module.split(".")[0] not in excluded_packages()
        else:
            assert prompt.module in HELDOUT_MODULES
        known = lines_of[prompt.module]
        lines = [line.strip() for line in prompt.text.splitlines() if line.strip()]
        if prompt.category == "edit":
            # The last line starts the renamed copy: the only line not in the source.
            function = prompt.name.rsplit(".", 1)[-1]
            assert f"def {function}_v2(" in prompt.text
            assert f"def {function}(" in prompt.text
            lines = [line for line in lines if f"{function}_v2(" not in line]
        missing = [line for line in lines if line not in known]
        assert not missing, (prompt.id, missing[:3])


def test_each_category_has_its_shape(bench_full_prompts):
    for prompt in bench_full_prompts:
        if prompt.category == "docstring":
            # The prompt stops inside an open docstring.
            assert prompt.text.count('"""') % 2 == 1 or prompt.text.count("'''") % 2 == 1, \
                prompt.id
        if prompt.category in ("code", "retrieval", "third-party"):
            assert "def " + prompt.name.rsplit(".", 1)[-1] + "(" in prompt.text


def test_too_many_prompts_is_a_clear_error():
    with pytest.raises(PromptError, match="'edit' prompts"):
        build_prompts(10_000, categories=["edit"])


def test_short_context_limits_prompts():
    prompts = build_prompts(3, categories=["code", "docstring"], max_prompt_tokens=300)
    assert all(approx_tokens(p.text) <= 300 for p in prompts)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown prompt categories"):
        build_prompts(1, categories=["poetry"])
    with pytest.raises(ValueError, match="at least 1"):
        build_prompts(0)


def test_custom_sources():
    source = "\n".join(
        f"def f{i}(x):\n    \"\"\"Doc.\"\"\"\n    a = x + {i}\n    b = a * 2\n    c = b - 1\n"
        f"    d = c // 3\n    return d\n" for i in range(4))
    prompts = build_prompts(2, categories=["code"], sources={"mymod": source})
    assert {p.module for p in prompts} == {"mymod"}
    for prompt in prompts:  # signature, docstring and the first third of the statements
        assert prompt.text.rstrip().splitlines()[-1].startswith("    a = x + ")
        assert "b = a * 2" not in prompt.text.split(f"def {prompt.name}(")[1]
