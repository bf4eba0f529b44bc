"""ADGM against SDGM at equal training time, with the auxiliary variable's KL per dimension.

    .venv/bin/python bench/adgm_vs_sdgm.py --preset quick --budget 60 --seeds 0 --threads 1

Both models are trained with the preset's recipe for the same time budget (epochs from a pilot
run). For each, KL(q(a|x) || p(a|·)) is computed in closed form per dimension of a, on test images
with a ~ q(a|x), their true label y and z at the mean of q(z|a,y,x), and averaged over images: a
dimension whose KL is near 0 carries nothing (the auxiliary variable has collapsed onto its prior
there). Also printed: how much q(y|a,x) depends on a (the mean total-variation change of q(y|a,x)
when a is replaced by another image's sample).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

from adgm_core.data import load_builtin, semi_supervised_split
from adgm_core.evaluation import as_model_input, error_rate
from adgm_core.layers import reparameterize
from adgm_core.model import ADGM
from adgm_core.predictor import Predictor
from adgm_core.presets import PRESETS, configs_for, resolve
from adgm_core.trainer import Trainer
from judge import fidelity, load_judge
from recipe import epochs_for_budget


@torch.no_grad()
def auxiliary_diagnostics(model: ADGM, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict:
    model.eval()
    g = torch.Generator().manual_seed(seed)
    x = as_model_input(images)
    y = torch.as_tensor(labels, dtype=torch.long)
    mu_q, log_var_q = model.infer_a(x)
    a = reparameterize(mu_q, log_var_q, torch.randn(mu_q.shape, generator=g))
    z = model.infer_z(x, a, y)[0]
    mu_p, log_var_p = model.generate_a(x, y, z)
    kl = 0.5 * (log_var_p - log_var_q + (log_var_q.exp() + (mu_q - mu_p) ** 2) / log_var_p.exp() - 1)
    per_dim = kl.mean(0)
    q_y = torch.softmax(model.classify(x, a), -1)
    q_y_other_a = torch.softmax(model.classify(x, a[torch.randperm(len(a), generator=g)]), -1)
    return {"kl_a_per_dim": [round(v, 4) for v in per_dim.tolist()], "kl_a_total": round(per_dim.sum().item(), 3),
            "active_dims": int((per_dim > 0.01).sum()), "a_dim": model.config.a_dim,
            "mean_q_a_std": round(log_var_q.mul(0.5).exp().mean().item(), 4),
            "q_y_change_when_a_is_swapped": round(0.5 * (q_y - q_y_other_a).abs().sum(-1).mean().item(), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=list(PRESETS), default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    train_set, test_set = load_builtin(PRESETS[args.preset].dataset, mnist_dir=args.mnist_dir)
    judge = load_judge(load_builtin("mnist", mnist_dir=args.mnist_dir)[0])
    for seed in args.seeds:
        for skip in (False, True):  # interleaved per seed
            params = resolve(args.preset, **overrides, skip=skip, seed=seed)
            split = semi_supervised_split(train_set, params["labels_per_class"], seed)
            params["epochs"] = epochs_for_budget(params, split, train_set, args.budget)
            model_config, train_config = configs_for(train_set, params, device="cpu")
            result = Trainer(model_config, train_config, split).fit()
            error = error_rate(result.model, test_set.images, test_set.labels, train_config.eval_samples)
            judged = fidelity(Predictor(result.model, result.card), judge)
            print(json.dumps({"model": "SDGM" if skip else "ADGM", "seed": seed, "epochs": params["epochs"],
                              "load_average": os.getloadavg()[0], "test_error": round(error, 4),
                              "fidelity": round(judged["mean"], 4),
                              **auxiliary_diagnostics(result.model, test_set.images[:2000], test_set.labels[:2000])}),
                  flush=True)


if __name__ == "__main__":
    main()
