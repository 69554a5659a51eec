"""Tree-attention kernels (reference, Triton, Pallas) behind one dispatch function.

Empty so far: the JAX-backend issue adds them. This layer may import torch, jax and triton,
and nothing else of diagrammar.
"""
