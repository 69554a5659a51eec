from __future__ import annotations

import pytest

from diagrammar.models import HFCausalLM, ModelLoadError
from diagrammar.models.resolve import resolve_model


def test_resolve_a_folder(saved_model_dir):
    import torch

    lm = resolve_model(saved_model_dir, dtype=torch.float64)
    assert isinstance(lm, HFCausalLM) and lm.dtype == torch.float64


def test_resolve_errors(tmp_path):
    with pytest.raises(ValueError, match="valid sizes: tiny, small"):
        resolve_model("default:medium")
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve_model(tmp_path / "nothing")
