"""QNLP sentence classification: pregroup diagrams -> quantum circuits and tensor networks.

Reads lambeq's MC (meaning classification) and RP (relative pronoun) data sets from a
folder in lambeq's format (``--data``), or generates the project's own (no ``--data``),
parses every sentence with the part-of-speech tagger (no hand-written lexicon), and trains
for each of ``--seeds`` seeds

- a quantum model: our functor to IQP (MC) / Sim14 (RP) circuits, exact PennyLane
  simulation in JAX, Adam on exact gradients;
- tensor models: our functor to tensor networks, Adam, in Torch and in JAX;
- lambeq's offline pipeline (cups reader + IQP + SPSA, lambeq's ``NumpyModel`` and
  ``QuantumTrainer``) as the baseline, in the same run.

Word parameters are a type prior plus a word offset (:mod:`diagrammar.qnlp.type_prior`), so
words that occur only in dev/test get their type's meaning.  Every model (the baseline
too) reports the checkpoint with the best dev accuracy (ties: lower dev loss); the test
file is only ever used to report.  RP has no dev file: a stratified dev split is carved
from the train file with the run's seed.

Run::

    python examples/qnlp_classifier.py --data ../shared/data/lambeq   # lambeq's files
    python examples/qnlp_classifier.py                                 # generated data
    python examples/qnlp_classifier.py --quick --seeds 2               # a fast look
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from diagrammar.diagrams.pregroup import tokenize  # noqa: E402
from diagrammar.functors.quantum import (  # noqa: E402
    Ansatz,
    IQPAnsatz,
    QuantumFunctor,
    Sim14Ansatz,
)
from diagrammar.functors.tensor_network import TensorFunctor  # noqa: E402
from diagrammar.qnlp.baseline import train_lambeq_baseline  # noqa: E402
from diagrammar.qnlp.data import Dataset, generate_mc, generate_rp  # noqa: E402
from diagrammar.qnlp.lambeq_data import load_lambeq_dataset  # noqa: E402
from diagrammar.qnlp.tagger import TaggedParser  # noqa: E402
from diagrammar.qnlp.train import TrainResult, train_quantum_adam, train_tensor  # noqa: E402
from diagrammar.qnlp.type_prior import (  # noqa: E402
    TypePriorQuantumModel,
    TypePriorTensorModel,
)

# Per data set: the circuit family of the quantum model.
ANSATZ: dict[str, Callable[[], Ansatz]] = {
    "MC": lambda: IQPAnsatz(n_layers=1),
    "RP": lambda: Sim14Ansatz(n_layers=1),
}


def load(name: str, data_dir: Path | None, seed: int) -> Dataset:
    """lambeq's files when a folder is given, else the generated data set of ``seed``."""
    if data_dir is not None:
        return load_lambeq_dataset(data_dir, name, seed=seed)
    return generate_mc(seed) if name == "MC" else generate_rp(seed)


def run_seed(
    data: Dataset, seed: int, quick: bool, baseline: str | None, out: Path
) -> list[TrainResult]:
    """Train every model on one data set with one seed; the results in table order."""
    parser = TaggedParser()
    sentences = [e.sentence for e in data.all_examples()]
    known = {w for e in data.train for w in tokenize(e.sentence)}
    q_epochs, t_epochs, b_epochs = (40, 60, 30) if quick else (120, 200, 120)
    results = []

    start = time.perf_counter()
    diagrams = parser.parse_all(sentences, data.target_type)
    parse_seconds = time.perf_counter() - start
    qmodel = TypePriorQuantumModel(
        sentences,
        diagrams,
        QuantumFunctor({"n": 1, "s": 1}, ANSATZ[data.name]()),
        known,
        seed=seed,
        library="jax",
    )
    build = time.perf_counter() - start
    ansatz = type(qmodel.functor.ansatz).__name__.removesuffix("Ansatz")
    res = train_quantum_adam(
        qmodel,
        data,
        epochs=q_epochs,
        lr=0.05,
        name=f"{data.name} quantum {ansatz} (Adam, exact gradients)",
    )
    res.seconds += build
    results.append(res)

    for library in ("torch", "jax"):
        start = time.perf_counter()
        tmodel = TypePriorTensorModel(
            sentences, diagrams, TensorFunctor({"n": 2, "s": 2}), known, library=library, seed=seed
        )
        build = time.perf_counter() - start + parse_seconds
        res = train_tensor(
            tmodel,
            data,
            epochs=t_epochs,
            lr=0.05,
            weight_decay=0.01,
            eval_every=1,
            name=f"{data.name} tensor {library}",
        )
        res.seconds += build
        results.append(res)

    if baseline is not None:
        res = train_lambeq_baseline(
            data,
            epochs=b_epochs,
            seed=seed,
            engine=baseline,
            log_dir=str(out / "lambeq_logs" / f"{data.name}{seed}"),
            name=f"{data.name} lambeq cups+IQP+SPSA ({baseline})",
        )
        results.append(res)
    if seed == 0:
        draw_example(data.test[0].sentence, data, parser, qmodel.functor, out)
    return results


def majority(data: Dataset) -> float:
    """Test accuracy of always answering the train split's most common label."""
    labels = [e.label for e in data.train]
    common = max(set(labels), key=labels.count)
    return sum(e.label == common for e in data.test) / len(data.test)


def draw_example(
    sentence: str, data: Dataset, parser: TaggedParser, functor: QuantumFunctor, out: Path
) -> None:
    """Save the pregroup diagram and the circuit of one sentence as PNG."""
    diagram = parser.parse(sentence, data.target_type)
    diagram.draw(path=str(out / f"qnlp_{data.name}_diagram.png"), figsize=(8, 3), fontsize=12)
    plt.close("all")
    functor(diagram).draw(
        path=str(out / f"qnlp_{data.name}_circuit.png"), figsize=(14, 12), fontsize=9
    )
    plt.close("all")


def plot_losses(results: list[TrainResult], path: Path) -> None:
    """Training loss of every run of seed 0 against its epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, dataset in zip(axes, ("MC", "RP"), strict=True):
        for res in results:
            if res.name.startswith(dataset) and res.losses:
                ax.plot(range(1, len(res.losses) + 1), res.losses, label=res.name[3:])
        ax.set_title(f"{dataset}: training loss (cross-entropy), seed 0")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(runs: dict[str, list[TrainResult]], seeds: int) -> str:
    """Markdown: test accuracy mean ± standard deviation, per-seed values, seconds."""
    lines = [
        f"| model | test accuracy, mean ± sd over {seeds} seeds | per seed | "
        "dev mean | seconds per model (median) |",
        "|---|---|---|---|---|",
    ]
    for name, results in runs.items():
        tests = [100 * r.test_accuracy for r in results]
        spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
        per_seed = " / ".join(f"{t:.1f}" for t in tests)
        dev = statistics.mean(100 * r.dev_accuracy for r in results)
        seconds = statistics.median(r.seconds for r in results)
        lines.append(
            f"| {name} | {statistics.mean(tests):.1f} ± {spread:.1f} | {per_seed} | "
            f"{dev:.1f} | {seconds:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a folder of lambeq's files (mc_*_data.txt, rp_*_data.txt); "
        "without it the data sets are generated",
    )
    parser.add_argument("--datasets", nargs="+", default=["MC", "RP"], choices=("MC", "RP"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("out/qnlp"))
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument(
        "--baseline-engine",
        choices=("lambeq", "pennylane", "none"),
        default="lambeq",
        help="lambeq: NumpyModel+QuantumTrainer; pennylane: the same circuits "
        "with our exact runner and SPSA; none: no baseline",
    )
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    baseline = None if args.baseline_engine == "none" else args.baseline_engine
    source = str(args.data) if args.data else "generated"
    first: list[TrainResult] = []
    report = []
    for name in args.datasets:
        runs: dict[str, list[TrainResult]] = {}
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            data = load(name, args.data, seed)
            if seed == 0:
                sentences = [e.sentence for e in data.all_examples()]
                coverage = TaggedParser().coverage(sentences, data.target_type)
                print(f"{name} ({source}): parser coverage {coverage.summary()}", flush=True)
            for res in run_seed(data, seed, args.quick, baseline, args.out):
                print(f"  seed {seed}: {res.summary()}", flush=True)
                runs.setdefault(res.name, []).append(res)
                if seed == 0:
                    first.append(res)
        lines = table(runs, args.seeds)
        report.append(
            f"{name} ({source}); majority class of train on test: {majority(data):.1%}\n\n{lines}\n"
        )
        print(f"\n{report[-1]}", flush=True)
    if set(args.datasets) == {"MC", "RP"}:
        plot_losses(first, args.out / "qnlp_losses.png")
    print("\n".join(report))
    print(f"wrote plots and drawings under {args.out}")


if __name__ == "__main__":
    main()
