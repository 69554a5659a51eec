"""Boxes of a decoding step, and the diagram class they compose into.

A box is pure syntax: a name, a domain, a codomain and a frozen, JSON-serialisable *spec* of
hyper-parameters. It never holds a model or a tensor; :class:`~diagrammar.functors.Execute`
decides what a box means.

The standard step threads the :data:`~diagrammar.diagrams.types.Context` wire through every
box that reads it::

    Drafter : Context                   -> Context @ Draft
    Verify  : Context @ Draft           -> Context @ Draft @ Scores
    Accept  : Context @ Draft @ Scores  -> Context @ Accepted
    Commit  : Context @ Accepted        -> Context

>>> from diagrammar.diagrams.boxes import PromptLookup, Verify, GreedyAccept, Commit
>>> step = PromptLookup(num_tokens=5) >> Verify() >> GreedyAccept() >> Commit()
>>> print(step.dom, "->", step.cod)
Context -> Context
>>> PromptLookup(num_tokens=5).spec["num_tokens"]
5
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from discopy import symmetric
from discopy.utils import factory

from diagrammar.diagrams.errors import PipelineFormatError, WiringError, check_then
from diagrammar.diagrams.types import Accepted, Context, Draft, Scores, Ty

#: Every concrete box class by its key (the class name unless the class sets ``key``), for
#: reading pipelines back from JSON. Filled by subclassing; see :func:`box_registry`.
BOX_CLASSES: dict[str, type[StepBox]] = {}

_ABSTRACT_BOXES: dict[str, type[StepBox]] = {}

#: The parts a box can play in a step; ``StepBox.role`` is one of them.
ROLES = ("drafter", "verify", "accept", "commit", "constrain", "check", "other")


@factory
class Pipeline(symmetric.Diagram):
    """A diagram of decoding boxes: what ``>>`` and ``@`` build from boxes.

    Composition checks the wires and, when they do not match, raises a :class:`WiringError`
    that names both boxes and both types.

    >>> from diagrammar.diagrams.boxes import Pipeline, Commit
    >>> from diagrammar.diagrams.types import Context
    >>> Pipeline.id(Context) >> Commit()
    Traceback (most recent call last):
    ...
    diagrammar.diagrams.errors.WiringError: cannot compose the identity on Context with box \
'Commit': the left side outputs Context but the right side expects Context @ Accepted
    """

    ty_factory = Ty

    def then(self, *others: symmetric.Diagram) -> Pipeline:
        left = self
        for other in others:
            check_then(left, other, Pipeline,
                       "only diagrammar boxes and pipelines compose into a pipeline")
            left = symmetric.Diagram.then(left, other)
        return left


class Swap(symmetric.Swap, Pipeline):
    """The swap of two wires inside a pipeline."""

    __ambiguous_inheritance__ = (symmetric.Swap,)


Pipeline.braid_factory = Swap


def _freeze(value: Any) -> Any:
    """Checks that ``value`` is JSON data and returns an immutable copy of it."""
    if isinstance(value, Mapping):
        return tuple((str(k), _freeze(v)) for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a box spec holds only JSON data, not {type(value).__name__}: {value!r}")


def register_box_class(cls: type) -> type:
    """Registers a concrete box class under its ``key`` (done by subclassing).

    Registering a different class under a key already taken is an error, so two classes with
    one name cannot replace each other silently; give one of them its own ``key``. A class
    defined again by the same module and name (a reloaded module) replaces its old self.
    """
    old = BOX_CLASSES.get(cls.key)
    if old is not None and old is not cls and (old.__module__, old.__qualname__) != (
            cls.__module__, cls.__qualname__):
        raise TypeError(
            f"box key {cls.key!r} is taken by {old.__module__}.{old.__qualname__}: give "
            f"{cls.__module__}.{cls.__qualname__} its own key (class attribute key = '...')")
    BOX_CLASSES[cls.key] = cls
    return cls


class StepBox(symmetric.Box, Pipeline):
    """A box of a decoding step: a name, wire types and a frozen spec.

    Subclasses set ``dom`` and ``cod`` as class attributes and take their hyper-parameters as
    keyword arguments; ``spec`` records them. Every subclass is registered by name so that
    pipelines read back from JSON rebuild the same classes, user-defined ones included.

    >>> from diagrammar.diagrams.boxes import StepBox
    >>> from diagrammar.diagrams.types import Context, Draft
    >>> class MyDrafter(StepBox):
    ...     dom, cod = Context, Context @ Draft
    ...     def __init__(self, width: int = 2):
    ...         super().__init__(width=width)
    >>> MyDrafter(width=3).name, MyDrafter().name
    ('MyDrafter(width=3)', 'MyDrafter')
    """

    __ambiguous_inheritance__ = (symmetric.Box,)
    dom: ClassVar[Ty]
    cod: ClassVar[Ty]
    #: The part the box plays in a step (one of :data:`ROLES`); read by ``Draw`` and benchmarks.
    role: ClassVar[str] = "other"
    #: Whether the box leaves the target model's output unchanged (greedy: token-identical).
    lossless: ClassVar[bool] = True
    #: Spec keys whose values name resources bound by ``Execute(..., resources={...})``.
    resources: ClassVar[tuple[str, ...]] = ()
    #: Abstract boxes (``Drafter``, ``Accept``) stand for a role and are never executed.
    abstract: ClassVar[bool] = False
    #: The name the class is registered and saved under; defaults to the class name.
    key: ClassVar[str]

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.abstract = abstract
        if "key" not in cls.__dict__:
            cls.key = cls.__name__
        if cls.role not in ROLES:
            raise TypeError(f"box class {cls.__name__}: role {cls.role!r} is not one of "
                            f"{', '.join(ROLES)}")
        if abstract:
            _ABSTRACT_BOXES[cls.__name__] = cls
        else:
            register_box_class(cls)

    def __init__(self, **spec: Any) -> None:
        frozen = {key: _freeze(value) for key, value in spec.items()}
        self._spec_json = json.dumps(spec, sort_keys=True)
        symmetric.Box.__init__(self, self._label(spec), type(self).dom, type(self).cod,
                               data=tuple(sorted(frozen.items())))

    def _label(self, spec: Mapping[str, Any]) -> str:
        """The box's name: its class and the hyper-parameters that differ from the defaults."""
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
        }
        args = ", ".join(f"{key}={json.dumps(value)}" for key, value in spec.items()
                         if defaults.get(key, inspect.Parameter.empty) != value)
        return f"{type(self).__name__}({args})" if args else type(self).__name__

    @property
    def spec(self) -> dict[str, Any]:
        """A fresh copy of the box's hyper-parameters, as JSON data."""
        return json.loads(self._spec_json)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> StepBox:
        """Rebuilds a box from its spec; the inverse of :attr:`spec`."""
        try:
            return cls(**spec)
        except (TypeError, ValueError) as error:
            raise PipelineFormatError(f"bad spec for box {cls.__name__}: {error}") from None

    def __repr__(self) -> str:
        return self.name


class Drafter(StepBox, abstract=True):
    """Proposes a draft tree below the last committed token: ``Context -> Context @ Draft``.

    An abstract role: subclasses are the drafting methods.

    ``a | b`` merges two drafters into one whose tree is the union of theirs.

    >>> from diagrammar.diagrams.boxes import PromptLookup, NoDraft
    >>> (PromptLookup(num_tokens=4) | NoDraft()).name
    'PromptLookup(num_tokens=4) | NoDraft'

    """

    dom, cod = Context, Context @ Draft
    role = "drafter"

    def __or__(self, other: Drafter) -> Merge:
        if not isinstance(other, Drafter):
            raise WiringError(
                f"cannot merge drafter {self.name!r} with {other!r}: both sides of | must be "
                "drafters (Context -> Context @ Draft)"
            )
        mine = self.drafters if isinstance(self, Merge) else (self,)
        theirs = other.drafters if isinstance(other, Merge) else (other,)
        return Merge(*mine, *theirs)


class NoDraft(Drafter):
    """The empty draft: with it a step is plain autoregressive decoding."""

    def __init__(self) -> None:
        super().__init__()


class PromptLookup(Drafter):
    """Drafts by matching the context's last n-gram earlier in the context.

    The most recent match with the longest n-gram (from ``max_ngram`` down to ``min_ngram``)
    gives a chain of up to ``num_tokens`` tokens; of the latest ``scan_limit`` matches, the
    latest with a full-length continuation is preferred. When other matches continue
    differently, up to ``branches - 1`` of their continuations (each at most
    ``branch_tokens`` long) join as side branches, making a small tree.

    >>> PromptLookup(max_ngram=10**9)
    Traceback (most recent call last):
    ...
    ValueError: PromptLookup: max_ngram must be an integer from 1 to 64, got 1000000000
    """

    #: Upper bounds of the hyper-parameters: beyond them a lookup costs more than it can save.
    LIMITS: ClassVar[dict[str, int]] = {"num_tokens": 1024, "max_ngram": 64, "min_ngram": 64,
                                        "branches": 64, "branch_tokens": 1024,
                                        "scan_limit": 65536}

    def __init__(self, num_tokens: int = 10, max_ngram: int = 3, min_ngram: int = 1,
                 branches: int = 1, branch_tokens: int = 3, scan_limit: int = 64) -> None:
        values = {"num_tokens": num_tokens, "max_ngram": max_ngram, "min_ngram": min_ngram,
                  "branches": branches, "branch_tokens": branch_tokens,
                  "scan_limit": scan_limit}
        for label, value in values.items():
            limit = self.LIMITS[label]
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
                raise ValueError(f"PromptLookup: {label} must be an integer from 1 to {limit}, "
                                 f"got {value!r}")
        if min_ngram > max_ngram:
            raise ValueError(f"PromptLookup: min_ngram ({min_ngram}) > max_ngram ({max_ngram})")
        super().__init__(**values)


class TokenRecycling(Drafter):
    """Drafts a tree from the target's recycled top-``k`` candidates (Token Recycling).

    An adjacency matrix keeps, for each token, the target's ``k`` best next tokens from the
    last pass that scored it; a static template of candidate-rank paths (``template``, a list
    of rank lists; ``None`` = the paper-style 80-node default) is filled breadth first from
    it, up to ``max_nodes`` nodes (``None`` = the whole template). With ``hot_start`` the
    matrix outlives a generation; ``frozen`` stops updates. With ``dynamic`` the tree instead
    grows by estimated path probability (DySpec-style) up to ``max_nodes``; ``cost`` then
    names a resource holding the target's verification cost model (a ``CostModel`` or a
    measured cost curve), and each tree is cut to the size predicted fastest. The template is
    checked when the pipeline is executed.

    >>> TokenRecycling(max_nodes=16).name
    'TokenRecycling(max_nodes=16)'
    >>> TokenRecycling(k=0)
    Traceback (most recent call last):
    ...
    ValueError: TokenRecycling: k must be an integer from 1 to 64, got 0
    """

    resources = ("cost",)

    def __init__(self, k: int = 8, template: list[list[int]] | None = None,
                 max_nodes: int | None = None, hot_start: bool = True,
                 frozen: bool = False, dynamic: bool = False,
                 cost: str | None = None) -> None:
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 64:
            raise ValueError(f"TokenRecycling: k must be an integer from 1 to 64, got {k!r}")
        if max_nodes is not None and (not isinstance(max_nodes, int)
                                      or isinstance(max_nodes, bool)
                                      or not 0 <= max_nodes <= 4096):
            raise ValueError("TokenRecycling: max_nodes must be None or an integer from 0 to "
                             f"4096, got {max_nodes!r}")
        if template is not None:
            if not isinstance(template, (list, tuple)) or not all(
                    isinstance(path, (list, tuple))
                    and all(isinstance(r, int) and not isinstance(r, bool) for r in path)
                    for path in template):
                raise ValueError("TokenRecycling: template must be a list of lists of ranks")
            template = [list(path) for path in template]
        for label, flag in (("hot_start", hot_start), ("frozen", frozen), ("dynamic", dynamic)):
            if not isinstance(flag, bool):
                raise ValueError(f"TokenRecycling: {label} must be true or false, got {flag!r}")
        if cost is not None and (not isinstance(cost, str) or not cost or not dynamic):
            raise ValueError("TokenRecycling: cost must name a resource, and sizes dynamic "
                             f"trees only (dynamic=true), got cost={cost!r}")
        super().__init__(k=k, template=template, max_nodes=max_nodes, hot_start=hot_start,
                         frozen=frozen, dynamic=dynamic, cost=cost)


class DraftModel(Drafter):
    """A draft language model sharing the target's tokenizer drafts a chain or a tree.

    ``model`` names a resource bound with ``Execute(..., resources={name: model})``: anything
    the backend loads (``"default:tiny"``, a local folder, a loaded model). The chain is up to
    ``num_tokens`` long; with ``stop_threshold`` it stops early once the estimated chance that
    it holds a rejected token passes the threshold (adaptive length, calibrated on the fly).
    With ``branches`` (children per node at each depth, the last entry repeating) it drafts a
    tree ``num_tokens`` deep: the draft model's top tokens when decoding greedily; when
    sampling, draws from its distribution ``sampling="iid"`` (SpecInfer), ``"without-
    replacement"`` (Recursive Speculative Decoding) or as ``branches[0]`` independent
    ``"sequences"`` (SpecTr). ``frozen`` keeps the adaptive length's calibration as it is.
    ``cost`` names a resource holding the target's verification cost model (a ``CostModel``
    or a measured curve): a step then drafts only when the draft model's measured cost and
    acceptance predict it faster than the target alone.

    >>> DraftModel(num_tokens=5).name
    'DraftModel(num_tokens=5)'
    >>> DraftModel(stop_threshold=1.5)
    Traceback (most recent call last):
    ...
    ValueError: DraftModel: stop_threshold must be null or a number in (0, 1), got 1.5
    """

    resources = ("model", "cost")

    def __init__(self, model: str = "draft", num_tokens: int = 4,
                 stop_threshold: float | None = None, branches: list[int] | None = None,
                 sampling: str = "iid", frozen: bool = False, cost: str | None = None) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"DraftModel: model must name a resource, got {model!r}")
        if not isinstance(num_tokens, int) or isinstance(num_tokens, bool) or not (
                1 <= num_tokens <= 256):
            raise ValueError("DraftModel: num_tokens must be an integer from 1 to 256, got "
                             f"{num_tokens!r}")
        if stop_threshold is not None and (isinstance(stop_threshold, bool) or not isinstance(
                stop_threshold, (int, float)) or not 0.0 < stop_threshold < 1.0):
            raise ValueError("DraftModel: stop_threshold must be null or a number in (0, 1), "
                             f"got {stop_threshold!r}")
        if branches is not None:
            if not isinstance(branches, (list, tuple)) or not branches or not all(
                    isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 64
                    for b in branches):
                raise ValueError("DraftModel: branches must be null or a non-empty list of "
                                 f"integers from 1 to 64, got {branches!r}")
            if stop_threshold is not None:
                raise ValueError("DraftModel: stop_threshold (adaptive length) applies to "
                                 "chains only, not with branches")
            branches = list(branches)
        if sampling not in ("iid", "without-replacement", "sequences"):
            raise ValueError("DraftModel: sampling must be \"iid\", \"without-replacement\" "
                             f"or \"sequences\", got {sampling!r}")
        _check_flags("DraftModel", {"frozen": frozen})
        if cost is not None and (not isinstance(cost, str) or not cost):
            raise ValueError(f"DraftModel: cost must be null or name a resource, got {cost!r}")
        super().__init__(model=model, num_tokens=num_tokens, stop_threshold=stop_threshold,
                         branches=branches, sampling=sampling, frozen=frozen, cost=cost)


def _check_ints(box: str, limits: Mapping[str, tuple[int, int]], values: Mapping[str, Any]
                ) -> None:
    for label, (low, high) in limits.items():
        value = values[label]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{box}: {label} must be an integer from {low} to {high}, got "
                             f"{value!r}")


def _check_flags(box: str, values: Mapping[str, Any]) -> None:
    for label, flag in values.items():
        if not isinstance(flag, bool):
            raise ValueError(f"{box}: {label} must be true or false, got {flag!r}")


def _check_number(box: str, label: str, value: Any, low: float, high: float,
                  open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            (low < value if open_low else low <= value) and value <= high):
        bracket = "(" if open_low else "["
        raise ValueError(f"{box}: {label} must be a number in {bracket}{low}, {high}], got "
                         f"{value!r}")


class Aded(Drafter):
    """Drafts from a tri-gram table of the target's own next-token distributions, searched
    with an exploration bonus (ADED, "Adaptive Draft-Verification for Efficient Large Language
    Model Decoding").

    The table keeps the ``top_k`` most likely next tokens of each (previous, current) pair,
    seeded from the prompt and updated from every verification pass with decay ``decay``; the
    draft tree comes from ``simulations`` rounds of an MCTS-like search (UCB-style bonus
    ``exploration``, ``branching`` children per expansion), at most ``max_nodes`` nodes and
    ``max_depth`` deep. ``hot_start`` keeps the table across generations; ``frozen`` stops
    its updates. ``corpus`` names a datastore resource (as :class:`Retrieval` does) whose
    tri-grams seed the table before decoding, as the paper builds its table from a corpus.

    >>> Aded(max_nodes=8).name
    'Aded(max_nodes=8)'
    """

    resources = ("corpus",)

    def __init__(self, top_k: int = 12, decay: float = 0.9, simulations: int = 32,
                 exploration: float = 0.5, max_nodes: int = 16, max_depth: int = 6,
                 branching: int = 4, commit_weight: float = 1.0, max_contexts: int = 32768,
                 hot_start: bool = True, frozen: bool = False,
                 corpus: str | None = None) -> None:
        values = locals()
        _check_ints("Aded", {"top_k": (1, 256), "simulations": (1, 4096),
                             "max_nodes": (0, 4096), "max_depth": (1, 64),
                             "branching": (1, 64), "max_contexts": (1, 1 << 24)}, values)
        _check_number("Aded", "decay", decay, 0.0, 1.0, open_low=True)
        _check_number("Aded", "exploration", exploration, 0.0, 1e6)
        _check_number("Aded", "commit_weight", commit_weight, 0.0, 1e6)
        _check_flags("Aded", {"hot_start": hot_start, "frozen": frozen})
        if corpus is not None and (not isinstance(corpus, str) or not corpus):
            raise ValueError(f"Aded: corpus must be null or name a resource, got {corpus!r}")
        super().__init__(top_k=top_k, decay=decay, simulations=simulations,
                         exploration=exploration, max_nodes=max_nodes, max_depth=max_depth,
                         branching=branching, commit_weight=commit_weight,
                         max_contexts=max_contexts, hot_start=hot_start, frozen=frozen,
                         corpus=corpus)


class Retrieval(Drafter):
    """Drafts the continuations of the context's longest suffix found in a datastore (REST,
    "REST: Retrieval-Based Speculative Decoding").

    ``datastore`` names a resource: a datastore built from a corpus and indexed with a suffix
    array (a saved datastore folder, text files or folders to index — built once and cached
    — or ``"default-corpus"``, the default model's training corpus). The longest suffix of
    ``min_suffix`` to ``max_suffix`` tokens that occurs is looked up, the continuations of up
    to ``max_matches`` occurrences form a trie, and its ``max_nodes`` most frequent nodes (at
    most ``max_depth`` deep) are drafted.

    >>> Retrieval(max_nodes=4).name
    'Retrieval(max_nodes=4)'
    """

    resources = ("datastore",)

    def __init__(self, datastore: str = "datastore", max_suffix: int = 16,
                 min_suffix: int = 2, max_matches: int = 64, max_nodes: int = 8,
                 max_depth: int = 6) -> None:
        if not isinstance(datastore, str) or not datastore:
            raise ValueError(f"Retrieval: datastore must name a resource, got {datastore!r}")
        _check_ints("Retrieval", {"max_suffix": (1, 64), "min_suffix": (1, 64),
                                  "max_matches": (1, 10000), "max_nodes": (1, 256),
                                  "max_depth": (1, 32)}, locals())
        if min_suffix > max_suffix:
            raise ValueError(f"Retrieval: min_suffix ({min_suffix}) > max_suffix ({max_suffix})")
        super().__init__(datastore=datastore, max_suffix=max_suffix, min_suffix=min_suffix,
                         max_matches=max_matches, max_nodes=max_nodes, max_depth=max_depth)


class Rasd(Drafter):
    """Retrieval-augmented drafting (RASD, "RASD: Retrieval-Augmented Speculative Decoding"):
    a retrieval tree pruned by another drafter's first-token probabilities, then fused with
    that drafter's tree by longest-prefix matching, at most ``max_nodes`` nodes.

    ``retrieval`` is a :class:`Retrieval` box and ``drafter`` any other drafter box (e.g. a
    :class:`DraftModel`). Retrieval branches whose first token is not among the drafter's
    ``top_k`` first tokens (of probability at least ``min_prob``) are pruned; with
    ``open_slots`` the slots the drafter leaves free go to retrieval's most frequent first
    tokens; ``prune=False`` fuses without pruning.

    >>> Rasd(Retrieval(), DraftModel(num_tokens=3)).name
    'Rasd(Retrieval, DraftModel(num_tokens=3))'
    """

    def __init__(self, retrieval: Retrieval, drafter: Drafter, max_nodes: int = 24,
                 top_k: int = 4, min_prob: float = 0.0, open_slots: bool = True,
                 prune: bool = True) -> None:
        if not isinstance(retrieval, Retrieval):
            raise WiringError(f"Rasd takes a Retrieval box first, not {retrieval!r}")
        if not isinstance(drafter, Drafter) or isinstance(drafter, (Merge, Rasd)):
            raise WiringError(f"Rasd fuses retrieval with one drafter box, not {drafter!r}")
        _check_ints("Rasd", {"max_nodes": (1, 4096), "top_k": (1, 64)}, locals())
        _check_number("Rasd", "min_prob", min_prob, 0.0, 1.0)
        _check_flags("Rasd", {"open_slots": open_slots, "prune": prune})
        self.retrieval, self.drafter = retrieval, drafter
        #: The inner drafter boxes (resources and implementations are found through them).
        self.drafters: tuple[Drafter, ...] = (retrieval, drafter)
        super().__init__(retrieval=box_to_json(retrieval), drafter=box_to_json(drafter),
                         max_nodes=max_nodes, top_k=top_k, min_prob=min_prob,
                         open_slots=open_slots, prune=prune)

    def _label(self, spec: Mapping[str, Any]) -> str:
        rest = super()._label({k: v for k, v in spec.items()
                               if k not in ("retrieval", "drafter")})
        inner = f"{self.retrieval.name}, {self.drafter.name}"
        return f"Rasd({inner}{', ' + rest[5:-1] if rest != 'Rasd' else ''})"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Rasd:
        if not isinstance(spec, Mapping) or "retrieval" not in spec or "drafter" not in spec:
            raise PipelineFormatError("bad spec for box Rasd: it needs \"retrieval\" and "
                                      "\"drafter\" boxes")
        try:
            options = {k: v for k, v in spec.items() if k not in ("retrieval", "drafter")}
            return cls(box_from_json(spec["retrieval"]), box_from_json(spec["drafter"]),
                       **options)
        except (TypeError, ValueError) as error:
            raise PipelineFormatError(f"bad spec for box Rasd: {error}") from None


class Sized(Drafter):
    """Another drafter's tree cut, every step, to the size a cost model predicts fastest.

    ``cost`` names a resource holding the target's verification cost model on this machine
    (a ``CostModel`` or a measured cost curve); each node's chance of acceptance is learned
    online (by depth, sibling rank and the drafter's own probability), starting from
    ``prior``; ``frozen`` stops the learning. Works with any drafter box, merges included.

    >>> Sized(PromptLookup()).name
    'Sized(PromptLookup)'
    """

    resources = ("cost",)

    def __init__(self, drafter: Drafter, cost: str = "cost", prior: float = 0.5,
                 frozen: bool = False) -> None:
        if not isinstance(drafter, Drafter) or isinstance(drafter, Sized):
            raise WiringError(f"Sized takes one drafter box (not a Sized one), not {drafter!r}")
        if not isinstance(cost, str) or not cost:
            raise ValueError(f"Sized: cost must name a resource, got {cost!r}")
        _check_number("Sized", "prior", prior, 0.0, 0.999, open_low=True)
        _check_flags("Sized", {"frozen": frozen})
        self.drafter = drafter
        #: The inner drafter box (resources and implementations are found through it).
        self.drafters: tuple[Drafter, ...] = (drafter,)
        super().__init__(drafter=box_to_json(drafter), cost=cost, prior=prior, frozen=frozen)

    def _label(self, spec: Mapping[str, Any]) -> str:
        rest = super()._label({k: v for k, v in spec.items() if k != "drafter"})
        return f"Sized({self.drafter.name}{', ' + rest[6:-1] if rest != 'Sized' else ''})"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Sized:
        if not isinstance(spec, Mapping) or "drafter" not in spec:
            raise PipelineFormatError("bad spec for box Sized: it needs a \"drafter\" box")
        try:
            options = {k: v for k, v in spec.items() if k != "drafter"}
            return cls(box_from_json(spec["drafter"]), **options)
        except (TypeError, ValueError) as error:
            raise PipelineFormatError(f"bad spec for box Sized: {error}") from None


class Merge(Drafter):
    """Several drafters run on the same context; their draft trees are unioned.

    Nested merges flatten: ``Merge(Merge(a, b), c) == Merge(a, b, c)``, so a merge is never
    deeper than one level, however it was built or written in JSON.

    >>> Merge(Merge(NoDraft(), PromptLookup()), NoDraft()).name
    'NoDraft | PromptLookup | NoDraft'
    """

    def __init__(self, *drafters: Drafter) -> None:
        flat: list[Drafter] = []
        for drafter in drafters:
            if not isinstance(drafter, Drafter):
                raise WiringError(f"Merge takes drafters, not {drafter!r}")
            flat.extend(drafter.drafters if isinstance(drafter, Merge) else (drafter,))
        if len(flat) < 2:
            raise ValueError("Merge needs at least two drafters")
        self.drafters: tuple[Drafter, ...] = tuple(flat)
        super().__init__(drafters=[box_to_json(d) for d in flat])

    def _label(self, spec: Mapping[str, Any]) -> str:
        return " | ".join(drafter.name for drafter in self.drafters)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Merge:
        items = spec.get("drafters") if isinstance(spec, Mapping) else None
        if not isinstance(items, list):
            raise PipelineFormatError("bad spec for box Merge: \"drafters\" must be a list of "
                                      "boxes")
        drafters = []
        for index, item in enumerate(items):
            try:
                drafters.append(box_from_json(item))
            except PipelineFormatError as error:
                raise PipelineFormatError(f"Merge drafter {index}: {error}") from None
        try:
            return cls(*drafters)
        except (TypeError, ValueError) as error:
            raise PipelineFormatError(f"bad spec for box Merge: {error}") from None


class Verify(StepBox):
    """Scores every node of the draft tree with the target model in one forward pass."""

    dom, cod = Context @ Draft, Context @ Draft @ Scores
    role = "verify"

    def __init__(self) -> None:
        super().__init__()


class Accept(StepBox, abstract=True):
    """Chooses the accepted path through the draft tree and the bonus token.

    An abstract role: subclasses are the acceptance rules; a lossy one sets ``lossless``
    to false.
    """

    dom, cod = Context @ Draft @ Scores, Context @ Accepted
    role = "accept"


class GreedyAccept(Accept):
    """Lossless greedy acceptance: the longest path agreeing with the target's argmax, plus the
    target's own next token after it (the bonus)."""

    def __init__(self) -> None:
        super().__init__()


class SpeculativeSampling(Accept):
    """Exact speculative sampling: the committed tokens follow the target's sampling
    distribution (temperature, top-k, top-p of the generation config), whatever the drafts.

    Rejection sampling against the target, node by node: a drafted token ``x`` drawn from the
    drafter's ``q`` is accepted with probability ``min(1, p(x)/q(x))``, a rejection leaves the
    residual ``norm(max(0, p - q))`` for the next sibling (SpecInfer's multi-round rule; RSD's
    recursive rule for siblings drawn without replacement), and deterministic drafts
    (prompt lookup, Token Recycling) count as one-hot ``q``. At temperature 0 it is greedy
    acceptance.
    """

    def __init__(self) -> None:
        super().__init__()


class SpecTrAccept(Accept):
    """Exact speculative sampling with SpecTr's k-sequential selection over a node's ``k``
    independent draws (pair it with a drafter that samples several sequences, e.g.
    ``DraftModel(branches=[3], sampling="sequences")``); other drafts as in
    :class:`SpeculativeSampling`."""

    def __init__(self) -> None:
        super().__init__()


class Constrain(StepBox):
    """Keeps decoding inside a grammar: ``Context @ Draft -> Context @ Draft``, between the
    drafter and ``Verify``.

    It follows the committed tokens in the grammar (the resource named by ``grammar``: a
    grammar diagram, a JSON Schema, a regular expression, Lark text), prunes the draft's
    branches that leave the language (they cost verification and could never be accepted)
    and gives ``Verify`` the grammar's mask of allowed tokens for the root and every node,
    so that acceptance (greedy or sampling) chooses among allowed tokens only. The output
    differs from the unconstrained target's by design (``lossless`` is false); with respect
    to constrained decoding it is exact: a constrained speculative step writes the tokens
    of constrained greedy decoding without speculation.

    Where the grammar forces text (a schema's key names and punctuation), the box drafts
    those tokens itself, below the root and each leaf of a greedy draft: they cost one
    verification like any draft and are accepted wherever the model spells them the same.

    Args:
        grammar: the name of the grammar resource.
        engine: the grammar engine (``"llguidance"`` or ``"xgrammar"``).
        draft_forced: at most this many forced tokens drafted per branch (0: none).
    """

    dom, cod = Context @ Draft, Context @ Draft
    role = "constrain"
    lossless = False
    resources = ("grammar",)

    def __init__(self, grammar: str = "grammar", engine: str = "llguidance",
                 draft_forced: int = 16) -> None:
        if not isinstance(draft_forced, int) or draft_forced < 0:
            raise ValueError(f"Constrain: draft_forced must be a whole number >= 0, not "
                             f"{draft_forced!r}")
        super().__init__(grammar=grammar, engine=engine, draft_forced=draft_forced)


class Monitor(StepBox):
    """Monitor-guided decoding: after ``obj.``, only members that static analysis finds on
    ``obj``'s type may follow (``Context @ Draft -> Context @ Draft``, where ``Constrain``
    goes: between the drafter and ``Verify``).

    Where the text so far (the prompt's code, and the extra code of the ``context`` resource
    before it) ends in a member access and a partial name, the analysis lists the members and
    tokens that would spell another name are masked and pruned from the draft; everywhere
    else (and where the type is unknown) every token is allowed. jedi analyses the code
    statically: the model's text is never executed. Like ``Constrain``, it is exact with
    respect to monitored decoding: a monitored speculative step writes the tokens of monitored
    greedy decoding (unless an analysis runs out of time). Two constrain boxes in a row
    (``Constrain`` then ``Monitor``) intersect their masks.

    Args:
        context: the name of a resource with code the analysis reads before the prompt
            (definitions the model does not see: text, a file, a project folder, or
            ``{"code": ..., "project": ...}``); ``None``: the prompt alone.
        kind: the static analysis (``"jedi"``).
        timeout: seconds one analysis may take; past it, that position is not monitored.
    """

    dom, cod = Context @ Draft, Context @ Draft
    role = "constrain"
    lossless = False
    resources = ("context",)

    def __init__(self, context: str | None = None, kind: str = "jedi",
                 timeout: float = 5.0) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not timeout > 0:
            raise ValueError(f"Monitor: timeout must be positive seconds, not {timeout!r}")
        super().__init__(context=context, kind=kind, timeout=timeout)


class Check(StepBox):
    """Checks what the target accepted before it is committed: ``Context @ Accepted ->
    Context @ Accepted``, between the acceptance rule and ``Commit``.

    The generated text is cut at checkpoints (``"line"``: newlines; ``"statement"``:
    newlines outside brackets and strings; ``"sql"``: ``;`` outside quotes; ``"json"``: the end
    of a top-level JSON value; ``"end"``: the whole text when the generation ends) and each
    segment goes to the checker bound as resource ``checker`` (anything with
    ``check(text) -> verdict``, ``verdict.status`` in pass/fail/unknown). Tokens are
    committed only up to the first segment that fails; then the step backs off to that
    segment's start and decodes it again with its failed first tokens excluded there (the
    next-best token at that position), at most ``retries`` times before it gives up and keeps
    the segment (the reason goes into the stats' box counters). With a checker that always
    passes, the output is the pipeline's without ``Check``; otherwise it differs by design
    (``lossless`` is false).

    >>> from diagrammar.diagrams.builders import speculative
    >>> print(speculative(PromptLookup(), check=Check(checker="sympy", checkpoint="line")))
    PromptLookup >> Verify >> GreedyAccept >> Check(checker="sympy") >> Commit

    Bind the checker when executing: ``Execute(model, resources={"sympy": checker})(step)``.

    Args:
        checker: the name of the checker resource.
        checkpoint: where segments end (``"line"``, ``"statement"``, ``"sql"``, ``"json"``,
            ``"end"``).
        retries: how many times a failed segment is decoded again before giving up.
    """

    dom, cod = Context @ Accepted, Context @ Accepted
    role = "check"
    lossless = False
    resources = ("checker",)

    #: The checkpoint kinds (as :data:`diagrammar.decoding.checkpoints.CHECKPOINTS`).
    CHECKPOINTS: ClassVar[tuple[str, ...]] = ("line", "statement", "sql", "json", "end")

    def __init__(self, checker: str = "checker", checkpoint: str = "line",
                 retries: int = 3) -> None:
        if not isinstance(checker, str) or not checker:
            raise ValueError(f"Check: checker must name a resource (a non-empty string), not "
                             f"{checker!r}")
        if checkpoint not in self.CHECKPOINTS:
            raise ValueError(f"Check: checkpoint must be one of "
                             f"{', '.join(self.CHECKPOINTS)}, not {checkpoint!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"Check: retries must be a whole number >= 0, not {retries!r}")
        super().__init__(checker=checker, checkpoint=checkpoint, retries=retries)


class Commit(StepBox):
    """Appends the accepted tokens to the context and keeps only their cache entries."""

    dom, cod = Context @ Accepted, Context
    role = "commit"

    def __init__(self) -> None:
        super().__init__()


@contextmanager
def box_registry() -> Iterator[dict[str, type[StepBox]]]:
    """A scope for box classes: those defined inside it are unregistered when it ends.

    >>> with box_registry():
    ...     class Scoped(Commit):
    ...         pass
    ...     "Scoped" in BOX_CLASSES
    True
    >>> "Scoped" in BOX_CLASSES
    False
    """
    saved = dict(BOX_CLASSES)
    try:
        yield BOX_CLASSES
    finally:
        BOX_CLASSES.clear()
        BOX_CLASSES.update(saved)


def is_lossless(diagram: symmetric.Diagram) -> bool:
    """Whether a step keeps the target's output: it accepts, and every box is lossless.

    >>> from diagrammar.diagrams.builders import speculative
    >>> is_lossless(speculative(PromptLookup())), is_lossless(PromptLookup())
    (True, False)
    """
    boxes = [box for box in diagram.boxes if isinstance(box, StepBox)]
    return any(box.role == "accept" for box in boxes) and all(box.lossless for box in boxes)


def resource_kinds(diagram: symmetric.Diagram) -> dict[str, str]:
    """The resource names a step's boxes (inner drafters included) need bound, with the spec
    key that names each (what kind of thing it must be: ``"model"``, ``"datastore"``,
    ``"cost"``, ...).

    >>> from diagrammar.diagrams.builders import speculative
    >>> resource_kinds(speculative(Rasd(Retrieval(datastore="docs"), DraftModel())))
    {'draft': 'model', 'docs': 'datastore'}
    """
    kinds: dict[str, str] = {}
    pending = [box for box in diagram.boxes if isinstance(box, StepBox)]
    while pending:
        box = pending.pop()
        pending.extend(getattr(box, "drafters", ()))
        for key in type(box).resources:
            if box.spec.get(key) is not None:
                kinds.setdefault(box.spec[key], key)
    return kinds


def required_resources(diagram: symmetric.Diagram) -> set[str]:
    """The resource names a step's boxes (merged drafters included) need bound to execute.

    >>> from diagrammar.diagrams.builders import speculative
    >>> required_resources(speculative(PromptLookup() | DraftModel(model="tiny")))
    {'tiny'}
    """
    return set(resource_kinds(diagram))


def box_to_json(box: StepBox) -> dict[str, Any]:
    """A box as JSON data: ``{"box": its class's key, "spec": hyper-parameters}``."""
    return {"box": type(box).key, "spec": box.spec}


def box_from_json(data: Any) -> StepBox:
    """Rebuilds a box from :func:`box_to_json`'s output, with a clear error on bad input."""
    if not isinstance(data, Mapping) or "box" not in data:
        raise PipelineFormatError(f"a box must be an object with a 'box' key, got {data!r}")
    name = data["box"]
    cls = BOX_CLASSES.get(name)
    if cls is None and name in _ABSTRACT_BOXES:
        role = _ABSTRACT_BOXES[name].role
        concrete = sorted(key for key, c in BOX_CLASSES.items() if c.role == role)
        raise PipelineFormatError(
            f"box {name!r} is abstract (it names the {role} role) and cannot run: use one of "
            f"{', '.join(concrete)}")
    if cls is None:
        known = ", ".join(sorted(BOX_CLASSES))
        raise PipelineFormatError(f"unknown box {name!r}; known boxes: {known}")
    spec = data.get("spec", {})
    if not isinstance(spec, Mapping):
        raise PipelineFormatError(f"the spec of box {name!r} must be an object, got {spec!r}")
    return cls.from_spec(spec)


__all__ = [
    "BOX_CLASSES", "Pipeline", "Swap", "StepBox", "Drafter", "NoDraft", "PromptLookup",
    "TokenRecycling", "DraftModel", "Aded", "Retrieval", "Rasd", "Sized", "Merge",
    "Verify", "Accept", "GreedyAccept", "SpeculativeSampling", "SpecTrAccept", "Constrain",
    "Monitor", "Check", "Commit",
    "box_to_json", "box_from_json", "ROLES",
    "register_box_class", "box_registry", "is_lossless", "required_resources", "resource_kinds",
    "Context", "Draft", "Scores", "Accepted",
]
