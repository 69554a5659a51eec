"""The kernel tests run Triton in its interpreter on the CPU, as CI does.

``triton.jit`` reads ``TRITON_INTERPRET`` when it decorates a kernel, so the variable is set
here, before any test module imports :mod:`diagrammar.kernels.triton_tree` (nothing else in
the suite imports Triton; ``test_interpreter_is_on`` fails if something did it first).

``DIAGRAMMAR_KERNEL_DEVICE=cuda`` runs the same tests compiled on a GPU instead.
"""

from __future__ import annotations

import os

import pytest

KERNEL_DEVICE = os.environ.get("DIAGRAMMAR_KERNEL_DEVICE", "cpu")
if KERNEL_DEVICE == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture(scope="session")
def kernel_device() -> str:
    """Where the kernel tests put their tensors (``cpu``: Triton's interpreter)."""
    return KERNEL_DEVICE
