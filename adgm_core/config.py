"""Typed configuration of the model and of its training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ACTIVATIONS = ("relu", "softplus", "tanh", "elu", "gelu")
LR_SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the model.

    `skip=True` (the default) is the skip variant, the SDGM: p(a | y, z) and p(x | a, y, z). It is the
    model the authors' released MNIST code trains, and the one that learns from unlabelled data in
    the first epochs here (docs/results.md); `skip=False` is the ADGM with p(a | x, y, z), p(x | y, z).
    """

    x_shape: tuple[int, int] = (28, 28)
    n_classes: int = 10
    a_dim: int = 32
    z_dim: int = 32
    hidden: tuple[int, ...] = (256, 128)
    activation: str = "relu"
    skip: bool = True
    batch_norm: bool = False  # after every hidden layer, as the authors' code; False in cards written before it
    deterministic_a: bool = False  # the authors' ablation: q(a | x) a point mass at μ(x)

    def __post_init__(self) -> None:
        object.__setattr__(self, "x_shape", tuple(int(s) for s in self.x_shape))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if len(self.x_shape) != 2 or min(self.x_shape) < 1:
            raise ValueError(f"x_shape must be (height, width) with positive sides, got {self.x_shape}")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {self.n_classes}")
        if self.a_dim < 1 or self.z_dim < 1:
            raise ValueError(f"a_dim and z_dim must be positive, got {self.a_dim} and {self.z_dim}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must list at least one positive layer width, got {self.hidden}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")

    @property
    def x_dim(self) -> int:
        return self.x_shape[0] * self.x_shape[1]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        return cls(**values)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Defaults follow the reference notebook; `paper()` gives the authors' settings."""

    epochs: int = 10
    batch_size: int = 100  # unlabelled examples per step
    labelled_batch_size: int = 100  # labelled examples per step, cycled through the labelled set
    learning_rate: float = 3e-4
    lr_decay: float = 0.75
    lr_decay_every: int = 0  # epochs between decays; 0 keeps the rate constant (authors: 200)
    lr_schedule: str = "step"  # "step": x lr_decay every lr_decay_every epochs; "cosine": to 0 at the last step
    lr_warmup_steps: int = 0  # linear learning-rate warm-up from 0 over this many steps
    grad_clip: float | None = 5.0  # max global gradient norm (authors: 5); None disables
    grad_clip_value: float | None = None  # then each gradient element clipped to ±this (authors: 1)
    mc_samples: int = 1  # samples of (a, z) per example, folded into the batch
    classifier_samples: int = 1  # S_c: draws of a of its own for the classification term; 1: the bound's samples
    mc_average_softmax: bool = True  # labelled cross-entropy on q(y|x) averaged over the samples (authors)
    weight_prior: bool = False  # N(0, 1) prior on the weights, its log density scaled by 1/N (authors)
    ema_decay: float | None = None  # exponential moving average of the weights, evaluated and saved
    warmup_steps: int = 0  # linear KL warm-up from 0 to 1 over this many steps
    classifier_shift: int = 0  # the classification term sees the labelled images moved by up to ±this many pixels
    alpha: float | None = None  # weight of the classification term; None: 0.1 * N / N_labelled
    seed: int = 0
    checkpoint_every: int = 5  # epochs between resumable checkpoints
    eval_samples: int = 10  # S, samples of a averaged in q(y|x) at evaluation (paper: 100)
    device: str = "auto"
    compile: bool = False  # torch.compile the step (worth it on a GPU)
    bf16: bool = False  # bf16 autocast for the networks; the bounds are still summed in float32

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "labelled_batch_size", "mc_samples", "classifier_samples",
                     "checkpoint_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.classifier_shift < 0:
            raise ValueError(f"classifier_shift must not be negative, got {self.classifier_shift}")
        if self.warmup_steps < 0 or self.lr_decay_every < 0 or self.lr_warmup_steps < 0:
            raise ValueError("warmup_steps, lr_warmup_steps and lr_decay_every must not be negative")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie strictly between 0 and 1, got {self.ema_decay}")
        if self.grad_clip_value is not None and not self.grad_clip_value > 0:
            raise ValueError(f"grad_clip_value must be positive, got {self.grad_clip_value}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def paper(cls, **overrides) -> TrainConfig:
        """The authors' MNIST settings: Adam 3e-4 decayed by 0.75 every 200 epochs, S = 100 at test."""
        settings = dict(lr_decay_every=200, eval_samples=100, epochs=1000)
        return cls(**{**settings, **overrides})
