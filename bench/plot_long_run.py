"""The long run's test-error curve (bench/long_run.py's JSON lines) against the authors' ADGM log, as a
PNG, and the training time at which it first reached 5 %, 2 % and 1.5 % test error.

    .venv/bin/python bench/plot_long_run.py docs/long_run.jsonl docs/long_run.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Test error (%) of the authors' ADGM on MNIST with 100 labels, from their training log, by epoch.
AUTHORS_LOG = {100: 5.44, 200: 1.59, 500: 1.24, 1000: 1.19}
THRESHOLDS = (5.0, 2.0, 1.5)


def first_reached(epochs: list[dict], threshold: float) -> dict | None:
    return next((row for row in epochs if 100 * row["test_error"] <= threshold), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
    header, epochs = rows[0], [row for row in rows if "epoch" in row]
    final = next((row for row in rows if row.get("final")), None)

    times = {}
    for threshold in THRESHOLDS:
        row = first_reached(epochs, threshold)
        times[f"{threshold:g} %"] = None if row is None else {"epoch": row["epoch"],
                                                               "train_minutes": round(row["train_seconds"] / 60, 1)}
    best = min(epochs, key=lambda row: row["test_error"])
    print(json.dumps({"epochs": len(epochs), "train_minutes": round(epochs[-1]["train_seconds"] / 60, 1),
                      "last_test_error": epochs[-1]["test_error"], "best_test_error": best["test_error"],
                      "best_epoch": best["epoch"], "first_reached": times, "final": final}))

    recipe = ", ".join(f"{key} {value}" for key, value in header["overrides"].items())
    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    ours = f"this library: {header['preset']} ({recipe}), {header['threads']} CPU thread"
    by_epoch.plot([row["epoch"] for row in epochs], [100 * row["test_error"] for row in epochs], label=ours)
    by_epoch.plot(list(AUTHORS_LOG), list(AUTHORS_LOG.values()), "o--", label="authors' ADGM log (GPU)")
    by_epoch.set_xscale("log")
    by_epoch.set_xlabel("epoch")
    by_epoch.set_title("MNIST, 100 labels: test error by epoch")
    by_time.plot([row["train_seconds"] / 3600 for row in epochs], [100 * row["test_error"] for row in epochs],
                 label=ours)
    by_time.axhline(2.0, color="grey", linestyle=":", label="target: 2 % within 2 hours")
    by_time.axvline(2.0, color="grey", linestyle=":")
    by_time.set_xlabel("training time, hours (test evaluation excluded)")
    by_time.set_title("test error by training time on this CPU")
    for ax in (by_epoch, by_time):
        ax.set_ylabel("test error, %")
        ax.set_yscale("log")
        ax.set_yticks([1, 1.5, 2, 3, 5, 10, 20], labels=["1", "1.5", "2", "3", "5", "10", "20"])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)


if __name__ == "__main__":
    main()
