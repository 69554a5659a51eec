"""The ``Execute`` functor: a step diagram becomes a runnable decoding step on a backend.

Execute maps every box to an *implementation*: a callable that takes the values on the box's
input wires and returns a tuple of the values on its output wires. Composition in the diagram
becomes composition of those callables (``>>`` feeds outputs to inputs, ``@`` runs side by
side on separate wires), so ``Execute(model)(f >> g)`` behaves as ``Execute(model)(f)``
followed by ``Execute(model)(g)``.

Which implementation a box gets is looked up by its class (the most specific registered class
wins) in, first, the ``implementations`` given to Execute, then the backend's table. That is
the seam for custom functors: pass your own table, or subclass Execute and override
:meth:`Execute.implement`.

>>> import torch
>>> from transformers import GPT2Config, GPT2LMHeadModel
>>> from diagrammar.diagrams import speculative, autoregressive, PromptLookup
>>> torch.manual_seed(0) and None
>>> model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=128, n_embd=32, n_layer=2,
...                                    n_head=2, eos_token_id=None, bos_token_id=None))
>>> execute = Execute(model)
>>> fast = execute(speculative(PromptLookup()))
>>> plain = execute(autoregressive())
>>> prompt = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2]
>>> fast.generate(prompt, max_new_tokens=20).tokens == plain.generate(prompt, 20).tokens
True
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from discopy.symmetric import Swap

from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.loop import Generation, decode
from diagrammar.decoding.state import DecodeState
from diagrammar.diagrams.boxes import Pipeline, StepBox
from diagrammar.diagrams.types import Context
from diagrammar.functors.backends import BACKENDS, Implementation, ImplementationFactory
from diagrammar.functors.implementations import IMPLEMENTATIONS


class ExecuteError(NotImplementedError):
    """A diagram cannot be executed: a box has no implementation on the chosen backend, a
    resource it names is not bound, or a step cannot decode."""


def _swap(left: Any, right: Any) -> tuple[Any, Any]:
    return right, left


class CompiledDiagram:
    """A diagram whose boxes were replaced by implementations; call it on its input values.

    Attributes:
        box_seconds: seconds spent in each box since the last :meth:`start`, by box name.
            When the model runs on an accelerator, each box's time ends with a device
            synchronisation, so asynchronous kernels are charged to the box that launched them.
    """

    def __init__(self, diagram: Pipeline,
                 layers: Sequence[tuple[str, Implementation, int, int]]) -> None:
        self.diagram = diagram
        self.layers = list(layers)
        self.box_seconds: dict[str, float] = {name: 0.0 for name, *_ in self.layers}
        self._synchronize: Any = None

    def start(self, *values: Any) -> None:
        """Resets timers and lets every implementation that has ``start`` prepare."""
        for name in self.box_seconds:
            self.box_seconds[name] = 0.0
        session = getattr(values[0], "session", None) if values else None
        on_cpu = getattr(getattr(session, "device", None), "type", None) == "cpu"
        self._synchronize = None if on_cpu else getattr(session, "synchronize", None)
        for _, implementation, _, _ in self.layers:
            start = getattr(implementation, "start", None)
            if start is not None:
                start(*values)

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        return tuple(self.run_layers(self.layers, list(values)))

    def run_layers(self, layers: Sequence[tuple[str, Implementation, int, int]],
                   wires: list[Any]) -> list[Any]:
        """Runs ``layers`` (some of :attr:`layers`, in order) on ``wires``, timing each box."""
        clock = time.perf_counter
        seconds = self.box_seconds
        synchronize = self._synchronize
        for name, implementation, offset, width in layers:
            began = clock()
            outputs = implementation(*wires[offset:offset + width])
            if synchronize is not None:
                synchronize()
            seconds[name] += clock() - began
            wires[offset:offset + width] = outputs
        return wires

    def box_counters(self) -> dict[str, dict[str, float]]:
        """What the boxes counted since the last :meth:`start`, by box name: each
        implementation with a ``counters()`` method (e.g. a ``Constrain`` box's pruned and
        forced nodes) reports its own."""
        found = {}
        for name, implementation, _, _ in self.layers:
            counters = getattr(implementation, "counters", None)
            if callable(counters):
                found[name] = dict(counters())
        return found

    def generate(self, *args: Any, **kwargs: Any) -> Generation:
        """Only a ``Context -> Context`` step decodes; this one does not."""
        raise ExecuteError(
            f"this pipeline goes {self.diagram.dom} -> {self.diagram.cod}, so it cannot "
            "decode: a decoding step goes Context -> Context (e.g. complete a drafter with "
            "speculative(drafter))")


class Decoder(CompiledDiagram):
    """A compiled ``Context -> Context`` step that can decode.

    Call :meth:`generate` with a prompt (text or token ids).
    """

    def __init__(self, diagram: Pipeline, layers: Sequence[tuple[str, Implementation, int, int]],
                 model: Any, execute: Execute | None = None) -> None:
        super().__init__(diagram, layers)
        self.model = model
        self.execute = execute
        self.batch_stats: Any = None
        self._whole_step: tuple[Any, str | None] | None = None

    @property
    def step_mode(self) -> str:
        """``"auto"``, ``"compiled"`` or ``"per-step"`` (see :class:`Execute`)."""
        return self.execute.step_mode if self.execute is not None else "per-step"

    def whole_step(self) -> tuple[Any, str | None]:
        """The step compiled as one loop (built once), or ``(None, why it cannot be)``."""
        if self._whole_step is None:
            backend = self.execute.backend if self.execute is not None else None
            if backend is None or backend.whole_step is None:
                name = backend.name if backend is not None else "no"
                self._whole_step = (None, f"the {name} backend does not compile whole steps")
            else:
                self._whole_step = backend.whole_step(self, self.execute.custom)
        return self._whole_step

    def _choose_loop(self, config: GenerationConfig | None) -> tuple[Any, str | None]:
        """The compiled loop to decode with, or ``(None, why not)``; the reason is ``None``
        on a backend without compiled loops."""
        mode = self.step_mode
        compiles = self.execute is not None and self.execute.backend.whole_step is not None
        if not compiles and mode != "compiled":
            return None, None
        if mode == "per-step":
            return None, "step_mode='per-step' was asked"
        loop, reason = self.whole_step()
        if loop is not None and config is not None and not config.greedy:
            loop, reason = None, "sampling runs per step (a compiled step accepts greedily)"
        if loop is None and mode == "compiled":
            raise ExecuteError(f"step_mode='compiled', but this step cannot compile: {reason}")
        return loop, reason

    def step(self, state: DecodeState) -> DecodeState:
        """Runs one decoding step."""
        return self(state)[0]

    def learned_state(self) -> list[tuple[str, Any]]:
        """The drafters whose learned state can be saved (Token Recycling's matrix, ADED's
        table, a draft model's calibration), labelled by their place in the step."""
        from diagrammar.decoding.drafters.base import drafter_parts
        from diagrammar.decoding.steps import DrafterStep

        found = []
        for index, (_, implementation, _, _) in enumerate(self.layers):
            if not isinstance(implementation, DrafterStep):
                continue
            for part, drafter in enumerate(drafter_parts(implementation.drafter)):
                if callable(getattr(drafter, "save", None)) and callable(
                        getattr(drafter, "load", None)):
                    found.append((f"{index}.{part}-{type(drafter).__name__}", drafter))
        return found

    def save_state(self, directory: str | os.PathLike[str]) -> Path:
        """Saves what the step's drafters learned (one ``.npz`` per drafter and a manifest)
        into ``directory``, so that a later run can start from it (:meth:`load_state`).

        >>> import tempfile
        >>> from transformers import GPT2Config, GPT2LMHeadModel
        >>> from diagrammar.diagrams import PIPELINES
        >>> model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=16,
        ...                                    n_layer=1, n_head=2))
        >>> decoder = Execute(model)(PIPELINES["token-recycling"]())
        >>> decoder.generate([1, 2, 3, 1, 2], 8).stats.steps > 0
        True
        >>> folder = tempfile.mkdtemp()
        >>> decoder.save_state(folder).name
        'state.json'
        >>> fresh = Execute(model)(PIPELINES["token-recycling"]())
        >>> fresh.load_state(folder)
        >>> learned, loaded = decoder.learned_state()[0][1], fresh.learned_state()[0][1]
        >>> [loaded.candidates(t) == learned.candidates(t) for t in (1, 2, 3)]
        [True, True, True]
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        labels = []
        for label, drafter in self.learned_state():
            drafter.save(folder / f"{label}.npz")
            labels.append(label)
        manifest = folder / "state.json"
        from diagrammar.diagrams.serialize import to_dict

        manifest.write_text(json.dumps({"pipeline": to_dict(self.diagram), "drafters": labels},
                                       indent=1))
        return manifest

    def load_state(self, directory: str | os.PathLike[str]) -> None:
        """Loads what :meth:`save_state` saved into this step's drafters.

        Raises:
            ExecuteError: the folder holds no saved state, or the state of another step
                (its drafters differ).
        """
        folder = Path(directory)
        manifest = folder / "state.json"
        if not manifest.is_file():
            raise ExecuteError(f"{folder} holds no saved drafter state (no state.json)")
        saved = json.loads(manifest.read_text()).get("drafters", [])
        mine = self.learned_state()
        if saved != [label for label, _ in mine]:
            raise ExecuteError(f"{folder} holds the state of drafters {saved}, but this step's "
                               f"are {[label for label, _ in mine]}")
        for label, drafter in mine:
            drafter.load(folder / f"{label}.npz")

    def generate(self, prompt: str | Sequence[int] | Sequence[str | Sequence[int]],
                 max_new_tokens: int | Sequence[int] = 128,
                 config: GenerationConfig | None = None, *,
                 max_batch: int = 8, policy: Any = "auto") -> Any:
        """Decodes after ``prompt``; returns tokens, text (when a tokenizer is known) and stats.

        Given a list of prompts (texts or token-id lists), decodes them batched (see
        :meth:`stream`) and returns one :class:`Generation` per prompt, in order.

        Args:
            prompt: text (encoded with the model's tokenizer) or token ids; or a list of them.
            max_new_tokens: the generation budget (for a list: of every prompt, or one per
                prompt).
            config: how tokens are chosen (greedy by default).
            max_batch: for a list, the most rows decoded at once (bounds memory).
            policy: for a list, the batch-aware tree policy (see :meth:`stream`).
        """
        if _is_batch(prompt):
            results: list[Generation | None] = [None] * len(prompt)
            for index, result in self.stream(prompt, max_new_tokens, config,
                                             max_batch=max_batch, policy=policy):
                results[index] = result
            return results
        ids = self.model.encode(prompt) if isinstance(prompt, str) else list(prompt)
        loop, reason = self._choose_loop(config)
        compiles = getattr(self.model, "compiles", 0)
        compile_seconds = getattr(self.model, "compile_seconds", 0.0)
        if loop is not None:
            from diagrammar.decoding.compiled.loop import decode_compiled

            result = decode_compiled(loop, self.model, ids, max_new_tokens, config)
        else:
            result = decode(self.step, self.model, ids, max_new_tokens, config=config,
                            start=self.start, box_seconds=self.box_seconds)
            result.stats.box_counters = self.box_counters()
            result.stats.mode_reason = reason
        result.stats.compiles = getattr(self.model, "compiles", 0) - compiles
        result.stats.compile_seconds = getattr(self.model, "compile_seconds", 0.0) \
            - compile_seconds
        if getattr(self.model, "tokenizer", None) is not None:
            result.text = self.model.decode(result.tokens)
        return result

    def stream(self, prompts: Sequence[str | Sequence[int]],
               max_new_tokens: int | Sequence[int] = 128,
               config: GenerationConfig | None = None, *, max_batch: int = 8,
               policy: Any = "auto") -> Iterator[tuple[int, Generation]]:
        """Decodes many prompts batched, yielding ``(prompt index, Generation)`` as each
        finishes (continuous batching: a finished row's slot goes to the next prompt).

        Every row is verified in one forward pass per step with the others (on models that
        batch; others verify row by row), and its tokens are those of decoding it alone.
        Each slot runs its own copy of the step (drafters keep per-sequence data); the first
        slot uses this decoder's own drafters, the others start fresh. The run's
        :class:`~diagrammar.decoding.batch.BatchStats` end up in :attr:`batch_stats`.

        Args:
            prompts: texts or token-id lists.
            max_new_tokens: the budget of every prompt, or one budget per prompt.
            config: how tokens are chosen (greedy by default).
            max_batch: the most rows decoded at once.
            policy: ``"auto"`` (a :class:`~diagrammar.decoding.batch_policy.BatchCostPolicy`
                when the step drafts; it cuts trees when the batch makes big passes
                expensive), ``None`` (trees as drafted), or a policy object.
        """
        from diagrammar.decoding.batch import decode_batch
        from diagrammar.decoding.batch_policy import BatchCostPolicy

        ids = [self.model.encode(p) if isinstance(p, str) else list(p) for p in prompts]
        if isinstance(policy, str):
            if policy != "auto":
                raise ValueError(f"policy must be 'auto', None or a policy object, not "
                                 f"{policy!r}")
            drafts = any(isinstance(box, StepBox) and box.role == "drafter"
                         and type(box).__name__ != "NoDraft" for box in self.diagram.boxes)
            policy = BatchCostPolicy() if drafts else None
        steps = [self]

        def make_step() -> _RowStep:
            decoder = steps.pop() if steps else self._copy()
            return _RowStep(decoder)

        run = decode_batch(make_step, self.model, ids, max_new_tokens, config=config,
                           max_batch=max_batch, policy=policy)
        self.batch_stats = run.stats
        text = getattr(self.model, "tokenizer", None) is not None
        for index, result in run:
            if text:
                result.text = self.model.decode(result.tokens)
            yield index, result

    def _copy(self) -> Decoder:
        if self.execute is None:
            raise ExecuteError("this decoder was not built by Execute, so it cannot make "
                               "copies of its step for more rows: use max_batch=1")
        return self.execute(self.diagram)


def _is_batch(prompt: Any) -> bool:
    """Whether ``prompt`` is a list of prompts (texts or id lists), not one prompt."""
    if isinstance(prompt, str) or not isinstance(prompt, Sequence):
        return False
    return len(prompt) > 0 and all(isinstance(p, str) or (
        isinstance(p, Sequence) and not isinstance(p, str)) for p in prompt)


class _RowStep:
    """A decoder's step split around its ``Verify`` box, for batched decoding (see
    :class:`~diagrammar.decoding.batch.RowStep`)."""

    def __init__(self, decoder: Decoder) -> None:
        from diagrammar.decoding.steps import verify_step

        self.decoder = decoder
        self.box_seconds = decoder.box_seconds
        verifies = [index for index, (_, box, _) in enumerate(decoder.diagram.inside)
                    if isinstance(box, StepBox) and box.role == "verify"]
        self.at = None
        if len(verifies) == 1 and decoder.layers[verifies[0]][1] is verify_step:
            self.at = verifies[0]

    def start(self, state: DecodeState) -> None:
        self.decoder.start(state)

    def draft(self, state: DecodeState) -> tuple[Any, Any] | None:
        from diagrammar.decoding.steps import prepare_verification

        if self.at is None:
            return None
        wires = self.decoder.run_layers(self.decoder.layers[:self.at], [state])
        _, _, offset, _ = self.decoder.layers[self.at]
        tree = prepare_verification(wires[offset], wires[offset + 1])
        return wires, tree

    def skip_draft(self, state: DecodeState) -> tuple[Any, Any] | None:
        """An empty draft without running the boxes before ``Verify``; only when those boxes
        are exactly the ``Context -> Context @ Draft`` part of the step (else ``None``)."""
        from diagrammar.decoding.tree import DraftTree

        if self.at is None or self.decoder.layers[self.at][2] != 0 or any(
                offset != 0 or width != 1
                for _, _, offset, width in self.decoder.layers[:self.at]):
            return None
        return [state, DraftTree()], DraftTree()

    def finish(self, wires: list[Any], tree: Any, scores: Any) -> DecodeState:
        from diagrammar.decoding.steps import record_verification

        _, _, offset, _ = self.decoder.layers[self.at]
        state = wires[offset]
        if scores is not None:
            scores = record_verification(state, tree, scores)
        wires[offset:offset + 2] = (state, tree, scores)
        return self.decoder.run_layers(self.decoder.layers[self.at + 1:], wires)[0]

    def step(self, state: DecodeState) -> DecodeState:
        return self.decoder.step(state)


class Execute:
    """The functor from step diagrams to runnable steps on a backend.

    Args:
        model: what the backend can load: for ``"torch"``, an :class:`HFCausalLM`, a Hugging
            Face model (optionally as ``(model, tokenizer)``), a local model folder,
            ``default:SIZE`` or a Hub id.
        backend: the name of a registered backend (see :data:`BACKENDS`).
        implementations: box class -> factory ``(box, execute) -> implementation``, taking
            precedence over the backend's and the shared table (a custom functor).
        resources: name -> object (a draft model, a grammar, a datastore, a solver) for the
            boxes whose spec names a resource; checked when a diagram is compiled.
        step_mode: on a backend that compiles whole steps (``jax``): ``"auto"`` (default)
            runs a greedy decode as one compiled loop when every box of the step has an
            array implementation, else per step; ``"compiled"`` requires the compiled loop
            (an :class:`ExecuteError` says why it cannot); ``"per-step"`` never compiles
            the whole step. ``stats.mode`` says which ran and ``stats.mode_reason`` why not
            compiled.
    """

    #: The values of ``step_mode``.
    STEP_MODES = ("auto", "compiled", "per-step")

    def __init__(self, model: Any, backend: str = "torch",
                 implementations: Mapping[type[StepBox], ImplementationFactory] | None = None,
                 resources: Mapping[str, Any] | None = None, step_mode: str = "auto") -> None:
        if backend not in BACKENDS:
            known = ", ".join(sorted(BACKENDS))
            raise ValueError(f"unknown backend {backend!r}; known backends: {known}")
        if step_mode not in self.STEP_MODES:
            raise ValueError(f"step_mode must be one of {', '.join(self.STEP_MODES)}, not "
                             f"{step_mode!r}")
        self.step_mode = step_mode
        self.custom: frozenset[type] = frozenset(implementations or {})
        self.backend = BACKENDS[backend]
        self.model = self.backend.load_model(model)
        self.implementations: dict[type[StepBox], ImplementationFactory] = {
            **IMPLEMENTATIONS, **self.backend.implementations, **(implementations or {})}
        self.resources: dict[str, Any] = dict(resources or {})

    def resource(self, box: StepBox, key: str) -> Any:
        """The resource that ``box`` names under its spec key ``key``.

        Raises:
            ExecuteError: naming the box and the resource, when no resource of that name was
                bound with ``Execute(..., resources={...})``.
        """
        name = box.spec.get(key)
        if name not in self.resources:
            bound = ", ".join(sorted(self.resources)) or "none"
            raise ExecuteError(
                f"box {box.name!r} needs the resource {name!r} (its {key!r}), but none of "
                f"that name is bound (bound: {bound}): pass Execute(..., resources="
                f"{{{name!r}: ...}})")
        return self.resources[name]

    def implement(self, box: StepBox) -> Implementation:
        """The implementation of one box: override this for a custom functor."""
        for key in type(box).resources:
            if box.spec.get(key) is not None:
                self.resource(box, key)
        for cls in type(box).__mro__:
            factory = self.implementations.get(cls)
            if factory is not None:
                return factory(box, self)
        raise ExecuteError(
            f"box {box.name!r} ({type(box).__name__}) has no implementation on the "
            f"{self.backend.name!r} backend: pass Execute(..., implementations="
            f"{{{type(box).__name__}: factory}}) or register one in the backend")

    def compile(self, diagram: Pipeline) -> list[tuple[str, Implementation, int, int]]:
        """The diagram's layers as (box name, implementation, first wire, number of wires)."""
        layers = []
        for left, box, _right in diagram.inside:
            if isinstance(box, Swap):
                layers.append(("Swap", _swap, len(left), 2))
            elif isinstance(box, StepBox):
                if type(box).abstract:
                    raise ExecuteError(f"box {box.name!r} is abstract (the {box.role} role): "
                                       "use one of its subclasses")
                layers.append((box.name, self.implement(box), len(left), len(box.dom)))
            else:
                raise ExecuteError(f"cannot execute {box!r}: it is not a diagrammar box")
        return layers

    def __call__(self, diagram: Pipeline) -> Decoder | CompiledDiagram:
        if not isinstance(diagram, Pipeline):
            raise TypeError(f"Execute takes a pipeline diagram, not {type(diagram).__name__}")
        layers = self.compile(diagram)
        if diagram.dom == Context and diagram.cod == Context:
            if not any(isinstance(box, StepBox) and box.role == "commit"
                       for box in diagram.boxes):
                raise ExecuteError(
                    "this Context -> Context pipeline has no box that commits, so it would "
                    "never make progress: end the step with Commit() (e.g. "
                    "speculative(drafter))")
            return Decoder(diagram, layers, self.model, self)
        return CompiledDiagram(diagram, layers)


def generate(model: Any, prompt: str | Sequence[int], pipeline: Pipeline | str = "prompt-lookup",
             max_new_tokens: int = 128, backend: str = "torch",
             config: GenerationConfig | None = None,
             resources: Mapping[str, Any] | None = None) -> Generation:
    """Decodes ``prompt`` with a pipeline (a diagram, a registered name or JSON) in one call.

    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=16, n_layer=1,
    ...                                    n_head=2, eos_token_id=None, bos_token_id=None))
    >>> generate(model, [1, 2, 3], "autoregressive", max_new_tokens=5).stats.steps
    5
    """
    from diagrammar.diagrams.builders import read_pipeline

    diagram = read_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    decoder = Execute(model, backend=backend, resources=resources)(diagram)
    return decoder.generate(prompt, max_new_tokens, config=config)


__all__ = ["Execute", "ExecuteError", "CompiledDiagram", "Decoder", "generate"]
