"""The methods a benchmark compares.

Greedy methods (the reference for speed and tokens is ``hf/greedy``):

* ``hf/greedy``: Hugging Face ``generate(do_sample=False)``.
* ``hf/prompt-lookup``: ``generate(prompt_lookup_num_tokens=10)``.
* ``hf/assisted``: ``generate(assistant_model=...)`` (when an assistant model is given).
* ``ours/NAME`` for every registered pipeline (:data:`diagrammar.diagrams.PIPELINES`) that
  accepts greedily, compiled by :class:`~diagrammar.functors.execute.Execute`
  (``ours/autoregressive`` is our plain decode loop).

Sampling methods, at a temperature above 0 (the reference for speed is ``hf/sample``; their
correctness is the distribution tests of the sampling rules, since two random generators
never draw the same tokens):

* ``hf/sample``: ``generate(do_sample=True, temperature=T, top_k=0, top_p=1.0)``.
* ``ours/sample``: plain sampling, ``NoDraft >> Verify >> SpeculativeSampling >> Commit``.
* ``ours/NAME`` for every registered pipeline whose acceptance samples.

Whether a pipeline is lossless, and which part of the step (drafter, verify, accept, commit,
...) each box's time goes to, come from the box classes' metadata (``role``, ``lossless``).

Example:
    >>> from diagrammar.diagrams import PIPELINES
    >>> step_roles(PIPELINES["prompt-lookup"]())
    {'PromptLookup': 'drafter', 'Verify': 'verify', 'GreedyAccept': 'accept', 'Commit': 'commit'}
    >>> echo = Method("echo", lossless=False, run=lambda ids, n: (ids[:n], 1, None))
    >>> echo.run([5, 6, 7], 2)
    ([5, 6], 1, None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagrammar.bench.config import REFERENCE, LoadedModel

__all__ = ["SAMPLE_REFERENCE", "Method", "build_methods", "role_seconds", "samples",
           "step_roles"]

#: The reference of sampling methods.
SAMPLE_REFERENCE = "hf/sample"


@dataclass
class Method:
    """A way to generate.

    Attributes:
        name: ``family/what``, e.g. ``hf/greedy`` or ``ours/prompt-lookup``.
        lossless: whether it promises the reference's tokens (a divergence at a clear logit
            margin is then a bug).
        run: ``run(prompt_ids, max_new_tokens) -> (new tokens, steps, stats)``. ``steps``
            counts target forward passes that produced tokens (the prefill included for
            Hugging Face, which emits its first token from it), so ``new tokens / steps`` is
            the mean accepted tokens per step (MAT). ``stats`` is our decode statistics as a
            dict with ``role_seconds`` added, or ``None``.
        family: ``"hf"`` or ``"ours"``.
        diagram: our pipeline's step diagram (``None`` for Hugging Face methods), for the
            cost model's prediction (:mod:`~diagrammar.bench.prediction`).
        reference: the method its speedup is measured against (``hf/greedy``, or
            ``hf/sample`` for sampling methods).
        temperature: 0 for greedy methods, else the sampling temperature.
        resources: the resources our pipeline needs (e.g. ``"draft"``: not training-free).
    """

    name: str
    lossless: bool
    run: Callable[[list[int], int], tuple[list[int], int, dict[str, Any] | None]]
    family: str = "ours"
    diagram: Any = None
    reference: str = REFERENCE
    temperature: float = 0.0
    resources: tuple[str, ...] = ()

    @property
    def sampling(self) -> bool:
        """Whether the method samples (its tokens are not compared with the reference's)."""
        return self.temperature > 0

    def describe(self) -> dict[str, Any]:
        """The method as the report lists it."""
        return {"name": self.name, "family": self.family, "lossless": self.lossless,
                "reference": self.reference, "temperature": self.temperature,
                "resources": list(self.resources)}


def samples(diagram: Any) -> bool:
    """Whether a step's acceptance samples (a ``SpeculativeSampling`` or ``SpecTrAccept``).

    >>> from diagrammar.diagrams import PIPELINES
    >>> samples(PIPELINES["specinfer"]()), samples(PIPELINES["prompt-lookup"]())
    (True, False)
    """
    from diagrammar.diagrams import SpecTrAccept, SpeculativeSampling

    return any(isinstance(box, (SpeculativeSampling, SpecTrAccept)) for box in diagram.boxes)


def step_roles(diagram: Any) -> dict[str, str]:
    """The part of the step each box of ``diagram`` plays, by box name.

    Args:
        diagram: a decoding step.

    Returns:
        ``{box name: role}`` with roles from :data:`diagrammar.diagrams.ROLES` (the box
        class's ``role``; ``"other"`` for wiring such as swaps).
    """
    from diagrammar.diagrams.boxes import StepBox

    return {box.name: box.role if isinstance(box, StepBox) else "other"
            for box in diagram.boxes}


def role_seconds(box_seconds: Mapping[str, float], roles: Mapping[str, str]) -> dict[str, float]:
    """Time by box name summed by role.

    Args:
        box_seconds: seconds by box name (the decode statistics' ``box_seconds``).
        roles: box name to role (:func:`step_roles`); a box not in it counts as ``"other"``.

    Returns:
        Seconds by role.

    Example:
        >>> role_seconds({"PromptLookup": 0.5, "Merge": 0.25, "Verify": 2.0},
        ...              {"PromptLookup": "drafter", "Merge": "drafter", "Verify": "verify"})
        {'drafter': 0.75, 'verify': 2.0}
    """
    by_role: dict[str, float] = {}
    for box, seconds in box_seconds.items():
        role = roles.get(box, "other")
        by_role[role] = by_role.get(role, 0.0) + seconds
    return by_role


def _hf_method(name: str, lm: Any, temperature: float = 0.0, **options: Any) -> Method:
    import torch

    if temperature > 0:
        options.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
    else:
        options.update(do_sample=False)
    model = lm.model
    pad = min(lm.eos_token_ids) if lm.eos_token_ids else 0
    calls = [0]

    def count(_module: Any, _args: Any, _output: Any) -> None:
        calls[0] += 1

    def run(ids: list[int], max_new_tokens: int):
        input_ids = torch.tensor([ids], device=lm.device)
        calls[0] = 0
        hook = model.register_forward_hook(count)
        try:
            with torch.inference_mode():
                out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids),
                                     max_new_tokens=max_new_tokens, pad_token_id=pad,
                                     **options)
        finally:
            hook.remove()
        return out[0, len(ids):].tolist(), calls[0], None

    return Method(name, True, run, family="hf", temperature=temperature,
                  reference=SAMPLE_REFERENCE if temperature > 0 else REFERENCE)


def _our_method(name: str, lm: Any, diagram: Any, resources: dict[str, Any] | None = None,
                temperature: float = 0.0) -> Method:
    from diagrammar.decoding.config import GenerationConfig
    from diagrammar.diagrams import is_lossless, required_resources
    from diagrammar.functors.execute import Execute

    decoder = Execute(lm, resources=resources)(diagram)
    roles = step_roles(diagram)
    calls = [0]

    def run(ids: list[int], max_new_tokens: int):
        calls[0] += 1   # a different, reproducible seed for every generation
        config = GenerationConfig(temperature=temperature, seed=calls[0]) if temperature \
            else None
        generation = decoder.generate(ids, max_new_tokens, config=config)
        stats = generation.stats.as_dict()
        stats["role_seconds"] = role_seconds(stats["box_seconds"], roles)
        return generation.tokens, generation.stats.steps, stats

    return Method(f"ours/{name}", is_lossless(diagram), run, diagram=diagram,
                  temperature=temperature,
                  reference=SAMPLE_REFERENCE if temperature > 0 else REFERENCE,
                  resources=tuple(sorted(required_resources(diagram))))


def build_methods(target: LoadedModel, assistant: LoadedModel | None,
                  pipelines: Sequence[str] | None = None,
                  resources: dict[str, Any] | None = None,
                  temperature: float = 0.0) -> list[Method]:
    """The Hugging Face baselines and our pipelines.

    Args:
        target: the model every method decodes with.
        assistant: the assistant model of ``hf/assisted``, also bound as our pipelines'
            ``"draft"`` resource; ``None`` skips that method (and, among all pipelines, those
            that need a draft model).
        pipelines: names in :data:`~diagrammar.diagrams.PIPELINES`; ``None`` = all of them,
            ``autoregressive`` first.
        resources: more resources for our pipelines (e.g. ``"cost"``, a measured cost curve).
        temperature: above 0, also ``hf/sample`` and ``ours/sample``, and pipelines whose
            acceptance samples run at this temperature (with 0 they are left out).

    Returns:
        The methods, the reference (``hf/greedy``) first, sampling methods last.

    Raises:
        ValueError: a name in ``pipelines`` is not registered.
    """
    from diagrammar.diagrams import PIPELINES, required_resources

    resources = {**(resources or {}),
                 **({"draft": assistant.lm} if assistant is not None else {})}
    methods = [_hf_method(REFERENCE, target.lm),
               _hf_method("hf/prompt-lookup", target.lm, prompt_lookup_num_tokens=10)]
    if assistant is not None:
        methods.append(_hf_method("hf/assisted", target.lm, assistant_model=assistant.lm.model))
    names = sorted(PIPELINES, key=lambda n: (n != "autoregressive", n)) if pipelines is None \
        else list(pipelines)
    sampled: list[Method] = []
    for name in names:
        if name not in PIPELINES:
            raise ValueError(f"unknown pipeline {name!r}; registered: {', '.join(PIPELINES)}")
        diagram = PIPELINES[name]()
        if pipelines is None and not required_resources(diagram) <= set(resources):
            continue  # e.g. a draft-model pipeline when no assistant model was given
        if not samples(diagram):
            methods.append(_our_method(name, target.lm, diagram, resources))
        elif temperature > 0:
            sampled.append(_our_method(name, target.lm, diagram, resources, temperature))
    if temperature > 0:
        from diagrammar.diagrams import NoDraft, SpeculativeSampling, speculative

        plain = _our_method("sample", target.lm, speculative(NoDraft(), SpeculativeSampling()),
                            resources, temperature)
        methods += [_hf_method(SAMPLE_REFERENCE, target.lm, temperature), plain, *sampled]
    return methods
