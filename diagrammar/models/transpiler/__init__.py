"""The Guess half of Guess & Sketch: a small translation model from three-address to
two-address assembly (:mod:`.training`), its token vocabulary (:mod:`.vocabulary`) and the
guesses it makes (:mod:`.guess`: beam candidates, per-token alternatives, confidence and
attention alignment to source lines)."""
