"""Apply a per-channel filter to the luma channel only, or to all three YUV channels."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .._checks import check_choice, check_image

CHANNEL_SETS = ("y", "yuv")


def on_channels(yuv: Tensor, fn: Callable[[Tensor], Tensor], channels: str, name: str) -> Tensor:
    """Return ``yuv`` with ``fn`` applied to Y (``channels="y"``) or to Y, U and V (``"yuv"``).

    ``fn`` receives and returns a ``(B, C, H, W)`` tensor and must treat channels independently.
    """
    check_image(yuv, f"{name}: yuv", channels=3)
    check_choice(channels, CHANNEL_SETS, f"{name}: channels")
    if channels == "yuv":
        return fn(yuv)
    return torch.cat([fn(yuv[:, :1]), yuv[:, 1:]], dim=1)
