"""DN: denoising in YUV, luma only by default (paper Section 4.2.1; DESIGN.md section 3).

* ``ga``: ``scipy.ndimage.gaussian_filter(y, sigma=0.5)``. With scipy's
  ``truncate=4`` the kernel radius is ``int(4 * 0.5 + 0.5) = 2``, so the filter is
  a correlation with the 5x5 kernel :data:`K_BLUR` (the paper's K_BLUR, centre
  0.61869), boundary ``reflect``.
* ``me``: ``scipy.ndimage.median_filter(y, size=3)``, boundary ``reflect``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_finite, check_int, check_positive
from ._channels import on_channels
from ._params import as_param_tensor, store
from .filters import correlate2d, pad2d

DENOISE_METHODS = ("ga", "me")


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> Tensor:
    """scipy's normalised 1-D Gaussian of radius ``int(truncate * sigma + 0.5)``, float64.

    >>> gaussian_kernel1d(0.5).shape
    torch.Size([5])
    """
    check_positive(sigma, "gaussian_kernel1d: sigma")
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    phi = torch.exp(-0.5 / float(sigma) ** 2 * x**2)
    return phi / phi.sum()


def gaussian_kernel2d(sigma: float, truncate: float = 4.0) -> Tensor:
    """Outer product of :func:`gaussian_kernel1d` with itself, float64."""
    k = gaussian_kernel1d(sigma, truncate)
    return torch.outer(k, k)


#: The 5x5 kernel equal to ``gaussian_filter(sigma=0.5)``; ``K_BLUR[2, 2] = 0.61869...``.
K_BLUR = gaussian_kernel2d(0.5)


def gaussian_denoise(yuv: Tensor, kernel: Tensor | None = None, channels: str = "y", mode: str = "reflect") -> Tensor:
    """Correlate the luma (or every YUV channel) with a blur kernel (default :data:`K_BLUR`).

    Args:
        yuv: ``(B, 3, H, W)``.
        kernel: ``(kh, kw)`` kernel.
        channels: ``"y"`` or ``"yuv"``.
        mode: scipy boundary mode.
    Returns:
        ``(B, 3, H, W)``.

    >>> round(float(K_BLUR[2, 2]), 5)
    0.61869
    """
    k = K_BLUR if kernel is None else kernel
    if k.ndim != 2:
        raise ValueError(f"gaussian_denoise: kernel: expected a 2-D kernel, got shape {tuple(k.shape)}")
    check_finite(k, "gaussian_denoise: kernel")
    k = k.to(dtype=yuv.dtype, device=yuv.device)
    return on_channels(yuv, lambda x: correlate2d(x, k, mode), channels, "gaussian_denoise")


def median_filter(x: Tensor, size: int = 3, mode: str = "reflect") -> Tensor:
    """``scipy.ndimage.median_filter(x[b, c], size)`` for every image and channel (odd ``size``)."""
    check_int(size, "median_filter: size", minimum=1)
    if size % 2 == 0:
        raise ValueError(f"median_filter: size: expected an odd integer, got {size}")
    r = size // 2
    b, c, h, w = x.shape
    xp = pad2d(x, (r, r, r, r), mode)
    patches = xp.unfold(2, size, 1).unfold(3, size, 1)  # (B, C, H, W, size, size)
    return patches.reshape(b, c, h, w, size * size).median(dim=-1).values


def median_denoise(yuv: Tensor, size: int = 3, channels: str = "y", mode: str = "reflect") -> Tensor:
    """Median-filter the luma (or every YUV channel); ``(B, 3, H, W) -> (B, 3, H, W)``."""
    return on_channels(yuv, lambda x: median_filter(x, size, mode), channels, "median_denoise")


class Denoise(nn.Module):
    """DN stage. ``method="ga"`` owns ``kernel (5, 5)`` (a parameter when ``learnable``);
    ``method="me"`` has no continuous parameters.
    """

    def __init__(self, method: str = "ga", kernel=None, channels: str = "y", learnable: bool = False, size: int = 3, mode: str = "reflect"):
        super().__init__()
        self.method = check_choice(method, DENOISE_METHODS, "DN: method")
        self.channels = check_choice(channels, ("y", "yuv"), "DN: channels")
        self.size, self.mode = check_int(size, "DN: size", minimum=1), mode
        if method == "ga":
            k = K_BLUR if kernel is None else kernel
            store(self, "kernel", as_param_tensor(k, (5, 5), "DN: kernel"), learnable)
        elif kernel is not None or learnable:
            raise ValueError("DN: kernel: median denoising ('me') has no learnable kernel; use method='ga'")

    def forward(self, yuv: Tensor) -> Tensor:
        if self.method == "ga":
            return gaussian_denoise(yuv, self.kernel, self.channels, self.mode)
        return median_denoise(yuv, self.size, self.channels, self.mode)
