"""The first images to label, chosen without a model: representative and diverse ones.

Before a data set has a label of every class there is no model to ask, so the images are chosen
from the pixels alone. Each image becomes a point on the unit sphere: its pixels projected on the
first `dims` principal components (an SVD of at most `SVD_SAMPLE` images), then scaled to length
1, so that faint and bold strokes of one shape are near each other. k-means (greedy k-means++ seeding,
`restarts` runs on at most `KMEANS_SAMPLE` of them, the lowest within-cluster sum kept) splits the
points into `n` clusters, and the image nearest to each cluster's centre is its representative:
the biggest cluster's first.

Labels already given steer the picks away from what is labelled: k-means then makes `n` more
clusters than there are labelled images, and the clusters that hold a labelled image are taken
last. So with some classes labelled the picks go to the others, and in later rounds (the default
strategy of the label loop, `adgm_core.acquisition.DEFAULT_STRATEGY`) to the regions of the pool
that no label covers yet.

On digits5k this covers 8.8 of the 10 digits with 10 images on average (random picks: 6.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SVD_SAMPLE = 2000
KMEANS_SAMPLE = 10_000  # k-means runs on at most this many images; every image is then assigned
CHUNK = 8192


@dataclass(frozen=True)
class Representatives:
    indices: np.ndarray  # (n,) into the images, biggest cluster first
    shares: np.ndarray  # (n,) the fraction of the unlabelled images in each one's cluster


def features(images: np.ndarray, dims: int = 50, seed: int = 0) -> np.ndarray:
    """(N, dims) unit vectors: principal-component projections of the pixels, normalised."""
    flat = images.reshape(len(images), -1)
    rng = np.random.default_rng(seed)
    sample = flat[np.sort(rng.choice(len(flat), size=min(len(flat), SVD_SAMPLE), replace=False))] / np.float32(255)
    mean = sample.mean(0)
    _u, _s, components = np.linalg.svd(sample - mean, full_matrices=False)
    basis = components[:dims].T.astype(np.float32)
    projected = np.concatenate([(flat[start:start + CHUNK] / np.float32(255) - mean) @ basis
                                for start in range(0, len(flat), CHUNK)])
    return projected / np.maximum(np.linalg.norm(projected, axis=1, keepdims=True), 1e-8)


def squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(N, K) squared distances of unit-length points to the centres (float32)."""
    return np.maximum(1.0 - 2.0 * points @ centres.T + (centres ** 2).sum(1)[None], 0.0)


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> tuple[float, np.ndarray]:
    """(sum of squared distances to the nearest centre, the k centres), from greedy k-means++ seeding."""
    nearest = np.full(len(points), np.inf)
    trials = 2 + int(np.log(k))  # greedy k-means++: the best of a few D² draws at each step
    centres = []
    for _ in range(k):
        weights = nearest if np.isfinite(nearest).all() and nearest.sum() > 0 else np.ones(len(points))
        candidates = rng.choice(len(points), size=trials, p=weights / weights.sum())
        covered = np.minimum(nearest[None], squared_distances(points, points[candidates]).T)
        best = int(covered.sum(1).argmin())
        centres.append(points[candidates[best]])
        nearest = covered[best]
    centres = np.stack(centres)
    for _ in range(iterations):
        assignment = squared_distances(points, centres).argmin(1)
        moved = np.stack([points[assignment == j].mean(0) if (assignment == j).any() else centres[j]
                          for j in range(k)])
        if np.allclose(moved, centres):
            break
        centres = moved
    return float(squared_distances(points, centres).min(1).sum()), centres


def representatives(images: np.ndarray, n: int, labels: np.ndarray | None = None, seed: int = 0,
                    dims: int = 50, restarts: int = 5, iterations: int = 50) -> Representatives:
    """`n` distinct unlabelled images (label −1 in `labels`; all when None) to label first."""
    labels = np.full(len(images), -1) if labels is None else np.asarray(labels)
    pool = np.flatnonzero(labels < 0)
    if n >= len(pool):
        return Representatives(pool, np.full(len(pool), 1.0 / max(1, len(pool))))
    points = features(images, dims, seed)
    labelled = np.flatnonzero(labels >= 0)
    k = min(len(pool), n + len(labelled))
    rng = np.random.default_rng(seed)
    fitted = points[pool if len(pool) <= KMEANS_SAMPLE else np.sort(rng.choice(pool, KMEANS_SAMPLE, replace=False))]
    _inertia, centres = min((kmeans(fitted, k, rng, iterations) for _ in range(restarts)), key=lambda run: run[0])
    assignment = squared_distances(points[pool], centres).argmin(1)
    covered = set(squared_distances(points[labelled], centres).argmin(1).tolist()) if len(labelled) else set()
    sizes = np.bincount(assignment, minlength=k)
    picked, shares = [], []
    for j in sorted(range(k), key=lambda j: (j in covered, -sizes[j], j)):
        members = np.flatnonzero(assignment == j)
        if len(members) and len(picked) < n:
            picked.append(int(pool[members[((points[pool[members]] - centres[j]) ** 2).sum(1).argmin()]]))
            shares.append(len(members) / len(pool))
    while len(picked) < n:  # clusters came out empty (duplicate images): the least covered image instead
        distance = squared_distances(points[pool], points[picked]).min(1)
        distance[np.isin(pool, picked)] = -1.0
        picked.append(int(pool[int(distance.argmax())]))
        shares.append(0.0)
    return Representatives(np.array(picked, dtype=np.int64), np.array(shares))
