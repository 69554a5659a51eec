"""Constrained decoding: grammar engines behind one contract, and the Constrain step."""
