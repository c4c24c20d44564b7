"""Padding and linear filtering with ``scipy.ndimage`` boundary semantics, in torch.

The static reference pipeline filters with ``scipy.ndimage`` whose default
boundary mode ``"reflect"`` repeats the edge sample (``d c b a | a b c d``),
which is numpy's ``"symmetric"``. Torch's ``F.pad(mode="reflect")`` is scipy's
``"mirror"`` (``d c b | a b c d``) instead. Using the torch one silently changes
the borders, a defect of the paper's released code. Everything here pads by
gathering indices, so every scipy mode is exact, differentiable and works for
pads wider than the image.

Mode names are scipy's: ``reflect``, ``mirror``, ``nearest``, ``wrap``, ``constant``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_image, check_int

MODES = ("reflect", "mirror", "nearest", "wrap", "constant")


def boundary_indices(n: int, before: int, after: int, mode: str) -> Tensor:
    """Source indices for a length-``n`` axis padded by ``before``/``after`` samples.

    >>> boundary_indices(4, 2, 2, "reflect").tolist()
    [1, 0, 0, 1, 2, 3, 3, 2]
    >>> boundary_indices(4, 2, 2, "mirror").tolist()
    [2, 1, 0, 1, 2, 3, 2, 1]
    """
    check_choice(mode, MODES[:4], "mode")
    check_int(n, "n", minimum=1)
    i = torch.arange(-before, n + after)
    if mode == "nearest":
        return i.clamp(0, n - 1)
    if mode == "wrap":
        return i % n
    if mode == "mirror":
        if n == 1:
            return torch.zeros_like(i)
        period = 2 * n - 2
        j = i % period
        return torch.where(j >= n, period - j, j)
    period = 2 * n  # reflect
    j = i % period
    return torch.where(j >= n, period - 1 - j, j)


def pad2d(x: Tensor, pad: tuple[int, int, int, int], mode: str = "reflect", cval: float = 0.0) -> Tensor:
    """Pad the last two dimensions with scipy boundary semantics.

    Args:
        x: ``(..., H, W)`` tensor.
        pad: ``(top, bottom, left, right)`` non-negative pad widths.
        mode: one of :data:`MODES` (scipy names).
        cval: fill value for ``mode="constant"``.
    Returns:
        ``(..., H + top + bottom, W + left + right)`` tensor.
    """
    check_choice(mode, MODES, "mode")
    top, bottom, left, right = pad
    for v, nm in zip(pad, ("top", "bottom", "left", "right")):
        check_int(v, f"pad[{nm}]", minimum=0)
    if mode == "constant":
        return F.pad(x, (left, right, top, bottom), mode="constant", value=cval)
    h, w = x.shape[-2:]
    if max(top, bottom) <= h and max(left, right) <= w:
        return _pad_fast(x, top, bottom, left, right, mode)
    rows = boundary_indices(h, top, bottom, mode).to(x.device)
    cols = boundary_indices(w, left, right, mode).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _pad_axis(x: Tensor, before: int, after: int, dim: int, mode: str) -> Tensor:
    """Pad one axis by slicing and concatenation (fast path, pads no wider than the axis)."""
    n = x.shape[dim]
    if before == 0 and after == 0:
        return x
    if mode == "reflect":  # d c b a | a b c d | d c b a: edge sample repeated
        lo, hi = x.narrow(dim, 0, before).flip(dim), x.narrow(dim, n - after, after).flip(dim)
    elif mode == "nearest":
        lo = x.narrow(dim, 0, 1).expand(*[before if d == dim % x.ndim else -1 for d in range(x.ndim)])
        hi = x.narrow(dim, n - 1, 1).expand(*[after if d == dim % x.ndim else -1 for d in range(x.ndim)])
    elif mode == "wrap":
        lo, hi = x.narrow(dim, n - before, before), x.narrow(dim, 0, after)
    else:  # mirror: d c b | a b c d | c b a: edge sample not repeated
        if before >= n or after >= n:
            idx = boundary_indices(n, before, after, mode).to(x.device)
            return x.index_select(dim, idx)
        lo, hi = x.narrow(dim, 1, before).flip(dim), x.narrow(dim, n - 1 - after, after).flip(dim)
    return torch.cat([lo, x, hi], dim=dim)


def _pad_fast(x: Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> Tensor:
    h, w = x.shape[-2:]
    if (torch.is_grad_enabled() and x.requires_grad) or (mode == "mirror" and (max(top, bottom) >= h or max(left, right) >= w)):
        return _pad_axis(_pad_axis(x, top, bottom, -2, mode), left, right, -1, mode)
    # No autograd: one full copy into a preallocated result, then the edges (two
    # concatenations would copy the image twice).
    out = x.new_empty(*x.shape[:-2], h + top + bottom, w + left + right)
    rows = out.narrow(-2, top, h)
    rows.narrow(-1, left, w).copy_(x)
    _fill_edges(rows, left, right, -1, mode)
    _fill_edges(out, top, bottom, -2, mode)
    return out


def _fill_edges(t: Tensor, before: int, after: int, dim: int, mode: str) -> None:
    """Fill the first ``before`` and last ``after`` entries of ``t`` along ``dim`` from the core between them."""
    n = t.shape[dim] - before - after
    core = t.narrow(dim, before, n)
    for width, dst, src in (
        (before, t.narrow(dim, 0, before), _edge_source(core, before, dim, mode, low=True)),
        (after, t.narrow(dim, before + n, after), _edge_source(core, after, dim, mode, low=False)),
    ):
        if width:
            dst.copy_(src)


def _edge_source(core: Tensor, width: int, dim: int, mode: str, low: bool) -> Tensor:
    """What :func:`_pad_axis` puts on one side of ``core`` (a copy or a view that does not overlap it)."""
    n = core.shape[dim]
    if width == 0:
        return core.narrow(dim, 0, 0)
    if mode == "reflect":
        return (core.narrow(dim, 0, width) if low else core.narrow(dim, n - width, width)).flip(dim)
    if mode == "nearest":
        edge = core.narrow(dim, 0 if low else n - 1, 1)
        return edge.expand(*[width if d == dim % core.ndim else -1 for d in range(core.ndim)])
    if mode == "wrap":  # a view of the core, written to the edge: no overlap
        return core.narrow(dim, n - width, width) if low else core.narrow(dim, 0, width)
    return (core.narrow(dim, 1, width) if low else core.narrow(dim, n - 1 - width, width)).flip(dim)  # mirror


def _depthwise_weight(weight: Tensor, channels: int, name: str) -> Tensor:
    if weight.ndim == 2:
        weight = weight.expand(channels, *weight.shape)
    if weight.ndim != 3 or weight.shape[0] != channels:
        raise ValueError(f"{name}: expected shape (kh, kw) or ({channels}, kh, kw), got {tuple(weight.shape)}")
    return weight.unsqueeze(1)


def correlate2d(x: Tensor, weight: Tensor, mode: str = "reflect", cval: float = 0.0) -> Tensor:
    """Per-channel 2-D correlation, equal to ``scipy.ndimage.correlate`` on each channel.

    Args:
        x: ``(B, C, H, W)`` images.
        weight: ``(kh, kw)`` kernel shared by all channels, or ``(C, kh, kw)``.
        mode: scipy boundary mode.
    Returns:
        ``(B, C, H, W)``; differentiable in ``x`` and ``weight``.
    """
    check_image(x, "x")
    weight = _depthwise_weight(weight.to(dtype=x.dtype, device=x.device), x.shape[1], "weight")
    kh, kw = weight.shape[-2:]
    xp = pad2d(x, (kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2), mode, cval)
    return F.conv2d(xp, weight, groups=x.shape[1])


def convolve2d(x: Tensor, weight: Tensor, mode: str = "reflect", cval: float = 0.0) -> Tensor:
    """Per-channel 2-D convolution, equal to ``scipy.ndimage.convolve`` (odd kernel sizes).

    Args:
        x: ``(B, C, H, W)`` images.
        weight: ``(kh, kw)`` or ``(C, kh, kw)`` kernel with odd ``kh`` and ``kw``.
    """
    if weight.shape[-1] % 2 == 0 or weight.shape[-2] % 2 == 0:
        raise ValueError(f"weight: convolve2d needs odd kernel sizes, got {tuple(weight.shape[-2:])}")
    return correlate2d(x, weight.flip(-1, -2), mode, cval)


def _constant_taps(weight: Tensor):
    """``weight`` as nested Python floats when no gradient can flow to it, else ``None``."""
    if weight.requires_grad and torch.is_grad_enabled():
        return None
    return weight.detach().cpu().tolist()


def correlate_shifted(x: Tensor, weight: Tensor, mode: str = "reflect", cval: float = 0.0) -> Tensor:
    """:func:`correlate2d` with one ``(kh, kw)`` kernel shared by all channels, as a sum of shifted slices.

    Same result as ``scipy.ndimage.correlate`` per channel. On CPU, summing
    ``kh * kw`` shifted views of the padded input is several times faster than a
    depthwise or one-channel ``conv2d`` for these small kernels. When no gradient
    can reach ``weight`` its taps are read as Python numbers and zero taps are
    skipped (the 3x3 sharpening cross has 5 of 9); otherwise every tap is a
    differentiable tensor factor.

    Args:
        x: ``(B, C, H, W)`` images.
        weight: ``(kh, kw)`` kernel.
        mode: scipy boundary mode.
    Returns:
        ``(B, C, H, W)``.
    """
    check_image(x, "x")
    if weight.ndim != 2:
        raise ValueError(f"weight: expected shape (kh, kw), got {tuple(weight.shape)}")
    weight = weight.to(dtype=x.dtype, device=x.device)
    kh, kw = weight.shape
    h, w = x.shape[-2:]
    xp = pad2d(x, (kh // 2, kh - 1 - kh // 2, kw // 2, kw - 1 - kw // 2), mode, cval)
    taps = _constant_taps(weight)
    out = None
    for i in range(kh):
        for j in range(kw):
            wt = weight[i, j] if taps is None else taps[i][j]
            if taps is not None and wt == 0:
                continue
            view = xp[..., i : i + h, j : j + w]
            if out is None:
                out = view * wt
            elif taps is None:
                out = out + view * wt
            elif wt == 1:
                out = out.add_(view) if not out.requires_grad else out + view
            else:
                out = out.add_(view, alpha=wt) if not out.requires_grad else out + view * wt
    if out is None:
        return torch.zeros_like(x)
    return out


def correlate1d_symmetric(x: Tensor, half: Tensor, axis: int, mode: str = "reflect") -> Tensor:
    """Correlate along ``axis`` (-1 or -2) with the symmetric odd kernel ``[hn..h1, h0, h1..hn]``.

    ``half`` is the ``(n + 1,)`` tensor ``[h0, h1, ..., hn]``; mirrored taps are
    added before they are scaled, which halves the multiplications. Differentiable
    in ``x`` and ``half``; boundary as in ``scipy.ndimage.correlate1d``.
    """
    n = half.shape[0] - 1
    size = x.shape[axis]
    xp = pad2d(x, (n, n, 0, 0) if axis == -2 else (0, 0, n, n), mode)
    taps = _constant_taps(half)
    grad = taps is None
    half = half.to(x)
    out = x * (half[0] if grad else taps[0])
    for k in range(1, n + 1):
        pair = xp.narrow(axis, n - k, size) + xp.narrow(axis, n + k, size)
        if grad:
            out = out + pair * half[k]
        elif out.requires_grad:
            out = out + pair * taps[k]
        else:
            out.add_(pair, alpha=taps[k])
    return out


def separable_factors(weight: Tensor, rtol: float = 1e-6):
    """``(column, row)`` 1-D factors with ``outer(column, row) == weight`` if ``weight`` has rank one, else ``None``.

    Only for kernels no gradient can reach (a frozen stage); used to filter with
    two 1-D passes instead of one 2-D pass.

    >>> from rawdrift.isp.denoise import K_BLUR
    >>> col, row = separable_factors(K_BLUR)
    >>> bool(torch.allclose(torch.outer(col, row), K_BLUR, rtol=0, atol=1e-15))
    True
    """
    if weight.ndim != 2 or (weight.requires_grad and torch.is_grad_enabled()):
        return None
    w = weight.detach().double()
    i, j = divmod(int(w.abs().argmax()), w.shape[1])
    if w[i, j] == 0:
        return None
    col, row = w[:, j] / w[i, j], w[i, :]
    if not torch.allclose(torch.outer(col, row), w, rtol=rtol, atol=rtol * float(w.abs().max())):
        return None
    return col.to(weight.dtype), row.to(weight.dtype)
