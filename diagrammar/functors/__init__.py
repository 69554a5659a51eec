"""The semantics: functors that map diagrams to computation and pictures.

This layer is the only bridge between syntax and implementations: it may import
``diagrams``, ``decoding``, ``models``, ``symbolic``, ``kernels`` and the QNLP implementation
modules (circuits, tensor networks); the implementations never import it. Applications on
top (the QNLP models and training, ``bench``, the command line) may.

``Execute`` maps step boxes to the backend-neutral wiring of :mod:`diagrammar.decoding.steps`
(the table is :mod:`~diagrammar.functors.implementations`); a backend
(:mod:`~diagrammar.functors.backends`) is a model loader. ``Draw`` maps boxes to coloured
drawing boxes. ``PredictSpeed`` maps boxes to their cost in a step and a diagram to its
predicted tokens per second (:mod:`~diagrammar.functors.predict`). ``ToLark`` and ``ToGBNF``
map grammar diagrams to the texts grammar engines read, ``DrawGrammar`` to pictures, and
``load_grammar`` turns any grammar resource (a grammar diagram, a JSON Schema, a Pydantic
model, a regex, a file, a built-in name) into the spec a ``Constrain`` box compiles.

>>> from diagrammar.diagrams import PromptLookup, speculative
>>> from diagrammar.functors import Draw
>>> [Draw().colour(box) for box in speculative(PromptLookup()).boxes][:2]
['#9ecae1', '#fdae6b']
"""

from diagrammar.functors.backends import (
    BACKENDS,
    Backend,
    backend_registry,
    register_backend,
)
from diagrammar.functors.draw import Draw
from diagrammar.functors.execute import CompiledDiagram, Decoder, Execute, ExecuteError, generate
from diagrammar.functors.grammar import DrawGrammar, ToGBNF, ToLark, accepts, parse, to_spec
from diagrammar.functors.grammars import load_grammar
from diagrammar.functors.predict import (
    AcceptanceProfile,
    MissingProfileError,
    PredictSpeed,
    SpeedPrediction,
    StepProfile,
)

__all__ = ["BACKENDS", "Backend", "backend_registry", "register_backend", "Execute",
           "ExecuteError", "Decoder", "CompiledDiagram", "Draw", "generate", "PredictSpeed",
           "AcceptanceProfile", "StepProfile", "SpeedPrediction", "MissingProfileError",
           "ToLark", "ToGBNF", "DrawGrammar", "to_spec", "parse", "accepts", "load_grammar"]
