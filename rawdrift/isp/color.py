"""CC: colour correction with a 3x3 matrix, and the RGB <-> YUV transforms of ``skimage.color``.

``YUV_FROM_RGB`` is ``skimage.color.colorconv.yuv_from_rgb`` digit for digit and
``RGB_FROM_YUV`` its inverse computed in float64, exactly as skimage defines
``rgb_from_yuv``; ``rgb2yuv``/``yuv2rgb`` apply them per pixel.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_finite, check_image
from ._params import as_param_tensor, store

YUV_FROM_RGB = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.14714119, -0.28886916, 0.43601035],
        [0.61497538, -0.51496512, -0.10001026],
    ],
    dtype=torch.float64,
)
RGB_FROM_YUV = torch.linalg.inv(YUV_FROM_RGB)


def apply_matrix(x: Tensor, matrix: Tensor, name: str = "matrix") -> Tensor:
    """Per-pixel ``out[k] = sum_c matrix[k, c] * x[c]``.

    Args:
        x: ``(B, 3, H, W)``.
        matrix: ``(3, 3)`` or ``(B, 3, 3)``, rows are output channels.
    Returns:
        ``(B, 3, H, W)``.
    """
    check_image(x, f"{name}: x", channels=3)
    if not isinstance(matrix, Tensor):
        matrix = torch.as_tensor(matrix, dtype=x.dtype)
    if matrix.shape[-2:] != (3, 3) or matrix.ndim not in (2, 3):
        raise ValueError(f"{name}: expected shape (3, 3) or (B, 3, 3), got {tuple(matrix.shape)}")
    matrix = matrix.to(x)
    if matrix.ndim == 2:
        return torch.einsum("kc,bchw->bkhw", matrix, x)
    return torch.einsum("bkc,bchw->bkhw", matrix, x)


def color_correct(rgb: Tensor, M: Tensor) -> Tensor:
    """Colour correction ``v_CC = M v_WB`` at every pixel (output may leave [0, 1]).

    Args:
        rgb: ``(B, 3, H, W)`` white-balanced RGB.
        M: ``(3, 3)`` or ``(B, 3, 3)`` colour matrix, rows = output channels.

    >>> color_correct(torch.ones(1, 3, 1, 1), torch.eye(3) * 2).flatten().tolist()
    [2.0, 2.0, 2.0]
    """
    if isinstance(M, Tensor):
        check_finite(M, "color_correct: M")
    return apply_matrix(rgb, M, "color_correct: M")


def rgb_to_yuv(rgb: Tensor) -> Tensor:
    """``skimage.color.rgb2yuv`` on ``(B, 3, H, W)`` tensors (no range check, any real values)."""
    return apply_matrix(rgb, YUV_FROM_RGB, "rgb_to_yuv")


def yuv_to_rgb(yuv: Tensor) -> Tensor:
    """``skimage.color.yuv2rgb`` on ``(B, 3, H, W)`` tensors."""
    return apply_matrix(yuv, RGB_FROM_YUV, "yuv_to_rgb")


class ColorCorrection(nn.Module):
    """Owns the colour matrix ``M (3, 3)``; a parameter when ``learnable`` (unconstrained)."""

    def __init__(self, M, learnable: bool = False):
        super().__init__()
        store(self, "M", as_param_tensor(M, (3, 3), "CC: M"), learnable)

    def forward(self, rgb: Tensor) -> Tensor:
        return color_correct(rgb, self.M)
