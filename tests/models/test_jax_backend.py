"""The JAX backend against the torch backend and Hugging Face ``generate``.

Random small GPT-2 and Llama configs are saved with ``save_pretrained`` and loaded by
:class:`JaxCausalLM` from the folder (safetensors read with NumPy). In float64 (64-bit JAX,
switched on for this module and restored after it) the JAX session's scores equal the torch
session's within 1e-9 tree after tree, through ``keep`` and ``truncate``, and greedy decoding
with the autoregressive, prompt-lookup and Token Recycling pipelines writes exactly the tokens
of the torch backend and of ``generate(do_sample=False)``.

Hugging Face's Llama computes RMSNorm and the rotary cos/sin tables in float32 even in a
float64 model (``hidden_states.to(torch.float32)``; ``position_ids.float() * inv_freq``), so
its float64 logits carry float32 rounding (~1e-7). The JAX model computes in its dtype; the
float64 reference Llama is therefore Hugging Face's own with those two float32 islands lifted
to float64 on its module instances (:func:`jax_twins.exact_llama`, shared with the
losslessness suite), so that 1e-9 compares arithmetic, not rounding. The float32 tests use the
unmodified Hugging Face models.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax_twins import jax_twin
from jax_twins import x64 as enable_x64

from diagrammar.decoding import LanguageModel, Session
from diagrammar.decoding.tree import DraftTree
from diagrammar.diagrams import PIPELINES, PromptLookup, TokenRecycling, speculative
from diagrammar.functors import Execute
from diagrammar.models import (
    ContextTooLongError,
    GenerationConfigError,
    HFCausalLM,
    ModelLoadError,
)
from diagrammar.models.jax import JaxCausalLM, padded_rows
from diagrammar.models.jax.architecture import inverse_frequencies

VOCAB = 48
EOS = 3
TOLERANCE = 1e-9


@pytest.fixture(scope="module", autouse=True)
def x64():
    """64-bit JAX for this module only."""
    with enable_x64():
        yield


# -- random models, saved and loaded ------------------------------------------------------------
#: GPT-2 variants: heads, head size, layers, activation, scale_attn_by_inverse_layer_idx.
GPT2_VARIANTS = [(4, 8, 1, "gelu_new", False), (2, 4, 2, "relu", True), (2, 8, 2, "gelu", False)]
#: Llama variants: heads, KV heads, head size, layers, tied head, attention biases, rotary.
LLAMA_VARIANTS = [
    (4, 1, 8, 1, True, True, {"rope_type": "default", "rope_theta": 500.0}),
    (2, 2, 4, 2, False, False, {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
    (4, 2, 4, 2, True, False, {"rope_type": "default", "rope_theta": 10000.0}),
]


def small_config(kind: str, seed: int):
    """A small GPT-2 or Llama config; the seed picks a variant (grouped KV heads, tying,
    biases, rotary scaling, activations and layer scaling all occur)."""
    from transformers import GPT2Config, LlamaConfig

    if kind == "gpt2":
        heads, size, layers, act, inverse = GPT2_VARIANTS[seed % len(GPT2_VARIANTS)]
        return GPT2Config(vocab_size=VOCAB, n_positions=128, n_embd=heads * size,
                          n_layer=layers, n_head=heads, eos_token_id=EOS, bos_token_id=EOS,
                          activation_function=act, scale_attn_by_inverse_layer_idx=inverse)
    heads, kv_heads, size, layers, tied, bias, rope = LLAMA_VARIANTS[seed % len(LLAMA_VARIANTS)]
    return LlamaConfig(vocab_size=VOCAB, hidden_size=heads * size,
                       intermediate_size=2 * heads * size + 4, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads,
                       max_position_embeddings=128, eos_token_id=EOS, bos_token_id=1,
                       tie_word_embeddings=tied, attention_bias=bias, rope_parameters=dict(rope))


_MODELS: dict = {}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``get(kind, seed)``: (folder, float64 torch reference, float64 JaxCausalLM), cached."""

    def get(kind: str, seed: int):
        key = (kind, seed)
        if key not in _MODELS:
            from transformers import GPT2LMHeadModel, LlamaForCausalLM

            torch.manual_seed(seed)
            config = small_config(kind, seed)
            model = (GPT2LMHeadModel if kind == "gpt2" else LlamaForCausalLM)(config)
            with torch.no_grad():     # sharpen: greedy decoding without near-ties
                model.get_output_embeddings().weight.mul_(4.0)
            model = model.double().eval()
            folder = tmp_path_factory.mktemp(f"{kind}-{seed}")
            reference, jax_model = jax_twin(model, folder)
            _MODELS[key] = folder, reference, jax_model
        return _MODELS[key]

    return get


def random_tree(rng: random.Random, nodes: int) -> DraftTree:
    tree = DraftTree()
    while len(tree) < nodes:
        tree.add(rng.randrange(-1, len(tree)), rng.randrange(VOCAB))
    return tree


# -- scores --------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(kind=st.sampled_from(["gpt2", "llama"]), seed=st.integers(0, 2),
       prompt=st.lists(st.integers(4, VOCAB - 1), min_size=1, max_size=14),
       tree_seed=st.integers(0, 2**31))
def test_verify_keep_and_truncate_match_the_torch_session(models, kind, seed, prompt,
                                                          tree_seed):
    _, reference, model = models(kind, seed)
    rng = random.Random(tree_seed)
    ours, theirs = model.session(prompt), HFCausalLM(reference).session(prompt)
    root = prompt[-1]
    for _ in range(3):
        tree = random_tree(rng, rng.randint(0, 15))
        scores = ours.verify(root, tree.tokens, tree.parents)
        expected = theirs.verify(root, tree.tokens, tree.parents).numpy()
        assert scores.shape == expected.shape == (len(tree) + 1, VOCAB)
        np.testing.assert_allclose(scores, expected, atol=TOLERANCE, rtol=0)
        path = tree.path_to(rng.randrange(len(tree))) if tree.tokens else []
        ours.keep(path)
        theirs.keep(path)
        root = rng.randrange(VOCAB)                       # the next step's bonus token
        if ours.cache_length and rng.random() < 0.4:      # roll back a few tokens
            length = rng.randrange(ours.cache_length)
            ours.truncate(length)
            theirs.truncate(length)
        assert ours.cache_length == theirs.cache_length


def test_session_contract_errors(models):
    _, _, model = models("gpt2", 0)
    session = model.session([5, 6, 7])
    assert isinstance(model, LanguageModel) and isinstance(session, Session)
    with pytest.raises(RuntimeError, match="keep\\(\\) must follow verify\\(\\)"):
        session.keep([])
    session.verify(7, [8, 9], [-1, 0])
    with pytest.raises(RuntimeError, match="verify\\(\\) called twice"):
        session.verify(7, [8], [-1])
    with pytest.raises(ValueError, match="outside the verified tree"):
        session.keep([2])
    with pytest.raises(ValueError, match="parents must come before"):
        model.session([5, 6, 7]).verify(7, [8, 9], [-1, 1])
    with pytest.raises(ValueError, match="the prompt is empty"):
        model.session([])
    with pytest.raises(ContextTooLongError, match="context holds 128"):
        model.check_length(100, 29)


def test_the_cache_grows_past_its_first_capacity(models):
    """A session started small doubles its cache and still scores what the torch one does."""
    _, reference, model = models("llama", 0)
    ours, theirs = model.session([5, 6], capacity=1), HFCausalLM(reference).session([5, 6])
    assert ours.capacity == 128
    root = 6
    for step in range(130):                               # one token per pass, past 128
        np.testing.assert_allclose(ours.verify(root, [], []), theirs.verify(root, [], []).numpy(),
                                   atol=TOLERANCE, rtol=0)
        ours.keep([])
        theirs.keep([])
        root = 4 + step % 40
    assert ours.capacity == 256 and ours.cache_length == 131


# -- decoding ------------------------------------------------------------------------------------
PIPELINE_NAMES = ["autoregressive", "prompt-lookup", "prompt-lookup-tree", "token-recycling"]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["gpt2", "llama"]), seed=st.integers(0, 2),
       pattern=st.lists(st.integers(4, VOCAB - 1), min_size=2, max_size=5),
       repeats=st.integers(1, 3), max_new_tokens=st.integers(1, 40))
def test_greedy_decoding_is_token_identical(models, kind, seed, pattern, repeats,
                                            max_new_tokens):
    """Every pipeline on the JAX backend writes the torch backend's and generate's tokens."""
    _, reference, model = models(kind, seed)
    prompt = pattern * repeats
    hf = reference.generate(torch.tensor([prompt]), do_sample=False,
                            max_new_tokens=max_new_tokens, pad_token_id=EOS)[0, len(prompt):]
    on_torch = Execute(HFCausalLM(reference))
    on_jax = Execute(model, backend="jax")
    assert on_jax.model is model
    for name in PIPELINE_NAMES:
        expected = on_torch(PIPELINES[name]()).generate(prompt, max_new_tokens)
        result = on_jax(PIPELINES[name]()).generate(prompt, max_new_tokens)
        assert result.tokens == expected.tokens == hf.tolist(), name
        assert sum(result.stats.accepted_per_step) == len(result.tokens)


def test_speculation_is_accepted_on_the_jax_backend(models):
    """Guards the test above: drafts are accepted (keep moves real paths) on this backend."""
    _, reference, model = models("gpt2", 0)
    prompt = [5, 6, 7, 8, 9]
    greedy = Execute(model, backend="jax")(PIPELINES["autoregressive"]()).generate(prompt, 40)
    lookup = Execute(model, backend="jax")(speculative(PromptLookup(branches=3)))
    result = lookup.generate(prompt + greedy.tokens[:20] + prompt, 40)
    again = Execute(HFCausalLM(reference))(speculative(PromptLookup(branches=3))).generate(
        prompt + greedy.tokens[:20] + prompt, 40)
    assert result.tokens == again.tokens
    assert result.stats.mean_accepted > 1.5


def _margin(model, ids: list[int]) -> float:
    with torch.no_grad():
        top = model(torch.tensor([ids])).logits[0, -1].double().topk(2).values
    return float(top[0] - top[1])


def assert_same_up_to_near_ties(model, prompt, reference, tokens, near_tie=1e-4) -> None:
    """float32: identical, or first different where the top-2 logits are within ``near_tie``."""
    index = next((i for i, (a, b) in enumerate(zip(reference, tokens)) if a != b), None)
    if index is None:
        assert len(reference) == len(tokens)
        return
    assert _margin(model, prompt + reference[:index]) < near_tie, f"diverged at token {index}"


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_folder_decodes_in_float32_like_hugging_face(models, kind):
    """``Execute(folder, backend="jax")``: float32 by default, the unmodified HF model's tokens."""
    from transformers import AutoModelForCausalLM

    folder, _, _ = models(kind, 0)
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prompt = [5, 6, 7, 8, 5, 6, 7]
    expected = hf.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=24,
                           pad_token_id=EOS)[0, len(prompt):].tolist()
    execute = Execute(str(folder), backend="jax")
    assert execute.model.dtype == np.float32
    assert execute.model.encode("t5 t6 t7") == [5, 6, 7]
    assert execute.model.decode([5, 6, EOS]) == "t5 t6"
    for step in (PIPELINES["autoregressive"](), speculative(TokenRecycling(max_nodes=8))):
        tokens = execute(step).generate(prompt, 24).tokens
        assert_same_up_to_near_ties(hf, prompt, expected, tokens)


def test_the_default_model_runs_on_the_jax_backend(default_tiny_path):
    """``default:tiny`` resolves to the embedded model's folder, tokenizer included."""
    text = "def add(a, b):\n    return"
    on_jax = Execute("default:tiny", backend="jax")
    on_torch = Execute("default:tiny")
    assert on_jax.model.folder == Path(default_tiny_path)
    assert on_jax.model.eos_token_ids == on_torch.model.eos_token_ids
    result = on_jax(PIPELINES["prompt-lookup"]()).generate(text, 24)
    expected = on_torch(PIPELINES["prompt-lookup"]()).generate(text, 24)
    prompt = on_torch.model.encode(text)
    assert_same_up_to_near_ties(on_torch.model.model, prompt, expected.tokens, result.tokens)
    assert isinstance(result.text, str)


# -- compiles ------------------------------------------------------------------------------------
def test_compiles_are_bounded_by_the_buckets(tmp_path):
    """One compile per (function, bucket, capacity), whatever the tree sizes; none on reuse or
    for a second model of the same architecture."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)    # an architecture no other test uses, so no compile is shared
    GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=256, n_embd=12, n_layer=1, n_head=3,
                               eos_token_id=None, bos_token_id=None)).save_pretrained(tmp_path)
    model = JaxCausalLM.from_folder(tmp_path, require_tokenizer=False)
    rng = random.Random(0)
    session = model.session([5, 6, 7])
    sizes = [rng.randint(0, 40) for _ in range(30)]
    for nodes in sizes:
        tree = random_tree(rng, nodes)
        session.verify(7, tree.tokens, tree.parents)
        session.keep([])
    verifies = [entry for entry in model.compiled if entry[0] == "verify"]
    assert sorted(verifies) == sorted({("verify", padded_rows(n + 1), 128) for n in sizes})
    assert len(set(model.compiled)) == model.compiles       # nothing compiled twice
    assert model.compile_seconds > 0
    recycling = Execute(model, backend="jax")(PIPELINES["token-recycling"]())
    recycling.generate([5, 6, 7, 5, 6], 30)
    assert len(set(model.compiled)) == model.compiles
    lookup = Execute(model, backend="jax")(PIPELINES["prompt-lookup-tree"]())
    first = lookup.generate([5, 6, 7, 5, 6, 7, 5], 30)
    compiles = model.compiles
    assert lookup.generate([5, 6, 7, 5, 6, 7, 5], 30).tokens == first.tokens
    assert model.compiles == compiles                         # the same shapes again: none
    twin = JaxCausalLM.from_folder(tmp_path, require_tokenizer=False)
    assert Execute(twin, backend="jax")(PIPELINES["prompt-lookup-tree"]()).generate(
        [5, 6, 7, 5, 6, 7, 5], 30).tokens == first.tokens
    assert twin.compiles == 0                                 # shared with `model`
    for function, size, _ in model.compiled:            # powers of two, plus the root
        nodes = size if function == "compact" else size - 1
        assert nodes & (nodes - 1) == 0


# -- loading and bad input -----------------------------------------------------------------------
def _save(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_bad_input_gets_a_clear_error(tmp_path, models):
    with pytest.raises(ModelLoadError, match="not model_type 'bert': use the torch backend"):
        Execute(str(_save(tmp_path / "bert", {"model_type": "bert"})), backend="jax")
    with pytest.raises(ModelLoadError, match="not model_type 'mistral'"):
        JaxCausalLM.from_folder(_save(tmp_path / "mistral", {"model_type": "mistral"}))
    with pytest.raises(ModelLoadError, match="does not exist"):
        Execute(str(tmp_path / "missing"), backend="jax")
    with pytest.raises(ModelLoadError, match="has no config.json"):
        Execute(str(tmp_path), backend="jax")
    gpt2 = {"model_type": "gpt2", "vocab_size": 8, "n_embd": 4, "n_layer": 1, "n_head": 2}
    with pytest.raises(ModelLoadError, match="has no \\*.safetensors weights"):
        JaxCausalLM.from_folder(_save(tmp_path / "empty", gpt2))
    llama = {"model_type": "llama", "vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1,
             "num_attention_heads": 2, "intermediate_size": 8,
             "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}}
    with pytest.raises(ModelLoadError, match="no rotary scaling 'yarn'"):
        JaxCausalLM.from_folder(_save(tmp_path / "yarn", llama))
    with pytest.raises(TypeError, match="the jax backend takes a JaxCausalLM"):
        Execute(42, backend="jax")
    with pytest.raises(ValueError, match="unknown default model size 'huge'"):
        Execute("default:huge", backend="jax")
    folder, _, _ = models("gpt2", 0)
    with pytest.raises(ValueError, match="not 'int8'"):
        JaxCausalLM.from_folder(folder, dtype="int8", require_tokenizer=False)
    bare = tmp_path / "no-tokenizer"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(ModelLoadError, match="has no tokenizer files"):
        Execute(str(bare), backend="jax")
    assert JaxCausalLM.from_folder(bare, require_tokenizer=False).tokenizer is None
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="float64 needs 64-bit JAX"):
            JaxCausalLM.from_folder(folder, dtype="float64", require_tokenizer=False)
    finally:
        jax.config.update("jax_enable_x64", True)


def test_generation_settings_that_change_greedy_decoding_are_refused(models, tmp_path):
    import shutil

    folder, _, _ = models("gpt2", 0)
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    settings_file = copy / "generation_config.json"
    settings_file.write_text(json.dumps({**json.loads(settings_file.read_text()),
                                         "repetition_penalty": 1.3}))
    with pytest.raises(GenerationConfigError, match="repetition_penalty=1.3"):
        JaxCausalLM.from_folder(copy, require_tokenizer=False)


def test_bfloat16_weights_are_read_without_torch(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=8,
                                         num_hidden_layers=1, num_attention_heads=2))
    model.to(torch.bfloat16).save_pretrained(tmp_path)
    loaded = JaxCausalLM.from_folder(tmp_path, require_tokenizer=False)
    expected = model.model.layers[0].self_attn.q_proj.weight.detach().float().T.numpy()
    np.testing.assert_array_equal(np.asarray(loaded.params["blocks"][0]["q_w"]), expected)
    assert loaded.vocab_size == 16 and not loaded.architecture.tied


@pytest.mark.parametrize("rope", [
    {"rope_type": "default", "rope_theta": 10000.0},
    {"rope_type": "linear", "rope_theta": 500000.0, "factor": 4.0},
    {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}])
def test_rotary_frequencies_are_hugging_faces(rope):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    config = LlamaConfig(hidden_size=64, num_attention_heads=2, max_position_embeddings=512,
                         rope_parameters=rope)
    init = (LlamaRotaryEmbedding.compute_default_rope_parameters if rope["rope_type"] ==
            "default" else ROPE_INIT_FUNCTIONS[rope["rope_type"]])
    expected, _ = init(config)
    ours = inverse_frequencies(32, dict(rope), 512)
    np.testing.assert_allclose(ours, expected.double().numpy(), rtol=1e-6)


def test_the_backend_imports_jax_only_when_used():
    code = ("import sys; from diagrammar.functors import Execute; "
            "from diagrammar.functors.backends import BACKENDS; "
            "assert 'jax' in BACKENDS and 'jax' not in sys.modules, sorted(BACKENDS)")
    subprocess.run([sys.executable, "-c", code], check=True)
