"""Long runs' test-error curves (bench/long_run.py's JSON lines, one file per run) against the authors'
ADGM log, as a PNG, and for each run the training time at which it first reached 5 %, 2 % and 1.5 %.

    .venv/bin/python bench/plot_long_run.py docs/long_run.jsonl docs/long_run_stopped.jsonl --png docs/long_run.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Test error (%) of the authors' ADGM on MNIST with 100 labels, from their training log, by epoch
# (10 samples of a, hidden [500, 500], z = a = 100, 100-sample test; 1.07 % is their best, at epoch 960).
AUTHORS_LOG = {10: 17.3, 80: 7.9, 100: 5.44, 150: 2.74, 200: 1.59, 270: 1.47, 340: 1.23, 500: 1.24, 960: 1.07,
               1000: 1.19}
THRESHOLDS = (5.0, 2.0, 1.5)


def first_reached(epochs: list[dict], threshold: float) -> dict | None:
    return next((row for row in epochs if 100 * row["test_error"] <= threshold), None)


def summary(rows: list[dict]) -> dict:
    epochs = [row for row in rows if "epoch" in row]
    times = {}
    for threshold in THRESHOLDS:
        row = first_reached(epochs, threshold)
        times[f"{threshold:g} %"] = None if row is None else {
            "epoch": row["epoch"], "train_minutes": round(row["train_seconds"] / 60, 1),
            "train_cpu_minutes": round(row.get("train_cpu_seconds", row["train_seconds"]) / 60, 1)}
    best = min(epochs, key=lambda row: row["test_error"])
    return {"overrides": rows[0]["overrides"], "epochs": f"{len(epochs)} of {epochs[-1]['epochs']}",
            "train_minutes": round(epochs[-1]["train_seconds"] / 60, 1), "last_test_error": epochs[-1]["test_error"],
            "best_test_error": best["test_error"], "best_epoch": best["epoch"], "first_reached": times,
            "final": next((row for row in rows if row.get("final")), None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--png", type=Path, required=True)
    args = parser.parse_args()
    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    for path in args.results:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        print(json.dumps({"run": str(path), **summary(rows)}))
        header, epochs = rows[0], [row for row in rows if "epoch" in row]
        params = header["params"]
        stopped = "" if len(epochs) == epochs[-1]["epochs"] else f", stopped at epoch {len(epochs)} of {epochs[-1]['epochs']}"
        label = (f"{header['preset']} draw {params['seed']}: S = {params['mc_samples']}, "
                 f"S_c = {params.get('classifier_samples', 1)}, lr {params['learning_rate']:g} {params['lr_schedule']}, "
                 f"shift {params.get('classifier_shift', 0)}, {params['epochs']} epochs{stopped}")
        errors = [100 * row["test_error"] for row in epochs]
        by_epoch.plot([row["epoch"] for row in epochs], errors, label=label)
        # CPU seconds of the one-thread process: what one idle core would take, whatever else shared it
        by_time.plot([row.get("train_cpu_seconds", row["train_seconds"]) / 3600 for row in epochs], errors, label=label)
    by_epoch.plot(list(AUTHORS_LOG), list(AUTHORS_LOG.values()), "o--", label="authors' ADGM log (GPU)")
    by_epoch.set_xscale("log")
    by_epoch.set_xlabel("epoch")
    by_epoch.set_title("MNIST, 100 labels: test error by epoch")
    by_time.axhline(2.0, color="grey", linestyle=":", label="target: 2 % within 2 hours")
    by_time.axvline(2.0, color="grey", linestyle=":")
    by_time.set_xlabel("training CPU time at one thread, hours (test evaluation excluded)")
    by_time.set_title("test error by training time")
    for ax in (by_epoch, by_time):
        ax.set_ylabel("test error, %")
        ax.set_yscale("log")
        ax.set_yticks([1, 1.5, 2, 3, 5, 10, 20], labels=["1", "1.5", "2", "3", "5", "10", "20"])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)


if __name__ == "__main__":
    main()
