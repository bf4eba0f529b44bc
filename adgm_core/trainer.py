"""Training loop: data resident on the device, batches drawn by index, one fused step per batch.

Each step takes `batch_size` unlabelled and `labelled_batch_size` labelled images, binarises them
with a fresh Bernoulli draw, repeats them `mc_samples` times and minimises J (see `objective`), with
the learning rate of its step, gradients clipped by norm and then elementwise, and (optionally) an
exponential moving average of the weights, which is then the model evaluated and returned. With
`classifier_shift` k the classification term gets the labelled images again, each translated by up
to ±k pixels and binarised anew; with `classifier_samples` S_c > 1 it averages q(y | a, x) over S_c
draws of a of its own.
Nothing inside an epoch waits for the device; the epoch's figures are read once at its end.
All randomness comes from one generator whose state is saved in the checkpoint, so a resumed run
continues exactly as the uninterrupted one would have.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from adgm_core import __version__
from adgm_core.augment import random_shift
from adgm_core.checkpoint import load_training_state, load_weights, save_training_state
from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.data import ImageSet, SemiSupervisedSplit
from adgm_core.evaluation import as_model_input, error_rate, self_consistency
from adgm_core.model import ADGM
from adgm_core.novelty import calibrate
from adgm_core.objective import Noise, semi_supervised_loss


class TrainingCancelled(Exception):
    """Raised by `Trainer.fit` when `should_stop()` returned True."""


@dataclass
class EpochReport:
    epoch: int
    epochs: int
    elbo: float  # mean bound per example (nats), labelled and unlabelled together
    labelled_accuracy: float  # of q(y|a,x) on the labelled batches of this epoch
    test_accuracy: float | None
    examples_per_second: float  # labelled + unlabelled images per second (before MC repetition)
    eta_seconds: float
    learning_rate: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: ADGM
    reports: list[EpochReport] = field(default_factory=list)
    card: dict = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def configure_backend(device: torch.device) -> None:
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # denormal floats in small gradients slow the CPU down many times
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


class Trainer:
    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, split: SemiSupervisedSplit,
                 test: ImageSet | None = None, init_weights: dict[str, torch.Tensor] | None = None):
        """`init_weights`: a state dict of a model of the same `model_config` to start from (warm start)."""
        if tuple(split.image_shape) != tuple(model_config.x_shape):
            raise ValueError(f"data images are {split.image_shape}, the model expects {model_config.x_shape}")
        if split.n_classes != model_config.n_classes:
            raise ValueError(f"data has {split.n_classes} classes, the model expects {model_config.n_classes}")
        self.model_config, self.config, self.split, self.test = model_config, train_config, split, test
        self.device = resolve_device(train_config.device)
        configure_backend(self.device)

        torch.manual_seed(train_config.seed)
        self.model = ADGM(model_config).to(self.device)
        if init_weights is not None:
            load_weights(self.model, init_weights, "the initial weights")
        # fused: one kernel for every parameter's update (on one CPU thread 2.3 ms a step against 7.8 ms)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=train_config.learning_rate, fused=self.device.type in ("cpu", "cuda")
        )
        self.generator = torch.Generator(self.device).manual_seed(train_config.seed)

        flat = lambda images: torch.as_tensor(images.reshape(len(images), -1), device=self.device)  # noqa: E731
        self.x_labelled = flat(split.labelled_images)  # uint8: binarised per batch
        self.y_labelled = torch.as_tensor(split.labelled_labels, dtype=torch.long, device=self.device)
        self.x_unlabelled = flat(split.unlabelled_images)
        n_l, n_u = len(self.x_labelled), len(self.x_unlabelled)
        # N counts every training image: the unlabelled set holds them all, the labelled ones included
        self.alpha = train_config.alpha if train_config.alpha is not None else 0.1 * n_u / n_l
        self.steps_per_epoch = max(1, n_u // train_config.batch_size)
        self.prior_scale = 1.0 / n_u if train_config.weight_prior else 0.0
        self.softmax_samples = train_config.mc_samples if train_config.mc_average_softmax else 1
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False) if train_config.ema_decay else None
        self.epoch = 0  # epochs completed
        self.step = 0
        self.reports: list[EpochReport] = []

        step = self._step
        self.step_fn = torch.compile(step) if train_config.compile else step

    @property
    def served_model(self) -> ADGM:
        """The model that is evaluated and saved: the moving average of the weights when there is one."""
        return self.ema if self.ema is not None else self.model

    def learning_rate(self, step: int) -> float:
        """The rate at `step` (0-based over the whole run): a linear warm-up, then the schedule."""
        c = self.config
        if c.lr_schedule == "cosine":
            total = max(1, c.epochs * self.steps_per_epoch - c.lr_warmup_steps)
            progress = min(1.0, max(0, step - c.lr_warmup_steps) / total)
            rate = c.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
        else:
            decays = (step // self.steps_per_epoch) // c.lr_decay_every if c.lr_decay_every else 0
            rate = c.learning_rate * c.lr_decay**decays
        if c.lr_warmup_steps:
            rate *= min(1.0, (step + 1) / c.lr_warmup_steps)
        return rate

    @torch.no_grad()
    def _update_ema(self) -> None:
        # the usual bias correction: early steps average over the few weights seen so far
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        for average, current in zip(self.ema.state_dict().values(), self.model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current, 1 - decay)
            else:
                average.copy_(current)

    def _shift(self, images: torch.Tensor) -> torch.Tensor:
        return random_shift(images, self.model_config.x_shape, self.config.classifier_shift, self.generator)

    def _binarize(self, images: torch.Tensor) -> torch.Tensor:
        draw = torch.rand(images.shape, generator=self.generator, device=self.device)
        return (draw * 255 < images).float()

    def _step(self, x_l, y_l, x_u, noise, beta, x_c=None):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            out = semi_supervised_loss(self.model, x_l, y_l, x_u, noise, self.alpha, beta, self.softmax_samples,
                                       self.prior_scale, x_c)
        out.loss.backward()
        return out

    def fit(self, on_epoch: Callable[[EpochReport], None] | None = None,
            should_stop: Callable[[], bool] | None = None, checkpoint_dir: Path | str | None = None) -> TrainResult:
        c = self.config
        if checkpoint_dir is not None:
            self.restore(checkpoint_dir)
        S = c.mc_samples
        classified_copies = 1 if c.classifier_samples > 1 else S  # rows the classification term scores
        self.model.train()
        while self.epoch < c.epochs:
            epoch = self.epoch + 1
            started = time.perf_counter()
            order = torch.randperm(len(self.x_unlabelled), generator=self.generator, device=self.device)
            elbo_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device, dtype=torch.long)
            for i in range(self.steps_per_epoch):
                if should_stop is not None and should_stop():
                    raise TrainingCancelled(f"stopped during epoch {epoch}")
                idx_u = order[i * c.batch_size:(i + 1) * c.batch_size]
                idx_l = torch.randint(len(self.x_labelled), (c.labelled_batch_size,), generator=self.generator,
                                      device=self.device)
                x_l = self._binarize(self.x_labelled[idx_l]).repeat(S, 1)
                y_l = self.y_labelled[idx_l].repeat(S)
                x_u = self._binarize(self.x_unlabelled[idx_u]).repeat(S, 1)
                x_c = self._binarize(self._shift(self.x_labelled[idx_l])).repeat(S, 1) if c.classifier_shift else None
                noise = Noise.draw(self.model, len(x_l), len(x_u), self.generator, self.device,
                                   c.classifier_samples, c.labelled_batch_size)
                beta = min(1.0, (self.step + 1) / c.warmup_steps) if c.warmup_steps else 1.0
                lr = self.learning_rate(self.step)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.optimizer.zero_grad(set_to_none=True)
                out = self.step_fn(x_l, y_l, x_u, noise, beta, x_c)
                if c.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                if c.grad_clip_value is not None:
                    torch.nn.utils.clip_grad_value_(self.model.parameters(), c.grad_clip_value)
                self.optimizer.step()
                if self.ema is not None:
                    self._update_ema()
                self.step += 1
                elbo_sum += out.elbo
                correct += out.labelled_correct
            elbo = elbo_sum.item() / self.steps_per_epoch  # the epoch's one synchronisation
            seconds = time.perf_counter() - started
            self.epoch = epoch
            report = EpochReport(
                epoch=epoch,
                epochs=c.epochs,
                elbo=elbo,
                labelled_accuracy=correct.item() / (self.steps_per_epoch * c.labelled_batch_size * classified_copies),
                test_accuracy=self._test_accuracy(),
                examples_per_second=self.steps_per_epoch * (c.batch_size + c.labelled_batch_size) / seconds,
                eta_seconds=seconds * (c.epochs - epoch),
                learning_rate=lr,
            )
            self.reports.append(report)
            if checkpoint_dir is not None and (epoch % c.checkpoint_every == 0 or epoch == c.epochs):
                self.save(checkpoint_dir)
            if on_epoch is not None:
                on_epoch(report)
        self.model.eval()
        return TrainResult(self.served_model, list(self.reports), self.card())

    def _test_accuracy(self) -> float | None:
        if self.test is None:
            return None
        self.model.eval()
        error = error_rate(self.served_model, self.test.images, self.test.labels, self.config.eval_samples,
                           seed=self.epoch)
        self.model.train()
        return 1.0 - error

    def card(self) -> dict:
        """The JSON document saved beside the weights: config, data, metrics, novelty calibration.

        `self_consistency` is the share of the model's own samples of each label that its q(y|x)
        assigns to that label (mean, and per label in `self_consistency_per_label`).
        """
        model = self.served_model.eval()
        calibration_images = self.x_unlabelled[:: max(1, len(self.x_unlabelled) // 1000)][:1000]
        last = self.reports[-1] if self.reports else None
        metrics = {"epochs": self.epoch, "elbo": last.elbo if last else None,
                   "labelled_accuracy": last.labelled_accuracy if last else None}
        consistency = self_consistency(model, self.config.eval_samples)
        metrics["self_consistency"] = consistency["mean"]
        metrics["self_consistency_per_label"] = consistency["per_label"]
        if self.test is not None:
            metrics["test_error"] = error_rate(model, self.test.images, self.test.labels, self.config.eval_samples)
            metrics["test_eval_samples"] = self.config.eval_samples
        return {
            "library_version": __version__,
            "train": self.config.to_dict(),
            "dataset": {
                "name": self.split.name,
                "fingerprint": self.split.fingerprint(),
                "n_labelled": len(self.x_labelled),
                "n_unlabelled": len(self.x_unlabelled),
                "alpha": self.alpha,
            },
            "metrics": metrics,
            "novelty": calibrate(model, as_model_input(calibration_images, self.device)),
        }

    def save(self, directory: Path | str) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        optimizer_state = self.optimizer.state_dict()
        for index, state in optimizer_state["state"].items():
            for key, value in state.items():
                tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value)
        tensors["generator"] = self.generator.get_state()
        document = {
            "epoch": self.epoch,
            "step": self.step,
            "param_groups": optimizer_state["param_groups"],
            "reports": [r.to_dict() for r in self.reports],
            "model_config": self.model_config.to_dict(),
            "train_config": self.config.to_dict(),
        }
        save_training_state(directory, tensors, document)

    def restore(self, directory: Path | str) -> bool:
        """Continue from the last training state in `directory`; False when there is none."""
        loaded = load_training_state(directory)
        if loaded is None:
            return False
        tensors, document = loaded
        if ModelConfig.from_dict(document["model_config"]) != self.model_config:
            raise ValueError(f"the training state in {directory} belongs to another model configuration")
        load_weights(self.model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, str(directory))
        if self.ema is not None:
            load_weights(self.ema, {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}, str(directory))
        state: dict[int, dict] = {}
        for name, value in tensors.items():
            if name.startswith("optimizer."):
                _, index, key = name.split(".", 2)
                state.setdefault(int(index), {})[key] = value  # load_state_dict moves it to its parameter
        self.optimizer.load_state_dict({"state": state, "param_groups": document["param_groups"]})
        self.generator.set_state(tensors["generator"])
        self.epoch, self.step = document["epoch"], document["step"]
        self.reports = [EpochReport(**r) for r in document["reports"]]
        return True
