"""Processed views computed once per dataset and ISP configuration.

Drift synthesis trains one model per configuration and tests every model on
every configuration, so each view set is rendered once, batched, on the model's
device by the torch ISP, and then indexed. :class:`ViewSet` wraps such a tensor
so the training engine can use it like a dataset (with ``nn.Identity()`` as the
pipeline).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._checks import check_int


@torch.no_grad()
def render_views(raw: Tensor, pipeline, batch_size: int = 64) -> Tensor:
    """Run ``pipeline`` over ``raw (N, 1, H, W)`` in batches; returns ``(N, 3, H, W)`` on raw's device."""
    check_int(batch_size, "batch_size", minimum=1)
    pipeline = pipeline.to(raw.device)
    return torch.cat([pipeline(raw[i : i + batch_size]) for i in range(0, len(raw), batch_size)])


class ViewSet:
    """Precomputed views plus the targets of their dataset, in the engine's dataset interface.

    Args:
        views: ``(N, 3, H, W)`` views.
        source: the raw dataset they were made from (gives ``task``, ``classes``,
            ``targets``, ``name`` and masks).
        targets: optional precomputed target tensor (class indices ``(N,)`` or masks ``(N, 1, H, W)``).
    """

    def __init__(self, views: Tensor, source, targets: Tensor | None = None, name: str = ""):
        if views.ndim != 4 or views.shape[1] != 3:
            raise ValueError(f"views: expected shape (N, 3, H, W), got {tuple(views.shape)}")
        if len(views) != len(source):
            raise ValueError(f"views: {len(views)} views for a dataset of {len(source)} samples")
        self.views = views
        self.source = source
        self.task = source.task
        self.classes = getattr(source, "classes", ())
        self.name = getattr(source, "name", "")
        self.view_name = name
        if targets is None:
            targets = (torch.as_tensor(np.asarray(source.targets), dtype=torch.int64) if self.task == "classification"
                       else _masks(source))
        self._target = targets

    @property
    def targets(self) -> np.ndarray:
        return np.asarray(self.source.targets)

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i):
        return self.views[i], self._target[i], {"index": int(i), "view": self.view_name}

    def raw_tensor(self, indices=None) -> Tensor:
        """The views (the engine treats them as its inputs; use ``nn.Identity()`` as pipeline)."""
        return self.views if indices is None else self.views[torch.as_tensor(indices, dtype=torch.long)]

    def mask_tensor(self, indices=None) -> Tensor:
        return self._target if indices is None else self._target[torch.as_tensor(indices, dtype=torch.long)]


def _masks(source) -> Tensor:
    if hasattr(source, "mask_tensor"):
        return source.mask_tensor()
    return torch.stack([torch.as_tensor(source[i][1], dtype=torch.float32) for i in range(len(source))])
