"""The whole decode as one XLA computation: a composed array step inside ``lax.while_loop``.

:class:`WholeStepLoop` takes a step's array implementations, laid out on the diagram's wires
exactly as the per-step loop lays out its Python implementations (``(name, implementation,
first wire, number of wires)``), and composes them into one function ``Carry -> Carry``:
composition in the diagram is composition of the traced functions. Decoding is that function
in a ``lax.while_loop`` until the budget or an end token, with no Python between steps.

A decode prefills the prompt with the model's own session, builds the :class:`~.carry.Carry`,
runs the compiled loop once and copies back the tokens and the per-step counts. The loop is
compiled ahead of time once per cache capacity (a power of two, see
:func:`~.carry.capacity_for`); the budget and the prompt length are traced, so any prompt and
budget that fit reuse it. Compiles are recorded on the model (``model.compiled`` gets
``("whole-step", rows, capacity)``) and their time is kept apart from decode time; compiled
loops are shared by every decoder of the same step on models of the same architecture.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from diagrammar.decoding.compiled.carry import Carry, capacity_for
from diagrammar.decoding.compiled.env import StepEnv
from diagrammar.decoding.config import GenerationConfig
from diagrammar.decoding.loop import Generation, check_budget, check_token_ids
from diagrammar.decoding.state import DecodeState
from diagrammar.decoding.stats import DecodeStats

#: ``(box name, array implementation, first wire, number of wires)``.
Layer = tuple[str, Any, int, int]
#: Compiled loops, shared by all decoders: (step signature, argument structure and shapes) ->
#: executable. The weights are arguments, so models of one architecture share them.
_EXECUTABLES: dict[Any, Any] = {}


@dataclass
class LoopResult:
    """What one compiled decode returns to the host.

    Attributes:
        tokens: the new tokens.
        accepted_per_step: tokens committed at each step.
        draft_nodes_per_step: draft nodes verified at each step.
        prefill_seconds: the prompt's prefill.
        compile_seconds: compiling the loop (0 when a compiled loop was reused).
        decode_seconds: running the loop and copying its results back.
    """

    tokens: list[int]
    accepted_per_step: list[int]
    draft_nodes_per_step: list[int]
    prefill_seconds: float
    compile_seconds: float
    decode_seconds: float


class WholeStepLoop:
    """A step's array implementations composed and run in ``lax.while_loop``.

    Args:
        model: a :class:`~diagrammar.models.jax.JaxCausalLM`.
        layers: the step's layers with array implementations.
        slots: draft slots of the step's tree (a pass runs at most ``slots + 1`` rows).
        step: what determines the traced step besides the model (e.g. the pipeline's JSON):
            loops of equal ``step``, architecture, dtype, attention and end tokens share
            their compiles.
    """

    def __init__(self, model: Any, layers: Sequence[Layer], slots: int, step: str) -> None:
        self.model = model
        self.signature = (step, model.architecture, str(getattr(model, "dtype", "")),
                          getattr(model, "attention", "xla"), tuple(sorted(model.eos_token_ids)))
        self.layers = list(layers)
        self.rows = slots + 1
        self.stateful = [impl for _, impl, _, _ in self.layers
                         if callable(getattr(impl, "start", None))]
        for slot, implementation in enumerate(self.stateful):
            implementation.slot = slot
        self._executables: dict[int, Any] = {}

    # -- traced --------------------------------------------------------------------------------
    def step(self, env: StepEnv, carry: Carry) -> Carry:
        """One step: every layer's implementation on its wires, in order."""
        wires: list[Any] = [carry]
        for _, implementation, offset, width in self.layers:
            wires[offset:offset + width] = implementation(env, *wires[offset:offset + width])
        return wires[0]

    def _loop(self, params: Any, carry: Carry) -> Carry:
        model = self.model
        eos = jnp.asarray(sorted(model.eos_token_ids), dtype=jnp.int32)

        def body(state: Carry) -> Carry:
            env = StepEnv(params, model.architecture, getattr(model, "attention", "xla"), eos)
            return self.step(env, state)

        return lax.while_loop(lambda state: ~state.done, body, carry)

    def executable(self, params: Any, carry: Carry) -> tuple[Any, float]:
        """The loop compiled for these arguments' shapes (and the seconds compiling took: 0
        when a loop of the same step, model architecture and shapes was compiled before, by
        this decoder or another)."""
        shapes = tuple((leaf.shape, str(leaf.dtype)) for leaf in jax.tree.leaves((params, carry)))
        key = (self.signature, jax.tree.structure((params, carry)), shapes)
        found = _EXECUTABLES.get(key)
        if found is not None:
            return found, 0.0
        began = time.perf_counter()
        found = jax.jit(self._loop, donate_argnums=(1,)).lower(params, carry).compile()
        seconds = time.perf_counter() - began
        _EXECUTABLES[key] = found
        if isinstance(getattr(self.model, "compiled", None), list):
            self.model.compiled.append(("whole-step", self.rows, int(carry.tokens.shape[0])))
            self.model.compile_seconds += seconds
        return found, seconds

    # -- host ----------------------------------------------------------------------------------
    def run(self, prompt: Sequence[int], max_new_tokens: int, state: DecodeState
            ) -> LoopResult:
        """Decodes after ``prompt`` (already checked) up to ``max_new_tokens`` tokens.

        ``state`` is the host-side state the boxes' ``start`` hooks see (vocabulary size,
        prompt); its session is not used.
        """
        model = self.model
        began = time.perf_counter()
        session = model.session(prompt, capacity_for(len(prompt), max_new_tokens, self.rows))
        session.synchronize()
        prefilled = time.perf_counter()
        capacity = session.capacity
        buffer = np.zeros(capacity, dtype=np.int32)
        buffer[:len(prompt)] = prompt
        counts = np.zeros(capacity, dtype=np.int32)
        carry = Carry(
            tokens=jnp.asarray(buffer), length=jnp.int32(len(prompt)),
            prompt_length=jnp.int32(len(prompt)), budget=jnp.int32(max_new_tokens),
            keys=session.keys, values=session.values,
            cache_length=jnp.int32(session.cache_length),
            done=jnp.bool_(max_new_tokens == 0), steps=jnp.int32(0),
            accepted=jnp.asarray(counts), drafted=jnp.asarray(counts),
            boxes=tuple(implementation.start(state) for implementation in self.stateful))
        session.keys = session.values = ()          # donated to the loop
        executable, compile_seconds = self.executable(model.params, carry)
        started = time.perf_counter()
        final = executable(model.params, carry)
        length, steps = int(final.length), int(final.steps)
        tokens = np.asarray(final.tokens)[len(prompt):length].tolist()
        accepted = np.asarray(final.accepted)[:steps].tolist()
        drafted = np.asarray(final.drafted)[:steps].tolist()
        for implementation, box_state in zip(self.stateful, final.boxes, strict=True):
            implementation.finish(box_state)
        finished = time.perf_counter()
        return LoopResult(tokens, accepted, drafted, prefilled - began, compile_seconds,
                          finished - started)


def decode_compiled(loop: WholeStepLoop, model: Any, prompt_ids: Sequence[int],
                    max_new_tokens: int, config: GenerationConfig | None = None) -> Generation:
    """Decodes with a compiled loop: the same checks and result as
    :func:`~diagrammar.decoding.loop.decode`, with ``stats.mode == "compiled"``.

    Raises:
        ValueError: a bad budget or prompt, or a sampling config (a compiled step accepts
            greedily).
    """
    check_budget(max_new_tokens)
    vocab_size = getattr(model, "vocab_size", None)
    prompt = check_token_ids(prompt_ids, vocab_size)
    config = config if config is not None else GenerationConfig()
    if not config.greedy:
        raise ValueError("a compiled step decodes greedily; sample with the per-step loop")
    model.check_length(len(prompt), max_new_tokens)
    state = DecodeState(None, list(prompt), len(prompt), max_new_tokens,
                        frozenset(model.eos_token_ids), config=config, vocab_size=vocab_size)
    result = loop.run(prompt, max_new_tokens, state)
    stats = DecodeStats(
        steps=len(result.accepted_per_step), new_tokens=len(result.tokens),
        prefill_seconds=result.prefill_seconds, decode_seconds=result.decode_seconds,
        accepted_per_step=result.accepted_per_step, config=config,
        draft_nodes_per_step=result.draft_nodes_per_step, mode="compiled")
    return Generation(result.tokens, None, stats)


__all__ = ["Layer", "LoopResult", "WholeStepLoop", "decode_compiled"]
