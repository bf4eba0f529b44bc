"""Named training recipes, and the one mapping from a training request to the core's configs.

A request is a flat dict of *training parameters*: `labels_per_class` plus any field of
`ModelConfig` (except the data's `x_shape` and `n_classes`) or `TrainConfig` (except the
machine's `device`, `checkpoint_every` and `compile`). A preset fills every parameter, adapted
to the training images when they are known (`DataProfile`: training length in steps, the shift
relative to the image's side); explicit values override it. The CLI and the service's `POST
/train` resolve requests here; the job records the result, which the worker trains.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import ImageSet

_MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("x_shape", "n_classes"))
_MACHINE_FIELDS = ("device", "checkpoint_every", "compile")
_TRAIN_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in _MACHINE_FIELDS)
PARAMETERS = ("labels_per_class", *_MODEL_FIELDS, *_TRAIN_FIELDS)


@dataclass(frozen=True)
class Preset:
    """A named recipe: the parameters it sets and what a user can expect of it."""

    name: str
    description: str
    expected: str  # time and accuracy measured for this preset (docs/results.md)
    params: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits5k"  # the data set the recipe was tuned and measured on
    tuned_images: tuple[int, int] = (4000, 5000)  # the training-set sizes it was tuned on (28×28 images)

    def resolve(self, data: DataProfile | None = None, **overrides: Any) -> dict[str, Any]:
        """Every training parameter: the core's defaults, then this preset's (adapted to `data`
        when given, see `adapted_to`), then `overrides` (None means "not given")."""
        unknown = sorted(set(overrides) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"unknown training parameter(s): {', '.join(unknown)}")
        given = {key: value for key, value in overrides.items() if value is not None}
        params = {**_core_defaults(), **self.params}
        if data is not None:
            params.update(self.adapted_to(data, given.get("batch_size", params["batch_size"])))
        params.update(given)
        return params

    def adapted_to(self, data: DataProfile, batch_size: int) -> dict[str, Any]:
        """The parameters this recipe sets, for `data` instead of the data it was tuned on.

        - Training length is counted in optimizer steps: the preset's epochs on its tuned
          training sets (`tuned_images`) span a range of steps; a training set that would get
          fewer gets more epochs, one that would get more gets fewer, so that a small upload is
          trained as long as the tuned set and a large one takes no longer (the preset's time).
          Inside the range the preset's epochs stand unchanged.
        - `classifier_shift` keeps its share of the image: 2 pixels of 28 are 1 of 14 or of 8.
        """
        preset = {**_core_defaults(), **self.params}
        steps_per_epoch = max(1, data.n_images // batch_size)  # as the trainer counts them
        fewest, most = (preset["epochs"] * max(1, n // preset["batch_size"]) for n in self.tuned_images)
        epochs = preset["epochs"]
        if epochs * steps_per_epoch < fewest:
            epochs = math.ceil(fewest / steps_per_epoch)
        elif epochs * steps_per_epoch > most:
            epochs = max(1, round(most / steps_per_epoch))
        adapted: dict[str, Any] = {"epochs": epochs}
        if preset["classifier_shift"]:
            side = min(data.image_shape)
            adapted["classifier_shift"] = max(1, round(preset["classifier_shift"] * side / TUNED_SIDE))
        return adapted


@dataclass(frozen=True)
class DataProfile:
    """What a preset adapts to: the training images' size and number (labelled or not)."""

    image_shape: tuple[int, int]
    n_images: int

    @classmethod
    def of(cls, train: ImageSet) -> DataProfile:
        return cls(tuple(int(side) for side in train.image_shape), len(train.images))


def _core_defaults() -> dict[str, Any]:
    model, train = ModelConfig(), TrainConfig()
    defaults: dict[str, Any] = {"labels_per_class": 10}
    defaults.update({name: getattr(model, name) for name in _MODEL_FIELDS})
    defaults.update({name: getattr(train, name) for name in _TRAIN_FIELDS})
    defaults["hidden"] = list(defaults["hidden"])
    return defaults


TUNED_SIDE = 28  # every preset was tuned on 28×28 images
_AUTHORS = dict(batch_norm=True, grad_clip=5.0, grad_clip_value=1.0, weight_prior=True, mc_average_softmax=True)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="quick",
            description="digits5k with 10 labels per class, under a minute of CPU: the service's default",
            expected="91 % test accuracy (88.6-93.5 % over 3 label draws, 1 or 2 threads), samples judged the"
                     " asked digit 96.5 % of the time (worst label 85 %); 53-58 s of training on one CPU core, 42-48 s on two",
            params=dict(epochs=20, learning_rate=3e-3, alpha=20.0, batch_norm=True, mc_samples=1, classifier_shift=2),
        ),
        Preset(
            name="mnist-cpu",
            description="MNIST with 10 labels per class, under 10 CPU minutes",
            expected="95.6 % test accuracy (95.3-96.1 % over 3 label draws, 1 or 2 threads), samples judged the"
                     " asked digit 98.9 % of the time (worst label 92-96 %); 10 minutes of training on one CPU core, 7.8 on two",
            params=dict(epochs=14, learning_rate=2e-3, batch_norm=True, mc_samples=1, classifier_shift=2),
            dataset="mnist",
            tuned_images=(60000, 60000),
        ),
        Preset(
            name="mnist-long",
            description="MNIST with 10 labels per class, two hours of one CPU core: 180 epochs, 10 draws of a"
                        " in the classification term, the rate x0.75 every 20 epochs",
            expected="97.5 % test accuracy on label draw 1 (best 97.6 %), samples judged the asked digit 97.9 % of"
                     " the time (worst label 93 %); 180 epochs in 99 CPU minutes at one thread",
            params=dict(epochs=180, learning_rate=2e-3, lr_decay=0.75, lr_decay_every=20, batch_norm=True,
                        mc_samples=1, classifier_samples=10, classifier_shift=2),
            dataset="mnist",
            tuned_images=(60000, 60000),
        ),
        Preset(
            name="paper",
            description="the authors' MNIST protocol (hidden [500, 500], z = a = 100, 1000 epochs): for a GPU",
            expected="not measured here (no GPU was available); the paper reports 0.96 % test error for the ADGM"
                     " and 1.32 % for the SDGM",
            params=dict(hidden=[500, 500], z_dim=100, a_dim=100, epochs=1000, learning_rate=3e-4, lr_decay=0.75,
                        lr_decay_every=200, mc_samples=5, eval_samples=100, **_AUTHORS),
            dataset="mnist",
            tuned_images=(60000, 60000),
        ),
    )
}
DEFAULT_PRESET = "quick"


def resolve(preset: str = DEFAULT_PRESET, data: DataProfile | None = None, **overrides: Any) -> dict[str, Any]:
    """The full parameter dict of `preset`, adapted to `data` when given, with `overrides` applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset].resolve(data, **overrides)


def configs_for(train_set: ImageSet, params: dict[str, Any], *, device: str = "auto",
                checkpoint_every: int = 5, compile: bool = False) -> tuple[ModelConfig, TrainConfig]:
    """The core's configs for resolved `params` and the data they train on."""
    model_config = ModelConfig(
        x_shape=tuple(train_set.image_shape), n_classes=train_set.n_classes,
        **{name: params[name] for name in _MODEL_FIELDS if name in params},
    )
    train_config = TrainConfig(
        device=device, checkpoint_every=checkpoint_every, compile=compile,
        **{name: params[name] for name in _TRAIN_FIELDS if name in params},
    )
    return model_config, train_config
