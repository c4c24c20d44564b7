"""WB: per-channel white-balance gains (paper Section 4.2.1)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_finite, check_image
from ._params import as_param_tensor, store

#: Smallest gain a positive-constrained :class:`WhiteBalance` lets through.
WB_MIN = 1e-6


def white_balance(rgb: Tensor, wb: Tensor) -> Tensor:
    """Scale each colour channel by its gain.

    Args:
        rgb: ``(B, 3, H, W)`` linear camera RGB.
        wb: ``(3,)`` or ``(B, 3)`` gains (R, G, B).
    Returns:
        ``(B, 3, H, W)`` ``wb[c] * rgb[:, c]``.

    >>> white_balance(torch.ones(1, 3, 1, 1), torch.tensor([2.0, 1.0, 0.5])).flatten().tolist()
    [2.0, 1.0, 0.5]
    """
    check_image(rgb, "white_balance: rgb", channels=3)
    if not isinstance(wb, Tensor):
        wb = torch.as_tensor(wb, dtype=rgb.dtype)
    if wb.shape[-1:] != (3,) or wb.ndim not in (1, 2):
        raise ValueError(f"white_balance: wb: expected shape (3,) or (B, 3), got {tuple(wb.shape)}")
    check_finite(wb, "white_balance: wb")
    return rgb * wb.to(rgb).reshape(-1, 3, 1, 1)


class WhiteBalance(nn.Module):
    """Owns ``wb (3,)``; a parameter when ``learnable``.

    With ``positive=True`` the gains used in ``forward`` are clamped to ``>= WB_MIN``
    (gains are physically positive; the gradient is zero below the bound). The
    Raw-Microscopy gains released by the paper's authors are negative in the red
    channel, so :meth:`Pipeline.parametrized` only turns the constraint on when the
    camera's own gains are all positive.
    """

    def __init__(self, wb, learnable: bool = False, positive: bool = False):
        super().__init__()
        t = as_param_tensor(wb, (3,), "WB: wb")
        if positive and (t <= 0).any():
            raise ValueError(f"WB: wb: positive=True needs gains > 0, got {t.tolist()}")
        self.positive = bool(positive)
        store(self, "wb", t, learnable)

    def gains(self) -> Tensor:
        """The ``(3,)`` gains ``forward`` applies (clamped when ``positive``)."""
        return self.wb.clamp_min(WB_MIN) if self.positive else self.wb

    def forward(self, rgb: Tensor) -> Tensor:
        return white_balance(rgb, self.gains())
