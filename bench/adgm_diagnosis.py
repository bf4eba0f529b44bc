"""The ADGM against the SDGM at equal CPU time, with diagnostics of a's use that fit the ADGM
(adgm_core/diagnostics.py): accuracy with sampled a against a = μ(x), the variance of q(a | x), Î(a; x).

    taskset -c 1 .venv/bin/python bench/adgm_diagnosis.py --preset quick --budget 45 --seeds 0 1 2 \
        --threads 1 --out out/adgm_diagnosis.json

Variants: the SDGM (the preset), the ADGM (`skip=False`), and the ADGM with a deterministic q(a | x)
(`deterministic_a`, the authors' ablation); `--set` adds overrides to every variant. Each trains the
preset for about `--budget` CPU seconds (epochs from a pilot, bench/recipe.py) on every label draw;
test accuracy, the judge's fidelity and the diagnostics (on all test images, Î on the first 1,000)
are reported, then a Markdown table of the means.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from adgm_core.data import load_builtin, semi_supervised_split
from adgm_core.diagnostics import auxiliary_use
from adgm_core.evaluation import error_rate
from adgm_core.predictor import Predictor
from adgm_core.presets import PRESETS, configs_for, resolve
from adgm_core.trainer import Trainer
from judge import fidelity, load_judge
from recipe import epochs_for_budget, parse_value

VARIANTS = {"SDGM": {"skip": True}, "ADGM": {"skip": False}, "ADGM, deterministic q(a|x)": {"skip": False, "deterministic_a": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="quick")
    parser.add_argument("--budget", type=float, default=45.0, help="CPU seconds of training per run")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    overrides = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    train_set, test_set = load_builtin(PRESETS[args.preset].dataset, mnist_dir=args.mnist_dir)
    judge = load_judge(load_builtin("mnist", mnist_dir=args.mnist_dir)[0])
    rows = []
    for name, variant in VARIANTS.items():
        runs = []
        for seed in args.seeds:
            params = resolve(args.preset, **overrides, **variant, seed=seed)
            split = semi_supervised_split(train_set, params["labels_per_class"], seed)
            params["epochs"] = epochs_for_budget(params, split, train_set, args.budget)
            model_config, train_config = configs_for(train_set, params, device="cpu")
            started = time.process_time()
            result = Trainer(model_config, train_config, split).fit()
            cpu_seconds = time.process_time() - started
            error = error_rate(result.model, test_set.images, test_set.labels, train_config.eval_samples)
            judged = fidelity(Predictor(result.model, result.card), judge)
            use = auxiliary_use(result.model, test_set.images, test_set.labels, train_config.eval_samples)
            runs.append({"seed": seed, "epochs": params["epochs"], "train_cpu_seconds": round(cpu_seconds, 1),
                         "test_accuracy": round(1 - error, 4), "fidelity": round(judged["mean"], 4),
                         "fidelity_min": judged["min"], **{k: round(v, 4) for k, v in use.items()}})
            print(json.dumps({"variant": name, **runs[-1]}), flush=True)
        mean = lambda key: statistics.mean(r[key] for r in runs)  # noqa: E731
        rows.append({"variant": name, **{key: round(mean(key), 4) for key in (
            "test_accuracy", "fidelity", "accuracy_sampled_a", "accuracy_mean_a", "variance_of_a",
            "mutual_information_nats", "epochs")}, "fidelity_min": min(r["fidelity_min"] for r in runs), "runs": runs})

    print(f"\n{args.preset} {overrides or ''}, {args.budget:g} CPU s per run, label draws {args.seeds}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}\n")
    print("| variant | test accuracy | fidelity (worst label) | accuracy, a = μ(x) | mean variance of q(a|x) | Î(a; x), nats | epochs |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {100 * r['test_accuracy']:.1f} % | {100 * r['fidelity']:.1f} % "
              f"({100 * r['fidelity_min']:.0f} %) | {100 * r['accuracy_mean_a']:.1f} % | {r['variance_of_a']:.3g} | "
              f"{r['mutual_information_nats']:.2f} | {r['epochs']:.1f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"preset": args.preset, "budget": args.budget, "overrides": overrides,
                                        "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
