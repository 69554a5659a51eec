"""Statistics of one decode.

>>> stats = DecodeStats(steps=2, new_tokens=5, prefill_seconds=0.5, decode_seconds=0.5,
...                     box_seconds={"Verify": 0.4}, accepted_per_step=[3, 2])
>>> stats.mean_accepted, stats.tokens_per_second
(2.5, 5.0)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from diagrammar.decoding.config import GenerationConfig


@dataclass
class DecodeStats:
    """Steps, tokens and time of one decode.

    Attributes:
        steps: decoding steps (target forward passes after the prefill).
        new_tokens: tokens generated.
        prefill_seconds: time to encode the prompt into the cache.
        decode_seconds: time of the steps.
        box_seconds: time spent in each box of the step, by box name.
        accepted_per_step: tokens committed at each step, the bonus token included.
        config: the generation config the decode ran with.
        draft_nodes_per_step: draft nodes verified at each step (the tree after pruning; 0
            for a step without a draft); empty when the step's verification does not record
            them.
        stop_reason: why a box ended the generation early (e.g. a grammar that allows no
            further token); ``None`` when it ended by an end token or the budget.
        box_counters: what boxes counted, by box name (a ``Constrain`` box: draft nodes
            pruned, forced tokens drafted, mask time).
        mode: ``"per-step"`` (Python runs each step's boxes) or ``"compiled"`` (the whole
            decode ran as one compiled loop on the device; its time is not split by box).
        mode_reason: why a step that could have been compiled ran per step (a box without
            an array implementation, sampling, a request); ``None`` otherwise.
        compiles: compiles the decode caused (JAX backend; 0 elsewhere).
        compile_seconds: their time, not counted in ``decode_seconds`` for a compiled loop
            (a per-step decode compiles inside its steps, so there it is part of both).
    """

    steps: int
    new_tokens: int
    prefill_seconds: float
    decode_seconds: float
    box_seconds: dict[str, float] = field(default_factory=dict)
    accepted_per_step: list[int] = field(default_factory=list)
    config: GenerationConfig = field(default_factory=GenerationConfig)
    draft_nodes_per_step: list[int] = field(default_factory=list)
    stop_reason: str | None = None
    box_counters: dict[str, dict[str, float]] = field(default_factory=dict)
    mode: str = "per-step"
    mode_reason: str | None = None
    compiles: int = 0
    compile_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        """Wall time of the whole decode, prefill included."""
        return self.prefill_seconds + self.decode_seconds

    @property
    def mean_accepted(self) -> float:
        """Mean accepted tokens per step (MAT), the bonus token counted."""
        return self.new_tokens / self.steps if self.steps else 0.0

    @property
    def mean_draft_nodes(self) -> float | None:
        """Mean draft nodes verified per step; ``None`` when not recorded.

        >>> DecodeStats(2, 5, 0.1, 0.4, draft_nodes_per_step=[4, 2]).mean_draft_nodes
        3.0
        """
        nodes = self.draft_nodes_per_step
        return sum(nodes) / len(nodes) if nodes else None

    @property
    def tokens_per_second(self) -> float:
        """New tokens per second of wall time, prefill included."""
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The stats as JSON data, derived figures included."""
        return {
            "steps": self.steps,
            "new_tokens": self.new_tokens,
            "mean_accepted": self.mean_accepted,
            "tokens_per_second": self.tokens_per_second,
            "seconds": self.seconds,
            "prefill_seconds": self.prefill_seconds,
            "decode_seconds": self.decode_seconds,
            "box_seconds": dict(self.box_seconds),
            "accepted_histogram": dict(sorted(Counter(self.accepted_per_step).items())),
            "mean_draft_nodes": self.mean_draft_nodes,
            "config": self.config.as_dict(),
            "stop_reason": self.stop_reason,
            "box_counters": {name: dict(counts) for name, counts in self.box_counters.items()},
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "compiles": self.compiles,
            "compile_seconds": self.compile_seconds,
        }

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"steps {self.steps}, new tokens {self.new_tokens}, "
            f"MAT {self.mean_accepted:.2f}, {self.tokens_per_second:.1f} tokens/s "
            f"({self.seconds * 1000:.0f} ms, prefill {self.prefill_seconds * 1000:.0f} ms)"
        ]
        if self.mode != "per-step" or self.compiles:
            lines.append(f"  {self.mode} loop, {self.compiles} compiles "
                         f"({self.compile_seconds * 1000:.0f} ms)")
        total = sum(self.box_seconds.values()) or 1.0
        for name, seconds in sorted(self.box_seconds.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:<40} {seconds * 1000:8.1f} ms  {100 * seconds / total:5.1f}%")
        return "\n".join(lines)


__all__ = ["DecodeStats"]
