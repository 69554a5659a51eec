"""What every box of a compiled step may read while the step is traced: the model's weights
(traced arguments of the compiled loop, never baked in as constants), its architecture and
attention implementation (static), and the end tokens.

>>> import jax.numpy as jnp
>>> env = StepEnv(params={}, architecture=None, attention="xla", eos=jnp.array([0]))
>>> env.is_end(jnp.array([3, 0, 5])).tolist()
[False, True, False]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp


@dataclass
class StepEnv:
    """The trace-time environment of a compiled step.

    Attributes:
        params: the model's parameter tree (traced).
        architecture: the model's :class:`~diagrammar.models.jax.architecture.Architecture`.
        attention: the attention implementation of the forward pass (``"xla"``, ``"pallas"``).
        eos: ``(E,)`` int32 end tokens (may be empty).
        observers: functions ``(env, boxes, root, acceptance) -> boxes`` the commit calls
            after each pass (drafters that learn from it register here while the step is
            traced; ``boxes`` is ``Carry.boxes``).
    """

    params: Any
    architecture: Any
    attention: str
    eos: jax.Array
    observers: list[Any] = field(default_factory=list)

    def is_end(self, tokens: jax.Array) -> jax.Array:
        """Which of ``tokens`` are end tokens."""
        if self.eos.shape[0] == 0:
            return jnp.zeros(tokens.shape, bool)
        return jnp.any(tokens[..., None] == self.eos, axis=-1)


__all__ = ["StepEnv"]
