"""lambeq's standard offline pipeline, as the baseline our models are compared with.

>>> from diagrammar.qnlp.data import generate_mc
>>> result = train_lambeq_baseline(generate_mc(), epochs=2, engine="pennylane", progress=False)
>>> len(result.losses), result.name
(2, 'MC-lambeq-cups-IQP')

``cups_reader`` (lambeq's word-order reader: no parser, no download) -> ``IQPAnsatz`` with
one qubit per ``n``/``s`` -> ``NumpyModel`` (exact, JAX-jitted) -> ``QuantumTrainer`` with
lambeq's ``SPSAOptimizer`` and binary cross-entropy: the recipe of lambeq's own
quantum-training tutorial, run on our data.

lambeq's ``NumpyModel`` compiles one JAX function per circuit, which dominates its run time
on small data.  ``engine="pennylane"`` keeps lambeq's reader and ansatz but converts the
circuits to discopy and trains them with our exact PennyLane runner and SPSA
(:func:`~diagrammar.qnlp.train.train_quantum`), which gives the same probabilities for the
same parameters.  ``engine`` names who simulates and trains the circuits, not an array
library.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from diagrammar.qnlp.circuits import compile_circuit
from diagrammar.qnlp.data import Dataset
from diagrammar.qnlp.lambeq_interop import lambeq_to_discopy
from diagrammar.qnlp.models import QuantumModel
from diagrammar.qnlp.optim import SPSA
from diagrammar.qnlp.pennylane_runner import PennyLaneRunner
from diagrammar.qnlp.train import TrainResult, train_quantum

__all__ = ["LambeqCircuitModel", "lambeq_reader_diagrams", "train_lambeq_baseline"]


def lambeq_reader_diagrams(sentences: Sequence[str], reader: str = "cups") -> list:
    """Diagrams of lambeq's offline readers.

    Args:
        sentences: the sentences.
        reader: ``"cups"``, ``"spiders"`` or ``"stairs"``.

    Returns:
        One ``lambeq.backend.grammar.Diagram`` per sentence.

    Raises:
        ValueError: unknown reader.

    >>> [d.cod for d in lambeq_reader_diagrams(["man cooks meal"])]
    [Ty(s)]
    """
    import lambeq

    readers = {"cups": lambeq.cups_reader, "spiders": lambeq.spiders_reader,
               "stairs": lambeq.stairs_reader}
    if reader not in readers:
        raise ValueError(f"unknown lambeq reader {reader!r}; use one of {sorted(readers)}")
    return [readers[reader].sentence2diagram(s) for s in sentences]


class LambeqCircuitModel(QuantumModel):
    """A :class:`~diagrammar.qnlp.models.QuantumModel` over circuits that lambeq built.

    Args:
        sentences: the sentences the model can classify.
        lambeq_circuits: their lambeq circuits, one per sentence (converted to discopy).
        seed: seed of the initial parameters.

    Raises:
        ValueError: not one circuit per sentence.

    >>> import lambeq
    >>> ansatz = lambeq.IQPAnsatz({lambeq.AtomicType.NOUN: 1, lambeq.AtomicType.SENTENCE: 1},
    ...                           n_layers=1)
    >>> s = ["man cooks meal"]
    >>> model = LambeqCircuitModel(s, [ansatz(d) for d in lambeq_reader_diagrams(s)])
    >>> model.probabilities(s).shape
    (1, 2)
    """

    def __init__(self, sentences: Sequence[str], lambeq_circuits: Sequence, seed: int = 0):
        if len(sentences) != len(lambeq_circuits):
            raise ValueError("need one circuit per sentence")
        self.sentences = list(sentences)
        self.index = {s: i for i, s in enumerate(self.sentences)}
        self.functor = None
        self.circuits = [lambeq_to_discopy(c) for c in lambeq_circuits]
        self.runner = PennyLaneRunner([compile_circuit(c) for c in self.circuits])
        self.theta = self.runner.random_parameters(seed)


def _one_hot(examples) -> np.ndarray:
    labels = np.array([e.label for e in examples])
    return np.eye(2)[labels]


def _selection_score(probs: np.ndarray, one_hot: np.ndarray) -> float:
    """Dev accuracy minus ``1e-4`` x dev loss: ranks checkpoints by accuracy, ties by loss.

    The loss term is below ``1e-3`` for any loss under 10, less than one example's share of
    accuracy on a split of up to 1,000 examples, so it only breaks ties.

    >>> y = np.eye(2)[[0, 1]]
    >>> _selection_score(np.array([[0.9, 0.1], [0.2, 0.8]]), y) > _selection_score(
    ...     np.array([[0.6, 0.4], [0.4, 0.6]]), y)
    True
    """
    labels = np.argmax(one_hot, axis=1)
    acc = float(np.mean(np.argmax(probs, axis=1) == labels))
    rows = np.clip(probs[np.arange(len(labels)), labels], 1e-9, None)
    return acc - 1e-4 * float(-np.mean(np.log(rows)))


def train_lambeq_baseline(data: Dataset, epochs: int = 120, seed: int = 0, a: float = 0.05,
                          c: float = 0.06, batch_size: int = 30, log_dir: str | None = None,
                          progress: bool = True, name: str | None = None,
                          use_jit: bool = True, engine: str = "lambeq",
                          eval_every: int = 1, select_best: bool = True) -> TrainResult:
    """Train lambeq's cups-reader + IQP + SPSA pipeline.

    Args:
        data: the splits.
        epochs: training epochs (SPSA steps for ``engine="pennylane"``).
        seed: seed of the parameters and of SPSA.
        a: SPSA step gain.
        c: SPSA perturbation gain.
        batch_size: mini-batch size of lambeq's trainer (``engine="lambeq"`` only).
        log_dir: where lambeq's trainer writes its logs (a temporary folder by default).
        progress: show progress.
        name: the result's name (default ``"<data name>-lambeq-cups-IQP"``).
        use_jit: let lambeq's ``NumpyModel`` compile with JAX.
        engine: ``"lambeq"``: lambeq's ``NumpyModel`` and ``QuantumTrainer`` (mini-batches
            of ``batch_size``).  ``"pennylane"``: the same circuits trained by
            :func:`~diagrammar.qnlp.train.train_quantum` (full batch).
        eval_every: epochs between dev evaluations.
        select_best: report the checkpoint with the best dev accuracy (ties: lower dev
            loss), the rule of our own training loops; ``False`` reports the final
            parameters (``engine="lambeq"`` only; the pennylane engine always selects).

    Returns:
        The losses and the train/dev/test accuracies.

    Raises:
        ValueError: unknown engine.
    """
    import lambeq

    name = name or f"{data.name}-lambeq-cups-IQP"
    start = time.perf_counter()
    splits = data.splits()
    diagrams = {k: lambeq_reader_diagrams([e.sentence for e in v]) for k, v in splits.items()}
    ansatz = lambeq.IQPAnsatz({lambeq.AtomicType.NOUN: 1, lambeq.AtomicType.SENTENCE: 1},
                              n_layers=1, n_single_qubit_params=3)
    circuits = {k: [ansatz(d) for d in v] for k, v in diagrams.items()}
    if engine == "pennylane":
        sentences = [e.sentence for e in data.all_examples()]
        model_pl = LambeqCircuitModel(sentences, [c for v in circuits.values() for c in v],
                                      seed=seed)
        spsa = SPSA(a=a, c=c, A=0.01 * epochs, seed=seed)
        result = train_quantum(model_pl, data, epochs=epochs, spsa=spsa,
                               eval_every=eval_every, progress=progress, name=name)
        result.seconds = time.perf_counter() - start
        return result
    if engine != "lambeq":
        raise ValueError(f"unknown engine {engine!r}; use 'lambeq' or 'pennylane'")
    model = lambeq.NumpyModel.from_diagrams(
        [c for v in circuits.values() for c in v], use_jit=use_jit)
    model.initialise_weights()
    loss = lambeq.BinaryCrossEntropyLoss(use_jax=use_jit)

    def accuracy(y_hat, y):
        return float(np.mean(np.argmax(y_hat, axis=1) == np.argmax(y, axis=1)))

    def selection(y_hat, y):
        return _selection_score(np.asarray(y_hat), np.asarray(y))

    tmp = None
    if log_dir is None:
        tmp = tempfile.TemporaryDirectory()
        log_dir = tmp.name
    try:
        trainer = lambeq.QuantumTrainer(
            model, loss_function=loss, epochs=epochs, optimizer=lambeq.SPSAOptimizer,
            optim_hyperparams={"a": a, "c": c, "A": 0.01 * epochs},
            evaluate_functions={"acc": accuracy, "selection": selection},
            evaluate_on_train=True,
            verbose="progress" if progress else "suppress", seed=seed,
            log_dir=str(Path(log_dir)),
        )
        train_set = lambeq.Dataset(circuits["train"], _one_hot(splits["train"]),
                                   batch_size=batch_size, shuffle=True)
        dev_set = lambeq.Dataset(circuits["dev"], _one_hot(splits["dev"]), shuffle=False)
        # The same rule as ours: the checkpoint with the best dev accuracy, ties broken by
        # the lower dev loss; lambeq's trainer saves it as best_model.lt.
        trainer.fit(train_set, dev_set, log_interval=max(1, epochs // 4),
                    eval_interval=eval_every, early_stopping_criterion="selection",
                    minimize_criterion=False)
        scores = [float(x) for x in trainer.val_eval_results["selection"]]
        best_epoch = eval_every * (int(np.argmax(scores)) + 1)
        if select_best:
            model.load(Path(log_dir) / "best_model.lt")
    finally:
        if tmp is not None:
            tmp.cleanup()
    result = TrainResult(name, losses=[float(x) for x in trainer.train_epoch_costs],
                         dev_losses=[float(x) for x in trainer.val_costs])
    for split in ("train", "dev", "test"):
        y_hat = np.asarray(model(circuits[split]))
        value = accuracy(y_hat, _one_hot(splits[split]))
        setattr(result, f"{split}_accuracy", value)
    result.best_epoch = best_epoch if select_best else epochs
    result.seconds = time.perf_counter() - start
    return result
