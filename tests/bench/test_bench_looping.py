from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diagrammar.bench.looping import is_looping, repeated_ngram_fraction
from diagrammar.bench.results import Run, summarize


def _brute_force(tokens, n):
    covered = set()
    for start in range(len(tokens) - n + 1):
        gram = tokens[start:start + n]
        if any(tokens[earlier:earlier + n] == gram for earlier in range(start)):
            covered.update(range(start, start + n))
    return len(covered) / len(tokens) if len(tokens) >= n else 0.0


@given(st.lists(st.integers(0, 3), max_size=60), st.integers(1, 6))
def test_repeated_fraction_matches_a_brute_force_count(tokens, n):
    assert repeated_ngram_fraction(tokens, n) == pytest.approx(_brute_force(tokens, n))


def test_loops_are_told_from_code_that_does_not_repeat():
    assert is_looping([7, 8, 9, 10, 11, 12, 13, 14, 15] * 5)
    assert not is_looping(list(range(128)))
    with pytest.raises(ValueError, match="n must be at least 1"):
        repeated_ngram_fraction([1, 2], 0)


def test_summary_and_report_carry_the_looping_share():
    runs = [Run("hf/greedy", "a", "code", 5, 8, 1.0, 8, True, repeated=0.9),
            Run("hf/greedy", "b", "code", 5, 8, 1.0, 8, True, repeated=0.1),
            Run("ours/x", "a", "code", 5, 8, 0.5, 2, True, repeated=0.9),
            Run("ours/x", "b", "code", 5, 8, 0.5, 2, True)]
    summary = summarize(runs, ["hf/greedy", "ours/x"], ["code"])
    assert summary["code"]["hf/greedy"]["looping"] == 0.5
    assert summary["overall"]["ours/x"]["looping"] == 1.0      # only measured runs count
