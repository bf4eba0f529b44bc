"""Bar chart of KL(q(a|x) || p(a|·)) per dimension of a, ADGM beside SDGM, from the JSON lines that
bench/adgm_vs_sdgm.py prints.

    .venv/bin/python bench/adgm_vs_sdgm.py ... | tee out/adgm_vs_sdgm.jsonl
    .venv/bin/python bench/plot_kl_a.py out/adgm_vs_sdgm.jsonl docs/kl_a_per_dim.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.startswith("{")]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for offset, row in zip((-0.2, 0.2), rows):
        kl = sorted(row["kl_a_per_dim"], reverse=True)
        label = (f"{row['model']}: {row['kl_a_total']:.2f} nats in all, test error {100 * row['test_error']:.1f} %, "
                 f"fidelity {100 * row['fidelity']:.0f} %")
        ax.bar([i + offset for i in range(len(kl))], kl, width=0.4, label=label)
    ax.set_xlabel("dimension of a (sorted by KL)")
    ax.set_ylabel("KL(q(a|x) || p(a|·)), nats")
    ax.set_title("Is the auxiliary variable used? digits5k, quick recipe, equal CPU time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)


if __name__ == "__main__":
    main()
