"""Loading models: custom code never runs, generation configs that change greedy decoding are
refused, EOS is what Hugging Face ``generate`` stops at, a missing tokenizer is named, Hub ids
resolve through the local cache (never the network here), and wrapping leaves the caller's
model as it was."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from diagrammar.diagrams import autoregressive
from diagrammar.functors import Execute
from diagrammar.models import HFCausalLM, ModelLoadError, load_model
from diagrammar.models.errors import GenerationConfigError, ModelError
from diagrammar.models.hf import greedy_settings
from diagrammar.models.resolve import files_to_fetch, is_hub_id, resolve_model

VOCAB = 32


def _gpt2(seed: int = 0, eos: int | None = None, **config):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=16, n_layer=1,
                                       n_head=2, eos_token_id=eos, bos_token_id=eos, **config))
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)   # sharpen: no near-ties under greedy decoding
    return model.double().eval()


def _tokenizer(eos: str | None = "t3"):
    """A word-level tokenizer over t0..t31 (``t5 t6`` -> [5, 6])."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCAB)}, unk_token="t0"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=eos)


def _greedy(lm, prompt, n):
    return Execute(lm)(autoregressive()).generate(prompt, n).tokens


def _hf_greedy(model, prompt, n):
    return model.generate(torch.tensor([prompt]), do_sample=False, max_new_tokens=n,
                          pad_token_id=0)[0, len(prompt):].tolist()


def _save(folder: Path, model=None, tokenizer=True) -> Path:
    (model if model is not None else _gpt2()).save_pretrained(folder)
    if tokenizer:
        _tokenizer().save_pretrained(folder)
    return folder


# -- 1. a folder's own code never runs -----------------------------------------------------------
def _custom_code_folder(folder: Path, marker: Path) -> Path:
    _save(folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "diagrammar-test-custom"
    config["auto_map"] = {"AutoConfig": "custom.CustomConfig",
                          "AutoModelForCausalLM": "custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "custom.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import GPT2Config, GPT2LMHeadModel\n"
        "class CustomConfig(GPT2Config):\n    model_type = 'diagrammar-test-custom'\n"
        "class CustomModel(GPT2LMHeadModel):\n    config_class = CustomConfig\n")
    return folder


def test_custom_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    folder = _custom_code_folder(tmp_path / "custom", marker)
    with pytest.raises(ModelLoadError, match="never runs a model folder's code") as error:
        load_model(folder)
    assert "\n" not in str(error.value)
    # Without the up-front check, transformers itself is told trust_remote_code=False.
    from diagrammar.models import hf

    monkeypatch.setattr(hf, "_refuse_custom_code", lambda folder: None)
    with pytest.raises(ModelLoadError, match="never runs a model folder's code"):
        load_model(folder)
    assert not marker.exists()


@pytest.mark.parametrize("stdin", ["y\n", None])
def test_custom_code_never_prompts(tmp_path, stdin):
    marker = tmp_path / "marker"
    folder = _custom_code_folder(tmp_path / "custom", marker)
    script = ("import sys\nfrom diagrammar.models import load_model, ModelLoadError\n"
              "try:\n    load_model(sys.argv[1])\n"
              "except ModelLoadError as error:\n    print('REFUSED', error)\n")
    done = subprocess.run([sys.executable, "-c", script, str(folder)], input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "REFUSED" in done.stdout and "[y/N]" not in done.stdout + done.stderr
    assert not marker.exists()


# -- 2. generation-config settings that change greedy decoding ------------------------------------
def test_repetition_penalty_is_refused_by_name():
    model = _gpt2(eos=3)
    model.generation_config.repetition_penalty = 1.3
    with pytest.raises(GenerationConfigError) as error:
        HFCausalLM(model)
    message = str(error.value)
    assert "repetition_penalty=1.3" in message
    assert "model.generation_config.repetition_penalty = 1.0" in message
    assert "\n" not in message and isinstance(error.value, ModelError)
    model.generation_config.repetition_penalty = 1.0   # as the message says
    prompt = [5, 6, 7, 5, 6]
    assert _greedy(HFCausalLM(model), prompt, 12) == _hf_greedy(model, prompt, 12)


def test_a_saved_generation_config_is_named_with_its_file(tmp_path):
    model = _gpt2(eos=3)
    model.generation_config.no_repeat_ngram_size = 2
    model.generation_config.suppress_tokens = [4]
    folder = _save(tmp_path / "m", model)
    with pytest.raises(GenerationConfigError) as error:
        load_model(folder)
    message = str(error.value)
    assert "no_repeat_ngram_size=2" in message and "suppress_tokens=[4]" in message
    assert str(folder / "generation_config.json") in message


def test_sampling_settings_and_neutral_values_are_fine():
    model = _gpt2(eos=3)
    config = model.generation_config
    config.do_sample, config.temperature, config.top_k, config.top_p = True, 0.7, 5, 0.9
    config.repetition_penalty, config.no_repeat_ngram_size, config.min_new_tokens = 1.0, 0, 0
    lm = HFCausalLM(model)
    prompt = [5, 6, 7]
    assert _greedy(lm, prompt, 10) == _hf_greedy(model, prompt, 10)


# One non-neutral value per setting Hugging Face turns into a greedy logits processor.
PROCESSOR_SETTINGS = {
    "repetition_penalty": 1.3, "encoder_repetition_penalty": 1.2, "no_repeat_ngram_size": 2,
    "encoder_no_repeat_ngram_size": 2, "bad_words_ids": [[4]], "sequence_bias": {(4,): -1.0},
    "min_length": 10, "min_new_tokens": 2, "forced_bos_token_id": 4, "forced_eos_token_id": 3,
    "suppress_tokens": [4], "begin_suppress_tokens": [4], "remove_invalid_values": True,
    "exponential_decay_length_penalty": (2, 1.1), "guidance_scale": 1.5,
}


@pytest.mark.parametrize("name", sorted(PROCESSOR_SETTINGS))
def test_every_greedy_processor_is_refused(name):
    """Cross-checked with Hugging Face's own list of greedy logits processors."""
    from transformers import GenerationConfig

    model = _gpt2(eos=3)
    if not hasattr(model, "_get_logits_processor"):
        pytest.skip("this transformers has no _get_logits_processor")
    prompt = torch.tensor([[5, 6, 7]])

    def processors(config):
        model._prepare_special_tokens(config, device="cpu")
        return model._get_logits_processor(generation_config=config, input_ids_seq_length=3,
                                           encoder_input_ids=prompt, device="cpu")

    neutral = GenerationConfig(eos_token_id=3, do_sample=False)
    assert len(processors(neutral)) == 0 and greedy_settings(neutral) == {}
    setting = GenerationConfig(eos_token_id=3, do_sample=False,
                               **{name: PROCESSOR_SETTINGS[name]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # HF warns about settings it applies partially
        assert len(processors(setting)) > 0
    assert list(greedy_settings(setting)) == [name]
    model.generation_config = setting
    with pytest.raises(GenerationConfigError, match=name):
        HFCausalLM(model)


# -- 3. EOS: what generate stops at, never the tokenizer's -----------------------------------------
def test_eos_known_only_to_the_tokenizer_does_not_stop_decoding():
    model = _gpt2(seed=1, eos=None)
    prompt = [5, 6, 7]
    reference = _hf_greedy(model, prompt, 12)
    stop = reference[1]   # a token greedy decoding writes early on
    tokenizer = _tokenizer(eos=f"t{stop}")
    assert tokenizer.eos_token_id == stop
    assert model.config.eos_token_id is None and model.generation_config.eos_token_id is None
    lm = HFCausalLM(model, tokenizer)
    assert lm.eos_token_ids == frozenset()
    assert _greedy(lm, prompt, 12) == reference and len(reference) == 12
    # With the generation config's EOS both stop there.
    model.generation_config.eos_token_id = stop
    assert _greedy(HFCausalLM(model, tokenizer), prompt, 12) == _hf_greedy(model, prompt, 12)
    assert _hf_greedy(model, prompt, 12)[-1] == stop


def test_eos_only_in_the_model_config_is_not_what_generate_uses():
    model = _gpt2(seed=1, eos=None)
    prompt = [5, 6, 7]
    model.config.eos_token_id = _hf_greedy(model, prompt, 12)[1]
    assert _greedy(HFCausalLM(model), prompt, 12) == _hf_greedy(model, prompt, 12)


# -- 4. a folder without a tokenizer ---------------------------------------------------------------
def test_missing_tokenizer_files_are_named(tmp_path):
    folder = _save(tmp_path / "bare", tokenizer=False)
    with pytest.raises(ModelLoadError) as error:
        load_model(folder)
    assert ("has no tokenizer files (tokenizer.json / vocab.json+merges.txt / tokenizer.model)"
            in str(error.value))
    assert "require_tokenizer=False" in str(error.value) and "\n" not in str(error.value)
    lm = load_model(folder, require_tokenizer=False)
    assert lm.tokenizer is None
    assert len(_greedy(lm, [5, 6, 7], 4)) == 4
    with pytest.raises(ModelLoadError, match="no tokenizer"):
        lm.encode("t5")


def test_an_empty_tokenizer_is_refused(tmp_path):
    folder = _save(tmp_path / "empty", tokenizer=False)
    (folder / "vocab.json").write_text("{}")
    (folder / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ModelLoadError, match="empty vocabulary"):
        load_model(folder)
    assert load_model(folder, require_tokenizer=False).tokenizer is None


# -- 5. Hub ids: the local cache, never the network here -------------------------------------------
def _fake_hub_cache(cache: Path, repo_id: str) -> Path:
    """A cache laid out as huggingface_hub lays it out (plain files instead of blob links)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    _save(repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """An empty Hugging Face cache in tmp_path, offline, set after huggingface_hub's import."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_cached_hub_id_loads_offline(hub_env):
    snapshot = _fake_hub_cache(hub_env, "someorg/tiny-model")
    lm = load_model("someorg/tiny-model")
    assert lm.model.name_or_path == str(snapshot)
    assert lm.encode("t5 t6") == [5, 6]
    assert isinstance(resolve_model("someorg/tiny-model"), HFCausalLM)


def test_an_uncached_hub_id_offline_fails_fast_in_one_line(hub_env):
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as error:
        load_model("someorg/not-cached")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message
    assert "not-cached" in message and "local cache" in message and str(hub_env) in message
    assert "offline" in message


def test_an_unreachable_hub_fails_in_one_line(hub_env, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    class NoNetwork:
        def model_info(self, *args, **kwargs):
            raise ConnectionError("Name or service not known\nmore detail")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoNetwork)
    with pytest.raises(ModelLoadError) as error:
        load_model("someorg/not-cached")
    message = str(error.value)
    assert "\n" not in message and "cannot be reached" in message
    assert "ConnectionError: Name or service not known" in message


def test_hub_ids_and_the_files_fetched():
    assert is_hub_id("openai-community/gpt2") and is_hub_id("Qwen/Qwen2.5-0.5B")
    assert not any(is_hub_id(text) for text in ["gpt2", "./a/b", "/a/b", "a/b/c", "a--b/c",
                                                 "default:small", "a/b.."])
    names = ["config.json", "generation_config.json", "model.safetensors.index.json",
             "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
             "consolidated.safetensors", "pytorch_model.bin", "modeling_x.py", "tokenizer.json",
             "tokenizer_config.json", "vocab.json", "merges.txt", "onnx/model.onnx"]
    assert files_to_fetch(names) == [
        "config.json", "generation_config.json", "model.safetensors.index.json",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"]
    assert files_to_fetch(["config.json", "pytorch_model.bin", "x.py"]) == [
        "config.json", "pytorch_model.bin"]


def test_a_missing_relative_path_that_reads_as_a_hub_id(hub_env):
    with pytest.raises(ModelLoadError, match="neither a local folder nor"):
        load_model("no-such-folder/model")


# -- 6. wrapping leaves the caller's model as it was -----------------------------------------------
@pytest.mark.parametrize("fast", [True, False])
def test_a_model_in_training_mode_stays_so_and_decodes_exactly(fast):
    model = _gpt2(seed=2, eos=None, resid_pdrop=0.5, embd_pdrop=0.5, attn_pdrop=0.5).train()
    reference = copy.deepcopy(model).eval()
    lm = HFCausalLM(model, fast=fast)
    assert lm.fast == fast
    assert model.training and all(module.training for module in model.modules())
    prompt = [5, 6, 7, 8]
    tokens = _greedy(lm, prompt, 10)
    assert model.training and all(module.training for module in model.modules())
    assert tokens == _hf_greedy(reference, prompt, 10)
    # The view shares the caller's weights: nothing was copied.
    mine = dict(lm.model.named_parameters())
    assert all(mine[name] is param for name, param in model.named_parameters())


def test_a_model_in_eval_mode_is_used_as_it_is():
    model = _gpt2()
    lm = HFCausalLM(model)
    assert lm.model is model and not model.training


def test_device_and_dtype_are_read_once():
    lm = HFCausalLM(_gpt2())
    assert vars(lm)["device"] == torch.device("cpu") and vars(lm)["dtype"] == torch.float64
