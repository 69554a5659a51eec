"""The array implementations of a compiled step against their per-step twins.

Each array box must make exactly the choice its Python twin makes (same draft tree, same
acceptance, same learned matrix), so that the compiled loop and the per-step loop run the
same steps; these tests compare them on random contexts, trees and scores (hypothesis).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from diagrammar.decoding.acceptance import greedy_accept
from diagrammar.decoding.compiled import (
    ArrayTree,
    Carry,
    GreedyAcceptArray,
    PromptLookupArray,
    TokenRecyclingArray,
    capacity_for,
    chain,
    row_buckets,
    tree_layout,
)
from diagrammar.decoding.compiled.trees import ArrayAcceptance
from diagrammar.decoding.drafters import PromptLookupDrafter, TokenRecyclingDrafter
from diagrammar.decoding.state import DecodeState, Verification
from diagrammar.decoding.tree import DraftTree
from diagrammar.functors.compiled import step_support
from diagrammar.models.jax.session import tree_layout as host_tree_layout

VOCAB = 12


def carry_of(tokens: list[int], prompt_length: int, budget: int, boxes=(), capacity=None):
    """A carry holding ``tokens`` (no cache: the drafters do not read it)."""
    capacity = capacity or capacity_for(len(tokens), budget, 1)
    buffer = np.zeros(capacity, dtype=np.int32)
    buffer[:len(tokens)] = tokens
    counts = jnp.zeros(capacity, jnp.int32)
    return Carry(jnp.asarray(buffer), jnp.int32(len(tokens)), jnp.int32(prompt_length),
                 jnp.int32(budget), (), (), jnp.int32(len(tokens) - 1), jnp.bool_(False),
                 jnp.int32(0), counts, counts, tuple(boxes))


def host_state(tokens: list[int], prompt_length: int, budget: int) -> DecodeState:
    return DecodeState(None, list(tokens), prompt_length, budget, vocab_size=VOCAB)


def as_draft(tree: ArrayTree) -> tuple[list[int], list[int]]:
    count = int(tree.count)
    assert np.asarray(tree.valid)[:count].all() and not np.asarray(tree.valid)[count:].any()
    return np.asarray(tree.tokens)[:count].tolist(), np.asarray(tree.parents)[:count].tolist()


# -- prompt lookup -------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(tokens=st.lists(st.integers(0, 3), min_size=1, max_size=60),
       num_tokens=st.integers(1, 8), max_ngram=st.integers(1, 4), shrink=st.integers(0, 3),
       scan_limit=st.integers(1, 6), generated=st.integers(0, 30), left=st.integers(0, 12))
def test_prompt_lookup_drafts_what_the_host_drafter_drafts(tokens, num_tokens, max_ngram,
                                                           shrink, scan_limit, generated, left):
    min_ngram = max(1, max_ngram - shrink)
    prompt_length = max(1, len(tokens) - generated)
    budget = len(tokens) - prompt_length + left
    host = PromptLookupDrafter(num_tokens, max_ngram, min_ngram, scan_limit=scan_limit)
    state = host_state(tokens, prompt_length, budget)
    host.start(state)
    expected = host(state)
    array = PromptLookupArray(num_tokens, max_ngram, min_ngram, scan_limit)
    _, tree = array(None, carry_of(tokens, prompt_length, budget))
    assert as_draft(tree) == (expected.tokens, expected.parents)


# -- Token Recycling -----------------------------------------------------------------------------
templates = st.sampled_from([None, [[0], [1], [0, 0], [0, 1], [1, 0], [0, 0, 0]],
                             [[0], [0, 0], [0, 0, 0], [0, 0, 0, 0]]])


@st.composite
def recycling_cases(draw):
    k = draw(st.integers(1, 4))
    template = draw(templates)
    if template is not None:
        template = [path for path in template if all(rank < k for rank in path)] or [[0]]
    rows = []
    for _ in range(VOCAB):
        width = draw(st.integers(0, k))
        chosen = draw(st.permutations(range(VOCAB)))[:width]
        rows.append(list(chosen) + [-1] * (k - width))
    return k, template, np.array(rows, dtype=np.int32)


@settings(max_examples=40, deadline=None)
@given(case=recycling_cases(), max_nodes=st.one_of(st.none(), st.integers(0, 20)),
       root=st.integers(0, VOCAB - 1), left=st.integers(1, 8))
def test_token_recycling_drafts_what_the_host_drafter_drafts(case, max_nodes, root, left):
    k, template, matrix = case
    host = TokenRecyclingDrafter(k=k, template=template, max_nodes=max_nodes)
    state = host_state([5, root], 2, left)
    host.start(state)
    host.matrix[:] = matrix
    expected = host(state)
    array = TokenRecyclingArray(host)
    array.slot = 0
    device = array.start(state)
    _, tree = array(_Env(), carry_of([5, root], 2, left, boxes=[device]))
    assert as_draft(tree) == (expected.tokens, expected.parents)


class _Env:
    """A stand-in trace environment: only the observer list is read by the drafters."""

    def __init__(self):
        self.observers = []


@settings(max_examples=25, deadline=None)
@given(case=recycling_cases(), seed=st.integers(0, 10**6), root=st.integers(0, VOCAB - 1))
def test_token_recycling_learns_what_the_host_drafter_learns(case, seed, root):
    k, template, matrix = case
    rng = np.random.default_rng(seed)
    host = TokenRecyclingDrafter(k=k, template=template)
    state = host_state([5, root], 2, 9)
    host.start(state)
    host.matrix[:] = matrix
    drafted = host(state)
    scores = rng.permutation(VOCAB * (len(drafted) + 1)).reshape(-1, VOCAB).astype(np.float32)
    acceptance = greedy_accept(drafted, scores)
    array = TokenRecyclingArray(host)
    array.slot = 0
    env = _Env()
    _, tree = array(env, carry_of([5, root], 2, 9, boxes=[array.start(state)]))
    padded = np.zeros((tree.slots + 1, VOCAB), np.float32)
    padded[:len(scores)] = scores
    _, accepted = GreedyAcceptArray()(None, None, tree, jnp.asarray(padded))
    boxes = env.observers[0](env, ((jnp.asarray(matrix), jnp.asarray(host.probs)),),
                             jnp.int32(root), accepted)
    host.observe(state, Verification(root, drafted, scores, acceptance))
    learned, chances = boxes[0]
    assert np.asarray(learned).tolist() == host.matrix.tolist()
    np.testing.assert_allclose(np.asarray(chances), host.probs, rtol=1e-5, atol=1e-7)


# -- trees and acceptance ------------------------------------------------------------------------
@st.composite
def trees(draw, vocab=4):
    size = draw(st.integers(0, 12))
    tree = DraftTree()
    for _ in range(size):
        tree.add(draw(st.integers(-1, len(tree) - 1)), draw(st.integers(0, vocab - 1)))
    slots = len(tree) + draw(st.integers(0, 3))
    return tree, slots


def as_array_tree(tree: DraftTree, slots: int) -> ArrayTree:
    count = len(tree)
    tokens = np.zeros(slots, np.int32)
    parents = np.full(slots, -1, np.int32)
    tokens[:count], parents[:count] = tree.tokens, tree.parents
    depth = max(tree.depths(), default=0)
    return ArrayTree(jnp.asarray(tokens), jnp.asarray(parents),
                     jnp.arange(slots) < count, depth)


@settings(max_examples=40, deadline=None)
@given(case=trees())
def test_the_tree_layout_is_the_hosts(case):
    tree, slots = case
    ancestors, depths = tree_layout(as_array_tree(tree, slots))
    host_depths, host_ancestors = host_tree_layout(tree.parents)
    count = len(tree) + 1
    assert np.asarray(depths)[:count].tolist() == host_depths.tolist()
    assert (np.asarray(ancestors)[:count, :count] == host_ancestors).all()
    assert (np.asarray(ancestors)[count:] == np.eye(slots + 1, dtype=bool)[count:]).all()


@settings(max_examples=50, deadline=None)
@given(case=trees(), seed=st.integers(0, 10**6))
def test_greedy_acceptance_is_the_hosts(case, seed):
    tree, slots = case
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(slots + 1, 4))
    # Make the target follow the tree often: raise the score of a random child's token.
    for row in range(len(tree) + 1):
        children = [i for i, parent in enumerate(tree.parents) if parent == row - 1]
        if children and rng.random() < 0.7:
            scores[row, tree.tokens[rng.choice(children)]] += 10
    expected = greedy_accept(tree, scores[:len(tree) + 1])
    _, accepted = GreedyAcceptArray()(None, None, as_array_tree(tree, slots),
                                      jnp.asarray(scores))
    assert isinstance(accepted, ArrayAcceptance)
    length = int(accepted.length)
    assert [int(row) - 1 for row in np.asarray(accepted.path)[:length]] == list(expected.path)
    assert np.asarray(accepted.tokens)[:length + 1].tolist() == list(expected.tokens)


@settings(max_examples=40, deadline=None)
@given(accepted=st.lists(st.integers(0, 5), min_size=1, max_size=5), left=st.integers(1, 7),
       first_branch=st.booleans())
def test_commit_cuts_at_the_budget_and_after_an_end_token_as_the_host_does(accepted, left,
                                                                          first_branch):
    from diagrammar.decoding.commit import commit
    from diagrammar.decoding.compiled import CommitArray, StepEnv
    from diagrammar.decoding.state import Acceptance

    prompt = [1, 2, 4]
    depth = len(accepted) - 1
    path = list(range(depth)) if first_branch else [2 * i + 1 for i in range(depth)]
    host = DecodeState(_Kept(), list(prompt), 3, left, eos_token_ids=frozenset({3}))
    commit(host, Acceptance(tuple(path), tuple(accepted)))
    # A one-layer cache whose entries are their positions: the compaction moves them.
    capacity = 32
    cache = (jnp.arange(capacity, dtype=jnp.float32).reshape(1, capacity, 1),)
    tree = ArrayTree(jnp.zeros(2 * depth + 1, jnp.int32), jnp.zeros(2 * depth + 1, jnp.int32),
                     jnp.ones(2 * depth + 1, bool), depth)
    padded = np.zeros(depth + 1, np.int32)
    padded[:len(accepted)] = accepted
    acceptance = ArrayAcceptance(jnp.asarray([row + 1 for row in path], jnp.int32),
                                 jnp.int32(depth), jnp.asarray(padded), tree, None)
    carry = carry_of(prompt, 3, left, capacity=capacity)._replace(keys=cache, values=cache)
    (done,) = CommitArray()(StepEnv({}, None, "xla", jnp.array([3], jnp.int32)), carry,
                            acceptance)
    assert np.asarray(done.tokens)[:int(done.length)].tolist() == host.tokens
    assert bool(done.done) == host.done
    assert np.asarray(done.accepted)[:1].tolist() == host.accepted_per_step
    kept = np.asarray(done.keys[0])[0, :int(done.cache_length), 0].tolist()
    assert kept == list(range(3)) + [3 + node for node in path]   # root at 2, node n at 3 + n


class _Kept:
    """A host session that only records the kept path."""

    def keep(self, path):
        self.path = list(path)


def test_chains_and_buckets():
    tree = chain(jnp.array([4, 5, 6]), jnp.int32(2))
    assert tree.valid.tolist() == [True, True, False] and tree.parents.tolist() == [-1, 0, 1]
    assert row_buckets(1) == (1,) and row_buckets(3) == (1, 2, 3)
    assert row_buckets(81) == (1, 2, 3, 5, 9, 17, 33, 65, 81)


def test_step_support_names_the_box_that_keeps_a_step_per_step():
    from diagrammar.diagrams import (
        Constrain,
        PromptLookup,
        SpeculativeSampling,
        TokenRecycling,
        autoregressive,
        speculative,
    )

    assert step_support(autoregressive()) is None
    assert step_support(speculative(TokenRecycling(max_nodes=8))) is None
    assert "dynamic" in step_support(speculative(TokenRecycling(dynamic=True)))
    assert "SpeculativeSampling" in step_support(speculative(PromptLookup(),
                                                             SpeculativeSampling()))
    assert "Constrain" in step_support(speculative(PromptLookup(),
                                                   constrain=Constrain(grammar="json")))
    assert "Merge" in step_support(speculative(PromptLookup() | TokenRecycling()))

