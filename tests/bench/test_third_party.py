"""The third-party prompt category: modules of installed packages outside the default models'
corpus, chosen deterministically, cut like code completion."""

from __future__ import annotations

import pytest

from diagrammar.bench.prompts import PromptError, build_prompts
from diagrammar.bench.third_party import (
    excluded_packages,
    installed_versions,
    third_party_sources,
)
from diagrammar.models.default import RECIPES


def test_training_packages_and_the_project_are_never_used():
    excluded = excluded_packages()
    assert "diagrammar" in excluded
    assert set(RECIPES["small"].packages) <= excluded
    sources = third_party_sources(packages=["numpy", "torch", "diagrammar", "sympy"])
    assert sources and {name.split(".")[0] for name in sources} == {"sympy"}


def test_module_choice_is_deterministic_and_bounded():
    first = third_party_sources(max_packages=3, per_package=2)
    assert first == third_party_sources(max_packages=3, per_package=2)
    tops = [name.split(".")[0] for name in first]
    assert len(set(tops)) <= 3 and all(tops.count(t) <= 2 for t in tops)
    for text in first.values():
        assert 120 <= text.count("\n") <= 2500
    assert third_party_sources(packages=["no_such_package_here"]) == {}
    versions = installed_versions(first)
    assert set(versions) == set(tops) and all(versions.values())


SOURCE = '''
def helper(values):
    """Sum the values, skipping None."""
    total = 0
    for value in values:
        if value is None:
            continue
        total += value
    return total


def scale(values, factor):
    """Scale every value."""
    out = []
    for value in values:
        out.append(value * factor)
    out.sort()
    return out
'''


def test_third_party_prompts_are_code_completions_of_the_given_modules():
    prompts = build_prompts(2, categories=["third-party"], third_party={"pkg.mod": SOURCE})
    assert [p.category for p in prompts] == ["third-party", "third-party"]
    assert {p.module for p in prompts} == {"pkg.mod"}
    # A function's head and the first third of its body: the model continues the rest.
    assert sorted(p.text.rstrip().splitlines()[-1].strip() for p in prompts) == [
        "out = []", "total = 0"]
    with pytest.raises(PromptError, match="no candidate package found"):
        build_prompts(1, categories=["third-party"], third_party={})
