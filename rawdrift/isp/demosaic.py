"""Demosaicing (the DM stage): from a one-channel Bayer mosaic to a full RGB image.

A Bayer sensor records one colour per pixel, so two thirds of the RGB values are
missing and must be estimated from the neighbours. This module holds batched,
differentiable torch versions of the three algorithms the paper's static data
models use, matching the reference implementations of ``colour-demosaicing``
(``demosaicing_CFA_Bayer_bilinear``, ``..._Malvar2004``, ``..._Menon2007``)
operation for operation, including their ``scipy.ndimage`` boundary modes.
Outputs are not clipped, like the reference.

Every function takes a ``(B, 1, H, W)`` float mosaic with even ``H`` and ``W``
and returns ``(B, 3, H, W)`` RGB of the same dtype and device.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_image, check_shape, check_tensor
from ..raw.cfa import cfa_masks, check_pattern, split_planes
from .filters import pad2d

__all__ = [
    "METHODS",
    "BILINEAR_KERNELS",
    "demosaic_bilinear",
    "demosaic_malvar2004",
    "demosaic_menon2007",
    "demosaic",
    "Demosaic",
]

METHODS = ("bilinear", "menon2007", "malvar2004")

# Red and blue are sampled on one pixel in four: each missing value is the mean of
# its two (edge) or four (diagonal) nearest samples. Green is sampled on one pixel
# in two: each missing value is the mean of its four direct neighbours. Applied to a
# sparse plane (zeros off its sites), the centre weight 1 keeps the measured value.
_K_RB = [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]
_K_G = [[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]]
BILINEAR_KERNELS = torch.tensor([_K_RB, _K_G, _K_RB], dtype=torch.float64)


def _check_raw(raw, pattern: str) -> Tensor:
    check_image(raw, "raw", channels=1, even=True, min_size=2)
    check_pattern(pattern)
    return raw


def _bool_masks(raw: Tensor, pattern: str) -> tuple[Tensor, Tensor, Tensor]:
    """``(H, W)`` boolean R, G, B site masks on ``raw``'s device (cached: they are never written)."""
    m = _site_sets(raw, pattern)
    return m["r"], m["g"], m["b"]


def _site_sets(raw: Tensor, pattern: str) -> dict[str, Tensor]:
    """Cached contiguous ``(H, W)`` boolean site sets: ``r``, ``g``, ``b``, the rows/columns holding
    red/blue (``r_rows`` ...), and green sites in them (``g_r_rows`` = ``g & r_rows`` ...)."""
    return _cached_site_sets(*raw.shape[-2:], pattern, str(raw.device))


@functools.lru_cache(maxsize=32)
def _cached_site_sets(h: int, w: int, pattern: str, device: str) -> dict[str, Tensor]:
    m = cfa_masks(h, w, pattern, device=torch.device(device)).bool()
    sets = {"r": m[0], "g": m[1], "b": m[2]}
    for c in "rb":
        sets[f"{c}_rows"] = _rows(sets[c]).contiguous()
        sets[f"{c}_cols"] = _cols(sets[c]).contiguous()
    for k in ("r_rows", "b_rows", "r_cols", "b_cols"):
        sets[f"g_{k}"] = sets["g"] & sets[k]
    return sets


def _rows(mask: Tensor) -> Tensor:
    """``(H, W)`` mask of the rows that hold at least one site of ``mask``."""
    return mask.any(dim=1, keepdim=True).expand_as(mask)


def _cols(mask: Tensor) -> Tensor:
    """``(H, W)`` mask of the columns that hold at least one site of ``mask``."""
    return mask.any(dim=0, keepdim=True).expand_as(mask)


def _correlate_taps(x: Tensor, kernel, mode: str) -> Tensor:
    """Correlate ``(..., H, W)`` (or ``(B, C, H, W)`` with a ``(C, kh, kw)`` tensor kernel).

    ``kernel`` is a nested list of Python floats (shared by all channels; zero
    taps skipped) or a ``(C, kh, kw)`` tensor (per channel, differentiable).
    The result is the sum of shifted copies of the padded input, added tap by
    tap in raster order, which is how ``scipy.ndimage.correlate`` orders its sum;
    on CPU this beats a depthwise ``conv2d`` for these tiny kernels.

    Why not :func:`rawdrift.isp.filters.correlate_shifted`: that one takes a single
    shared kernel and accumulates in place with ``add_(view, alpha=w)``, whose
    fused multiply-add rounds differently from scipy's multiply-then-add. Here each
    term is formed and then added, so float64 sums are bit-identical to scipy's,
    which Menon's horizontal/vertical decision needs, and kernels may differ per channel.
    """
    tensor = isinstance(kernel, Tensor)
    kh, kw = (kernel.shape[-2], kernel.shape[-1]) if tensor else (len(kernel), len(kernel[0]))
    h, w = x.shape[-2:]
    xp = pad2d(x, (kh // 2, kh // 2, kw // 2, kw // 2), mode)
    out = None
    for i in range(kh):
        for j in range(kw):
            if tensor:
                wt = kernel[:, i, j].reshape(1, -1, 1, 1)
            else:
                wt = kernel[i][j]
                if wt == 0:
                    continue
            view = xp[..., i : i + h, j : j + w]
            term = view if (not tensor and wt == 1.0) else view * wt
            out = term if out is None else out + term
    return out


def _flip(kernel: list[list[float]]) -> list[list[float]]:
    """Rotate a nested-list kernel by 180 degrees (convolution = correlation with it)."""
    return [row[::-1] for row in kernel[::-1]]


# ----------------------------------------------------------------------------- bilinear


def demosaic_bilinear(raw: Tensor, pattern: str = "RGGB", kernels: Tensor | None = None) -> Tensor:
    """Bilinear demosaicing, optionally with learnable per-channel kernels.

    The mosaic is split into three sparse planes (each colour's samples, zeros
    elsewhere) and each plane is convolved with its own 3x3 kernel. With the
    default :data:`BILINEAR_KERNELS` every missing value becomes the average of the
    nearest samples of that colour, which is ``demosaicing_CFA_Bayer_bilinear``;
    borders use scipy's ``"reflect"`` mode (edge sample repeated), as the
    reference does. With other kernels this is the paper's parametrized DM stage.

    Args:
        raw: ``(B, 1, H, W)`` float mosaic, ``H`` and ``W`` even.
        pattern: Bayer pattern, one of ``RGGB``, ``BGGR``, ``GRBG``, ``GBRG``.
        kernels: ``(3, 3, 3)`` kernels ``[k_R, k_G, k_B]`` (convolution, not
            correlation, like ``scipy.ndimage.convolve``); ``None`` for
            :data:`BILINEAR_KERNELS`. Cast to ``raw``'s dtype and device.
    Returns:
        ``(B, 3, H, W)`` RGB, differentiable in ``raw`` and ``kernels``.

    >>> raw = torch.ones(1, 1, 4, 4)
    >>> demosaic_bilinear(raw)[0, :, 1, 1].tolist()
    [1.0, 1.0, 1.0]
    """
    _check_raw(raw, pattern)
    if kernels is None:
        kernels = BILINEAR_KERNELS
    check_tensor(kernels, "kernels")
    check_shape(kernels, (3, 3, 3), "kernels")
    if not kernels.is_floating_point():
        raise ValueError(f"kernels: expected a floating-point tensor, got dtype {kernels.dtype}")
    planes = split_planes(raw, pattern)
    kernels = kernels.to(dtype=raw.dtype, device=raw.device)
    return _correlate_taps(planes, kernels.flip(-1, -2), "reflect")


def _bilinear_frozen(raw: Tensor, pattern: str) -> Tensor:
    """:func:`demosaic_bilinear` with the default kernels, computed on the mosaic (no gradient).

    Away from the border a missing value is the mean of the two horizontal, two
    vertical, four diagonal or four direct neighbours, so three neighbour sums of
    the mosaic (row pairs, column pairs, diagonal quadruples) give every output with
    one scaling each, written straight into the 2x2 phases of the result: about a
    third of the arithmetic of filtering three sparse planes. The one-pixel border,
    where the reference's ``"reflect"`` padding of the sparse planes breaks the
    Bayer alternation, is recomputed from two-pixel strips with the general method.
    """
    b, _, h, w = raw.shape
    x = raw[:, 0]
    xp = pad2d(x, (1, 1, 1, 1), "reflect")
    cols = xp[:, :-2, :] + xp[:, 2:, :]  # (B, H, W + 2): up + down
    vert = cols[:, :, 1:-1]
    diag = cols[:, :, :-2] + cols[:, :, 2:]
    horiz = xp[:, 1:-1, :-2] + xp[:, 1:-1, 2:]
    out = raw.new_empty(b, 3, h, w)
    sites = {c: divmod(pattern.index(c), 2) for c in "RB"}
    for py in (0, 1):
        for px in (0, 1):
            phase = (slice(None), slice(py, None, 2), slice(px, None, 2))
            colour = pattern[2 * py + px]
            for ch, c in ((0, "R"), (2, "B")):
                dst = out[:, ch, py::2, px::2]
                cy, cx = sites[c]
                if (py, px) == (cy, cx):
                    dst.copy_(x[phase])
                elif py == cy:
                    torch.mul(horiz[phase], 0.5, out=dst)
                elif px == cx:
                    torch.mul(vert[phase], 0.5, out=dst)
                else:
                    torch.mul(diag[phase], 0.25, out=dst)
            dst = out[:, 1, py::2, px::2]
            if colour == "G":
                dst.copy_(x[phase])
            else:
                torch.add(horiz[phase], vert[phase], out=dst).mul_(0.25)
    k = BILINEAR_KERNELS.to(raw).flip(-1, -2)
    n = raw.shape[0]
    rows = _correlate_taps(split_planes(torch.cat([raw[:, :, :2], raw[:, :, -2:]]), pattern), k, "reflect")
    out[:, :, :1, :], out[:, :, -1:, :] = rows[:n, :, :1], rows[n:, :, -1:]
    cols = _correlate_taps(split_planes(torch.cat([raw[..., :2], raw[..., -2:]]), pattern), k, "reflect")
    out[..., :1], out[..., -1:] = cols[:n, ..., :1], cols[n:, ..., -1:]
    return out


# ----------------------------------------------------------------------------- Malvar 2004

# Malvar, He & Cutler (2004): bilinear interpolation plus a fraction of the
# Laplacian of the colour that *is* measured at the pixel, which restores the
# high frequencies the bilinear average smooths away. Kernels (scaled by 1/8) as
# in colour-demosaicing: green at red/blue sites; red/blue at green sites whose row
# holds red/blue (and its transpose for columns); red at blue sites and vice versa.
_MALVAR_G_AT_RB = [
    [0.0, 0.0, -1.0, 0.0, 0.0],
    [0.0, 0.0, 2.0, 0.0, 0.0],
    [-1.0, 2.0, 4.0, 2.0, -1.0],
    [0.0, 0.0, 2.0, 0.0, 0.0],
    [0.0, 0.0, -1.0, 0.0, 0.0],
]
_MALVAR_ROW = [
    [0.0, 0.0, 0.5, 0.0, 0.0],
    [0.0, -1.0, 0.0, -1.0, 0.0],
    [-1.0, 4.0, 5.0, 4.0, -1.0],
    [0.0, -1.0, 0.0, -1.0, 0.0],
    [0.0, 0.0, 0.5, 0.0, 0.0],
]
_MALVAR_DIAG = [
    [0.0, 0.0, -1.5, 0.0, 0.0],
    [0.0, 2.0, 0.0, 2.0, 0.0],
    [-1.5, 0.0, 6.0, 0.0, -1.5],
    [0.0, 2.0, 0.0, 2.0, 0.0],
    [0.0, 0.0, -1.5, 0.0, 0.0],
]
_MALVAR_KERNELS = tuple(
    _flip([[v / 8 for v in row] for row in k])  # flipped: convolution as correlation
    for k in (_MALVAR_G_AT_RB, _MALVAR_ROW, [list(c) for c in zip(*_MALVAR_ROW)], _MALVAR_DIAG)
)


def _malvar_filters(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The four Malvar filters on ``(B, H, W)`` (``"reflect"`` borders) from shared neighbour sums.

    With ``h1``/``v1`` the sums of the two horizontal/vertical neighbours at distance
    1, ``h2``/``v2`` at distance 2 and ``d1`` the four diagonal neighbours, the
    kernels of :data:`_MALVAR_KERNELS` (all symmetric) are, times 8:
    green at red/blue ``4c + 2 (h1 + v1) - (h2 + v2)``; row ``5c + 4 h1 - h2 - d1 + v2 / 2``;
    column ``5c + 4 v1 - v2 - d1 + h2 / 2``; diagonal ``6c + 2 d1 - 3/2 (h2 + v2)``.
    Five neighbour sums replace 40 separate taps; equal to the tap-by-tap sums up to rounding.
    """
    h, w = x.shape[-2:]
    xp = pad2d(x, (2, 2, 2, 2), "reflect")  # (B, H + 4, W + 4)
    rows = xp[:, 2 : h + 2]
    c = rows[..., 2 : w + 2]
    h1 = rows[..., 1 : w + 1] + rows[..., 3 : w + 3]
    h2 = rows[..., 0:w] + rows[..., 4 : w + 4]
    v1_wide = xp[:, 1 : h + 1] + xp[:, 3 : h + 3]  # (B, H, W + 4)
    v1 = v1_wide[..., 2 : w + 2]
    d1 = v1_wide[..., 1 : w + 1] + v1_wide[..., 3 : w + 3]
    v2 = xp[:, 0:h, 2 : w + 2] + xp[:, 4 : h + 4, 2 : w + 2]
    hv2 = h2 + v2
    g_at_rb = (c * 4 + (h1 + v1) * 2 - hv2) * 0.125
    base = c * 5 - d1
    at_row = (base + h1 * 4 - h2 + v2 * 0.5) * 0.125
    at_col = (base + v1 * 4 - v2 + h2 * 0.5) * 0.125
    diag = (c * 6 + d1 * 2 - hv2 * 1.5) * 0.125
    return g_at_rb, at_row, at_col, diag


def demosaic_malvar2004(raw: Tensor, pattern: str = "RGGB") -> Tensor:
    """Malvar-He-Cutler (2004) gradient-corrected linear demosaicing.

    Each missing value is a bilinear estimate corrected by the local Laplacian of
    the colour measured at that pixel: where the measured colour changes fast, the
    missing ones are assumed to change alike (colours are strongly correlated at
    edges). That is four fixed 5x5 linear filters on the mosaic, each used at the
    sites it was designed for: green at red/blue sites; red (blue) at green sites
    in a red (blue) row; the same in columns (the transposed filter); red at blue
    sites and blue at red sites. Measured values are kept. Borders use scipy's
    ``"reflect"`` mode, as ``demosaicing_CFA_Bayer_Malvar2004`` does.

    Args:
        raw: ``(B, 1, H, W)`` float mosaic, ``H`` and ``W`` even.
        pattern: Bayer pattern.
    Returns:
        ``(B, 3, H, W)`` RGB (not clipped), linear hence differentiable everywhere in ``raw``.

    >>> demosaic_malvar2004(torch.full((1, 1, 6, 6), 0.5))[0, :, 2, 3].tolist()
    [0.5, 0.5, 0.5]
    """
    _check_raw(raw, pattern)
    m = _site_sets(raw, pattern)
    r_m, g_m, b_m = m["r"], m["g"], m["b"]
    x = raw[:, 0]  # (B, H, W)
    g_at_rb, at_row, at_col, diag = _malvar_filters(x)
    zero = x.new_zeros(())
    r_rows, r_cols, b_rows, b_cols = m["r_rows"], m["r_cols"], m["b_rows"], m["b_cols"]
    g = torch.where(r_m | b_m, g_at_rb, torch.where(g_m, x, zero))
    r = torch.where(r_m, x, zero)
    b = torch.where(b_m, x, zero)
    r = torch.where(r_rows & b_cols, at_row, r)
    r = torch.where(b_rows & r_cols, at_col, r)
    b = torch.where(b_rows & r_cols, at_row, b)
    b = torch.where(r_rows & b_cols, at_col, b)
    r = torch.where(b_rows & b_cols, diag, r)
    b = torch.where(r_rows & r_cols, diag, b)
    return torch.stack([r, g, b], dim=1)


# ----------------------------------------------------------------------------- Menon 2007


def _symmetric_1d(x: Tensor, half: list[float], axis: int, mode: str = "mirror") -> Tensor:
    """``scipy.ndimage.convolve1d`` with an odd symmetric kernel, summed in scipy's order.

    ``half`` holds the taps from the centre outwards: ``[w0, w1, ..., wn]`` for the
    kernel ``[wn, ..., w1, w0, w1, ..., wn]``. Scipy evaluates such a kernel as
    ``x*w0 + (x[-n] + x[+n])*wn + ... + (x[-1] + x[+1])*w1``; repeating that order
    reproduces its float64 results bit for bit, which keeps Menon's directional
    decision (a comparison of two such sums) identical to the reference. Zero
    taps are skipped (they add an exact zero). ``axis`` is -1 (rows) or -2 (columns).
    """
    n = len(half) - 1
    size = x.shape[axis]
    if mode == "mirror" and size > 2 * n and not (torch.is_grad_enabled() and x.requires_grad):
        # Same sums without a padded copy, accumulated in place (no gradient needed).
        out = x * half[0] if half[0] != 0 else None
        for k in range(n, 0, -1):
            if half[k] == 0:
                continue
            term = _mirror_pair_sum(x, k, axis).mul_(half[k])
            out = term if out is None else out.add_(term)
        return out
    pad = (0, 0, n, n) if axis == -1 else (n, n, 0, 0)
    xp = pad2d(x, pad, mode)

    def shifted(s: int) -> Tensor:
        return xp.narrow(axis, n + s, size)

    out = x * half[0] if half[0] != 0 else None
    for k in range(n, 0, -1):
        if half[k] == 0:
            continue
        term = (shifted(-k) + shifted(k)) * half[k]
        out = term if out is None else out + term
    return out


def _mirror_pair_sum(x: Tensor, k: int, axis: int) -> Tensor:
    """``x[j - k] + x[j + k]`` along ``axis`` with scipy ``"mirror"`` borders, for ``size > 2k``, no autograd."""
    size = x.shape[axis]
    out = torch.empty_like(x)
    inner = size - 2 * k
    torch.add(x.narrow(axis, 0, inner), x.narrow(axis, 2 * k, inner), out=out.narrow(axis, k, inner))
    for j in range(k):  # x[j - k] mirrors to x[k - j]
        torch.add(x.narrow(axis, k - j, 1), x.narrow(axis, j + k, 1), out=out.narrow(axis, j, 1))
    for j in range(size - k, size):  # x[j + k] mirrors to x[2 (size - 1) - j - k]
        torch.add(x.narrow(axis, j - k, 1), x.narrow(axis, 2 * (size - 1) - j - k, 1), out=out.narrow(axis, j, 1))
    return out


def _cnv_h(x: Tensor, half: list[float]) -> Tensor:
    return _symmetric_1d(x, half, -1)


def _cnv_v(x: Tensor, half: list[float]) -> Tensor:
    return _symmetric_1d(x, half, -2)


def _convolve_taps(x: Tensor, kernel: list[list[float]]) -> Tensor:
    """``scipy.ndimage.convolve(x, kernel, mode="constant")`` summed in scipy's order.

    Scipy flips the kernel and adds its non-zero taps in raster order; doing the
    same keeps float64 results bit-identical. ``kernel`` is odd-sized.
    """
    return _correlate_taps(x, _flip(kernel), "constant")


_H0 = [0.0, 0.5, 0.0]  # [0, .5, 0, .5, 0]: mean of the two same-row greens
_H1 = [0.5, 0.0, -0.25]  # [-.25, 0, .5, 0, -.25]: Laplacian of the sampled colour
_KB = [0.0, 0.5]  # [.5, 0, .5]: mean of the two neighbours
_FIR = [1.0 / 3.0, 1.0 / 3.0]  # [1, 1, 1] / 3
_K_CLASSIFIER = [
    [0.0, 0.0, 1.0, 0.0, 1.0],
    [0.0, 0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 3.0, 0.0, 3.0],
    [0.0, 0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 1.0],
]
_K_CLASSIFIER_T = [list(r) for r in zip(*_K_CLASSIFIER)]


def demosaic_menon2007(raw: Tensor, pattern: str = "RGGB", refining_step: bool = True) -> Tensor:
    """Menon-Andriani-Calvagno (2007) directional filtering with a posteriori decision (DDFAPD).

    1. Green is interpolated twice at red/blue sites: along the row and along the
       column, each as the mean of the two green neighbours plus a Laplacian
       correction from the measured colour (5-tap filters, scipy ``"mirror"`` borders).
    2. Decision: for each direction, the colour difference (R-G or B-G) is
       computed at red/blue sites and its absolute change over two pixels in that
       direction is summed over a 5x5 neighbourhood (zero borders). The direction
       whose colour difference varies less (ties go to horizontal) gives green.
    3. Red and blue at green sites are the green value plus the neighbours' mean
       colour difference along the row or column that holds that colour; red at
       blue sites (and blue at red sites) use the direction chosen in step 2.
    4. Optional refining: the colour differences are smoothed with a 3-tap mean
       along the chosen direction (or the row/column of the sampled colour) and
       the three channels are rebuilt from them, as in ``refining_step_Menon2007``.

    Additions inside each sum follow scipy's order so that, in float64, the
    horizontal/vertical decision is bit-identical to ``demosaicing_CFA_Bayer_Menon2007``.
    For float32 input the decision (step 2 only) is computed in float64 (except
    on MPS, which lacks it): near-ties, common on smooth ramps, would otherwise
    flip and change green by far more than float32 rounding.

    Gradients: the output is a piecewise linear function of ``raw``. Within a
    region where no horizontal/vertical decision changes it is linear and
    gradients are exact; the decision itself (a comparison) carries no gradient,
    so the derivative is undefined where the two directional scores tie.

    Args:
        raw: ``(B, 1, H, W)`` float mosaic, ``H`` and ``W`` even.
        pattern: Bayer pattern.
        refining_step: apply step 4 (the reference's default).
    Returns:
        ``(B, 3, H, W)`` RGB, not clipped.

    >>> demosaic_menon2007(torch.full((1, 1, 6, 6), 0.25))[0, :, 3, 2].tolist()
    [0.25, 0.25, 0.25]
    """
    _check_raw(raw, pattern)
    if not isinstance(refining_step, bool):
        raise ValueError(f"refining_step: expected a bool, got {refining_step!r}")
    m = _site_sets(raw, pattern)
    r_m, g_m, b_m = m["r"], m["g"], m["b"]
    x = raw[:, 0]  # (B, H, W)
    zero = x.new_zeros(())
    r = torch.where(r_m, x, zero)
    g = torch.where(g_m, x, zero)
    b = torch.where(b_m, x, zero)

    # 1. Directional green estimates.
    # 2. A posteriori decision, in float64 where the device has it, so that a
    # float32 input takes the same decisions as the float64 reference.
    if x.dtype == torch.float64 or x.device.type == "mps":
        g_h, g_v = _menon_green(x, g, g_m)
        horizontal = _menon_decision(x, g_h, g_v, r_m, b_m)
    else:
        need_grad = torch.is_grad_enabled() and x.requires_grad
        with torch.no_grad():
            x64 = x.detach().double()
            g_h64, g_v64 = _menon_green(x64, torch.where(g_m, x64, x64.new_zeros(())), g_m)
            horizontal = _menon_decision(x64, g_h64, g_v64, r_m, b_m)
        if need_grad:
            g_h, g_v = _menon_green(x, g, g_m)
        else:  # the float64 estimates rounded once: no second (float32) computation
            g_h, g_v = g_h64.to(x.dtype), g_v64.to(x.dtype)
    g = torch.where(horizontal, g_h, g_v)

    # 3. Red and blue from colour differences.
    g_r_rows, g_b_rows = m["g_r_rows"], m["g_b_rows"]
    if x.dtype == torch.float64:  # the reference's order of operations, bit for bit
        r = torch.where(g_r_rows, g + _cnv_h(r, _KB) - _cnv_h(g, _KB), r)
        r = torch.where(g_b_rows, g + _cnv_v(r, _KB) - _cnv_v(g, _KB), r)
        b = torch.where(g_b_rows, g + _cnv_h(b, _KB) - _cnv_h(g, _KB), b)
        b = torch.where(g_r_rows, g + _cnv_v(b, _KB) - _cnv_v(g, _KB), b)
        r_at_b = torch.where(horizontal, b + _cnv_h(r, _KB) - _cnv_h(b, _KB), b + _cnv_v(r, _KB) - _cnv_v(b, _KB))
        r = torch.where(b_m, r_at_b, r)
        b_at_r = torch.where(horizontal, r + _cnv_h(b, _KB) - _cnv_h(r, _KB), r + _cnv_v(b, _KB) - _cnv_v(r, _KB))
        b = torch.where(r_m, b_at_r, b)
    else:
        # The filters are linear, so each colour difference is filtered once (half
        # the filterings; equal up to rounding). Every estimate reads only the
        # green-site neighbours of the site it fills, so one R-B difference serves
        # red at blue sites and blue at red sites.
        r_g, b_g = r - g, b - g
        r = torch.where(g_r_rows, g + _cnv_h(r_g, _KB), r)
        r = torch.where(g_b_rows, g + _cnv_v(r_g, _KB), r)
        b = torch.where(g_b_rows, g + _cnv_h(b_g, _KB), b)
        b = torch.where(g_r_rows, g + _cnv_v(b_g, _KB), b)
        r_b = r - b
        r_b_dir = torch.where(horizontal, _cnv_h(r_b, _KB), _cnv_v(r_b, _KB))
        r = torch.where(b_m, b + r_b_dir, r)
        b = torch.where(r_m, r - r_b_dir, b)

    if refining_step:
        r, g, b = _menon_refine(r, g, b, m, horizontal)
    return torch.stack([r, g, b], dim=1)


def _menon_green(x: Tensor, g: Tensor, g_m: Tensor) -> tuple[Tensor, Tensor]:
    """Horizontal and vertical green estimates ``(B, H, W)`` (measured greens kept)."""
    g_h = torch.where(g_m, g, _symmetric_1d(x, _H0, -1) + _symmetric_1d(x, _H1, -1))
    g_v = torch.where(g_m, g, _symmetric_1d(x, _H0, -2) + _symmetric_1d(x, _H1, -2))
    return g_h, g_v


def _menon_decision(x: Tensor, g_h: Tensor, g_v: Tensor, r_m: Tensor, b_m: Tensor) -> Tensor:
    """``(B, H, W)`` bool, True where the horizontal estimate wins (ties included).

    The colour difference (R-G or B-G, zero at green sites) is formed for each
    direction; its absolute change over two pixels along that direction, summed
    with the classifier weights over a 5x5 window, scores how much the
    difference varies. The smaller score wins.
    """
    # At green sites the estimates hold the measured green, so x - g is exactly 0 there.
    c_h = x - g_h
    c_v = x - g_v
    d_h = (c_h - pad2d(c_h, (0, 0, 0, 2), "mirror")[..., 2:]).abs()
    d_v = (c_v - pad2d(c_v, (0, 2, 0, 0), "mirror")[..., 2:, :]).abs()
    score_h = _convolve_taps(d_h, _K_CLASSIFIER)
    score_v = _convolve_taps(d_v, _K_CLASSIFIER_T)
    return (score_v >= score_h).detach()


def _menon_refine(r, g, b, m, horizontal):
    """Menon's refining step on ``(B, H, W)`` channels (``refining_step_Menon2007``)."""
    r_m, b_m = m["r"], m["b"]
    zero = g.new_zeros(())

    def along_decision(t: Tensor) -> Tensor:
        return torch.where(horizontal, _cnv_h(t, _FIR), _cnv_v(t, _FIR))

    # Green at red/blue sites from the smoothed colour differences.
    r_g_m = torch.where(r_m, along_decision(r - g), zero)
    b_g_m = torch.where(b_m, along_decision(b - g), zero)
    g = torch.where(r_m, r - r_g_m, g)
    g = torch.where(b_m, b - b_g_m, g)

    # Red and blue at green sites, from the row or column holding that colour.
    r_g = r - g
    b_g = b - g
    at = m["g_b_rows"]
    r_g_m = torch.where(at, _cnv_v(r_g, _KB), r_g_m)
    r = torch.where(at, g + r_g_m, r)
    at = m["g_b_cols"]
    r_g_m = torch.where(at, _cnv_h(r_g, _KB), r_g_m)
    r = torch.where(at, g + r_g_m, r)
    at = m["g_r_rows"]
    b_g_m = torch.where(at, _cnv_v(b_g, _KB), b_g_m)
    b = torch.where(at, g + b_g_m, b)
    at = m["g_r_cols"]
    b_g_m = torch.where(at, _cnv_h(b_g, _KB), b_g_m)
    b = torch.where(at, g + b_g_m, b)

    # Red at blue sites and blue at red sites from the smoothed R-B difference.
    r_b_m = along_decision(r - b)  # used at blue and at red sites (one filtering for both)
    r = torch.where(b_m, b + r_b_m, r)
    b = torch.where(r_m, r - r_b_m, b)
    return r, g, b


# ----------------------------------------------------------------------------- dispatch

_FUNCTIONS = {
    "bilinear": demosaic_bilinear,
    "menon2007": demosaic_menon2007,
    "malvar2004": demosaic_malvar2004,
}


def demosaic(raw: Tensor, method: str, pattern: str = "RGGB") -> Tensor:
    """Demosaic with the named method, one of :data:`METHODS` (reference settings).

    Args:
        raw: ``(B, 1, H, W)`` float mosaic, ``H`` and ``W`` even.
        method: ``"bilinear"``, ``"menon2007"`` or ``"malvar2004"``.
        pattern: Bayer pattern.
    Returns:
        ``(B, 3, H, W)`` RGB.
    """
    check_choice(method, METHODS, "method")
    return _FUNCTIONS[method](raw, pattern)


class Demosaic(nn.Module):
    """The DM stage as a module.

    For ``method="bilinear"`` the module owns ``kernels`` ``(3, 3, 3)``
    (initialised to :data:`BILINEAR_KERNELS` in the default dtype): a trainable
    ``nn.Parameter`` when ``learnable`` (the paper's parametrized DM stage), a
    buffer otherwise. Malvar and Menon have no parameters.

    Args:
        method: one of :data:`METHODS`.
        pattern: Bayer pattern of the input mosaics.
        learnable: make the bilinear kernels trainable (bilinear only).
    """

    def __init__(self, method: str = "bilinear", pattern: str = "RGGB", learnable: bool = False):
        super().__init__()
        check_choice(method, METHODS, "method")
        check_pattern(pattern)
        if learnable and method != "bilinear":
            raise ValueError(f"learnable: only the bilinear method has parameters, got method={method!r}")
        self.method = method
        self.pattern = pattern
        if method == "bilinear":
            k = BILINEAR_KERNELS.to(torch.get_default_dtype()).clone()
            if learnable:
                self.kernels = nn.Parameter(k)
            else:
                self.register_buffer("kernels", k)

    def forward(self, raw: Tensor) -> Tensor:
        """``(B, 1, H, W)`` mosaic -> ``(B, 3, H, W)`` RGB."""
        if self.method == "bilinear":
            grad = torch.is_grad_enabled() and (raw.requires_grad or self.kernels.requires_grad)
            if not grad and torch.equal(self.kernels, BILINEAR_KERNELS.to(self.kernels)):
                _check_raw(raw, self.pattern)
                return _bilinear_frozen(raw, self.pattern)
            return demosaic_bilinear(raw, self.pattern, self.kernels)
        return demosaic(raw, self.method, self.pattern)

    def extra_repr(self) -> str:
        return f"method={self.method!r}, pattern={self.pattern!r}"
