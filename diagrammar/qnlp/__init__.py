"""QNLP: the code the QNLP functors map to, and DisCoCat sentence classification on top.

>>> from diagrammar.qnlp.data import generate_mc
>>> len(generate_mc().train)
70

Implementation modules (what :mod:`diagrammar.functors.quantum` and
:mod:`diagrammar.functors.tensor_network` produce is run here).  They may import numpy,
sympy, torch, jax, PennyLane, lambeq and discopy's circuit classes, never
:mod:`diagrammar.diagrams` or :mod:`diagrammar.functors`:

- :mod:`diagrammar.qnlp.arrays`: ``ArrayLibrary`` (``"torch" | "jax" | "numpy"``), the
  one keyword ``library=`` for an array library.
- :mod:`diagrammar.qnlp.tensor_network`: labelled tensor networks and their ``einsum``
  contraction; ``init_params``.
- :mod:`diagrammar.qnlp.circuits`: discopy circuits compiled to flat gate lists.
- :mod:`diagrammar.qnlp.pennylane_runner`: exact PennyLane simulation of compiled circuits.
- :mod:`diagrammar.qnlp.lambeq_interop`: diagrams and circuits to and from lambeq.

Application modules, which may also import :mod:`diagrammar.diagrams` and
:mod:`diagrammar.functors`:

- :mod:`diagrammar.qnlp.data`: the MC and RP data sets, generated deterministically.
- :mod:`diagrammar.qnlp.lambeq_data`: lambeq's published MC and RP files, read as they
  are.
- :mod:`diagrammar.qnlp.english_words`: a tagged English word list (parts of speech).
- :mod:`diagrammar.qnlp.tagger`: a part-of-speech tagger and the pregroup parser built on
  it, so real vocabulary needs no hand-written lexicon; parser coverage.
- :mod:`diagrammar.qnlp.models`: quantum (PennyLane) and tensor (Torch/JAX) models.
- :mod:`diagrammar.qnlp.type_prior`: the same models with word parameters = type prior +
  word offset, so words unseen in training get their type's meaning.
- :mod:`diagrammar.qnlp.optim`: SPSA and Adam.
- :mod:`diagrammar.qnlp.train`: training loops with progress bars (SPSA, or Adam on exact
  circuit gradients, for quantum models).
- :mod:`diagrammar.qnlp.baseline`: lambeq's offline pipeline (cups reader + IQP + SPSA).

Import the modules by full path; this package imports nothing on its own.
"""
