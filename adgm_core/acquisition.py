"""Which unlabelled images to label next, judged by the model's own uncertainty about the class.

q(y | x) = E_q(a|x)[q(y | a, x)] is a mixture over the auxiliary variable a. With S draws
a_s ~ q(a | x) and p_s = q(y | a_s, x), p̄ = (1/S) Σ_s p_s, the scores of an image are

    entropy   H[p̄]                            total uncertainty about y
    bald      H[p̄] − (1/S) Σ_s H[p_s]          mutual information I(y; a | x): the draws disagree
    margin    −(p̄_(1) − p̄_(2))                  the two most probable classes are close
    random    uniform in [0, 1)

higher meaning more informative. `select` takes the n best, or with `diverse` a greedy k-center
cover, in the space of μ_a(x), of the best `candidates · n`: so n picks are not n near-copies of
one confusing image. The draws of a are shared by all images (one ε per draw), so an image's scores
do not depend on the rest of the pool, and a (model, seed) pair always gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from adgm_core.evaluation import as_model_input
from adgm_core.layers import reparameterize
from adgm_core.model import ADGM

STRATEGIES = ("bald", "entropy", "margin", "random")


@dataclass(frozen=True)
class PoolScores:
    probabilities: np.ndarray  # (N, K) p̄ = q(y | x) averaged over the S draws
    scores: np.ndarray  # (N,) of the strategy; higher: label it sooner
    embedding: np.ndarray  # (N, A) μ_a(x), the space the diversity cover works in


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -torch.special.xlogy(p, p).sum(-1)


@torch.no_grad()
def score_pool(model: ADGM, images: np.ndarray, strategy: str = "bald", samples: int = 8, seed: int = 0,
               batch_size: int = 4096) -> PoolScores:
    """Scores of uint8 images (N, H, W) under `strategy`, computed in batches of `batch_size`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    eps = torch.randn((samples, 1, model.config.a_dim), generator=generator, device=device)
    probabilities, scores, embedding = [], [], []
    for start in range(0, len(images), batch_size):
        x = as_model_input(images[start:start + batch_size], device)
        mu_a, log_var_a = model.infer_a(x)
        a = reparameterize(mu_a, log_var_a, eps)  # (S, B, A)
        p = torch.softmax(model.classify(x[None], a).float(), dim=-1)  # x's first-layer product is shared by the S draws
        p_bar = p.mean(0)
        if strategy == "bald":
            score = _entropy(p_bar) - _entropy(p).mean(0)
        elif strategy == "entropy":
            score = _entropy(p_bar)
        elif strategy == "margin":
            top2 = p_bar.topk(2, dim=-1).values
            score = top2[:, 1] - top2[:, 0]
        else:
            score = torch.zeros(len(x), device=device)
        probabilities.append(p_bar.cpu())
        scores.append(score.cpu())
        embedding.append(mu_a.float().cpu())
    scores_np = torch.cat(scores).numpy().astype(np.float64)
    if strategy == "random":
        scores_np = np.random.default_rng(seed).random(len(images))
    return PoolScores(torch.cat(probabilities).numpy(), scores_np, torch.cat(embedding).numpy())


def select(pool: PoolScores, n: int, among: np.ndarray | None = None, diverse: bool = False,
           candidates: int = 10) -> np.ndarray:
    """Indices (into the pool) of the `n` images to label next, best first; `among` restricts the
    choice to those indices (the unlabelled ones). Ties go to the lower index."""
    among = np.arange(len(pool.scores)) if among is None else np.asarray(among)
    ranked = among[np.lexsort((among, -pool.scores[among]))]
    if not diverse or n <= 1:
        return ranked[:n]
    shortlist = ranked[:max(n, candidates * n)]
    points = pool.embedding[shortlist]
    chosen = [0]
    distance = np.linalg.norm(points - points[0], axis=1)
    distance[0] = -np.inf
    while len(chosen) < min(n, len(shortlist)):
        farthest = int(np.argmax(distance))  # the candidate least covered by those chosen so far
        chosen.append(farthest)
        distance = np.minimum(distance, np.linalg.norm(points - points[farthest], axis=1))
        distance[chosen] = -np.inf  # never twice, even among exact duplicates
    return shortlist[chosen]
