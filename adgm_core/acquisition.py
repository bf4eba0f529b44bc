"""Which unlabelled images to label next, judged by the model's own uncertainty about the class.

q(y | x) = E_q(a|x)[q(y | a, x)] is a mixture over the auxiliary variable a. With S draws
a_s ~ q(a | x) and p_s = q(y | a_s, x), p̄ = (1/S) Σ_s p_s, the scores of an image are

    entropy   H[p̄]                            total uncertainty about y
    bald      H[p̄] − (1/S) Σ_s H[p_s]          mutual information I(y; a | x): the draws disagree
    margin    −(p̄_(1) − p̄_(2))                  the two most probable classes are close
    cover     margin's score, picked within a cover of the pool (below)
    random    uniform in [0, 1)

higher meaning more informative. `select` takes the n best, or with `diverse` a greedy k-center
cover, in the space of μ_a(x), of the best `candidates · n`: so n picks are not n near-copies of
one confusing image. `cover` spreads its picks over the whole pool instead, and away from the
labelled images: k-means splits the pool (labelled images included), in the space of μ_a(x) scaled
to unit length, into as many clusters as there are labelled images plus picks; the clusters without
a labelled image are taken, the biggest first, and from each the most uncertain image among its
typical half (the members nearest its centre): images like many unlabelled others, and the model
unsure of them. The draws of a are shared by all images (one ε per draw), so an image's scores
do not depend on the rest of the pool, and a (model, seed) pair always gives the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from adgm_core.first_labels import kmeans, squared_distances

if TYPE_CHECKING:
    from adgm_core.model import ADGM

STRATEGIES = ("bald", "entropy", "margin", "cover", "random")
DEFAULT_STRATEGY = "cover"  # the best at 50 labels on the loop's benchmark (docs/results.md): the API's and the page's
COVER_SAMPLE = 10_000  # k-means of `cover` runs on at most this many images; every image is then assigned


@dataclass(frozen=True)
class PoolScores:
    probabilities: np.ndarray  # (N, K) p̄ = q(y | x) averaged over the S draws
    scores: np.ndarray  # (N,) of the strategy; higher: label it sooner
    embedding: np.ndarray  # (N, A) μ_a(x), the space the diversity cover works in
    strategy: str = "margin"  # the strategy that scored the images


def score_pool(model: ADGM, images: np.ndarray, strategy: str = "bald", samples: int = 8, seed: int = 0,
               batch_size: int = 4096) -> PoolScores:
    """Scores of uint8 images (N, H, W) under `strategy`, computed in batches of `batch_size`.

    torch is imported here, not with the module: the API imports `STRATEGIES` and `select` and
    starts without torch (docs/results.md, issue 18)."""
    import torch

    from adgm_core.evaluation import as_model_input
    from adgm_core.layers import reparameterize

    def _entropy(p: torch.Tensor) -> torch.Tensor:
        return -torch.special.xlogy(p, p).sum(-1)

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    eps = torch.randn((samples, 1, model.config.a_dim), generator=generator, device=device)
    probabilities, scores, embedding = [], [], []
    with torch.no_grad():
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
            elif strategy in ("margin", "cover"):
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
    return PoolScores(torch.cat(probabilities).numpy(), scores_np, torch.cat(embedding).numpy(), strategy)


def select(pool: PoolScores, n: int, among: np.ndarray | None = None, diverse: bool = False,
           candidates: int = 10, labelled: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Indices (into the pool) of the `n` images to label next, best first; `among` restricts the
    choice to those indices (the unlabelled ones). Ties go to the lower index. `labelled` (indices
    of the labelled images) and `seed` (of k-means) matter to `cover` only."""
    among = np.arange(len(pool.scores)) if among is None else np.asarray(among)
    ranked = among[np.lexsort((among, -pool.scores[among]))]
    if pool.strategy == "cover":
        return _cover(pool, n, among, ranked, np.array([], dtype=np.int64) if labelled is None else labelled, seed)
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


def _cover(pool: PoolScores, n: int, among: np.ndarray, ranked: np.ndarray, labelled: np.ndarray, seed: int,
           restarts: int = 3, iterations: int = 30) -> np.ndarray:
    """`n` of `among`: the most uncertain typical image of each cluster the labelled ones leave uncovered."""
    if n >= len(among):
        return ranked
    points = pool.embedding / np.maximum(np.linalg.norm(pool.embedding, axis=1, keepdims=True), 1e-8)
    points = points.astype(np.float32)
    everyone = np.union1d(among, labelled)
    rng = np.random.default_rng(seed)
    fitted = everyone if len(everyone) <= COVER_SAMPLE else np.sort(rng.choice(everyone, COVER_SAMPLE, replace=False))
    k = min(len(among), n + len(labelled))
    _inertia, centres = min((kmeans(points[fitted], k, rng, iterations) for _ in range(restarts)),
                            key=lambda run: run[0])
    distance = squared_distances(points[among], centres)
    assignment = distance.argmin(1)
    covered = set(squared_distances(points[labelled], centres).argmin(1).tolist()) if len(labelled) else set()
    sizes = np.bincount(assignment, minlength=k)
    chosen: list[int] = []
    for j in sorted(range(k), key=lambda j: (j in covered, -sizes[j], j)):
        members = np.flatnonzero(assignment == j)
        if len(chosen) == n:
            break
        if not len(members):
            continue
        typical = members[distance[members, j] <= np.median(distance[members, j])]
        candidates = among[typical]
        best = candidates[np.lexsort((candidates, -pool.scores[candidates]))[0]]
        chosen.append(int(best))
    taken = set(chosen)
    chosen += [int(i) for i in ranked if i not in taken][:n - len(chosen)]  # clusters came out empty: the best left
    return np.array(chosen, dtype=np.int64)
