"""SH: sharpening in YUV, luma only by default (paper Section 4.2.1; DESIGN.md section 3).

* ``s``: the 3x3 sharpening filter ``[[0,-1,0],[-1,5,-1],[0,-1,0]]``. Borders are
  zero-filled, as in the paper authors' static code (``scipy.signal.convolve2d``
  with ``boundary="fill"``) and their torch code (``Conv2d(padding=1)``); the
  ``mode`` argument takes any scipy boundary mode.
* ``u``: ``skimage.filters.unsharp_mask(y, radius=1, amount=1)``:
  ``y + amount * (y - G_radius * y)`` with skimage's Gaussian (``scipy.ndimage.gaussian_filter``,
  ``truncate=4``, boundary ``reflect`` in scikit-image >= 0.19). With
  ``preserve_range=True`` (the authors' setting, our default) the result is not
  clipped; with ``preserve_range=False`` skimage clips each filtered 2-D channel
  to ``[-1, 1]`` if it holds any negative value, else to ``[0, 1]``; both are
  reproduced per image and channel.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_finite, check_positive
from ._channels import on_channels
from ._params import as_param_tensor, store
from .denoise import gaussian_kernel1d
from .filters import correlate1d_symmetric, correlate_shifted

SHARPEN_KERNEL = torch.tensor([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)
SHARPEN_METHODS = ("s", "u")
#: Boundary mode of each method by default: the authors' zero fill for ``s``, skimage's for ``u``.
DEFAULT_MODES = {"s": "constant", "u": "reflect"}


def sharpen_filter(yuv: Tensor, kernel: Tensor | None = None, channels: str = "y", mode: str = "constant") -> Tensor:
    """Filter the luma (or every YUV channel) with a 3x3 sharpening kernel.

    Args:
        yuv: ``(B, 3, H, W)`` YUV image.
        kernel: ``(kh, kw)`` kernel with odd sizes, default :data:`SHARPEN_KERNEL`;
            applied as a convolution (``scipy.ndimage.convolve``).
        channels: ``"y"`` or ``"yuv"``.
        mode: scipy boundary mode; ``"constant"`` (zero fill) as in the authors' code.
    Returns:
        ``(B, 3, H, W)``.

    >>> y = torch.zeros(1, 3, 3, 3); y[0, 0, 1, 1] = 1
    >>> sharpen_filter(y)[0, 0].tolist()
    [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]
    """
    k = SHARPEN_KERNEL if kernel is None else kernel
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"sharpen_filter: kernel: expected a 2-D kernel with odd sizes, got {tuple(k.shape)}")
    check_finite(k, "sharpen_filter: kernel")
    k = k.to(dtype=yuv.dtype, device=yuv.device).flip(-1, -2)
    return on_channels(yuv, lambda x: correlate_shifted(x, k, mode), channels, "sharpen_filter")


def gaussian_blur(x: Tensor, sigma: float, truncate: float = 4.0, mode: str = "reflect") -> Tensor:
    """``scipy.ndimage.gaussian_filter(x[b, c], sigma, mode=mode, truncate=truncate)`` for every image/channel.

    Separable: the 1-D kernel is applied along rows, then columns, with the boundary
    handled per axis exactly as scipy does.
    """
    k = gaussian_kernel1d(sigma, truncate).to(dtype=x.dtype, device=x.device)
    half = k[k.shape[0] // 2 :]
    return correlate1d_symmetric(correlate1d_symmetric(x, half, -2, mode), half, -1, mode)


def unsharp_mask(
    yuv: Tensor,
    radius: float = 1.0,
    amount: float = 1.0,
    channels: str = "y",
    preserve_range: bool = True,
    mode: str = "reflect",
) -> Tensor:
    """``skimage.filters.unsharp_mask`` applied to the luma (or each YUV channel).

    Args:
        yuv: ``(B, 3, H, W)`` YUV image.
        radius: Gaussian sigma, > 0.
        amount: detail gain.
        channels: ``"y"`` or ``"yuv"``.
        preserve_range: ``True`` leaves values unclipped (the authors' call);
            ``False`` clips like skimage's default (see module docstring).
        mode: boundary mode of the Gaussian (skimage uses ``"reflect"``).
    Returns:
        ``(B, 3, H, W)``.
    """
    check_positive(radius, "unsharp_mask: radius")
    check_finite(torch.as_tensor(float(amount)), "unsharp_mask: amount")
    return on_channels(yuv, lambda x: _unsharp(x, radius, amount, preserve_range, mode), channels, "unsharp_mask")


def _unsharp(x: Tensor, radius: float, amount: float, preserve_range: bool, mode: str) -> Tensor:
    """Unsharp-mask every channel of ``(B, C, H, W)`` ``x``."""
    if x.requires_grad and torch.is_grad_enabled():
        out = x + (x - gaussian_blur(x, radius, mode=mode)) * amount
    else:  # the same sum, in place: x + amount * x - amount * blur
        out = gaussian_blur(x, radius, mode=mode).mul_(-amount).add_(x, alpha=1.0 + amount) if amount != 0 else x.clone()
    if preserve_range:
        return out
    negative = (x < 0).flatten(2).any(-1)[..., None, None]
    low = torch.where(negative, -1.0, 0.0).to(x)
    return torch.minimum(torch.maximum(out, low), torch.ones_like(low))


class Sharpen(nn.Module):
    """SH stage. ``method="s"`` owns ``kernel (3, 3)`` (a parameter when ``learnable``);
    ``method="u"`` has no continuous parameters here (radius and amount are fixed floats).
    """

    def __init__(
        self,
        method: str = "s",
        kernel=None,
        channels: str = "y",
        learnable: bool = False,
        radius: float = 1.0,
        amount: float = 1.0,
        preserve_range: bool = True,
        mode: str | None = None,
    ):
        super().__init__()
        self.method = check_choice(method, SHARPEN_METHODS, "SH: method")
        self.channels = check_choice(channels, ("y", "yuv"), "SH: channels")
        self.radius, self.amount, self.preserve_range = float(radius), float(amount), bool(preserve_range)
        self.mode = mode or DEFAULT_MODES[method]
        if method == "s":
            k = SHARPEN_KERNEL if kernel is None else kernel
            store(self, "kernel", as_param_tensor(k, (3, 3), "SH: kernel"), learnable)
        elif kernel is not None or learnable:
            raise ValueError("SH: kernel: unsharp masking ('u') has no learnable kernel; use method='s'")

    def filter_fn(self, dtype: torch.dtype, device) -> Callable[[Tensor], Tensor]:
        """Validate once; return ``f(x)`` sharpening every channel of ``(B, C, H, W)`` ``x`` (fused pipeline)."""
        if self.method == "s":
            check_finite(self.kernel, "sharpen_filter: kernel")
            k = self.kernel.to(dtype=dtype, device=device).flip(-1, -2)
            return lambda x: correlate_shifted(x, k, self.mode)
        return lambda x: _unsharp(x, self.radius, self.amount, self.preserve_range, self.mode)

    def forward(self, yuv: Tensor) -> Tensor:
        if self.method == "s":
            return sharpen_filter(yuv, self.kernel, self.channels, self.mode)
        return unsharp_mask(yuv, self.radius, self.amount, self.channels, self.preserve_range, self.mode)
