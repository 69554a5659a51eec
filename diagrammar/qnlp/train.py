"""Training loops with progress bars: SPSA or Adam for quantum models, Adam for tensor models.

>>> from diagrammar.qnlp.data import generate_mc, mc_lexicon
>>> from diagrammar.qnlp.models import TensorModel
>>> from diagrammar.functors.tensor_network import TensorFunctor
>>> mc = generate_mc()
>>> model = TensorModel.from_sentences([e.sentence for e in mc.all_examples()], mc_lexicon(),
...                                    TensorFunctor({"n": 2, "s": 2}))
>>> result = train_tensor(model, mc, epochs=5, progress=False)
>>> len(result.losses)
5

Both loops evaluate the dev split every ``eval_every`` epochs and keep the parameters with
the best dev accuracy (ties broken by lower dev loss), then report train/dev/test accuracy
with those parameters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from diagrammar.qnlp.data import Dataset
from diagrammar.qnlp.models import QuantumModel, TensorModel
from diagrammar.qnlp.optim import SPSA, Adam

__all__ = ["TrainResult", "train_quantum", "train_quantum_adam", "train_tensor"]


@dataclass
class TrainResult:
    """Losses per epoch and the accuracies of the selected parameters.

    Attributes:
        name: the run's name (the progress bar's label).
        losses: the training loss of every epoch.
        dev_losses: the dev loss at every evaluation.
        train_accuracy: accuracy on the train split with the selected parameters.
        dev_accuracy: the same on the dev split.
        test_accuracy: the same on the test split.
        seconds: wall time of the run.
        best_epoch: the epoch whose parameters were kept.
    """

    name: str
    losses: list[float] = field(default_factory=list)
    dev_losses: list[float] = field(default_factory=list)
    train_accuracy: float = 0.0
    dev_accuracy: float = 0.0
    test_accuracy: float = 0.0
    seconds: float = 0.0
    best_epoch: int = 0

    def summary(self) -> str:
        """One line: name, accuracies and time."""
        return (f"{self.name}: train {self.train_accuracy:.1%}  dev {self.dev_accuracy:.1%}  "
                f"test {self.test_accuracy:.1%}  ({self.seconds:.1f}s, best epoch "
                f"{self.best_epoch})")


def _xy(examples):
    return [e.sentence for e in examples], np.array([e.label for e in examples])


def train_quantum(model: QuantumModel, data: Dataset, epochs: int = 200, spsa: SPSA | None = None,
                  eval_every: int = 5, progress: bool = True, name: str = "quantum") -> TrainResult:
    """Train ``model.theta`` with SPSA on the full train split (two circuit batches/epoch).

    Args:
        model: the quantum model; its ``theta`` is replaced by the best parameters.
        data: the splits; the model must know all their sentences.
        epochs: SPSA steps.
        spsa: the optimiser (default ``SPSA(a=0.1, c=0.06, A=0.1 * epochs, seed=0)``).
        eval_every: epochs between dev evaluations (the last epoch is always evaluated).
        progress: show a progress bar.
        name: the result's name.

    Returns:
        The losses and the accuracies of the parameters with the best dev accuracy.
    """
    spsa = spsa or SPSA(a=0.1, c=0.06, A=0.1 * epochs, seed=0)
    xs, ys = _xy(data.train)
    dx, dy = _xy(data.dev)
    result = TrainResult(name)
    best = (-1.0, np.inf, model.theta.copy(), 0)
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=name, disable=not progress, leave=False)
    theta = model.theta
    for epoch in bar:
        theta = spsa.step(lambda t: model.loss(xs, ys, t), theta)
        result.losses.append(float(spsa.last_loss))
        if (epoch + 1) % eval_every == 0 or epoch == epochs - 1:
            probs = model.probabilities(dx, theta)
            dev_loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(dy)), dy], 1e-9))))
            dev_acc = float(np.mean(np.argmax(probs, axis=1) == dy))
            result.dev_losses.append(dev_loss)
            if (dev_acc, -dev_loss) > (best[0], -best[1]):
                best = (dev_acc, dev_loss, theta.copy(), epoch + 1)
            bar.set_postfix(loss=f"{result.losses[-1]:.3f}", dev=f"{dev_acc:.2f}")
    model.theta = best[2]
    return _finish(result, model, data, best[3], start)


def train_quantum_adam(model: QuantumModel, data: Dataset, epochs: int = 120, lr: float = 0.05,
                       weight_decay: float = 0.0, eval_every: int = 1, progress: bool = True,
                       name: str = "quantum") -> TrainResult:
    """Train ``model.theta`` with :class:`Adam` on exact gradients of the circuits.

    The model must simulate in JAX (``library="jax"``): the loss is differentiated through
    the exact simulation (``diff_method="backprop"``; ``"parameter-shift"`` gives the same
    gradient).  Full-batch steps, the same best-dev selection as :func:`train_quantum`.

    Args:
        model: the quantum model; its ``theta`` is replaced by the best parameters.
        data: the splits; the model must know all their sentences.
        epochs: Adam steps.
        lr: learning rate (in turns).
        weight_decay: L2 penalty on ``theta``.
        eval_every: epochs between dev evaluations (the last epoch is always evaluated).
        progress: show a progress bar.
        name: the result's name.

    Returns:
        The losses and the accuracies of the parameters with the best dev accuracy.

    Raises:
        ValueError: the model does not simulate in JAX.

    >>> from diagrammar.qnlp.data import generate_mc, mc_lexicon
    >>> from diagrammar.functors.quantum import IQPAnsatz, QuantumFunctor
    >>> mc = generate_mc()
    >>> model = QuantumModel.from_sentences([e.sentence for e in mc.all_examples()],
    ...     mc_lexicon(), QuantumFunctor({"n": 1, "s": 1}, IQPAnsatz()), library="jax")
    >>> train_quantum_adam(model, mc, epochs=60, progress=False).test_accuracy > 0.9
    True
    """
    if model.runner.library != "jax":
        raise ValueError("train_quantum_adam needs a model built with library='jax'")
    import jax
    import jax.numpy as jnp

    from diagrammar.qnlp.models import cross_entropy

    xs, ys = _xy(data.train)
    dx, dy = _xy(data.dev)
    value_and_grad = jax.jit(jax.value_and_grad(
        lambda t: cross_entropy(model.probabilities(xs, t), ys)))
    dev_probs = jax.jit(lambda t: model.probabilities(dx, t))
    adam = Adam(lr=lr, weight_decay=weight_decay)
    params = {"theta": jnp.asarray(model.theta, dtype=jnp.float32)}
    result = TrainResult(name)
    best = (-1.0, np.inf, np.asarray(model.theta), 0)
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=name, disable=not progress, leave=False)
    for epoch in bar:
        loss, grad = value_and_grad(params["theta"])
        params = adam.step(params, {"theta": grad})
        result.losses.append(float(loss))
        if (epoch + 1) % eval_every == 0 or epoch == epochs - 1:
            probs = np.asarray(dev_probs(params["theta"]))
            dev_loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(dy)), dy], 1e-9))))
            dev_acc = float(np.mean(np.argmax(probs, axis=1) == dy))
            result.dev_losses.append(dev_loss)
            if (dev_acc, -dev_loss) > (best[0], -best[1]):
                best = (dev_acc, dev_loss, np.asarray(params["theta"]), epoch + 1)
            bar.set_postfix(loss=f"{result.losses[-1]:.3f}", dev=f"{dev_acc:.2f}")
    model.theta = jnp.asarray(best[2])
    return _finish(result, model, data, best[3], start)


def _finish(result: TrainResult, model, data: Dataset, best_epoch: int,
            start: float) -> TrainResult:
    """Records the best epoch, the time and the accuracies of the restored best model."""
    result.best_epoch = best_epoch
    result.seconds = time.perf_counter() - start
    result.train_accuracy = model.accuracy(*_xy(data.train))
    result.dev_accuracy = model.accuracy(*_xy(data.dev))
    result.test_accuracy = model.accuracy(*_xy(data.test))
    return result


def train_tensor(model: TensorModel, data: Dataset, epochs: int = 200, lr: float = 0.05,
                 weight_decay: float = 0.01, eval_every: int = 5, progress: bool = True,
                 name: str = "tensor") -> TrainResult:
    """Train the word tensors with Adam (``torch.optim.Adam`` or :class:`Adam` for JAX).

    Words that no training sentence uses get no gradient and are left untouched (no weight
    decay either), in both libraries, so Torch and JAX follow the same recipe.

    Args:
        model: the tensor model; its ``params`` end as the best parameters.
        data: the splits; the model must know all their sentences.
        epochs: full-batch Adam steps.
        lr: learning rate.
        weight_decay: L2 penalty, as in ``torch.optim.Adam``.
        eval_every: epochs between dev evaluations (the last epoch is always evaluated).
        progress: show a progress bar.
        name: the result's name.

    Returns:
        The losses and the accuracies of the parameters with the best dev accuracy.
    """
    xs, ys = _xy(data.train)
    dx, dy = _xy(data.dev)
    result = TrainResult(name)
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=name, disable=not progress, leave=False)
    if model.library == "torch":
        import torch

        optimiser = torch.optim.Adam(list(model.params.values()), lr=lr,
                                     weight_decay=weight_decay)

        def snapshot():
            return {k: v.detach().clone() for k, v in model.params.items()}

        def train_step() -> float:
            optimiser.zero_grad()
            loss = model.loss(xs, ys)
            loss.backward()
            optimiser.step()
            return float(loss.detach())

        def dev_loss() -> float:
            with torch.no_grad():
                return float(model.loss(dx, dy))

        def restore(saved) -> None:
            with torch.no_grad():
                for k, v in saved.items():
                    model.params[k].copy_(v)
    else:
        import jax

        adam = Adam(lr=lr, weight_decay=weight_decay)
        value_and_grad = jax.jit(jax.value_and_grad(lambda p: model.loss(xs, ys, p)))
        # JAX gives zeros for the words no training sentence uses; Torch leaves their grad
        # at None and skips them.  Only the used keys are passed, so Adam skips the rest too
        # (no decay, no moment update) and both libraries follow the same recipe.
        trained = model.param_keys(xs)
        dev_fn = jax.jit(lambda p: model.loss(dx, dy, p))

        def snapshot():
            return dict(model.params)

        def train_step() -> float:
            loss, grads = value_and_grad(model.params)
            model.params = adam.step(model.params, {k: grads[k] for k in trained})
            return float(loss)

        def dev_loss() -> float:
            return float(dev_fn(model.params))

        def restore(saved) -> None:
            model.params = dict(saved)

    best = (-1.0, np.inf, snapshot(), 0)
    for epoch in bar:
        result.losses.append(train_step())
        if (epoch + 1) % eval_every == 0 or epoch == epochs - 1:
            d_loss = dev_loss()
            d_acc = model.accuracy(dx, dy)
            result.dev_losses.append(d_loss)
            if (d_acc, -d_loss) > (best[0], -best[1]):
                best = (d_acc, d_loss, snapshot(), epoch + 1)
            bar.set_postfix(loss=f"{result.losses[-1]:.3f}", dev=f"{d_acc:.2f}")
    restore(best[2])
    return _finish(result, model, data, best[3], start)
