"""Small helpers shared by the stage modules: store a tensor as a parameter or a buffer."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_finite, check_shape


def as_param_tensor(value, shape, name: str, dtype=torch.float32) -> torch.Tensor:
    """Convert ``value`` to a detached float tensor of ``shape``; raise naming ``name`` if it is wrong."""
    t = torch.as_tensor(value).detach().clone()
    if not t.is_floating_point():
        t = t.to(dtype)
    t = t.to(dtype)
    check_shape(t, shape, name)
    check_finite(t, name)
    return t


def store(module: nn.Module, attr: str, tensor: torch.Tensor, learnable: bool) -> None:
    """Register ``tensor`` on ``module`` as an ``nn.Parameter`` (learnable) or a buffer (fixed)."""
    if learnable:
        module.register_parameter(attr, nn.Parameter(tensor))
    else:
        module.register_buffer(attr, tensor)
