"""A custom functor: your own box, and your own implementation of one of ours.

Shows the two ways to change what a diagram means without touching diagrammar's code:

1. ``Execute(model, implementations={BoxClass: factory})`` — a table of overrides;
2. subclassing ``Execute`` and overriding ``implement`` — full control.

Run:  python examples/custom_functor.py
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from diagrammar import Drafter, PromptLookup, Verify, autoregressive, speculative
from diagrammar.decoding import DraftTree
from diagrammar.decoding.steps import DrafterStep, verify_step
from diagrammar.functors import Execute


class RepeatLast(Drafter):
    """Our own drafter box: guesses that the last token repeats ``count`` times."""

    def __init__(self, count: int = 3) -> None:
        super().__init__(count=count)


def repeat_last(box: RepeatLast, execute: Execute) -> DrafterStep:
    count = box.spec["count"]
    return DrafterStep(lambda state: DraftTree.chain(
        [state.tokens[-1]] * min(count, state.draft_budget)))


class CountingExecute(Execute):
    """A functor that wraps every Verify with a counter of verified tree nodes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.verified_nodes = 0

    def implement(self, box):
        if isinstance(box, Verify):
            def counting_verify(state, tree):
                self.verified_nodes += len(tree) + 1
                return verify_step(state, tree)
            return counting_verify
        return super().implement(box)


def main() -> None:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=256, n_embd=64, n_layer=2, n_head=4,
                        eos_token_id=None, bos_token_id=None)
    model = GPT2LMHeadModel(config).eval()
    prompt = [5, 6, 7, 8, 9] * 4

    greedy = Execute(model)(autoregressive()).generate(prompt, 48)

    # 1. An override table: our RepeatLast box merged with prompt lookup.
    execute = Execute(model, implementations={RepeatLast: repeat_last})
    step = speculative(RepeatLast(count=2) | PromptLookup(num_tokens=6))
    merged = execute(step).generate(prompt, 48)
    print("pipeline:", " >> ".join(box.name for box in step.boxes))
    print("identical to greedy:", merged.tokens == greedy.tokens)
    print(merged.stats.summary())

    # 2. A subclass: count what Verify scores.
    counting = CountingExecute(model)
    result = counting(speculative(PromptLookup())).generate(prompt, 48)
    print("identical to greedy:", result.tokens == greedy.tokens)
    print(f"verified {counting.verified_nodes} tree nodes in {result.stats.steps} steps "
          f"(MAT {result.stats.mean_accepted:.2f})")


if __name__ == "__main__":
    main()
