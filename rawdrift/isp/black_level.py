"""BL: black-level correction, one offset per CFA site (paper Section 4.2.1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_finite, check_image
from ..raw.cfa import site_map
from ._params import as_param_tensor, store

#: Largest black level the module lets through; keeps ``bl`` inside the physical range [0, 1).
BL_MAX = 1.0 - 1e-6


def black_level(raw: Tensor, bl: Tensor) -> Tensor:
    """Subtract one black level per Bayer site.

    Args:
        raw: ``(B, 1, H, W)`` mosaic in [0, 1], ``H`` and ``W`` even.
        bl: ``(4,)`` or ``(B, 4)`` offsets in tile raster order ``(0,0), (0,1), (1,0), (1,1)``.
    Returns:
        ``(B, 1, H, W)`` mosaic ``raw - bl[site]`` (may go slightly below 0).

    >>> black_level(torch.full((1, 1, 2, 2), 0.75), torch.tensor([0.125, 0.25, 0.375, 0.5])).flatten().tolist()
    [0.625, 0.5, 0.375, 0.25]
    """
    check_image(raw, "black_level: raw", channels=1, even=True)
    if not isinstance(bl, Tensor):
        bl = torch.as_tensor(bl, dtype=raw.dtype)
    if bl.shape[-1:] != (4,) or bl.ndim not in (1, 2):
        raise ValueError(f"black_level: bl: expected shape (4,) or (B, 4), got {tuple(bl.shape)}")
    check_finite(bl, "black_level: bl")
    h, w = raw.shape[-2:]
    return raw - site_map(bl.to(raw), h, w)


class BlackLevel(nn.Module):
    """Owns ``bl (4,)``; a parameter when ``learnable``.

    The value used in ``forward`` is clamped to ``[0, BL_MAX]`` (the physical range
    of a normalised black level); outside it the gradient is zero, so an optimiser
    behaves as if the parameter were projected onto the range.
    """

    def __init__(self, bl, learnable: bool = False):
        super().__init__()
        t = as_param_tensor(bl, (4,), "BL: bl")
        if ((t < 0) | (t >= 1)).any():
            raise ValueError(f"BL: bl: expected values in [0, 1), got {t.tolist()}")
        store(self, "bl", t, learnable)

    def forward(self, raw: Tensor) -> Tensor:
        return black_level(raw, self.bl.clamp(0.0, BL_MAX))
