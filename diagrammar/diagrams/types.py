"""Wire types of a decoding step.

One decoding step is a diagram ``Context -> Context``. Between its boxes run four kinds of
wire:

- :data:`Context`: the committed tokens and the model state over them (KV cache);
- :data:`Draft`: a tree of draft tokens hanging below the last committed token;
- :data:`Scores`: the target model's scores at every node of a draft tree;
- :data:`Accepted`: the accepted path through the tree plus the bonus token.

>>> from diagrammar.diagrams.types import Context, Draft
>>> (Context @ Draft).inside
(cat.Ob('Context'), cat.Ob('Draft'))
"""

from __future__ import annotations

from discopy.symmetric import Ty

Context = Ty("Context")
Draft = Ty("Draft")
Scores = Ty("Scores")
Accepted = Ty("Accepted")

__all__ = ["Ty", "Context", "Draft", "Scores", "Accepted"]
