"""Tree attention for jax arrays: the JAX reference against the torch reference, the Pallas
kernel (Pallas' interpreter on a CPU) against both, the int32 word pairs, and the dispatch.

Tolerances (absolute, largest element of the output, values drawn from a standard normal;
the torch reference is itself checked against brute force in ``test_tree_attention.py``):

- JAX reference vs torch reference: float32 1e-5 (+ 1e-5 relative); float16 1e-3 (+ 1e-3
  relative: both compute in float32 and round to float16, where one ulp is 2^-10 relative);
- Pallas vs JAX reference and vs torch reference: float32 1e-5 (HIGHEST-precision products;
  seen: about 7e-7); float16 1e-2 (probabilities cast to float16 before the value product, as
  flash attention does, and the output rounded to float16; seen: about 1e-3, one ulp).

Each new shape costs a jit compile of the interpreted kernel (about half a second), so the
hypothesis examples are few and the explicit cases share shapes where they can.

jax (with Pallas) must be importable (CI installs the ``qnlp`` extra, which brings it): the
tests fail, not skip, without it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tree_strategies import trees

from diagrammar.kernels import choose_impl, tree_attention
from diagrammar.kernels.ancestor_words import ancestor_mask, ancestor_words
from diagrammar.kernels.reference import tree_attention_reference

try:
    import jax
    import jax.numpy as jnp
    from jax.experimental import pallas  # noqa: F401

    from diagrammar.kernels import pallas_tree
    from diagrammar.kernels.jax_reference import (
        ancestor_word_pairs,
        pair_bits,
        tree_attention_jax_reference,
        word_pairs,
    )
except ImportError as error:   # the tests below fail with this message
    JAX_MISSING = (f"jax with Pallas is not importable ({error}): the JAX kernel tests need "
                   "it; install the qnlp extra: pip install -e '.[qnlp]'")
else:
    JAX_MISSING = None

REFERENCE_TOLERANCE = {"float32": (1e-5, 1e-5), "float16": (1e-3, 1e-3)}
PALLAS_TOLERANCE = {"float32": 1e-5, "float16": 1e-2, "bfloat16": 5e-2}


@pytest.fixture(autouse=True)
def jax_installed():
    if JAX_MISSING:
        pytest.fail(JAX_MISSING)


# -- problems ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Case:
    """One tree-attention problem and the Pallas kernel's blocking."""

    heads: int
    size: int
    prefix: int
    parents: tuple[int, ...]
    dtype: str
    seed: int = 0
    block_n: int = 16
    split_size: int | None = None

    def arrays(self) -> list[np.ndarray]:
        """q, k_prefix, v_prefix, k_tree, v_tree as NumPy arrays of the case's dtype."""
        rng = np.random.default_rng(self.seed)
        nodes = len(self.parents)
        return [rng.standard_normal((self.heads, length, self.size)).astype(self.dtype)
                for length in (nodes, self.prefix, self.prefix, nodes, nodes)]


def as_jax(arrays):
    return [jnp.asarray(array) for array in arrays]


def as_torch(arrays):
    return [torch.from_numpy(np.array(array)) for array in arrays]


@st.composite
def cases(draw):
    prefix = draw(st.one_of(st.just(0), st.integers(1, 70)))
    block_n = draw(st.sampled_from([16, 32]))
    splits = draw(st.integers(1, 3))
    split_size = block_n * max(1, -(-prefix // (splits * block_n)))
    return Case(heads=draw(st.integers(1, 4)), size=draw(st.sampled_from([16, 32, 64])),
                prefix=prefix, parents=draw(trees()),
                dtype=draw(st.sampled_from(["float32", "float16"])),
                seed=draw(st.integers(0, 2**16)), block_n=block_n,
                split_size=draw(st.sampled_from([None, split_size])))


def random_parents(nodes, seed):
    rng = np.random.default_rng(seed)
    return (-1, *(int(rng.integers(0, node)) for node in range(1, nodes)))


def check_all(case, words=None, **options):
    """Pallas (interpreted) vs the JAX reference vs the torch reference, on one case."""
    arrays = case.arrays()
    words = ancestor_words(case.parents) if words is None else words
    pairs = word_pairs(words.numpy())
    torch_out = tree_attention_reference(*as_torch(arrays), words).float().numpy()
    reference = tree_attention_jax_reference(*as_jax(arrays), pairs)
    out = pallas_tree.tree_attention_pallas(*as_jax(arrays), pairs, interpret=True,
                                            block_n=case.block_n,
                                            split_size=case.split_size, **options)
    assert out.dtype == reference.dtype == np.dtype(case.dtype)
    assert out.shape == reference.shape == arrays[0].shape
    assert not jnp.isnan(out).any()
    atol, rtol = REFERENCE_TOLERANCE[case.dtype]
    np.testing.assert_allclose(np.asarray(reference, np.float32), torch_out, atol=atol,
                               rtol=rtol)
    for expected in (np.asarray(reference, np.float32), torch_out):
        np.testing.assert_allclose(np.asarray(out, np.float32), expected, rtol=0,
                                   atol=PALLAS_TOLERANCE[case.dtype])
    return out


# -- word pairs -------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(trees())
def test_pairs_hold_both_halves_of_each_word(parents):
    words = ancestor_words(parents).numpy()
    pairs = np.asarray(ancestor_word_pairs(parents))
    assert pairs.dtype == np.int32 and pairs.shape == (len(parents), 2)
    rebuilt = (pairs[:, 1].view(np.uint32).astype(np.uint64) << np.uint64(32)) | \
        pairs[:, 0].view(np.uint32).astype(np.uint64)
    assert np.array_equal(rebuilt.view(np.int64), words)


@pytest.mark.parametrize("parents", [tuple(range(-1, 63)), random_parents(40, 2), (-1,)])
def test_pair_bits_unpack_to_the_mask(parents):
    mask = np.asarray(pair_bits(ancestor_word_pairs(parents), len(parents)))
    assert np.array_equal(mask, ancestor_mask(ancestor_words(parents)).numpy())


def test_words_are_split_alike_with_x64_on():
    """Int64 jax words exist only with x64 on; they are split by jax operations (also under
    jit) into the pairs NumPy makes, and the kernels agree on them."""
    case = Case(heads=1, size=16, prefix=5, parents=tuple(range(-1, 63)), dtype="float32")
    words = ancestor_words(case.parents).numpy()
    expected = np.asarray(word_pairs(words))
    with jax.enable_x64(True):
        jax_words = jnp.asarray(words)
        assert jax_words.dtype == jnp.int64
        assert np.array_equal(np.asarray(word_pairs(jax_words)), expected)
        assert np.array_equal(np.asarray(jax.jit(word_pairs)(jax_words)), expected)
        arrays = as_jax(case.arrays())
        out = pallas_tree.tree_attention_pallas(*arrays, jax_words, interpret=True)
        reference = tree_attention_jax_reference(*arrays, jax_words)
    np.testing.assert_allclose(np.asarray(out), np.asarray(reference), atol=1e-5, rtol=0)


def test_words_in_every_form():
    parents = random_parents(30, 3)
    words = ancestor_words(parents)
    expected = np.asarray(ancestor_word_pairs(parents))
    for form in (words, words.numpy(), words.numpy().view(np.uint64), list(words.tolist()),
                 jnp.asarray(words.numpy().astype(np.int32)),   # 30 nodes fit 32 bits
                 words.numpy().astype(np.int32), jnp.asarray(expected)):
        assert np.array_equal(np.asarray(word_pairs(form, 30)), expected), type(form)


@pytest.mark.parametrize(("words", "message"), [
    (np.zeros(40, np.int32), "cannot mask a tree of more than 32 nodes"),
    (np.zeros(3, np.float32), "must be int64"),
    (np.zeros((3, 3), np.int64), r"shape \(T,\)"),
    (torch.zeros(3, dtype=torch.int32), "must be int64"),
    ("words", "NumPy, jax or torch integer array"),
    (np.zeros(65, np.int64), "at most 64 nodes"),
    (np.zeros(4, np.int64), "4 ancestor words for a tree block of 3"),
])
def test_bad_words_say_what_is_wrong(words, message):
    with pytest.raises(ValueError, match=message):
        word_pairs(words, 3)


# -- the kernel against the references --------------------------------------------------------

EXAMPLES = [
    # the largest tree with no prefix: a random tree, a chain (bit 63 is the sign bit)
    Case(heads=2, size=64, prefix=0, parents=random_parents(64, 1), dtype="float32", seed=1),
    Case(heads=2, size=64, prefix=0, parents=tuple(range(-1, 63)), dtype="float32", seed=2),
    Case(heads=1, size=32, prefix=0, parents=tuple(range(-1, 63)), dtype="float16"),
    # the root alone, with and without a prefix
    Case(heads=1, size=16, prefix=0, parents=(-1,), dtype="float32"),
    Case(heads=3, size=16, prefix=1, parents=(-1,), dtype="float16"),
    # a prefix not a multiple of the block, in three splits (the last one short); the largest
    # tree, a star, with a prefix
    Case(heads=2, size=32, prefix=37, parents=(-1, 0, 1, 0, 3, 3), dtype="float32",
         split_size=16),
    Case(heads=1, size=64, prefix=21, parents=(-1, *[0] * 63), dtype="float32", block_n=32),
    Case(heads=1, size=16, prefix=50, parents=(-1, *range(16)), dtype="float16",
         split_size=32),
]


@pytest.mark.parametrize("case", EXAMPLES, ids=lambda case: (
    f"T{len(case.parents)}-P{case.prefix}-{case.dtype}"))
def test_pallas_matches_references_on_edge_cases(case):
    check_all(case)


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_pallas_matches_references(case):
    check_all(case)


HAND_MADE = torch.tensor([1, 0, 0b111, 0, -1], dtype=torch.int64)   # rows 1 and 3 see nothing


@pytest.mark.parametrize("prefix", [0, 7])
def test_rows_that_see_nothing_are_zeros(prefix):
    """Hand-made words: empty rows, and a word with all 64 bits set (columns past T hidden).
    With a prefix every row sees it; with ``prefix_length=0`` the empty rows are zeros."""
    case = Case(heads=2, size=16, prefix=prefix, parents=(-1,) * 5, dtype="float32")
    if prefix == 0:
        out = check_all(case, HAND_MADE)
    else:
        check_all(case, HAND_MADE)
        arrays = as_jax(case.arrays())
        out = pallas_tree.tree_attention_pallas(*arrays, HAND_MADE, interpret=True,
                                                block_n=16, prefix_length=0)
        reference = tree_attention_jax_reference(*arrays, HAND_MADE, prefix_length=0)
        np.testing.assert_allclose(np.asarray(out), np.asarray(reference), atol=1e-5, rtol=0)
    assert not jnp.isnan(out).any()
    assert (out[:, jnp.array([1, 3])] == 0).all()


def test_prefix_length_hides_the_rest_of_a_cache_buffer():
    """A fixed-capacity buffer (stale NaN rows past the length) with a traced length under
    jit: the same as the prefix cut to that length; whole blocks past it are not read."""
    case = Case(heads=2, size=32, prefix=64, parents=(-1, 0, 1, 0, 3, 3), dtype="float32",
                split_size=32)
    q, k_prefix, v_prefix, k_tree, v_tree = as_jax(case.arrays())
    k_buffer = k_prefix.at[:, 40:].set(jnp.nan)
    v_buffer = v_prefix.at[:, 40:].set(jnp.nan)
    pairs = ancestor_word_pairs(case.parents)

    @jax.jit
    def attend(length):
        return pallas_tree.tree_attention_pallas(q, k_buffer, v_buffer, k_tree, v_tree, pairs,
                                                 interpret=True, block_n=16, split_size=32,
                                                 prefix_length=length)

    for length in (40, 33, 0):
        expected = tree_attention_jax_reference(q, k_prefix[:, :length], v_prefix[:, :length],
                                                k_tree, v_tree, pairs)
        np.testing.assert_allclose(np.asarray(attend(length)), np.asarray(expected),
                                   atol=1e-5, rtol=0)
        cut = tree_attention_jax_reference(q, k_buffer, v_buffer, k_tree, v_tree, pairs,
                                           prefix_length=length)
        np.testing.assert_allclose(np.asarray(cut), np.asarray(expected), atol=1e-5, rtol=0)


def test_scale_and_bfloat16():
    case = Case(heads=2, size=32, prefix=37, parents=(-1, 0, 1, 0, 3, 3), dtype="float32")
    arrays = as_jax(case.arrays())
    pairs = ancestor_word_pairs(case.parents)
    expected = tree_attention_reference(*as_torch(case.arrays()), ancestor_words(case.parents),
                                        scale=0.3).numpy()
    out = pallas_tree.tree_attention_pallas(*arrays, pairs, 0.3, interpret=True)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5, rtol=0)
    halves = [array.astype(jnp.bfloat16) for array in arrays]
    out = pallas_tree.tree_attention_pallas(*halves, pairs, 0.3, interpret=True)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32), expected, rtol=0,
                               atol=PALLAS_TOLERANCE["bfloat16"])


def test_the_kernels_lower_to_triton():
    """Pallas' Triton lowering (what a GPU compiles) accepts both kernels, float32 and
    float16: lowered here for CUDA without a GPU. Triton's own compile is not run."""
    pairs = ancestor_word_pairs(random_parents(6, 4))
    for dtype in (jnp.float32, jnp.float16):
        arrays = [jax.ShapeDtypeStruct((2, length, 64), dtype) for length in (6, 200, 200, 6, 6)]
        traced = pallas_tree._tree_attention.trace(
            *arrays, pairs, jnp.int32(150), scale=0.125, block_n=64, splits=2, split_size=128,
            interpret=False, num_warps=4, num_stages=2)
        text = traced.lower(lowering_platforms=("cuda",)).as_text()
        assert text.count("xla.gpu.triton") == 2


def test_pallas_refuses_what_it_cannot_run():
    q = jnp.zeros((1, 2, 16))
    pairs = ancestor_word_pairs([-1, 0])
    with pytest.raises(ValueError, match="block_n must be a power of two"):
        pallas_tree.tree_attention_pallas(q, q[:, :0], q[:, :0], q, q, pairs, block_n=24)
    with pytest.raises(ValueError, match="multiple of block_n=16"):
        pallas_tree.tree_attention_pallas(q, q, q, q, q, pairs, block_n=16, split_size=24)
    with pytest.raises(ValueError, match="k_prefix has shape"):
        pallas_tree.tree_attention_pallas(q, jnp.zeros((1, 3, 8)), jnp.zeros((1, 3, 8)), q, q,
                                          pairs)
    with jax.enable_x64(True):
        wide = jnp.zeros((1, 2, 16), jnp.float64)
        with pytest.raises(ValueError, match="float64: use the JAX reference"):
            pallas_tree.tree_attention_pallas(wide, wide, wide, wide, wide, pairs)


def test_split_plans():
    assert pallas_tree.plan_splits(0, 4, 64, cores=132) == (0, 64)
    assert pallas_tree.plan_splits(100, 4, 16, cores=None) == (1, 112)
    assert pallas_tree.plan_splits(100, 4, 16, cores=None, split_size=32) == (4, 32)
    for capacity in (64, 1000, 4096, 8192, 8191):
        splits, size = pallas_tree.plan_splits(capacity, 12, 64, cores=132)
        assert size % 64 == 0 and splits * size >= capacity > (splits - 1) * size
        if capacity % 64 == 0 and capacity > 64:
            assert splits * size == capacity               # no padding copy
            assert splits >= min(capacity // 64, 22) // 2  # about 2 programs per core


# -- dispatch ---------------------------------------------------------------------------------

def test_dispatch_for_jax_arrays():
    case = Case(heads=2, size=16, prefix=9, parents=(-1, 0, 1, 0), dtype="float32")
    arrays = as_jax(case.arrays())
    expected = tree_attention_reference(*as_torch(case.arrays()),
                                        ancestor_words(case.parents)).numpy()
    assert choose_impl(arrays[0]) == "jax-reference"          # a CPU
    words = ancestor_words(case.parents)
    for tree in (list(case.parents), np.array(case.parents), words,
                 ancestor_word_pairs(case.parents)):
        for impl in ("auto", "jax-reference", "pallas"):
            out = tree_attention(*arrays, tree, impl=impl)
            assert isinstance(out, jax.Array)
            np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5, rtol=0)


def test_dispatch_names_impls_of_the_other_framework():
    with pytest.raises(ValueError, match="'triton' for jax arrays"):
        choose_impl(jnp.zeros((1, 1, 16)), "triton")
    with pytest.raises(ValueError, match="'pallas' for torch tensors"):
        choose_impl(torch.zeros(1, 1, 16), "pallas")
