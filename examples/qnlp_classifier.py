"""QNLP sentence classification: pregroup diagrams -> quantum circuits and tensor networks.

Generates the MC (meaning classification) and RP (relative pronoun) data sets, parses them
with our pregroup parser, trains

- a quantum model (our functor to IQP/Sim14 circuits, exact PennyLane simulation, SPSA),
- a tensor model (our functor to tensor networks, Torch, Adam; JAX as well on MC),
- lambeq's standard offline pipeline (cups reader + IQP + SPSA) as the baseline,

prints the accuracies and saves a loss plot, one sentence's diagram and its circuit.

Run::

    python examples/qnlp_classifier.py               # everything, ~5 minutes on 2 cores
    python examples/qnlp_classifier.py --quick       # fewer epochs, fast baseline engine
    python examples/qnlp_classifier.py --baseline-engine pennylane   # faster baseline
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from diagrammar.diagrams.pregroup import parse  # noqa: E402
from diagrammar.functors.quantum import (  # noqa: E402
    IQPAnsatz,
    QuantumFunctor,
    Sim14Ansatz,
)
from diagrammar.functors.tensor_network import TensorFunctor  # noqa: E402
from diagrammar.qnlp.baseline import train_lambeq_baseline  # noqa: E402
from diagrammar.qnlp.data import (  # noqa: E402
    generate_mc,
    generate_rp,
    load_dataset,
    mc_lexicon,
    rp_lexicon,
    save_dataset,
)
from diagrammar.qnlp.models import QuantumModel, TensorModel  # noqa: E402
from diagrammar.qnlp.optim import SPSA  # noqa: E402
from diagrammar.qnlp.train import TrainResult, train_quantum, train_tensor  # noqa: E402

# Per data set: lexicon, ansatz, words with a fixed Frobenius meaning.
SETUPS = {
    "MC": (mc_lexicon, IQPAnsatz(n_layers=1), ()),
    "RP": (rp_lexicon, Sim14Ansatz(n_layers=1), ("that",)),
}


def run(out: Path, seed: int, quick: bool, baseline_engine: str) -> list[TrainResult]:
    """Train every model on MC and RP; write data, plots and drawings under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    save_dataset(generate_mc(seed), data_dir)
    save_dataset(generate_rp(seed), data_dir)
    q_epochs, t_epochs, b_epochs = (60, 60, 30) if quick else (200, 200, 120)
    results: list[TrainResult] = []
    for name, (lexicon_fn, ansatz, frobenius) in SETUPS.items():
        data = load_dataset(data_dir, name)
        lexicon = lexicon_fn()
        sentences = [e.sentence for e in data.all_examples()]

        start = time.perf_counter()
        qfunctor = QuantumFunctor({"n": 1, "s": 1}, ansatz, frobenius_words=frobenius)
        qmodel = QuantumModel.from_sentences(sentences, lexicon, qfunctor, data.target_type,
                                             seed=seed)
        build = time.perf_counter() - start
        spsa = SPSA(a=0.1, c=0.06, A=0.1 * q_epochs, seed=seed)
        res = train_quantum(qmodel, data, epochs=q_epochs, spsa=spsa,
                            name=f"{name} quantum {type(ansatz).__name__}")
        res.seconds += build
        results.append(res)
        print(res.summary(), flush=True)

        libraries = ("torch", "jax") if name == "MC" else ("torch",)
        for library in libraries:
            start = time.perf_counter()
            tfunctor = TensorFunctor({"n": 2, "s": 2}, frobenius_words=frobenius)
            tmodel = TensorModel.from_sentences(sentences, lexicon, tfunctor, data.target_type,
                                                library=library, seed=seed)
            build = time.perf_counter() - start
            res = train_tensor(tmodel, data, epochs=t_epochs, lr=0.05, weight_decay=0.01,
                               name=f"{name} tensor {library}")
            res.seconds += build
            results.append(res)
            print(res.summary(), flush=True)

        engine = "pennylane" if quick else baseline_engine
        res = train_lambeq_baseline(data, epochs=b_epochs, seed=seed, engine=engine,
                                    log_dir=str(out / "lambeq_logs"),
                                    name=f"{name} lambeq cups+IQP ({engine})")
        results.append(res)
        print(res.summary(), flush=True)

        if name == "MC":
            draw_example(data.test[0].sentence, lexicon, qfunctor, out)
    plot_losses(results, out / "qnlp_losses.png")
    return results


def draw_example(sentence: str, lexicon, functor: QuantumFunctor, out: Path) -> None:
    """Save the pregroup diagram and the circuit of one sentence as PNG."""
    diagram = parse(sentence, lexicon)
    diagram.draw(path=str(out / "qnlp_diagram.png"), figsize=(8, 3), fontsize=12)
    plt.close("all")
    functor(diagram).draw(path=str(out / "qnlp_circuit.png"), figsize=(14, 12), fontsize=9)
    plt.close("all")


def plot_losses(results: list[TrainResult], path: Path) -> None:
    """Training loss of every run against its epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, dataset in zip(axes, ("MC", "RP"), strict=True):
        for res in results:
            if res.name.startswith(dataset) and res.losses:
                ax.plot(range(1, len(res.losses) + 1), res.losses, label=res.name[3:])
        ax.set_title(f"{dataset}: training loss (cross-entropy)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/qnlp"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, fast baseline")
    parser.add_argument("--baseline-engine", choices=("lambeq", "pennylane"), default="lambeq",
                        help="lambeq: NumpyModel+QuantumTrainer; pennylane: same circuits, "
                             "our exact runner and SPSA")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    warnings.filterwarnings("ignore", category=UserWarning)
    results = run(args.out, args.seed, args.quick, args.baseline_engine)
    print("\n| model | train | dev | test | seconds |\n|---|---|---|---|---|")
    for res in results:
        print(f"| {res.name} | {res.train_accuracy:.1%} | {res.dev_accuracy:.1%} | "
              f"{res.test_accuracy:.1%} | {res.seconds:.1f} |")
    print(f"\nwrote {args.out / 'qnlp_losses.png'}, {args.out / 'qnlp_diagram.png'}, "
          f"{args.out / 'qnlp_circuit.png'} and data under {args.out / 'data'}")


if __name__ == "__main__":
    main()
