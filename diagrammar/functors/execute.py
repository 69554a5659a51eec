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

import time
from collections.abc import Mapping, Sequence
from typing import Any

from discopy.symmetric import Swap

from diagrammar.decoding.loop import Generation, decode
from diagrammar.decoding.state import DecodeState
from diagrammar.diagrams.boxes import Pipeline, StepBox
from diagrammar.diagrams.types import Context
from diagrammar.functors.backends import BACKENDS, Implementation, ImplementationFactory


class ExecuteError(NotImplementedError):
    """A box has no implementation on the chosen backend."""


def _swap(left: Any, right: Any) -> tuple[Any, Any]:
    return right, left


class CompiledDiagram:
    """A diagram whose boxes were replaced by implementations; call it on its input values.

    Attributes:
        box_seconds: seconds spent in each box since the last :meth:`start`, by box name.
    """

    def __init__(self, diagram: Pipeline,
                 layers: Sequence[tuple[str, Implementation, int, int]]) -> None:
        self.diagram = diagram
        self.layers = list(layers)
        self.box_seconds: dict[str, float] = {name: 0.0 for name, *_ in self.layers}

    def start(self, *values: Any) -> None:
        """Resets timers and lets every implementation that has ``start`` prepare."""
        for name in self.box_seconds:
            self.box_seconds[name] = 0.0
        for _, implementation, _, _ in self.layers:
            start = getattr(implementation, "start", None)
            if start is not None:
                start(*values)

    def __call__(self, *values: Any) -> tuple[Any, ...]:
        wires = list(values)
        clock = time.perf_counter
        seconds = self.box_seconds
        for name, implementation, offset, width in self.layers:
            began = clock()
            outputs = implementation(*wires[offset:offset + width])
            seconds[name] += clock() - began
            wires[offset:offset + width] = outputs
        return tuple(wires)


class Decoder(CompiledDiagram):
    """A compiled ``Context -> Context`` step that can decode.

    Call :meth:`generate` with a prompt (text or token ids).
    """

    def __init__(self, diagram: Pipeline, layers: Sequence[tuple[str, Implementation, int, int]],
                 model: Any) -> None:
        super().__init__(diagram, layers)
        self.model = model

    def step(self, state: DecodeState) -> DecodeState:
        """Runs one decoding step."""
        return self(state)[0]

    def generate(self, prompt: str | Sequence[int], max_new_tokens: int = 128) -> Generation:
        """Decodes after ``prompt``; returns tokens, text (when a tokenizer is known) and stats."""
        ids = self.model.encode(prompt) if isinstance(prompt, str) else list(prompt)
        result = decode(self.step, self.model, ids, max_new_tokens, start=self.start,
                        box_seconds=self.box_seconds)
        if getattr(self.model, "tokenizer", None) is not None:
            result.text = self.model.decode(result.tokens)
        return result


class Execute:
    """The functor from step diagrams to runnable steps on a backend.

    Args:
        model: what the backend can load: for ``"torch"``, an :class:`HFCausalLM`, a Hugging
            Face model (optionally as ``(model, tokenizer)``) or a local model folder.
        backend: the name of a registered backend (see :data:`BACKENDS`).
        implementations: box class -> factory ``(box, execute) -> implementation``, taking
            precedence over the backend's table (a custom functor).
    """

    def __init__(self, model: Any, backend: str = "torch",
                 implementations: Mapping[type[StepBox], ImplementationFactory] | None = None
                 ) -> None:
        if backend not in BACKENDS:
            known = ", ".join(sorted(BACKENDS))
            raise ValueError(f"unknown backend {backend!r}; known backends: {known}")
        self.backend = BACKENDS[backend]
        self.model = self.backend.load_model(model)
        self.implementations: dict[type[StepBox], ImplementationFactory] = {
            **self.backend.implementations, **(implementations or {})}

    def implement(self, box: StepBox) -> Implementation:
        """The implementation of one box: override this for a custom functor."""
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
                layers.append((box.name, self.implement(box), len(left), len(box.dom)))
            else:
                raise ExecuteError(f"cannot execute {box!r}: it is not a diagrammar box")
        return layers

    def __call__(self, diagram: Pipeline) -> Decoder | CompiledDiagram:
        if not isinstance(diagram, Pipeline):
            raise TypeError(f"Execute takes a pipeline diagram, not {type(diagram).__name__}")
        layers = self.compile(diagram)
        if diagram.dom == Context and diagram.cod == Context:
            return Decoder(diagram, layers, self.model)
        return CompiledDiagram(diagram, layers)


def generate(model: Any, prompt: str | Sequence[int], pipeline: Pipeline | str = "prompt-lookup",
             max_new_tokens: int = 128, backend: str = "torch") -> Generation:
    """Decodes ``prompt`` with a pipeline (a diagram, a registered name or JSON) in one call.

    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=64, n_embd=16, n_layer=1,
    ...                                    n_head=2, eos_token_id=None, bos_token_id=None))
    >>> generate(model, [1, 2, 3], "autoregressive", max_new_tokens=5).stats.steps
    5
    """
    from diagrammar.diagrams.builders import pipeline as named_pipeline

    diagram = named_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
    decoder = Execute(model, backend=backend)(diagram)
    if not isinstance(decoder, Decoder):
        raise TypeError(f"a decoding pipeline goes Context -> Context, not "
                        f"{diagram.dom} -> {diagram.cod}")
    return decoder.generate(prompt, max_new_tokens)


__all__ = ["Execute", "ExecuteError", "CompiledDiagram", "Decoder", "generate"]
