"""The novelty score of a bound, from the calibration stored in the model card (torch-free, for the
API; `adgm_core.novelty` computes the bound and the calibration)."""

from __future__ import annotations

import numpy as np


def novelty_score(nll: np.ndarray, calibration: dict) -> np.ndarray:
    """Position of each -U(x) among the training quantiles, in [0, 1]."""
    quantiles = np.asarray(calibration["nll_quantiles"])
    levels = np.linspace(0, 1, len(quantiles))
    return np.interp(nll, quantiles, levels, left=0.0, right=1.0)
