"""The lambeq baseline reports the checkpoint our loops would keep (best dev accuracy)."""

from __future__ import annotations

import numpy as np

from diagrammar.qnlp.baseline import train_lambeq_baseline
from diagrammar.qnlp.data import Dataset, generate_mc


def test_lambeq_engine_restores_the_best_dev_checkpoint(tmp_path):
    mc = generate_mc()
    tiny = Dataset("MC", mc.train[:6], mc.dev[:4], mc.test[:2], mc.labels, mc.target)
    kwargs = {"epochs": 4, "engine": "lambeq", "progress": False, "batch_size": 6, "seed": 1}
    best = train_lambeq_baseline(tiny, log_dir=str(tmp_path / "best"), **kwargs)
    final = train_lambeq_baseline(
        tiny, log_dir=str(tmp_path / "final"), select_best=False, **kwargs
    )
    assert (tmp_path / "best" / "best_model.lt").is_file()
    assert 1 <= best.best_epoch <= 4 and final.best_epoch == 4
    # the same training run (up to float32 rounding), only the report differs
    assert np.allclose(best.losses, final.losses, rtol=1e-5)
    assert best.dev_accuracy >= final.dev_accuracy
