"""The paper's protocol: MNIST with 100 labels (10 per class drawn by seed), all 60,000 training
images as unlabelled data, test error on the 10,000 test images with q(y|x) averaged over S = 100
samples of a, for several label draws. Writes a JSON result with the error curve and the training
time (evaluation excluded) at which 2 %, 1.5 % and 1 % test error were first reached.

    .venv/bin/python bench/mnist100.py --seeds 0 1 2 --epochs 300 --out out/mnist100.json
    .venv/bin/python bench/mnist100.py --preset paper --time-budget 600 --device cuda --compile

`--data digits5k` runs the same protocol on the offline 5,000-digit set (4,000 training, 1,000 test
images), in seconds: a check that the script works, not a result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from adgm_core.config import ModelConfig, TrainConfig
from adgm_core.cpu import cpu_info
from adgm_core.data import load_builtin, semi_supervised_split
from adgm_core.evaluation import error_rate
from adgm_core.trainer import Trainer, TrainingCancelled

PRESETS = {
    "notebook": dict(hidden=(256, 128), z_dim=32, a_dim=32),
    "paper": dict(hidden=(500, 500), z_dim=100, a_dim=100),
}
THRESHOLDS = (0.02, 0.015, 0.01)


def run(seed: int, args, train, test) -> dict:
    split = semi_supervised_split(train, args.labels_per_class, seed)
    model_config = ModelConfig(**PRESETS[args.preset], skip=not args.no_skip)
    train_config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, labelled_batch_size=args.labelled_batch_size,
        learning_rate=args.learning_rate, lr_decay_every=args.lr_decay_every, mc_samples=args.mc_samples,
        warmup_steps=args.warmup_steps, seed=seed, device=args.device, compile=args.compile, bf16=args.bf16,
    )
    trainer = Trainer(model_config, train_config, split)
    curve, reached = [], {}
    clock = {"train": 0.0, "since": time.perf_counter()}

    def on_epoch(report) -> None:
        clock["train"] += time.perf_counter() - clock["since"]
        if report.epoch % args.eval_every == 0 or report.epoch == args.epochs:
            error = error_rate(trainer.model.eval(), test.images, test.labels, args.eval_samples, seed=report.epoch)
            trainer.model.train()
            curve.append({"epoch": report.epoch, "train_seconds": round(clock["train"], 2),
                          "test_error": error, "elbo": round(report.elbo, 3)})
            for threshold in THRESHOLDS:
                if error <= threshold and str(threshold) not in reached:
                    reached[str(threshold)] = {"epoch": report.epoch, "train_seconds": round(clock["train"], 2)}
            print(json.dumps({"seed": seed, **curve[-1]}), flush=True)
        clock["since"] = time.perf_counter()

    def out_of_time() -> bool:
        return args.time_budget is not None and clock["train"] + time.perf_counter() - clock["since"] > args.time_budget

    try:
        trainer.fit(on_epoch=on_epoch, should_stop=out_of_time)
    except TrainingCancelled:
        pass
    final = error_rate(trainer.model.eval(), test.images, test.labels, args.eval_samples, seed=12345)
    return {"seed": seed, "epochs": trainer.epoch, "train_seconds": round(clock["train"], 2),
            "seconds_per_epoch": round(clock["train"] / max(1, trainer.epoch), 3),
            "final_test_error": final, "reached": reached, "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", choices=list(PRESETS), default="paper")
    parser.add_argument("--no-skip", action="store_true", help="the ADGM without skip connections (default: SDGM)")
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--time-budget", type=float, default=None, help="seconds of training per seed")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--labelled-batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--lr-decay-every", type=int, default=200)
    parser.add_argument("--mc-samples", type=int, default=1)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--eval-samples", type=int, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--data", choices=["mnist", "digits5k"], default="mnist")
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=Path("out/mnist100.json"))
    args = parser.parse_args()

    train, test = load_builtin(args.data, mnist_dir=args.mnist_dir)
    runs = [run(seed, args, train, test) for seed in args.seeds]
    errors = [r["final_test_error"] for r in runs]
    summary = {
        "command_args": vars(args) | {"out": str(args.out)},
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else cpu_info().name,
        "torch": torch.__version__,
        "mean_test_error": statistics.mean(errors),
        "std_test_error": statistics.stdev(errors) if len(errors) > 1 else 0.0,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))


if __name__ == "__main__":
    main()
