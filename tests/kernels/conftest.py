"""The kernel tests run Triton in its interpreter on the CPU, as CI does.

``triton.jit`` reads ``TRITON_INTERPRET`` when it decorates a kernel, so ``tests/conftest.py``
sets the variable before anything imports Triton (some installed packages import it during
collection); ``test_interpreter_is_on`` fails if the kernels were decorated without it.

``DIAGRAMMAR_KERNEL_DEVICE=cuda`` runs the same tests compiled on a GPU instead.
"""

from __future__ import annotations

import os

import pytest

KERNEL_DEVICE = os.environ.get("DIAGRAMMAR_KERNEL_DEVICE", "cpu")


@pytest.fixture(scope="session")
def kernel_device() -> str:
    """Where the kernel tests put their tensors (``cpu``: Triton's interpreter)."""
    return KERNEL_DEVICE
