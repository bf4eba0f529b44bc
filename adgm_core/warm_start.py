"""The warm-start rule: how a retrain from an earlier model differs from a cold training.

A warm start (`POST /train` with `init_model`, the page's "Retrain" when the chosen model fits the
data set) begins from every weight of the earlier model, the classifier's head included, and runs
1/`EPOCHS_SHARE` of the epochs its cold training would run (the preset's, as resolved for the data),
with the learning rate and its schedule started afresh (a new optimizer, step 0). Measured on the
label-efficient loop (bench/active_learning.py, docs/results.md): after each round the warm model
is as good as a cold one on the same labels, in a fifth of its time. Explicit `epochs` in a request
override the rule. The API resolves a warm job's epochs here; the page sends none and shows the
job's.
"""

from __future__ import annotations

EPOCHS_SHARE = 5


def warm_epochs(cold_epochs: int) -> int:
    """Epochs of a warm start whose cold training would run `cold_epochs`."""
    return max(1, cold_epochs // EPOCHS_SHARE)
