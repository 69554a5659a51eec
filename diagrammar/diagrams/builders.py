"""Builders for the standard decoding steps, and the registry of named pipelines.

>>> from diagrammar.diagrams.builders import autoregressive, speculative, read_pipeline
>>> from diagrammar.diagrams.boxes import PromptLookup
>>> [box.name for box in autoregressive().boxes]
['NoDraft', 'Verify', 'GreedyAccept', 'Commit']
>>> read_pipeline("prompt-lookup") == speculative(PromptLookup())
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from diagrammar.diagrams.boxes import (
    Accept,
    Aded,
    Check,
    Commit,
    Constrain,
    Drafter,
    DraftModel,
    GreedyAccept,
    NoDraft,
    Pipeline,
    PromptLookup,
    Rasd,
    Retrieval,
    Sized,
    SpecTrAccept,
    SpeculativeSampling,
    StepBox,
    TokenRecycling,
    Verify,
)
from diagrammar.diagrams.errors import PipelineFormatError, WiringError

#: Named pipelines: name -> builder. Add yours with :func:`register_pipeline`.
PIPELINES: dict[str, Callable[[], Pipeline]] = {}


def _constrain_boxes(constrain: StepBox | Sequence[StepBox] | None,
                     caller: str) -> list[StepBox]:
    """The constrain-role boxes ``constrain`` names (one box, or several in order)."""
    if constrain is None:
        return []
    boxes = [constrain] if isinstance(constrain, StepBox) else list(constrain)
    for box in boxes:
        if not isinstance(box, StepBox) or box.role != "constrain":
            raise TypeError(f"{caller} takes constrain boxes (Constrain, Monitor, ...), "
                            f"alone or in a tuple, not {box!r}")
    return boxes


def speculative(drafter: Drafter, accept: Accept | None = None,
                constrain: StepBox | Sequence[StepBox] | None = None,
                check: StepBox | None = None) -> Pipeline:
    """One speculative step: draft, (constrain,) verify the tree in one pass, accept,
    (check,) commit.

    ``constrain`` is a box of the constrain role (``Constrain``, ``Monitor``) or a tuple of
    them, placed in that order (their masks intersect). ``check`` is a box of the check role
    (``Check``), placed between the acceptance rule and ``Commit``.

    >>> print(speculative(NoDraft(), check=Check(checker="sql", checkpoint="sql")))
    NoDraft >> Verify >> GreedyAccept >> Check(checker="sql", checkpoint="sql") >> Commit

    >>> print(speculative(PromptLookup(), constrain=Constrain(grammar="json")))
    PromptLookup >> Constrain(grammar="json") >> Verify >> GreedyAccept >> Commit
    >>> from diagrammar.diagrams.boxes import Monitor
    >>> print(speculative(NoDraft(), constrain=(Constrain(grammar="g"), Monitor())))
    NoDraft >> Constrain(grammar="g") >> Monitor >> Verify >> GreedyAccept >> Commit
    """
    if not isinstance(drafter, Drafter):
        raise TypeError(f"speculative() takes a Drafter box, not {drafter!r}")
    if check is not None and not (isinstance(check, StepBox) and check.role == "check"):
        raise TypeError(f"speculative() takes a check box (Check) as check=, not {check!r}")
    step: Pipeline = drafter
    for box in _constrain_boxes(constrain, "speculative()"):
        step = step >> box
    step = step >> Verify() >> (accept if accept is not None else GreedyAccept())
    if check is not None:
        step = step >> check
    return step >> Commit()


def checked(pipeline: Pipeline, check: StepBox | None = None) -> Pipeline:
    """``pipeline`` with a ``Check`` box (default ``Check()``) just before its ``Commit``
    box, so that any drafter, acceptance rule and constraint commit only checked text.

    >>> print(checked(speculative(PromptLookup()), Check(checker="z3", retries=1)))
    PromptLookup >> Verify >> GreedyAccept >> Check(checker="z3", retries=1) >> Commit

    Raises:
        WiringError: the pipeline has no single ``Commit`` box, or already checks.
    """
    check = check if check is not None else Check()
    if not (isinstance(check, StepBox) and check.role == "check"):
        raise TypeError(f"checked() takes a check box (Check), not {check!r}")
    layers = list(pipeline.inside)
    if any(isinstance(box, StepBox) and box.role == "check" for _, box, _ in layers):
        raise WiringError("this pipeline is already checked: it has a check box")
    commits = [index for index, (_, box, _) in enumerate(layers)
               if isinstance(box, StepBox) and box.role == "commit"]
    if len(commits) != 1:
        raise WiringError(f"checked() needs a pipeline with one Commit box, this one has "
                          f"{len(commits)}")
    at = commits[0]
    left, _, right = layers[at]
    return pipeline[:at] >> (left @ check @ right) >> pipeline[at:]


def constrained(pipeline: Pipeline,
                constrain: StepBox | Sequence[StepBox] | None = None) -> Pipeline:
    """``pipeline`` with a ``Constrain`` box (or any constrain-role boxes, e.g. ``Monitor``,
    or a tuple of them in order) just before its ``Verify`` box, so that any drafter and
    acceptance rule decode inside a grammar.

    >>> print(constrained(speculative(PromptLookup()), Constrain(grammar="json")))
    PromptLookup >> Constrain(grammar="json") >> Verify >> GreedyAccept >> Commit
    >>> from diagrammar.diagrams.boxes import Monitor
    >>> print(constrained(speculative(PromptLookup()), Monitor(context="code")))
    PromptLookup >> Monitor(context="code") >> Verify >> GreedyAccept >> Commit

    Raises:
        WiringError: the pipeline has no single ``Verify`` box, or already constrains.
    """
    boxes = _constrain_boxes(constrain if constrain is not None else Constrain(),
                             "constrained()")
    layers = list(pipeline.inside)
    if any(isinstance(box, StepBox) and box.role == "constrain" for _, box, _ in layers):
        raise WiringError("this pipeline is already constrained: it has a constrain box "
                          "(to combine several, pass them together: constrain=(a, b))")
    verifies = [index for index, (_, box, _) in enumerate(layers) if isinstance(box, Verify)]
    if len(verifies) != 1:
        raise WiringError(f"constrained() needs a pipeline with one Verify box, this one has "
                          f"{len(verifies)}")
    at = verifies[0]
    left, _, right = layers[at]
    inserted = pipeline[:at]
    for box in boxes:
        inserted = inserted >> (left @ box @ right)
    return inserted >> pipeline[at:]


def autoregressive() -> Pipeline:
    """Plain greedy decoding: the speculative step with an empty draft."""
    return speculative(NoDraft())


def register_pipeline(name: str) -> Callable[[Callable[[], Pipeline]], Callable[[], Pipeline]]:
    """Registers a zero-argument pipeline builder under ``name`` (a decorator)."""

    def register(builder: Callable[[], Pipeline]) -> Callable[[], Pipeline]:
        PIPELINES[name] = builder
        return builder

    return register


register_pipeline("autoregressive")(autoregressive)


@register_pipeline("prompt-lookup")
def prompt_lookup() -> Pipeline:
    """Prompt lookup decoding: a chain of up to 10 tokens copied from the context."""
    return speculative(PromptLookup())


@register_pipeline("prompt-lookup-tree")
def prompt_lookup_tree() -> Pipeline:
    """Prompt lookup with up to two side branches where earlier matches disagree."""
    return speculative(PromptLookup(branches=3))


@register_pipeline("token-recycling")
def token_recycling() -> Pipeline:
    """Token Recycling: the target's recycled top-8 candidates fill a static tree template,
    verified up to 16 nodes (a CPU-sized prefix of the paper's 80-node template)."""
    return speculative(TokenRecycling(max_nodes=16))


@register_pipeline("token-recycling-paper")
def token_recycling_paper() -> Pipeline:
    """Token Recycling as the paper runs it: the whole 80-node static template (on a CPU a pass
    of 80 nodes costs several single steps; see ``token-recycling`` for a CPU-sized prefix)."""
    return speculative(TokenRecycling())


@register_pipeline("token-recycling-dynamic")
def token_recycling_dynamic() -> Pipeline:
    """Token Recycling with a DySpec-style dynamic tree: the 8 nodes of highest estimated
    path probability under the recycled candidates (8 measured fastest of 8/16/32 on a CPU)."""
    return speculative(TokenRecycling(max_nodes=8, dynamic=True))


@register_pipeline("token-recycling-sized")
def token_recycling_sized() -> Pipeline:
    """Dynamic Token Recycling grown to 48 nodes and cut to the size the cost model bound as
    resource ``"cost"`` predicts fastest (bind a measured curve:
    ``Execute(target, resources={"cost": measure_cost_curve(...)})``)."""
    return speculative(TokenRecycling(max_nodes=48, dynamic=True, cost="cost"))


@register_pipeline("draft-model")
def draft_model() -> Pipeline:
    """Classic speculative decoding: the model bound as resource ``"draft"`` drafts a chain
    of up to 4 tokens (bind it with ``Execute(target, resources={"draft": "default:tiny"})``)."""
    return speculative(DraftModel())


@register_pipeline("draft-model-adaptive")
def draft_model_adaptive() -> Pipeline:
    """The draft model with an adaptive chain length (up to 8 tokens; stops once a rejection
    is more likely than not), drafting only on steps where the cost model bound as resource
    ``"cost"`` predicts it pays."""
    return speculative(DraftModel(num_tokens=8, stop_threshold=0.5, cost="cost"))


@register_pipeline("composed-sized")
def composed_sized() -> Pipeline:
    """Prompt lookup merged with dynamic Token Recycling (8 nodes), the union cut every step to
    the size the cost model bound as resource ``"cost"`` predicts fastest."""
    return speculative(Sized(PromptLookup() | TokenRecycling(max_nodes=8, dynamic=True)))


@register_pipeline("draft-model-tree")
def draft_model_tree() -> Pipeline:
    """The draft model drafts a tree of its top tokens (2, then 2, then 1 per node; 3 deep),
    on steps where the cost model bound as resource ``"cost"`` predicts it pays."""
    return speculative(DraftModel(num_tokens=3, branches=[2, 2, 1], cost="cost"))


@register_pipeline("aded")
def aded() -> Pipeline:
    """ADED: a tri-gram table of the target's distributions, searched MCTS-style into a tree
    of up to 16 nodes."""
    return speculative(Aded())


@register_pipeline("aded-corpus")
def aded_corpus() -> Pipeline:
    """ADED with its tri-gram table seeded from the corpus bound as resource ``"datastore"``
    (the paper builds its table from a corpus), then adapted online."""
    return speculative(Aded(corpus="datastore"))


@register_pipeline("rest")
def rest() -> Pipeline:
    """REST: continuations of the longest suffix match in the datastore bound as resource
    ``"datastore"`` (e.g. ``"default-corpus"``, a saved datastore or text files), 8 nodes."""
    return speculative(Retrieval())


@register_pipeline("rest-sized")
def rest_sized() -> Pipeline:
    """REST's retrieval tree cut every step to the size the cost model (resource ``"cost"``)
    predicts fastest, with its nodes' acceptance learned online."""
    return speculative(Sized(Retrieval()))


@register_pipeline("rasd")
def rasd() -> Pipeline:
    """RASD: a retrieval tree pruned by the draft model's first tokens and fused with its
    top-token tree, 12 nodes at most (a CPU-sized budget; resources ``"datastore"`` and
    ``"draft"``); the draft model drafts on steps where the cost model (resource ``"cost"``)
    predicts it pays."""
    return speculative(Rasd(Retrieval(), DraftModel(num_tokens=3, branches=[2, 1],
                                                    cost="cost"), max_nodes=12))


@register_pipeline("rasd-sized")
def rasd_sized() -> Pipeline:
    """The ``rasd`` tree cut every step to the size the cost model (resource ``"cost"``)
    predicts fastest."""
    return speculative(Sized(Rasd(Retrieval(), DraftModel(num_tokens=3, branches=[2, 1],
                                                          cost="cost"), max_nodes=12)))


@register_pipeline("speculative-sampling")
def speculative_sampling() -> Pipeline:
    """Speculative sampling (Leviathan et al.; Chen et al.): the draft model (resource
    ``"draft"``) samples a chain of 4; exact rejection sampling accepts. Greedy at
    temperature 0."""
    return speculative(DraftModel(num_tokens=4), SpeculativeSampling())


@register_pipeline("specinfer")
def specinfer() -> Pipeline:
    """SpecInfer: the draft model samples a token tree (2, 2, 1 independent draws per node);
    multi-round rejection sampling over siblings accepts."""
    return speculative(DraftModel(num_tokens=3, branches=[2, 2, 1]), SpeculativeSampling())


@register_pipeline("rsd")
def rsd() -> Pipeline:
    """Recursive Speculative Decoding: siblings drawn without replacement (Gumbel top-k; 2, 2,
    1 per node), verified by recursive rejection sampling."""
    return speculative(DraftModel(num_tokens=3, branches=[2, 2, 1],
                                  sampling="without-replacement"), SpeculativeSampling())


@register_pipeline("spectr")
def spectr() -> Pipeline:
    """SpecTr: three independent draft sequences of 3 tokens, k-sequential selection."""
    return speculative(DraftModel(num_tokens=3, branches=[3], sampling="sequences"),
                       SpecTrAccept())


@register_pipeline("prompt-lookup-sampling")
def prompt_lookup_sampling() -> Pipeline:
    """Prompt lookup with exact speculative sampling (copied drafts are one-hot proposals)."""
    return speculative(PromptLookup(), SpeculativeSampling())


@register_pipeline("token-recycling-sampling")
def token_recycling_sampling() -> Pipeline:
    """Dynamic Token Recycling (8 nodes) with exact speculative sampling."""
    return speculative(TokenRecycling(max_nodes=8, dynamic=True), SpeculativeSampling())


def read_pipeline(name_or_json: str) -> Pipeline:
    """A pipeline from a registered name, a JSON file path, or a JSON string."""
    from diagrammar.diagrams import serialize

    text = name_or_json.strip()
    if text in PIPELINES:
        return PIPELINES[text]()
    if text.startswith("{"):
        return serialize.from_json(text)
    if text.endswith(".json") or Path(text).is_file():
        return serialize.load_pipeline(text)
    known = ", ".join(sorted(PIPELINES))
    raise PipelineFormatError(
        f"unknown pipeline {name_or_json!r}: use one of {known}, a path to a pipeline JSON "
        "file, or a JSON string"
    )


__all__ = ["PIPELINES", "speculative", "checked", "constrained", "autoregressive",
           "register_pipeline", "read_pipeline",
           "prompt_lookup", "prompt_lookup_tree", "token_recycling", "token_recycling_paper",
           "token_recycling_dynamic",
           "token_recycling_sized",
           "draft_model", "draft_model_adaptive", "composed_sized", "draft_model_tree", "aded",
           "aded_corpus",
           "rest", "rest_sized", "rasd", "rasd_sized",
           "speculative_sampling", "specinfer", "rsd", "spectr", "prompt_lookup_sampling",
           "token_recycling_sampling"]
