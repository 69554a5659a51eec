"""Regression test: words that no training sentence uses must not drift during training.

JAX gives those words zero gradients where Torch gives none; the project's Adam used to
decay them anyway (weight decay on a zero gradient), so the Torch and JAX tensor models
disagreed on dev/test as soon as dev/test had words of their own (lambeq's RP data).
"""

from __future__ import annotations

import numpy as np
import pytest

from diagrammar.functors.tensor_network import TensorFunctor
from diagrammar.qnlp.data import MC_LABELS, Dataset, Example, mc_lexicon
from diagrammar.qnlp.models import TensorModel
from diagrammar.qnlp.train import train_tensor

TRAIN = [("man cooks meal", 0), ("woman bakes dinner", 0), ("person cooks sauce", 0),
         ("man prepares dinner", 0), ("man runs program", 1), ("woman debugs software", 1),
         ("person runs application", 1), ("woman prepares program", 1)]
# "skillful", "tasty" and "useful" occur only in dev and test.
DEV = [("skillful man cooks tasty meal", 0), ("skillful woman runs useful program", 1),
       ("person bakes tasty sauce", 0), ("man debugs useful application", 1)]
TEST = [("skillful person prepares tasty sauce", 0), ("woman runs useful software", 1),
        ("skillful woman bakes meal", 0), ("skillful man debugs program", 1)]


def _data() -> Dataset:
    def examples(rows):
        return tuple(Example(s, label) for s, label in rows)

    return Dataset("T", examples(TRAIN), examples(DEV), examples(TEST), MC_LABELS, "s")


def _numpy(params) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v, dtype=np.float64)
            for k, v in params.items()}


def _train(library: str, data: Dataset):
    sentences = [e.sentence for e in data.all_examples()]
    model = TensorModel.from_sentences(sentences, mc_lexicon(), TensorFunctor({"n": 2, "s": 2}),
                                       library=library, seed=0)
    before = _numpy(model.params)
    result = train_tensor(model, data, epochs=40, lr=0.05, weight_decay=0.05, eval_every=4,
                          progress=False)
    after = _numpy(model.params)
    return model, before, after, result


@pytest.fixture(scope="module")
def runs():
    data = _data()
    return data, {library: _train(library, data) for library in ("torch", "jax")}


def test_words_only_in_dev_and_test_keep_their_initial_parameters(runs):
    data, results = runs
    model = results["torch"][0]
    trained = model.param_keys([e.sentence for e in data.train])
    unseen = set(model.params) - trained
    assert {k.split("_")[0] for k in unseen} == {"skillful", "tasty", "useful"}
    for library, (_model, before, after, result) in results.items():
        assert result.best_epoch > 0
        for key in unseen:
            assert np.array_equal(before[key], after[key]), (library, key)
        assert any(not np.allclose(before[k], after[k]) for k in trained), library


def test_torch_and_jax_tensor_training_agree(runs):
    # Same float32 initial values, same recipe; the only difference left is the float32
    # round-off of two einsum implementations.  Measured: losses differ by <= 1e-7 and
    # parameters by <= 3e-7 after 40 steps, so 1e-5 leaves a 30x margin, while the old bug
    # (weight decay on the unseen words in JAX only) moved the dev losses by 0.1.
    _data, results = runs
    torch_res, jax_res = results["torch"][3], results["jax"][3]
    np.testing.assert_allclose(torch_res.losses, jax_res.losses, atol=1e-5)
    np.testing.assert_allclose(torch_res.dev_losses, jax_res.dev_losses, atol=1e-5)
    assert torch_res.best_epoch == jax_res.best_epoch
    for split in ("train", "dev", "test"):
        assert getattr(torch_res, f"{split}_accuracy") == getattr(jax_res, f"{split}_accuracy")
    torch_after, jax_after = results["torch"][2], results["jax"][2]
    for key in torch_after:
        np.testing.assert_allclose(torch_after[key], jax_after[key], atol=1e-5, err_msg=key)
