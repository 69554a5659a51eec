"""QNLP application: DisCoCat sentence classification with quantum and tensor models.

Modules (import them by full path):

- :mod:`diagrammar.qnlp.data` — the MC and RP data sets, generated deterministically.
- :mod:`diagrammar.qnlp.models` — quantum (PennyLane) and tensor (Torch/JAX) models.
- :mod:`diagrammar.qnlp.optim` — SPSA and Adam.
- :mod:`diagrammar.qnlp.train` — training loops with progress bars.
- :mod:`diagrammar.qnlp.baseline` — lambeq's offline pipeline (cups reader + IQP + SPSA).
"""
