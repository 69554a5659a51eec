"""Optimisers: SPSA for circuit models (gradient-free), Adam for array parameters.

>>> import numpy as np
>>> spsa = SPSA(a=0.2, c=0.1, seed=0)
>>> theta = np.array([1.0, -1.0])
>>> for _ in range(200):
...     theta = spsa.step(lambda t: float(np.sum(t ** 2)), theta)
>>> bool(np.sum(theta ** 2) < 0.05)
True

Torch tensor models use ``torch.optim.Adam``; :class:`Adam` here updates dictionaries of
NumPy or JAX arrays (the JAX tensor model).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["SPSA", "Adam"]


class SPSA:
    """Simultaneous perturbation stochastic approximation (Spall 1998).

    Each step draws a random ±1 direction ``delta``, evaluates the loss at
    ``theta ± c_k delta`` and moves by ``a_k (L+ - L-) / (2 c_k) * delta`` with the standard
    decaying gains ``a_k = a / (k + 1 + A) ** alpha`` and ``c_k = c / (k + 1) ** gamma``.
    Two loss evaluations per step, whatever the number of parameters.

    Args:
        a: step gain.
        c: perturbation gain.
        A: stability constant of the step gain.
        alpha: decay exponent of the step gain.
        gamma: decay exponent of the perturbation gain.
        seed: seed of the random directions.

    Raises:
        ValueError: ``a`` or ``c`` is not positive.
    """

    def __init__(
        self,
        a: float = 0.05,
        c: float = 0.06,
        A: float = 10.0,
        alpha: float = 0.602,
        gamma: float = 0.101,
        seed: int = 0,
    ) -> None:
        if a <= 0 or c <= 0:
            raise ValueError("SPSA gains a and c must be positive")
        self.a, self.c, self.A, self.alpha, self.gamma = a, c, A, alpha, gamma
        self.k = 0
        self.rng = np.random.default_rng(seed)
        self.last_loss: float | None = None

    def step(self, loss: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray:
        """One update of ``theta``.

        Args:
            loss: the function to minimise; called twice.
            theta: the current parameters.

        Returns:
            The new parameters; :attr:`last_loss` holds the mean of the two evaluations.
        """
        ak = self.a / (self.k + 1 + self.A) ** self.alpha
        ck = self.c / (self.k + 1) ** self.gamma
        delta = self.rng.choice([-1.0, 1.0], size=np.shape(theta))
        plus = float(loss(theta + ck * delta))
        minus = float(loss(theta - ck * delta))
        self.last_loss = 0.5 * (plus + minus)
        self.k += 1
        return theta - ak * (plus - minus) / (2 * ck) * delta


class Adam:
    """Adam (Kingma and Ba 2015) on a dictionary of NumPy or JAX arrays.

    Matches ``torch.optim.Adam`` (and, for the skipping rule, ``torch.optim.AdamW``): a
    parameter with no gradient in a step (its key missing from ``grads``, or ``None``) is
    left exactly as it is: no weight decay, no moment update, and its own step count (used
    for the bias correction) does not advance.  A zero gradient is still a gradient.

    Args:
        lr: learning rate.
        betas: decay rates of the first and second moment estimates.
        eps: added to the denominator.
        weight_decay: L2 penalty added to the gradient, as ``torch.optim.Adam`` does.

    >>> import numpy as np
    >>> opt = Adam(lr=0.1, weight_decay=0.1)
    >>> params = {"w": np.array([3.0]), "unused": np.array([1.0])}
    >>> for _ in range(300):
    ...     params = opt.step(params, {"w": 2 * params["w"]})
    >>> bool(abs(params["w"][0]) < 0.05), params["unused"], opt.steps
    (True, array([1.]), {'w': 300})
    """

    def __init__(self, lr: float = 0.01, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay = weight_decay
        self.t = 0  # calls of step()
        self.steps: dict[str, int] = {}  # updates of each key (torch's per-parameter "step")
        self.m: dict[str, Any] = {}
        self.v: dict[str, Any] = {}

    def step(self, params: Mapping[str, Any],
             grads: Mapping[str, Any | None]) -> dict[str, Any]:
        """One update.

        Args:
            params: the parameters, by key.
            grads: the gradient of the loss by key.  A key that is missing or maps to
                ``None`` has no gradient in this step, as a Torch parameter whose ``grad``
                is ``None``: it is returned unchanged and its optimiser state is kept.

        Returns:
            The updated parameters (the arrays given are not modified in place).
        """
        self.t += 1
        b1, b2 = self.betas
        out = {}
        for key, value in params.items():
            g = grads.get(key)
            if g is None:
                out[key] = value
                continue
            t = self.steps[key] = self.steps.get(key, 0) + 1
            if self.weight_decay:
                g = g + self.weight_decay * value  # L2 penalty, as torch.optim.Adam does
            m = b1 * self.m.get(key, 0.0 * g) + (1 - b1) * g
            v = b2 * self.v.get(key, 0.0 * g) + (1 - b2) * g * g
            self.m[key], self.v[key] = m, v
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            out[key] = value - self.lr * m_hat / ((v_hat ** 0.5) + self.eps)
        return out
