"""The lean GPT-2 session with a tree-attention kernel as its attention (``attention=``).

For ``"reference"`` and ``"triton"`` (Triton's interpreter on a CPU, as CI runs it):
``verify`` scores equal those of the default ``"sdpa"`` session on random small GPT-2
configurations and random trees, and whole pipelines (greedy autoregressive, prompt lookup,
Token Recycling) decode the very tokens of the default session and of Hugging Face greedy
``generate``. Tolerances on the scores (absolute): float64 1e-9 (the reference only: Triton
takes no float64), float32 1e-4 (as ``test_hf_tree.py``; seen: about 1e-7), float16 2e-2
(the kernel against the float16 sdpa session; seen: about 2e-3).

``triton.jit`` reads ``TRITON_INTERPRET`` when it decorates a kernel: ``tests/conftest.py``
sets it before anything imports Triton. ``DIAGRAMMAR_KERNEL_DEVICE=cuda`` runs the same tests
compiled on a GPU instead.
"""

from __future__ import annotations

import os
import random

import pytest
import torch
from conftest import EOS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagrammar import kernels
from diagrammar.diagrams import PIPELINES
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM
from diagrammar.models.fast_gpt2 import ATTENTIONS, FastGPT2Session
from diagrammar.models.hf import ATTENTION_VARIABLE

DEVICE = os.environ.get("DIAGRAMMAR_KERNEL_DEVICE", "cpu")
KERNELS = ["reference", "triton"]
VOCAB = 48
#: Small GPT-2 shapes: (layers, width, heads); head sizes 4 to 16.
CONFIGS = [(1, 16, 2), (2, 32, 4), (2, 16, 1), (1, 32, 2)]
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 2e-2}

_MODELS: dict = {}


@pytest.fixture(autouse=True)
def no_attention_variable(monkeypatch):
    """The tests choose the attention themselves, whatever the caller's environment says."""
    monkeypatch.delenv(ATTENTION_VARIABLE, raising=False)


def _model(model_factory, config: int, seed: int = 0, dtype=torch.float32):
    key = (config, seed, dtype)
    if key not in _MODELS:
        layers, width, heads = CONFIGS[config]
        _MODELS[key] = model_factory("gpt2", seed, vocab=VOCAB, layers=layers, width=width,
                                     heads=heads, dtype=dtype).to(DEVICE)
    return _MODELS[key]


def _tree(rng: random.Random, nodes: int) -> tuple[list[int], list[int]]:
    return ([rng.randrange(VOCAB) for _ in range(nodes)],
            [rng.randint(-1, node - 1) for node in range(nodes)])


def _path(rng: random.Random, parents: list[int]) -> list[int]:
    """The path from the root to a random node (empty for an empty tree)."""
    if not parents:
        return []
    path = [rng.randrange(len(parents))]
    while parents[path[0]] >= 0:
        path.insert(0, parents[path[0]])
    return path


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of each kernel function that sessions created from now on run."""
    from diagrammar.kernels import reference, triton_tree

    calls = dict.fromkeys(KERNELS, 0)

    def counted(module, name, attention):
        function = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[attention] += 1
            return function(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counted(reference, "tree_attention_reference", "reference")
    counted(triton_tree, "tree_attention_triton", "triton")
    return calls


# -- scores ------------------------------------------------------------------------------------

@pytest.mark.parametrize("attention,dtype", [("reference", torch.float64),
                                             ("reference", torch.float32),
                                             ("triton", torch.float32)])
@settings(max_examples=12, deadline=None)
@given(config=st.integers(0, len(CONFIGS) - 1), seed=st.integers(0, 2**31),
       prompt_length=st.integers(1, 40), nodes=st.integers(0, 24))
def test_verify_scores_equal_the_sdpa_session(model_factory, attention, dtype, config, seed,
                                              prompt_length, nodes):
    """Two passes (a random tree, a random accepted path kept, then another tree) score as
    the sdpa session does: the prefix is the cache the kernel itself filled and moved."""
    model = _model(model_factory, config, dtype=dtype)
    rng = random.Random(seed)
    prompt = [rng.randrange(VOCAB) for _ in range(prompt_length)]
    plain = FastGPT2Session(model, prompt)
    kernel = FastGPT2Session(model, prompt, attention=attention)
    assert kernel.attention == attention and plain.attention == "sdpa"
    root = prompt[-1]
    for _ in range(2):
        tokens, parents = _tree(rng, nodes)
        expected = plain.verify(root, tokens, parents)
        torch.testing.assert_close(kernel.verify(root, tokens, parents), expected,
                                   atol=TOLERANCE[dtype], rtol=0)
        path = _path(rng, parents)
        plain.keep(path)
        kernel.keep(path)
        root = rng.randrange(VOCAB)
        nodes = rng.randint(0, 12)
    assert kernel.fallback_passes == 0


@pytest.mark.parametrize("attention", KERNELS)
def test_float16_scores_equal_the_sdpa_session(model_factory, attention):
    model = _model(model_factory, 1, dtype=torch.float16)
    rng = random.Random(5)
    prompt = [rng.randrange(VOCAB) for _ in range(30)]
    tokens, parents = _tree(rng, 20)
    expected = FastGPT2Session(model, prompt).verify(prompt[-1], tokens, parents)
    scores = FastGPT2Session(model, prompt, attention=attention).verify(prompt[-1], tokens,
                                                                        parents)
    assert scores.dtype == torch.float16
    torch.testing.assert_close(scores, expected, atol=TOLERANCE[torch.float16], rtol=0)


@pytest.mark.parametrize("attention", KERNELS)
def test_blocks_over_64_tokens_run_sdpa(model_factory, attention, kernel_calls):
    """The packed mask holds 64 nodes: a block of 64 tokens (root + 63 nodes, or a prefill of
    64) runs the kernel; a larger tree or prefill runs sdpa for that pass, and is counted."""
    model = _model(model_factory, 0)
    layers = CONFIGS[0][0]
    rng = random.Random(1)
    prompt = [rng.randrange(VOCAB) for _ in range(65)]          # a prefill of 64 tokens
    plain = FastGPT2Session(model, prompt)
    kernel = FastGPT2Session(model, prompt, attention=attention)
    assert (kernel.fallback_passes, kernel_calls[attention]) == (0, layers)
    for nodes, fallbacks in ((63, 0), (64, 1)):
        tokens, parents = _tree(rng, nodes)
        calls = kernel_calls[attention]
        scores = kernel.verify(prompt[-1], tokens, parents)
        torch.testing.assert_close(scores, plain.verify(prompt[-1], tokens, parents),
                                   atol=1e-4, rtol=0)
        assert kernel.fallback_passes == fallbacks
        assert kernel_calls[attention] - calls == (0 if fallbacks else layers)
        kernel.truncate(len(prompt) - 1)
        plain.truncate(len(prompt) - 1)
    long = FastGPT2Session(model, prompt + [7], attention=attention)   # a prefill of 65
    assert long.fallback_passes == 1
    tokens, parents = _tree(rng, 5)
    torch.testing.assert_close(long.verify(7, tokens, parents),
                               FastGPT2Session(model, prompt + [7]).verify(7, tokens, parents),
                               atol=1e-4, rtol=0)


def test_sdpa_never_calls_a_kernel(model_factory, kernel_calls):
    session = FastGPT2Session(_model(model_factory, 0), [5, 6, 7])
    session.verify(7, [8, 9, 10], [-1, 0, -1])
    assert kernel_calls == dict.fromkeys(KERNELS, 0) and session.fallback_passes == 0


# -- whole pipelines ---------------------------------------------------------------------------

PIPELINE_NAMES = ["autoregressive", "prompt-lookup", "token-recycling"]


@pytest.mark.parametrize("attention", KERNELS)
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.integers(0, len(CONFIGS) - 1), model_seed=st.integers(0, 3),
       pattern=st.lists(st.integers(4, VOCAB - 1), min_size=2, max_size=5),
       repeats=st.integers(1, 4), max_new_tokens=st.integers(8, 20))
def test_pipelines_decode_the_tokens_of_sdpa_and_generate(model_factory, kernel_calls,
                                                          attention, config, model_seed,
                                                          pattern, repeats, max_new_tokens):
    model = _model(model_factory, config, model_seed)
    prompt = pattern * repeats
    hf = model.generate(torch.tensor([prompt], device=DEVICE), do_sample=False,
                        max_new_tokens=max_new_tokens,
                        pad_token_id=EOS)[0, len(prompt):].tolist()
    plain, kernel = HFCausalLM(model), HFCausalLM(model, attention=attention)
    assert (plain.attention, kernel.attention) == ("sdpa", attention)
    for name in PIPELINE_NAMES:
        calls = kernel_calls[attention]
        expected = Execute(plain)(PIPELINES[name]()).generate(prompt, max_new_tokens).tokens
        assert kernel_calls[attention] == calls
        tokens = Execute(kernel)(PIPELINES[name]()).generate(prompt, max_new_tokens).tokens
        assert kernel_calls[attention] > calls, f"{name} never ran the {attention} kernel"
        assert tokens == expected == hf, name


def test_trees_wider_than_the_mask_decode_losslessly(model_factory):
    """Token Recycling's whole 80-node template: passes of 81 tokens fall back to sdpa."""
    model = _model(model_factory, 0, 2)
    prompt = [5, 6, 7, 8] * 3
    hf = model.generate(torch.tensor([prompt], device=DEVICE), do_sample=False,
                        max_new_tokens=16, pad_token_id=EOS)[0, len(prompt):].tolist()
    lm = HFCausalLM(model, attention="reference")
    sessions = []
    session = lm.session
    lm.session = lambda ids: sessions.append(session(ids)) or sessions[-1]
    decoder = Execute(lm)(PIPELINES["token-recycling-paper"]())
    assert decoder.generate(prompt, 16).tokens == hf
    assert [s.attention for s in sessions] == ["reference"]
    assert sessions[0].fallback_passes > 0


# -- choosing the attention --------------------------------------------------------------------

def test_hf_causal_lm_passes_its_attention_to_the_lean_session(model_factory, monkeypatch):
    model = _model(model_factory, 0)
    assert ATTENTIONS == ("sdpa", "reference", "triton")
    assert HFCausalLM(model).session([4, 5]).attention == "sdpa"
    assert HFCausalLM(model, attention="reference").session([4, 5]).attention == "reference"
    monkeypatch.setenv(ATTENTION_VARIABLE, "reference")
    lm = HFCausalLM(model)
    session = lm.session([4, 5])
    assert lm.attention == "reference" and isinstance(session, FastGPT2Session)
    assert session.attention == "reference"
    assert HFCausalLM(model, attention="sdpa").attention == "sdpa"     # the argument wins
    # The variable applies to lean sessions only; an explicit kernel elsewhere is an error.
    llama = model_factory("llama", 0, vocab=VOCAB, layers=1, width=16, heads=2)
    assert HFCausalLM(llama).attention is None
    assert HFCausalLM(model, fast=False).attention is None
    monkeypatch.delenv(ATTENTION_VARIABLE)
    with pytest.raises(ValueError, match="not a plain GPT-2 model"):
        HFCausalLM(llama, attention="reference")
    with pytest.raises(ValueError, match="fast=False was given"):
        HFCausalLM(model, fast=False, attention="triton")
    assert HFCausalLM(llama, attention="sdpa").attention is None


def test_unknown_attentions_are_named(model_factory, monkeypatch):
    model = _model(model_factory, 0)
    choices = "choose one of 'sdpa', 'reference', 'triton'"
    with pytest.raises(ValueError, match=f"unknown attention 'flash': {choices}"):
        FastGPT2Session(model, [4, 5], attention="flash")
    with pytest.raises(ValueError, match="unknown attention 'Triton'"):
        HFCausalLM(model, attention="Triton")
    monkeypatch.setenv(ATTENTION_VARIABLE, "pallas")
    with pytest.raises(ValueError, match=r"'pallas' \(from \$DIAGRAMMAR_ATTENTION\)"):
        HFCausalLM(model)


def test_unavailable_kernels_say_why(model_factory, monkeypatch):
    model = _model(model_factory, 0)
    double = _model(model_factory, 0, dtype=torch.float64)
    with pytest.raises(ValueError, match="takes float32 or float16 .* torch.float64"):
        FastGPT2Session(double, [4, 5], attention="triton")
    monkeypatch.setenv(ATTENTION_VARIABLE, "triton")
    with pytest.raises(ValueError, match=r"torch.float64.* \(from \$DIAGRAMMAR_ATTENTION\)"):
        HFCausalLM(double)
    monkeypatch.delenv(ATTENTION_VARIABLE)
    if DEVICE == "cpu":
        monkeypatch.delenv("TRITON_INTERPRET")
        with pytest.raises(RuntimeError, match="cannot run here.*TRITON_INTERPRET=1"):
            HFCausalLM(model, attention="triton")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(kernels, "triton_installed", lambda: False)
    with pytest.raises(RuntimeError, match="cannot run here.*not installed"):
        FastGPT2Session(model, [4, 5], attention="triton")
    assert FastGPT2Session(model, [4, 5], attention="reference").attention == "reference"
