"""The syntax: wire types, boxes and pipelines of decoding steps. No tensors here.

This layer may import only discopy and the standard library. Boxes carry frozen JSON specs
and declare their metadata (role, lossless, resources) on their class; meaning comes from the
functors in :mod:`diagrammar.functors`.

>>> from diagrammar.diagrams import PromptLookup, speculative
>>> step = speculative(PromptLookup())
>>> print(step.dom, "->", step.cod)
Context -> Context
"""

from diagrammar.diagrams.boxes import (
    BOX_CLASSES,
    ROLES,
    Accept,
    Aded,
    Check,
    Commit,
    Constrain,
    Drafter,
    DraftModel,
    GreedyAccept,
    Merge,
    Monitor,
    NoDraft,
    Pipeline,
    PromptLookup,
    Rasd,
    Retrieval,
    Sized,
    SpecTrAccept,
    SpeculativeSampling,
    StepBox,
    Swap,
    TokenRecycling,
    Verify,
    box_registry,
    is_lossless,
    register_box_class,
    required_resources,
    resource_kinds,
)
from diagrammar.diagrams.builders import (
    PIPELINES,
    autoregressive,
    checked,
    constrained,
    read_pipeline,
    register_pipeline,
    speculative,
)
from diagrammar.diagrams.builtin_grammars import BUILTIN_GRAMMARS, builtin
from diagrammar.diagrams.errors import DiagramError, PipelineFormatError, WiringError
from diagrammar.diagrams.grammar import Grammar, GrammarDefinitionError
from diagrammar.diagrams.serialize import from_json, load_pipeline, save_pipeline, to_json
from diagrammar.diagrams.types import Accepted, Context, Draft, Scores, Ty

__all__ = [
    "BOX_CLASSES", "Accept", "Aded", "Check", "Commit", "Constrain", "Rasd", "Retrieval",
    "Sized",
    "DraftModel", "Drafter", "GreedyAccept", "Merge", "Monitor",
    "NoDraft", "Pipeline", "PromptLookup", "SpecTrAccept", "SpeculativeSampling", "StepBox",
    "Swap", "TokenRecycling", "Verify",
    "PIPELINES", "autoregressive", "checked", "constrained", "read_pipeline", "register_pipeline",
    "speculative", "Grammar", "GrammarDefinitionError", "BUILTIN_GRAMMARS", "builtin",
    "DiagramError", "PipelineFormatError", "WiringError", "from_json", "load_pipeline",
    "save_pipeline", "to_json", "Accepted", "Context", "Draft", "Scores", "Ty", "ROLES",
    "box_registry", "is_lossless", "register_box_class", "required_resources",
    "resource_kinds",
]
