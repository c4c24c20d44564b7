"""The dataset interface shared by synthetic and real raw datasets, and k-fold splits.

Every dataset returns ``(raw, target, meta)``:

- ``raw``: ``(1, H, W)`` float32 Bayer mosaic in [0, 1] (16-bit counts / 65535),
  pattern ``dataset.camera.pattern`` (RGGB for everything rawdrift ships);
- ``target``: an ``int`` class index (classification) or a ``(1, H, W)`` float32
  binary mask (segmentation);
- ``meta``: a dict of per-sample metadata (at least ``index`` and ``intensity``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_int

DATASET_NAMES = ("synthetic-microscopy", "synthetic-drone", "raw-microscopy", "raw-drone")
TASKS = ("classification", "segmentation")


class RawDataset(Dataset, ABC):
    """Base class. Subclasses set ``task``, ``classes``, ``camera`` and implement
    ``__len__``, ``__getitem__`` and :attr:`targets`."""

    name: str = ""
    task: str = "classification"
    classes: tuple[str, ...] = ()

    @property
    @abstractmethod
    def targets(self) -> np.ndarray:
        """One stratification label per sample (class index, or 'has foreground' for masks)."""

    def raw_tensor(self, indices=None) -> torch.Tensor:
        """Stack the raw mosaics of ``indices`` (default: all) into ``(N, 1, H, W)``."""
        idx = range(len(self)) if indices is None else indices
        return torch.stack([self[i][0] for i in idx])


def stratified_kfold(labels, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold split: ``k`` pairs of (train indices, test indices).

    Samples of each class are shuffled with ``seed`` and dealt round-robin to the
    folds, so each fold's class proportions match the whole set to within one
    sample per class. Every index is in exactly one test fold.

    >>> folds = stratified_kfold([0, 0, 0, 1, 1, 1], k=3)
    >>> sorted(np.concatenate([te for _, te in folds]).tolist())
    [0, 1, 2, 3, 4, 5]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels: expected a 1-D sequence, got shape {labels.shape}")
    check_int(k, "k", minimum=2)
    if k > len(labels):
        raise ValueError(f"k: cannot make {k} folds from {len(labels)} samples")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)  # rotate so small classes do not all start in fold 0
    all_idx = np.arange(len(labels))
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(k)]
