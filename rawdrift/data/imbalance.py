"""Controlled class imbalance: subsample a dataset to a chosen class profile.

Three profiles over ``C`` classes ranked head (rank 0) to tail (rank ``C - 1``),
with ``rho`` the imbalance ratio and ``n_max`` the head class's count:

- ``balanced``: every class keeps ``n_max`` samples;
- ``linear``: counts fall linearly from ``n_max`` to ``n_max / rho``;
- ``exponential`` (long-tailed): ``n_r = n_max * lam**r`` with ``lam = rho**(-1 / (C - 1))``,
  the construction of long-tailed CIFAR used by Pradhan et al.'s study proposal.

Counts are rounded to the nearest integer and are at least 1. By default
``n_max`` is the smallest class count available, so the three profiles share the
same head and differ only in how fast the tail thins out (the balanced profile
therefore has the most samples in total). Classes are ranked by descending
available count, ties broken by class index; pass ``order`` to choose the ranking.

Within each class the kept samples are the first ``n_r`` of one seeded
permutation per class, so with the same ``seed`` a sparser profile keeps a
subset of a denser one's samples (the long-tailed set is nested in the linear
set, which is nested in the balanced set).
"""

from __future__ import annotations

import logging

import numpy as np
from torch.utils.data import Subset

from .._checks import check_choice, check_int, check_range

KINDS = ("balanced", "linear", "exponential")

logger = logging.getLogger(__name__)


def class_profile(kind: str, n_max: int, num_classes: int, imbalance_ratio: float = 10.0) -> np.ndarray:
    """Samples per rank (head first) of one profile.

    >>> class_profile("exponential", 100, 3, 100.0).tolist()
    [100, 10, 1]
    >>> class_profile("linear", 10, 4, 10.0).tolist()
    [10, 7, 4, 1]
    >>> class_profile("balanced", 5, 3).tolist()
    [5, 5, 5]
    """
    check_choice(kind, KINDS, "kind")
    check_int(n_max, "n_max", minimum=1)
    check_int(num_classes, "num_classes", minimum=1)
    rho = _check_ratio(imbalance_ratio)
    r = np.arange(num_classes, dtype=np.float64)
    t = r / (num_classes - 1) if num_classes > 1 else np.zeros(1)
    if kind == "balanced":
        n = np.full(num_classes, float(n_max))
    elif kind == "linear":
        n = n_max - (n_max - n_max / rho) * t
    else:
        n = n_max * rho ** (-t)
    return np.maximum(np.floor(n + 0.5), 1).astype(np.int64)


def _check_ratio(imbalance_ratio) -> float:
    rho = float(check_range(imbalance_ratio, "imbalance_ratio", low=0.0))
    if not np.isfinite(rho) or rho < 1:
        raise ValueError(f"imbalance_ratio: expected a finite value >= 1 (n_max / n_min), got {imbalance_ratio!r}")
    return rho


class ImbalancedSubset(Subset):
    """A :class:`torch.utils.data.Subset` with the class profile it was drawn to.

    Attributes:
        kind: ``balanced``, ``linear`` or ``exponential``.
        imbalance_ratio: the requested ``n_max / n_min``.
        order: class indices from head to tail.
        counts: samples kept per class index (not per rank).
        ratio: the realised ``n_max / n_min`` after rounding.
    """

    def __init__(self, dataset, indices, kind, imbalance_ratio, order, counts):
        super().__init__(dataset, [int(i) for i in indices])
        self.kind = kind
        self.imbalance_ratio = float(imbalance_ratio)
        self.order = tuple(int(c) for c in order)
        self.counts = tuple(int(c) for c in counts)
        kept = [c for c in self.counts if c > 0]
        self.ratio = max(kept) / min(kept)

    @property
    def targets(self) -> np.ndarray:
        return np.asarray(self.dataset.targets)[np.asarray(self.indices, dtype=np.int64)]

    def profile(self) -> dict:
        """JSON-ready description: kind, requested and realised ratio, order, counts, size."""
        return {"kind": self.kind, "imbalance_ratio": self.imbalance_ratio, "ratio": self.ratio,
                "order": list(self.order), "counts": list(self.counts), "n": len(self.indices)}


def make_imbalanced(dataset, kind: str, imbalance_ratio: float = 10.0, seed: int = 0, indices=None,
                    order=None, n_max: int | None = None) -> ImbalancedSubset:
    """Subsample ``dataset`` (or its samples ``indices``) to a controlled class profile.

    Args:
        dataset: a classification dataset with ``targets`` (and ``classes`` for messages).
        kind: ``"balanced"``, ``"linear"`` or ``"exponential"`` (module docstring).
        imbalance_ratio: ``n_max / n_min``, >= 1 (ignored by ``balanced``).
        seed: seeds the per-class permutations that pick the samples.
        indices: the pool to draw from (default: every sample), e.g. a training split.
        order: class indices from head to tail, each class once (default: by descending
            count in the pool, ties by class index).
        n_max: samples of the head class (default: the smallest class count in the pool).
    Returns:
        :class:`ImbalancedSubset` of ``dataset``; its ``ratio`` (realised ``n_max / n_min``)
        is also logged at INFO level.

    >>> class Toy:
    ...     targets = np.repeat(np.arange(3), 10)
    ...     classes = ("a", "b", "c")
    >>> make_imbalanced(Toy(), "exponential", imbalance_ratio=4.0).counts
    (10, 5, 3)
    """
    check_choice(kind, KINDS, "kind")
    rho = _check_ratio(imbalance_ratio)
    check_int(seed, "seed", minimum=0)
    if not hasattr(dataset, "targets"):
        raise TypeError(f"dataset: expected a classification dataset with targets, got {type(dataset).__name__}")
    targets = np.asarray(dataset.targets)
    if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"dataset: expected integer class targets, got dtype {targets.dtype} shape {targets.shape}")
    classes = tuple(getattr(dataset, "classes", ()) or ())
    num_classes = len(classes) or int(targets.max()) + 1
    pool = np.arange(len(targets)) if indices is None else np.asarray(indices, dtype=np.int64)
    if pool.ndim != 1 or pool.size == 0:
        raise ValueError("indices: expected a non-empty 1-D sequence of sample indices")
    if pool.min() < 0 or pool.max() >= len(targets):
        raise ValueError(f"indices: expected values in [0, {len(targets)}), got {int(pool.min())}..{int(pool.max())}")
    if np.unique(pool).size != pool.size:
        raise ValueError("indices: contains repeated samples")
    available = np.bincount(targets[pool], minlength=num_classes)
    if order is None:
        order = np.lexsort((np.arange(num_classes), -available))
    order = np.asarray(order, dtype=np.int64)
    if sorted(order.tolist()) != list(range(num_classes)):
        raise ValueError(f"order: expected each of the {num_classes} class indices exactly once, got {order.tolist()}")
    if n_max is None:
        n_max = int(available.min())
        if n_max == 0:
            missing = int(np.flatnonzero(available == 0)[0])
            raise ValueError(f"indices: class {_name(missing, classes)} has no samples in the pool")
    check_int(n_max, "n_max", minimum=1)
    per_rank = class_profile(kind, n_max, num_classes, rho)
    counts = np.zeros(num_classes, dtype=np.int64)
    counts[order] = per_rank
    short = np.flatnonzero(counts > available)
    if short.size:
        c = int(short[0])
        raise ValueError(f"dataset: class {_name(c, classes)} has {int(available[c])} samples in the pool, "
                         f"the {kind} profile needs {int(counts[c])}")
    chosen = []
    for c in range(num_classes):
        members = pool[targets[pool] == c]
        rng = np.random.default_rng([seed, c])
        chosen.append(members[rng.permutation(members.size)[: counts[c]]])
    kept = np.sort(np.concatenate(chosen))
    out = ImbalancedSubset(dataset, kept, kind, rho, order, counts)
    logger.info("make_imbalanced: %s profile, n_max/n_min = %d/%d = %.2f, %d samples from a pool of %d",
                kind, int(counts.max()), int(counts[counts > 0].min()), out.ratio, kept.size, pool.size)
    return out


def _name(c: int, classes) -> str:
    return f"{classes[c]!r} (index {c})" if c < len(classes) else f"index {c}"


__all__ = ["KINDS", "ImbalancedSubset", "class_profile", "make_imbalanced"]
