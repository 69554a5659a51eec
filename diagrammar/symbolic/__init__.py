"""Symbolic checkers and solvers (sympy, z3, SQL) that check what a model wrote.

Empty so far: the symbolic-checkers issue adds them. This layer may import the standard
library, z3 and sympy, and nothing else of diagrammar.
"""
