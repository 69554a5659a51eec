"""Tree attention: the reference against a brute-force softmax, the Triton kernel (Triton's
interpreter on a CPU, see ``conftest.py``) against the reference, and the dispatch.

Tolerances (absolute, largest element of the output, values drawn from a standard normal):

- reference vs brute force (float64, one row at a time, mask walked from ``parents``):
  float64 inputs 1e-12; float32 inputs 1e-5 (+ 1e-5 relative); float16 inputs 1e-3
  (+ 1e-3 relative: the output is rounded to float16, half an ulp is 2^-11 relative);
- Triton vs reference: float32 1e-4 (IEEE dot products; seen: about 1e-6); float16 2e-2
  (probabilities cast to float16 before the value product, as flash attention does; seen:
  about 2e-3).

Triton must be importable (CI installs the ``kernels`` extra): its tests fail, not skip,
without it.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tree_strategies import trees

from diagrammar.kernels import choose_impl, tree_attention
from diagrammar.kernels.ancestor_words import (
    MAX_TREE_NODES,
    ancestor_mask,
    ancestor_words,
    check_parents,
    with_root,
)
from diagrammar.kernels.reference import tree_attention_reference
from diagrammar.models.tree_mask import tree_layout

REFERENCE_TOLERANCE = {torch.float64: (1e-12, 0.0), torch.float32: (1e-5, 1e-5),
                       torch.float16: (1e-3, 1e-3)}
TRITON_TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2}


def triton_tree():
    """The Triton module, or a failed test that says how to install it."""
    try:
        import triton  # noqa: F401

        from diagrammar.kernels import triton_tree as module
    except ImportError as error:
        pytest.fail(f"triton is not importable ({error}): the kernel tests need it; install "
                    "the kernels extra: pip install -e '.[kernels]'")
    return module


# -- trees and inputs -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Case:
    """One tree-attention problem: sizes, tree, dtype, seed and the kernel's blocking."""

    heads: int
    size: int
    prefix: int
    parents: tuple[int, ...]
    dtype: torch.dtype
    seed: int = 0
    split_size: int | None = None
    block_m: int | None = None
    block_n: int = 16

    def tensors(self, device="cpu"):
        generator = torch.Generator().manual_seed(self.seed)
        nodes = len(self.parents)

        def normal(length):
            return torch.randn(self.heads, length, self.size, generator=generator,
                               dtype=torch.float64).to(self.dtype).to(device)

        return (normal(nodes), normal(self.prefix), normal(self.prefix), normal(nodes),
                normal(nodes))


@st.composite
def cases(draw, dtypes, max_prefix=70):
    parents = draw(trees())
    prefix = draw(st.one_of(st.just(0), st.integers(1, max_prefix)))
    splits = draw(st.integers(1, 3))
    return Case(heads=draw(st.integers(1, 4)), size=draw(st.sampled_from([16, 32, 64])),
                prefix=prefix, parents=parents, dtype=draw(st.sampled_from(dtypes)),
                seed=draw(st.integers(0, 2**16)),
                split_size=draw(st.sampled_from([None, max(1, math.ceil(prefix / splits))])),
                block_m=draw(st.sampled_from([None, 16])), block_n=draw(st.sampled_from([16, 32])))


def dense_visible(parents) -> torch.Tensor:
    """The tree mask walked node by node from ``parents`` (no bits involved)."""
    visible = torch.zeros((len(parents), len(parents)), dtype=torch.bool)
    for node in range(len(parents)):
        ancestor = node
        while ancestor != -1:
            visible[node, ancestor] = True
            ancestor = parents[ancestor]
    return visible


def brute_force(q, k_prefix, v_prefix, k_tree, v_tree, visible, scale=None):
    """Softmax attention in float64, one query at a time over the keys it sees."""
    q, k_prefix, v_prefix, k_tree, v_tree = (
        t.cpu().double() for t in (q, k_prefix, v_prefix, k_tree, v_tree))
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    out = torch.zeros_like(q)
    for head in range(q.shape[0]):
        for node in range(q.shape[1]):
            keys = torch.cat([k_prefix[head], k_tree[head][visible[node]]])
            values = torch.cat([v_prefix[head], v_tree[head][visible[node]]])
            if len(keys):
                scores = keys @ q[head, node] * scale
                weights = torch.exp(scores - scores.max())
                out[head, node] = weights @ values / weights.sum()
    return out


# -- ancestor words ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(trees())
def test_words_unpack_to_the_walked_mask(parents):
    assert torch.equal(ancestor_mask(ancestor_words(parents)), dense_visible(parents))


@settings(max_examples=30, deadline=None)
@given(trees(max_nodes=MAX_TREE_NODES - 1).map(lambda parents: [p - 1 for p in parents[1:]]))
def test_words_match_the_sessions_tree_layout(draft_parents):
    """The sessions' ancestor mask (draft nodes numbered without the root) is the same."""
    _, ancestors = tree_layout(draft_parents)
    assert torch.equal(ancestor_mask(ancestor_words(with_root(draft_parents))), ancestors)


def test_word_63_uses_the_sign_bit():
    words = ancestor_words(list(range(-1, 63)))
    assert words[63].item() == -1                      # all 64 bits set
    assert ancestor_mask(words)[63].all()


@pytest.mark.parametrize(("parents", "message"), [
    ([], "at least its root"),
    ([0, 0], "must have parent -1"),
    ([-1, 0, -1], "node 2 has parent -1"),
    ([-1, 1], "node 1 has parent 1"),
    ([-1, 0, 5], "node 2 has parent 5"),
    ([[-1, 0]], "one-dimensional"),
    ([-1.0, 0.0], "integers"),
    ([-1, *range(64)], "65 nodes does not fit the bit-packed mask"),
])
def test_bad_parents_say_what_is_wrong(parents, message):
    with pytest.raises(ValueError, match=message):
        check_parents(parents)


def test_tree_attention_names_a_tree_too_large():
    q = torch.zeros(1, 65, 16)
    with pytest.raises(ValueError, match="at most 64 nodes"):
        tree_attention(q, q[:, :0], q[:, :0], q, q, [-1, *range(64)], impl="reference")


# -- the reference ----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(cases(dtypes=[torch.float64, torch.float32, torch.float16]))
@example(Case(heads=2, size=64, prefix=0, parents=tuple(range(-1, 63)), dtype=torch.float64))
def test_reference_matches_brute_force(case):
    tensors = case.tensors()
    expected = brute_force(*tensors, dense_visible(case.parents))
    out = tree_attention_reference(*tensors, ancestor_words(case.parents))
    assert out.dtype == case.dtype and out.shape == expected.shape
    atol, rtol = REFERENCE_TOLERANCE[case.dtype]
    torch.testing.assert_close(out.double(), expected, atol=atol, rtol=rtol)


def test_reference_scale_parameter():
    case = Case(heads=2, size=16, prefix=5, parents=(-1, 0, 0, 2), dtype=torch.float64)
    tensors = case.tensors()
    out = tree_attention_reference(*tensors, ancestor_words(case.parents), scale=0.3)
    expected = brute_force(*tensors, dense_visible(case.parents), scale=0.3)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


HAND_MADE = torch.tensor([1, 0, 0b111, 0, -1], dtype=torch.int64)   # rows 1 and 3 see nothing


def hand_made_visible():
    return ancestor_mask(HAND_MADE)


def test_reference_rows_that_see_nothing_are_zeros():
    case = Case(heads=2, size=16, prefix=0, parents=(-1,) * 5, dtype=torch.float32)
    out = tree_attention_reference(*case.tensors(), HAND_MADE)
    assert not out.isnan().any()
    assert out[:, [1, 3]].eq(0).all()
    torch.testing.assert_close(out.double(), brute_force(*case.tensors(), hand_made_visible()),
                               atol=1e-5, rtol=1e-5)


def test_shapes_are_checked_with_names():
    q = torch.zeros(2, 3, 16)
    with pytest.raises(ValueError, match="k_prefix has shape"):
        tree_attention_reference(q, torch.zeros(2, 4, 8), torch.zeros(2, 4, 8), q, q,
                                 ancestor_words([-1, 0, 0]))
    with pytest.raises(ValueError, match="2 ancestor words for a tree block of 3"):
        tree_attention_reference(q, q[:, :0], q[:, :0], q, q, ancestor_words([-1, 0]))
    with pytest.raises(ValueError, match="v_tree is torch.float64"):
        tree_attention_reference(q, q[:, :0], q[:, :0], q, q.double(),
                                 ancestor_words([-1, 0, 0]))


# -- the Triton kernel ------------------------------------------------------------------------

def test_interpreter_is_on(kernel_device):
    """On a CPU the kernels must have been decorated in interpret mode (conftest.py sets
    TRITON_INTERPRET=1 before the first import of the Triton module)."""
    module = triton_tree()
    if kernel_device == "cpu":
        assert module.interpreted(), ("diagrammar.kernels.triton_tree was imported before "
                                      "tests/kernels/conftest.py set TRITON_INTERPRET=1")


TRITON_EXAMPLES = [
    # the largest tree, no prefix
    Case(heads=2, size=64, prefix=0, parents=(-1, *(np.random.default_rng(1).integers(
        0, np.arange(1, 64)).tolist())), dtype=torch.float32, seed=1),
    Case(heads=1, size=32, prefix=0, parents=tuple(range(-1, 63)), dtype=torch.float16),
    # the root alone
    Case(heads=1, size=16, prefix=0, parents=(-1,), dtype=torch.float32),
    Case(heads=3, size=16, prefix=1, parents=(-1,), dtype=torch.float16),
    # prefix not a multiple of the block, split in slices (the last one short), two query
    # blocks, the largest tree with a prefix
    Case(heads=2, size=32, prefix=37, parents=(-1, 0, 1, 0, 3, 3), dtype=torch.float32,
         split_size=16, block_n=16),
    Case(heads=1, size=16, prefix=50, parents=(-1, *range(16)), dtype=torch.float16,
         split_size=13, block_m=16),
    Case(heads=1, size=64, prefix=21, parents=(-1, *[0] * 63), dtype=torch.float32,
         block_n=32),
]


def check_triton(case, device):
    module = triton_tree()
    tensors = case.tensors(device)
    words = ancestor_words(case.parents, device=device)
    out = module.tree_attention_triton(*tensors, words, split_size=case.split_size,
                                       block_m=case.block_m, block_n=case.block_n)
    expected = tree_attention_reference(*tensors, words)
    assert out.dtype == case.dtype and out.shape == expected.shape
    assert not out.isnan().any()
    torch.testing.assert_close(out.float(), expected.float(), rtol=0,
                               atol=TRITON_TOLERANCE[case.dtype])


@pytest.mark.parametrize("case", TRITON_EXAMPLES, ids=lambda case: (
    f"T{len(case.parents)}-P{case.prefix}-{str(case.dtype).removeprefix('torch.')}"))
def test_triton_matches_reference_on_edge_cases(case, kernel_device):
    check_triton(case, kernel_device)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(dtypes=[torch.float32, torch.float16]))
def test_triton_matches_reference(case, kernel_device):
    check_triton(case, kernel_device)


def test_triton_rows_that_see_nothing_are_zeros(kernel_device):
    module = triton_tree()
    case = Case(heads=2, size=16, prefix=0, parents=(-1,) * 5, dtype=torch.float32)
    tensors = case.tensors(kernel_device)
    out = module.tree_attention_triton(*tensors, HAND_MADE.to(kernel_device))
    assert not out.isnan().any()
    assert out[:, [1, 3]].eq(0).all()
    torch.testing.assert_close(out, tree_attention_reference(*tensors,
                                                             HAND_MADE.to(kernel_device)),
                               atol=1e-4, rtol=0)


def test_triton_reads_slices_of_a_cache_buffer(kernel_device):
    """Prefix and tree block as views of one (heads, capacity, d) buffer, as the sessions keep
    their caches: strided, no copies needed."""
    module = triton_tree()
    generator = torch.Generator().manual_seed(3)
    keys, values = torch.randn(2, 3, 80, 32, generator=generator).to(kernel_device).unbind(0)
    queries = torch.randn(32, 3, 32, generator=generator).to(kernel_device).transpose(0, 1)
    prefix, nodes = 41, 7
    parents = (-1, 0, 0, 1, 2, 2, 5)
    tree = slice(prefix, prefix + nodes)
    args = (queries[:, :nodes], keys[:, :prefix], values[:, :prefix], keys[:, tree],
            values[:, tree], ancestor_words(parents, device=kernel_device))
    assert not args[1].is_contiguous() and not args[0].is_contiguous()
    torch.testing.assert_close(module.tree_attention_triton(*args, scale=0.2),
                               tree_attention_reference(*args, scale=0.2), atol=1e-4, rtol=0)


def test_triton_refuses_what_it_cannot_run(kernel_device):
    module = triton_tree()
    q = torch.zeros(1, 2, 16, device=kernel_device)
    words = ancestor_words([-1, 0], device=kernel_device)
    with pytest.raises(ValueError, match="float64: use the reference"):
        module.tree_attention_triton(*(t.double() for t in (q, q[:, :0], q[:, :0], q, q)),
                                     words)
    with pytest.raises(ValueError, match="block_n must be a power of two"):
        module.tree_attention_triton(q, q[:, :0], q[:, :0], q, q, words, block_n=24)
    if module.interpreted():
        with pytest.raises(ValueError, match="interpreter computes bfloat16 wrongly"):
            module.tree_attention_triton(*(t.bfloat16() for t in (q, q[:, :0], q[:, :0], q, q)),
                                         words)


# -- dispatch ---------------------------------------------------------------------------------

def test_dispatch_takes_parents_or_words(kernel_device):
    case = Case(heads=2, size=16, prefix=9, parents=(-1, 0, 1, 0), dtype=torch.float32)
    tensors = case.tensors(kernel_device)
    words = ancestor_words(case.parents)
    reference = tree_attention(*tensors, list(case.parents), impl="reference")
    torch.testing.assert_close(tree_attention(*tensors, words, impl="reference"), reference)
    torch.testing.assert_close(tree_attention(*tensors, np.array(case.parents),
                                              impl="reference"), reference)
    triton_tree()
    for impl in ("auto", "triton"):
        torch.testing.assert_close(tree_attention(*tensors, case.parents, impl=impl),
                                   reference, atol=1e-4, rtol=0)


def test_auto_chooses_triton_only_where_it_runs(monkeypatch):
    import diagrammar.kernels as kernels

    q32, q64 = torch.zeros(1, 1, 16), torch.zeros(1, 1, 16, dtype=torch.float64)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert choose_impl(q32) == "triton"            # interpreter requested on the CPU
    assert choose_impl(q64) == "reference"         # the kernel takes no float64
    monkeypatch.delenv("TRITON_INTERPRET")
    assert choose_impl(q32) == "reference"
    monkeypatch.setattr(kernels, "triton_installed", lambda: False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert choose_impl(q32) == "reference"


def test_unavailable_impls_say_why(monkeypatch):
    import diagrammar.kernels as kernels

    q = torch.zeros(1, 1, 16)
    with pytest.raises(ValueError, match="unknown tree-attention impl 'pallas'"):
        choose_impl(q, "pallas")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(RuntimeError, match="set TRITON_INTERPRET=1"):
        choose_impl(q, "triton")
    monkeypatch.setattr(kernels, "triton_installed", lambda: False)
    with pytest.raises(RuntimeError, match=r"pip install 'diagrammar\[kernels\]'"):
        choose_impl(q, "triton")

