"""Ablation at a fixed CPU time budget: each switch of a preset turned the other way, one at a time.

    .venv/bin/python bench/ablation.py --preset quick --budget 60 --seeds 0 1 2 --threads 1

For every variant and label draw the epochs are set so that training takes about `--budget` seconds
of CPU time (timed on a short pilot run, bench/recipe.py; run it with `--threads 1` so that CPU time
is the time of one idle core), then test accuracy and the judge's fidelity are measured. Prints one JSON line per run and a Markdown table of means; `--out` keeps everything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import torch

from adgm_core.data import load_builtin
from adgm_core.presets import PRESETS, resolve
from judge import load_judge
from recipe import run


def variants(params: dict) -> dict[str, dict]:
    """Name → overrides: the recipe itself, then each technique switched the other way."""
    flip = lambda key: {key: not params[key]}  # noqa: E731
    out = {"recipe": {}}
    out["batch_norm " + ("off" if params["batch_norm"] else "on")] = flip("batch_norm")
    out["mc_samples 1" if params["mc_samples"] > 1 else "mc_samples 3"] = {"mc_samples": 1 if params["mc_samples"] > 1 else 3}
    if params["mc_samples"] > 1:
        out["mc_average_softmax " + ("off" if params["mc_average_softmax"] else "on")] = flip("mc_average_softmax")
    out["grad_clip_value " + ("off" if params["grad_clip_value"] else "1")] = {"grad_clip_value": None if params["grad_clip_value"] else 1.0}
    out["weight_prior " + ("off" if params["weight_prior"] else "on")] = flip("weight_prior")
    cosine = params["lr_schedule"] == "cosine"
    out["constant rate, no warm-up" if cosine else "warm-up + cosine"] = (
        {"lr_schedule": "step", "lr_decay_every": 0, "lr_warmup_steps": 0} if cosine
        else {"lr_schedule": "cosine", "lr_warmup_steps": 100})
    out["ema off" if params["ema_decay"] else "ema 0.999"] = {"ema_decay": None if params["ema_decay"] else 0.999}
    out["batch x2, rate x2"] = {"batch_size": 2 * params["batch_size"], "labelled_batch_size": 2 * params["labelled_batch_size"],
                                "learning_rate": 2 * params["learning_rate"]}
    shift = params["classifier_shift"]
    out["classifier_shift 0" if shift else "classifier_shift 2"] = {"classifier_shift": 0 if shift else 2}
    out["ADGM" if params["skip"] else "SDGM"] = {"skip": not params["skip"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="quick")
    parser.add_argument("--budget", type=float, default=60.0, help="training CPU seconds per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    params = resolve(args.preset)
    train_set, test_set = load_builtin(PRESETS[args.preset].dataset, mnist_dir=args.mnist_dir)
    judge = load_judge(load_builtin("mnist", mnist_dir=args.mnist_dir)[0])
    rows = []
    for name, overrides in variants(params).items():
        if args.only and name not in args.only:
            continue
        runs = []
        for seed in args.seeds:
            runs.append(run({**params, **overrides, "seed": seed}, train_set, test_set, judge, "cpu", args.budget))
            print(json.dumps({"variant": name, "load_average": os.getloadavg()[0],
                              **{k: v for k, v in runs[-1].items() if k != "fidelity_per_label"}}), flush=True)
        mean = lambda key: statistics.mean(r[key] for r in runs)  # noqa: E731
        rows.append({"variant": name, "overrides": overrides, "epochs": [r["epochs"] for r in runs],
                     "test_error": 1 - mean("test_accuracy"), "fidelity": mean("fidelity"),
                     "fidelity_min": min(r["fidelity_min"] for r in runs), "train_seconds": mean("train_seconds"), "train_cpu_seconds": mean("train_cpu_seconds"),
                     "runs": runs})
    print("| variant | epochs in budget | test error (mean) | fidelity (mean) | worst label | train CPU s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {'/'.join(map(str, r['epochs']))} | {100 * r['test_error']:.1f} % | "
              f"{100 * r['fidelity']:.1f} % | {100 * r['fidelity_min']:.0f} % | {r['train_cpu_seconds']:.0f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"preset": args.preset, "budget": args.budget, "seeds": args.seeds,
                                        "threads": torch.get_num_threads(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
