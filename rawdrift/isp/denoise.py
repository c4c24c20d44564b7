"""DN: denoising in YUV, luma only by default (paper Section 4.2.1; DESIGN.md section 3).

* ``ga``: ``scipy.ndimage.gaussian_filter(y, sigma=0.5)``. With scipy's
  ``truncate=4`` the kernel radius is ``int(4 * 0.5 + 0.5) = 2``, so the filter is
  a correlation with the 5x5 kernel :data:`K_BLUR` (the paper's K_BLUR, centre
  0.61869), boundary ``reflect``.
* ``me``: ``scipy.ndimage.median_filter(y, size=3)``, boundary ``reflect``.
"""

from __future__ import annotations

from typing import Callable


import torch
from torch import Tensor, nn

from .._checks import check_choice, check_finite, check_int, check_positive
from ._channels import on_channels
from ._params import as_param_tensor, store
from .filters import correlate1d_symmetric, correlate_shifted, pad2d, separable_factors

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
    return on_channels(yuv, lambda x: _correlate(x, k, mode), channels, "gaussian_denoise")


def _symmetric_factors(k: Tensor):
    """Halves ``[h0, h1, ...]`` of the column and row factors of a frozen symmetric rank-one kernel, else ``None``."""
    factors = separable_factors(k)
    if factors is None or not all(f.shape[0] % 2 and torch.equal(f, f.flip(0)) for f in factors):
        return None
    return tuple(f[f.shape[0] // 2 :] for f in factors)


def _correlate(x: Tensor, k: Tensor, mode: str) -> Tensor:
    """Two symmetric 1-D passes when ``k`` is a frozen, symmetric rank-one kernel (like :data:`K_BLUR`), else 2-D."""
    factors = _symmetric_factors(k)
    if factors is not None:
        col, row = factors
        return correlate1d_symmetric(correlate1d_symmetric(x, col, -2, mode), row, -1, mode)
    return correlate_shifted(x, k, mode)


def median_filter(x: Tensor, size: int = 3, mode: str = "reflect") -> Tensor:
    """``scipy.ndimage.median_filter(x[b, c], size)`` for every image and channel (odd ``size``)."""
    check_int(size, "median_filter: size", minimum=1)
    if size % 2 == 0:
        raise ValueError(f"median_filter: size: expected an odd integer, got {size}")
    r = size // 2
    b, c, h, w = x.shape
    xp = pad2d(x, (r, r, r, r), mode)
    if size == 3:
        return _median3x3(xp, h, w)
    patches = xp.unfold(2, size, 1).unfold(3, size, 1)  # (B, C, H, W, size, size)
    return patches.reshape(b, c, h, w, size * size).median(dim=-1).values


def _sort3(a: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Element-wise (min, median, max) of three tensors."""
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    return torch.minimum(lo, c), torch.maximum(lo, torch.minimum(hi, c)), torch.maximum(hi, c)


def _med3(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Element-wise median of three tensors."""
    return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))


def _median3x3(xp: Tensor, h: int, w: int) -> Tensor:
    """Median of every 3x3 window of the padded ``(..., h + 2, w + 2)`` input, from min/max only.

    Each padded column triple is sorted once; the median of a window is then the
    median of (largest of the three minima, median of the three medians, smallest
    of the three maxima), an exact identity for 9 values. Returns one of the
    window's values, like ``torch.median``, with about 20 element-wise operations
    and no sorting; differentiable (the gradient goes to the selected input).
    """
    lo, mid, hi = _sort3(xp[..., 0:h, :], xp[..., 1 : h + 1, :], xp[..., 2 : h + 2, :])
    a = torch.maximum(torch.maximum(lo[..., 0:w], lo[..., 1 : w + 1]), lo[..., 2 : w + 2])
    c = torch.minimum(torch.minimum(hi[..., 0:w], hi[..., 1 : w + 1]), hi[..., 2 : w + 2])
    b = _med3(mid[..., 0:w], mid[..., 1 : w + 1], mid[..., 2 : w + 2])
    return _med3(a, b, c)


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

    def filter_fn(self, dtype: torch.dtype, device) -> Callable[[Tensor], Tensor]:
        """Validate once; return ``f(x)`` denoising every channel of ``(B, C, H, W)`` ``x`` (fused pipeline)."""
        if self.method == "ga":
            check_finite(self.kernel, "gaussian_denoise: kernel")
            k = self.kernel.to(dtype=dtype, device=device)
            factors = _symmetric_factors(k)
            if factors is not None:
                col, row = factors
                return lambda x: correlate1d_symmetric(correlate1d_symmetric(x, col, -2, self.mode), row, -1, self.mode)
            return lambda x: correlate_shifted(x, k, self.mode)
        return lambda x: median_filter(x, self.size, self.mode)

    def forward(self, yuv: Tensor) -> Tensor:
        if self.method == "ga":
            return gaussian_denoise(yuv, self.kernel, self.channels, self.mode)
        return median_denoise(yuv, self.size, self.channels, self.mode)
