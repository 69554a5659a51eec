"""The semantics: functors that map diagrams to computation and pictures.

>>> from diagrammar.functors import Execute, Draw
>>> callable(Execute) and callable(Draw)
True
"""

from diagrammar.functors.backends import BACKENDS, Backend, register_backend
from diagrammar.functors.draw import Draw
from diagrammar.functors.execute import CompiledDiagram, Decoder, Execute, ExecuteError, generate

__all__ = ["BACKENDS", "Backend", "register_backend", "Execute", "ExecuteError", "Decoder",
           "CompiledDiagram", "Draw", "generate"]
