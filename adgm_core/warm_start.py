"""The warm-start rule: what a retrain from an earlier model runs.

A retrain (`POST /train` with `init_model`, the page's "Retrain" when the chosen model fits the
data set) takes the earlier model's architecture. Where the cold training is cheap, at most
`CHEAP_STEPS` optimizer steps (every `quick` training: adgm_core.presets holds it to about 1,000
steps on any data set), it *is* a cold training: fresh weights, the full epochs, the learning rate
and its schedule from the start. Measured on the label-efficient loop (bench/active_learning.py,
docs/results.md): a warm start from the last model's weights for 1/5 of the epochs ended 10 points
of test error behind a cold training on the same labels (42.5 % against 32.6 % at 20 MNIST labels),
so a warm start saves time only by giving a worse model. Where the cold training is longer (the
MNIST presets' minutes to hours), the retrain starts from every weight of the earlier model, the
classifier's head included, and runs 1/`EPOCHS_SHARE` of the epochs, with the learning rate and
its schedule started afresh (a new optimizer, step 0); that case is not measured. Explicit
`epochs` in a request start from the weights for those epochs. The API resolves a retrain here;
the page sends no epochs and shows the job's.
"""

from __future__ import annotations

from dataclasses import dataclass

CHEAP_STEPS = 2000  # `quick` is about 1,000 steps; `mnist-cpu`, 8,400
EPOCHS_SHARE = 5


@dataclass(frozen=True)
class Retrain:
    epochs: int
    from_weights: bool  # start from the earlier model's weights; False: fresh ones (a cold training)


def retrain(cold_epochs: int, steps_per_epoch: int, epochs: int | None = None) -> Retrain:
    """How a retrain runs whose cold training would run `cold_epochs` of `steps_per_epoch` steps;
    `epochs` given in the request start from the weights for that many."""
    if epochs is not None:
        return Retrain(epochs, True)
    if cold_epochs * steps_per_epoch <= CHEAP_STEPS:
        return Retrain(cold_epochs, False)
    return Retrain(max(1, cold_epochs // EPOCHS_SHARE), True)
