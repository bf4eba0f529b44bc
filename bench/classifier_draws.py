"""Draws of a at equal CPU time: the classification term's S_c, the bounds' S and the weight α.

    taskset -c 1 .venv/bin/python bench/classifier_draws.py --preset quick --budget 45 --seeds 0 1 2 \
        --threads 1 --out out/classifier_draws.json

Every combination of `--draws` (S_c, `classifier_samples`), `--mc` (S, `mc_samples`) and
`--alpha-factors` (α as a multiple of the preset's α, or of 0.1 · N / N_labelled when the preset
sets none) trains the preset for about `--budget` seconds of CPU time (epochs from a pilot, as in
bench/recipe.py) on each label draw, then reports test accuracy and the judge's fidelity; `--variant`
picks combinations instead of the whole product. Prints
one JSON line per run, then a Markdown table of the means.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
from pathlib import Path

import torch

from adgm_core.data import load_builtin
from adgm_core.presets import PRESETS, resolve
from judge import load_judge
from recipe import run


def base_alpha(params: dict, n_train: int, n_classes: int) -> float:
    """The α the preset trains with: its own, else the core's 0.1 · N / N_labelled."""
    if params["alpha"] is not None:
        return params["alpha"]
    return 0.1 * n_train / (params["labels_per_class"] * n_classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="quick")
    parser.add_argument("--budget", type=float, default=45.0, help="CPU seconds of training per run")
    parser.add_argument("--draws", type=int, nargs="+", default=[1, 5, 10, 20], help="S_c values")
    parser.add_argument("--mc", type=int, nargs="+", default=[1, 2], help="S values")
    parser.add_argument("--alpha-factors", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--variant", action="append", default=[], metavar="S_c,S,FACTOR",
                        help="run only these combinations (repeatable) instead of the full product")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    params = resolve(args.preset)
    train_set, test_set = load_builtin(PRESETS[args.preset].dataset, mnist_dir=args.mnist_dir)
    judge = load_judge(load_builtin("mnist", mnist_dir=args.mnist_dir)[0])
    alpha = base_alpha(params, len(train_set.images), train_set.n_classes)
    rows = []
    combinations = ([(int(d), int(m), float(f)) for d, m, f in (v.split(",") for v in args.variant)]
                    or list(itertools.product(args.draws, args.mc, args.alpha_factors)))
    for draws, mc, factor in combinations:
        variant = {"classifier_samples": draws, "mc_samples": mc, "alpha": alpha * factor}
        runs = []
        for seed in args.seeds:  # the same draws of labels for every variant
            runs.append(run({**params, **variant, "seed": seed}, train_set, test_set, judge, "cpu", args.budget))
            print(json.dumps({"S_c": draws, "S": mc, "alpha": round(alpha * factor, 2),
                              **{k: v for k, v in runs[-1].items() if k != "fidelity_per_label"}}), flush=True)
        mean = lambda key: statistics.mean(r[key] for r in runs)  # noqa: E731
        rows.append({"S_c": draws, "S": mc, "alpha_factor": factor, "alpha": round(alpha * factor, 2),
                     "test_accuracy": round(mean("test_accuracy"), 4), "fidelity": round(mean("fidelity"), 4),
                     "fidelity_min": min(r["fidelity_min"] for r in runs), "epochs": mean("epochs"),
                     "train_cpu_seconds": round(mean("train_cpu_seconds"), 1), "runs": runs})

    print(f"\n{args.preset}, {args.budget:g} CPU s per run, label draws {args.seeds}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}\n")
    print("| S_c | S | α | test accuracy | fidelity | worst label | epochs |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['S_c']} | {row['S']} | {row['alpha']:g} ({row['alpha_factor']:g}×) | "
              f"{100 * row['test_accuracy']:.1f} % | {100 * row['fidelity']:.1f} % | "
              f"{100 * row['fidelity_min']:.0f} % | {row['epochs']:.1f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"preset": args.preset, "budget": args.budget, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
