"""Common corruptions (Hendrycks & Dietterich, ICLR 2019) on processed views, in torch.

Why this is *augmentation testing* and not a physically faithful drift
----------------------------------------------------------------------
The drift-synthesis control of rawdrift changes the data model itself: the raw
Bayer measurement stays fixed and a different image signal processing pipeline
(black level, demosaicing, white balance, denoising, sharpening, gamma) turns it
into a view. Every change therefore has a physical or engineering meaning and
could occur when a camera or its firmware is replaced.

The corruptions in this module do something different. They take the finished
view ``v`` (an sRGB-like image in ``[0, 1]``) and perturb it with a recipe that
only *looks* like a physical effect: sensor noise is added after gamma and
colour correction (real shot noise lives in the linear raw domain, before
demosaicing, and its variance depends on the raw count, not on the processed
value), blur is applied after sharpening, brightness is a shift of the HSV value
channel rather than an exposure change, and so on. There is no measurement model
behind the five severity levels; they are hand-tuned constants chosen by the
benchmark's authors so that accuracy falls roughly monotonically. Testing a model
on such images checks invariance to a family of image augmentations; it does not
tell us how the model behaves when the optical data-generating process drifts.
The paper uses the ten corruptions below, the ones that can plausibly be related
to an ISP, as the comparison baseline for physically faithful drift synthesis
(fog, snow, frost, spatter and motion blur are excluded).

Definitions and constants
-------------------------
Each function follows the published ImageNet-C definition
(``make_imagenet_c.py`` in the ``hendrycks/robustness`` repository, folder
``ImageNet-C/create_c``; the same constants ship in the ``imagecorruptions``
package of Michaelis et al., 2019). The severity constants are ImageNet-C's,
tuned for 224 px images, not CIFAR-10-C's (which were tuned for 32 px images and
are far too mild for views of up to 256 px; using them was a defect of the
paper's released code). :func:`severity_constants` returns the table.

The reference code works on one ``(H, W, 3)`` numpy image at a time and has a
few hard-coded 224 px assumptions; here everything is batched ``(B, 3, H, W)``,
works for any ``H`` and ``W``, on any device, and draws its randomness from an
optional :class:`torch.Generator` (the same seed gives the same corruption on CPU
and CUDA because random numbers are drawn on the generator's device). Where a
definition depends on the image size this is stated in the function's docstring.
All outputs are clipped to ``[0, 1]`` like the reference.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_image, check_int
from ..isp.filters import boundary_indices

__all__ = [
    "CORRUPTIONS",
    "REFERENCE_SIZE",
    "SOURCE",
    "corrupt",
    "severity_constants",
    "rgb_to_hsv",
    "hsv_to_rgb",
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "gaussian_blur",
    "zoom_blur",
    "contrast",
    "brightness",
    "saturate",
    "elastic_transform",
]

CORRUPTIONS = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "gaussian_blur",
    "zoom_blur",
    "contrast",
    "brightness",
    "saturate",
    "elastic_transform",
)

#: Side length (px) of the ImageNet-C images the constants were tuned for.
REFERENCE_SIZE = 224

SOURCE = (
    "Hendrycks & Dietterich (2019), Benchmarking neural network robustness to common "
    "corruptions and perturbations, ICLR; constants of ImageNet-C/create_c/make_imagenet_c.py "
    "in github.com/hendrycks/robustness (also in the imagecorruptions package)."
)

# One entry per severity 1..5, in the units of the published definition.
_CONSTANTS: dict[str, dict] = {
    "gaussian_noise": {"meaning": "standard deviation of additive Gaussian noise",
                       "values": (0.08, 0.12, 0.18, 0.26, 0.38)},
    "shot_noise": {"meaning": "Poisson rate scale c: out = Poisson(c * x) / c",
                   "values": (60, 25, 12, 5, 3)},
    "impulse_noise": {"meaning": "fraction of values replaced by salt (1) or pepper (0), half each",
                      "values": (0.03, 0.06, 0.09, 0.17, 0.27)},
    "speckle_noise": {"meaning": "standard deviation of multiplicative Gaussian noise: x + x * n",
                      "values": (0.15, 0.2, 0.35, 0.45, 0.6)},
    "gaussian_blur": {"meaning": "Gaussian sigma in px (skimage.filters.gaussian, mode nearest, truncate 4)",
                      "values": (1, 2, 3, 4, 6)},
    "zoom_blur": {"meaning": "zoom factors as numpy.arange(start, stop, step); the view is averaged with them",
                  "values": ((1, 1.11, 0.01), (1, 1.16, 0.01), (1, 1.21, 0.02), (1, 1.26, 0.02),
                             (1, 1.31, 0.03))},
    "contrast": {"meaning": "factor c: out = (x - mean) * c + mean, mean per image and channel",
                 "values": (0.4, 0.3, 0.2, 0.1, 0.05)},
    "brightness": {"meaning": "shift of the HSV value channel",
                   "values": (0.1, 0.2, 0.3, 0.4, 0.5)},
    "saturate": {"meaning": "(scale, offset) of the HSV saturation channel",
                 "values": ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))},
    "elastic_transform": {
        "meaning": "(alpha, sigma, affine range) in px at 224 px; written as 244 * k in the source, "
                   "whose comment says 244 should have been 224 (kept as published)",
        "values": ((244 * 2, 244 * 0.7, 244 * 0.1), (244 * 2, 244 * 0.08, 244 * 0.2),
                   (244 * 0.05, 244 * 0.01, 244 * 0.02), (244 * 0.07, 244 * 0.01, 244 * 0.02),
                   (244 * 0.12, 244 * 0.01, 244 * 0.02)),
    },
}


def severity_constants() -> dict[str, dict]:
    """The ImageNet-C parameters of each corruption at severities 1..5.

    Returns:
        ``{name: {"meaning": str, "values": tuple of 5, "source": str}}`` (a copy).

    >>> severity_constants()["gaussian_noise"]["values"]
    (0.08, 0.12, 0.18, 0.26, 0.38)
    >>> sorted(severity_constants()) == sorted(CORRUPTIONS)
    True
    """
    table = copy.deepcopy(_CONSTANTS)
    for entry in table.values():
        entry["source"] = SOURCE
    return table


def _param(name: str, severity: int):
    return _CONSTANTS[name]["values"][severity - 1]


def _check(images, severity, generator, min_size: int = 2) -> None:
    check_image(images, "images", channels=3, min_size=min_size)
    check_int(severity, "severity", minimum=1)
    check_choice(severity, (1, 2, 3, 4, 5), "severity")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")


def _draw_dtype(images: Tensor) -> torch.dtype:
    return torch.float64 if images.dtype == torch.float64 else torch.float32


def _randn(shape, images: Tensor, generator) -> Tensor:
    """Standard normal draws on the generator's device, moved to the images'."""
    device = images.device if generator is None else generator.device
    z = torch.randn(shape, generator=generator, device=device, dtype=_draw_dtype(images))
    return z.to(device=images.device, dtype=images.dtype)


def _rand(shape, images: Tensor, generator, dtype: torch.dtype | None = None) -> Tensor:
    """Uniform ``[0, 1)`` draws on the generator's device, moved to the images' device (and dtype)."""
    device = images.device if generator is None else generator.device
    dtype = dtype or images.dtype
    u = torch.rand(shape, generator=generator, device=device, dtype=_draw_dtype(images))
    return u.to(device=images.device, dtype=dtype)


# ----------------------------------------------------------------------------- colour space


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """RGB to HSV with the conventions of ``skimage.color.rgb2hsv``.

    Hue, saturation and value all lie in ``[0, 1]``. Where several channels share
    the maximum, blue wins over green and green over red (the order in which
    skimage assigns the hue); hue and saturation are 0 for grey pixels.

    Args:
        rgb: ``(B, 3, H, W)`` colours in ``[0, 1]``.
    Returns:
        ``(B, 3, H, W)`` with channels (hue, saturation, value).

    >>> rgb_to_hsv(torch.tensor([0.0, 0.5, 1.0]).reshape(1, 3, 1, 1)).flatten().tolist()
    [0.5833333134651184, 1.0, 1.0]
    """
    check_image(rgb, "rgb", channels=3)
    r, g, b = rgb.unbind(1)
    value = rgb.amax(1)
    delta = value - rgb.amin(1)
    grey = delta == 0
    safe = torch.where(grey, torch.ones_like(delta), delta)
    hue = torch.where(
        b == value,
        4.0 + (r - g) / safe,
        torch.where(g == value, 2.0 + (b - r) / safe, (g - b) / safe),
    )
    hue = torch.where(grey, torch.zeros_like(hue), torch.remainder(hue / 6.0, 1.0))
    sat = torch.where(grey, torch.zeros_like(delta), delta / torch.where(grey, torch.ones_like(value), value))
    return torch.stack((hue, sat, value), 1)


# For each hue sector 0..5, which of (v, t, p, q) becomes R, G and B.
_SECTOR_TABLE = torch.tensor([[0, 1, 2], [3, 0, 2], [2, 0, 1], [2, 3, 0], [1, 2, 0], [0, 2, 3]])


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """HSV to RGB with the conventions of ``skimage.color.hsv2rgb`` (hue sector ``floor(6h) mod 6``).

    Args:
        hsv: ``(B, 3, H, W)`` (hue, saturation, value) in ``[0, 1]``.
    Returns:
        ``(B, 3, H, W)`` RGB.

    >>> hsv_to_rgb(torch.tensor([0.5, 1.0, 1.0]).reshape(1, 3, 1, 1)).flatten().tolist()
    [0.0, 1.0, 1.0]
    """
    check_image(hsv, "hsv", channels=3)
    h, s, v = hsv.unbind(1)
    sector = torch.floor(h * 6.0)
    f = h * 6.0 - sector
    p = v * (1.0 - s)
    q = v * (1.0 - f * s)
    t = v * (1.0 - (1.0 - f) * s)
    candidates = torch.stack((v, t, p, q), 1)  # (B, 4, H, W)
    idx = torch.remainder(sector.long(), 6)
    choice = _SECTOR_TABLE.to(hsv.device)[idx].permute(0, 3, 1, 2)  # (B, 3, H, W)
    return torch.gather(candidates, 1, choice)


# ----------------------------------------------------------------------------- noise


def gaussian_noise(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Additive white Gaussian noise: ``clip(x + c * n)``, ``n ~ N(0, 1)`` per value.

    ImageNet-C ``gaussian_noise``; ``c`` in :func:`severity_constants`. Independent
    of image size.

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: optional :class:`torch.Generator` for reproducible noise.
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    c = _param("gaussian_noise", severity)
    return (images + c * _randn(images.shape, images, generator)).clamp(0.0, 1.0)


def shot_noise(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Poisson ("shot") noise on the processed view: ``clip(Poisson(c * x) / c)``.

    ImageNet-C ``shot_noise``. The mean is kept (``x``) and the variance is ``x / c``
    before clipping. Note ``c`` counts "photons" at full scale of the *processed*
    value, which is not how a sensor works (see the module docstring).
    Random numbers are drawn on the generator's device (the images are copied
    there for the draw when it differs).

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: optional :class:`torch.Generator`.
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    c = float(_param("shot_noise", severity))
    device = images.device if generator is None else generator.device
    rates = (images.detach().clamp_min(0.0) * c).to(device=device, dtype=_draw_dtype(images))
    counts = torch.poisson(rates, generator=generator).to(device=images.device, dtype=images.dtype)
    return (counts / c).clamp(0.0, 1.0)


def impulse_noise(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Salt-and-pepper noise as ``skimage.util.random_noise(mode="s&p", amount=c)``.

    Each value (each channel of each pixel independently) is replaced with
    probability ``c``; a replaced value becomes 1 or 0 with equal probability.
    ImageNet-C ``impulse_noise``; independent of image size.

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: optional :class:`torch.Generator`.
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    c = _param("impulse_noise", severity)
    u = _rand((2, *images.shape), images, generator)
    flipped = u[0] < c
    salt = (u[1] < 0.5).to(images.dtype)
    return torch.where(flipped, salt, images).clamp(0.0, 1.0)


def speckle_noise(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Multiplicative Gaussian noise: ``clip(x + x * c * n)``, ``n ~ N(0, 1)``.

    ImageNet-C ``speckle_noise``; independent of image size.

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: optional :class:`torch.Generator`.
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    c = _param("speckle_noise", severity)
    return (images + images * c * _randn(images.shape, images, generator)).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- blur


def _gaussian_taps(sigma: float, truncate: float) -> Tensor:
    """Normalised 1-D Gaussian taps of radius ``int(truncate * sigma + 0.5)`` (scipy's rule), float64."""
    radius = int(truncate * float(sigma) + 0.5)
    k = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (k / sigma) ** 2)
    return taps / taps.sum()


def gaussian_blur(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Separable Gaussian blur of each channel, as ``skimage.filters.gaussian(x, sigma=c)``.

    ImageNet-C ``gaussian_blur`` calls skimage with its defaults: boundary mode
    ``"nearest"`` (edge values repeated) and ``truncate=4`` (kernel radius
    ``int(4 * sigma + 0.5)``), channels filtered separately. ``sigma`` is in pixels
    and not rescaled with the image size (our views are 224-256 px, like ImageNet-C's).

    The separable filter is applied as two matrix products ``S_h @ x @ S_w.T`` whose
    matrices fold in scipy's boundary extension (:func:`rawdrift.isp.filters.boundary_indices`).
    This equals filtering with :func:`rawdrift.isp.filters.correlate2d` and a truncated
    1-D kernel (a test checks both against skimage) and runs about ten times faster on
    CPU than torch's depthwise convolution for 256 px views.

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: unused (the corruption is deterministic); accepted for a uniform API.
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    sigma = _param("gaussian_blur", severity)
    h, w = images.shape[-2:]
    sh = _smoothing_matrix(h, sigma, 4.0, "nearest", images.dtype, images.device)
    sw = sh if w == h else _smoothing_matrix(w, sigma, 4.0, "nearest", images.dtype, images.device)
    return (sh @ images @ sw.T).clamp(0.0, 1.0)


def _zoom_factors(severity: int) -> np.ndarray:
    start, stop, step = _param("zoom_blur", severity)
    return np.arange(start, stop, step)


def _clipped_zoom(images: Tensor, factor: float) -> Tensor:
    """Centre crop of size ``ceil(n / factor)``, order-1 ``scipy.ndimage.zoom`` back up, centre trim to ``n``."""
    h, w = images.shape[-2:]
    ch, cw = int(math.ceil(h / factor)), int(math.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = images[..., top:top + ch, left:left + cw]
    # scipy.ndimage.zoom: output size round(n * factor), corner-aligned linear interpolation.
    oh, ow = int(round(ch * factor)), int(round(cw * factor))
    if (oh, ow) == (ch, cw):
        zoomed = crop
    else:
        zoomed = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    th, tw = (oh - h) // 2, (ow - w) // 2
    return zoomed[..., th:th + h, tw:tw + w]


def zoom_blur(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Average of the view with centre-zoomed copies of itself (ImageNet-C ``zoom_blur``).

    For each zoom factor ``z`` of the severity (``numpy.arange`` of the published
    start, stop, step; 11 to 16 factors) the central ``ceil(n / z)`` pixels are
    zoomed back up with order-1 ``scipy.ndimage.zoom`` semantics (output size
    ``round(n_crop * z)``, corner-aligned bilinear interpolation, here
    ``F.interpolate(align_corners=True)``) and centre-trimmed to the input size.
    The output is ``clip((x + sum of zoomed) / (1 + number of factors))``.

    General sizes: the published code crops a square using the height only (its
    images are 224 x 224); here height and width are cropped and zoomed each with
    its own size, which is the same for square views. Zoom factors are relative,
    so the blur scales with the image.

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: unused (deterministic); accepted for a uniform API.
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    factors = _zoom_factors(severity)
    out = images.clone()
    for z in factors:
        out = out + _clipped_zoom(images, float(z))
    return (out / (len(factors) + 1)).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- colour / tone


def contrast(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Pull every value towards its image-and-channel mean: ``clip((x - m) * c + m)``.

    ImageNet-C ``contrast``: ``m`` is the mean over height and width of each
    channel of each image (``numpy.mean(x, axis=(0, 1))`` on an ``(H, W, 3)`` image).

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: unused (deterministic).
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    c = _param("contrast", severity)
    mean = images.mean(dim=(-2, -1), keepdim=True)
    return ((images - mean) * c + mean).clamp(0.0, 1.0)


def brightness(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Add ``c`` to the HSV value channel (clipped to ``[0, 1]``) and convert back.

    ImageNet-C ``brightness`` (through ``skimage.color.rgb2hsv``/``hsv2rgb``,
    reproduced by :func:`rgb_to_hsv` and :func:`hsv_to_rgb`).

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: unused (deterministic).
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    c = _param("brightness", severity)
    h, s, v = rgb_to_hsv(images).unbind(1)
    return hsv_to_rgb(torch.stack((h, s, (v + c).clamp(0.0, 1.0)), 1)).clamp(0.0, 1.0)


def saturate(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Scale and shift the HSV saturation: ``s -> clip(s * a + b)``, then back to RGB.

    ImageNet-C ``saturate`` (severities 1-2 desaturate, 3-5 oversaturate).

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        severity: 1..5.
        generator: unused (deterministic).
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator)
    scale, offset = _param("saturate", severity)
    h, s, v = rgb_to_hsv(images).unbind(1)
    return hsv_to_rgb(torch.stack((h, (s * scale + offset).clamp(0.0, 1.0), v), 1)).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- elastic


def _smoothing_matrix(n: int, sigma: float, truncate: float, mode: str, dtype, device) -> Tensor:
    """``(n, n)`` matrix ``S`` with ``S @ x`` equal to ``scipy.ndimage.gaussian_filter1d(x, sigma, mode=mode,
    truncate=truncate)``.

    The boundary extension is folded into the matrix, so kernels wider than the
    signal (ImageNet-C's elastic sigma reaches 171 px on 224 px images) cost one
    ``n x n`` matrix product instead of a convolution with thousands of taps.
    """
    taps = _gaussian_taps(sigma, truncate)
    radius = (taps.numel() - 1) // 2
    src = boundary_indices(n, radius, radius, mode)  # (n + 2 r,)
    cols = src[torch.arange(n)[:, None] + torch.arange(2 * radius + 1)[None, :]]  # (n, 2r+1)
    rows = torch.arange(n)[:, None].expand_as(cols)
    mat = torch.zeros(n, n, dtype=torch.float64)
    mat.index_put_((rows.reshape(-1), cols.reshape(-1)), taps.expand_as(cols).reshape(-1), accumulate=True)
    return mat.to(dtype=dtype, device=device)


def _elastic_scale(height: int, width: int) -> float:
    return min(height, width) / REFERENCE_SIZE


def _elastic_fields(images: Tensor, severity: int, generator) -> tuple[Tensor, Tensor, Tensor]:
    """Random parameters of :func:`elastic_transform`.

    Returns:
        ``inverse_affine`` ``(B, 3, 2)``: maps output ``[x, y, 1]`` (pixels) to the
        source position of the affine step; ``dx``, ``dy`` ``(B, H, W)``: smoothed
        displacements in pixels (column and row).
    """
    b, _, h, w = images.shape
    alpha, sigma, affine_range = _param("elastic_transform", severity)
    scale = _elastic_scale(h, w)
    alpha, sigma, affine_range = alpha * scale * scale, sigma * scale, affine_range * scale

    # Random affine: three control points around the centre, each moved by U(-range, range).
    cx, cy, half = float(w // 2), float(h // 2), float(min(h, w) // 3)
    pts1 = torch.tensor([[cx + half, cy + half], [cx + half, cy - half], [cx - half, cy - half]],
                        dtype=torch.float64)
    jitter = _rand((b, 3, 2), images, generator, torch.float64) * 2.0 - 1.0
    pts2 = pts1 + affine_range * jitter.cpu()
    ones = torch.ones(b, 3, 1, dtype=torch.float64)
    # The affine maps pts1 -> pts2; sampling needs its inverse, the affine pts2 -> pts1.
    inverse_affine = torch.linalg.solve(torch.cat((pts2, ones), -1), pts1.expand(b, 3, 2))

    # Displacements: uniform noise in [-1, 1) smoothed by a Gaussian (mode reflect, truncate 3), times alpha.
    noise = _rand((b, 2, h, w), images, generator, torch.float64) * 2.0 - 1.0
    sh = _smoothing_matrix(h, sigma, 3.0, "reflect", torch.float64, images.device)
    sw = _smoothing_matrix(w, sigma, 3.0, "reflect", torch.float64, images.device)
    field = alpha * (sh @ noise @ sw.T)
    dx, dy = field.unbind(1)
    return inverse_affine.to(device=images.device), dx, dy


def _pixel_grid(images: Tensor) -> tuple[Tensor, Tensor]:
    h, w = images.shape[-2:]
    ys = torch.arange(h, dtype=torch.float64, device=images.device)
    xs = torch.arange(w, dtype=torch.float64, device=images.device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return x, y


def _sample(images: Tensor, x: Tensor, y: Tensor, mode: str) -> Tensor:
    """Bilinear samples of ``images`` at pixel positions ``(x, y)`` (``(B, H', W')``, float64).

    ``mode="reflect"`` is scipy's half-sample symmetric extension (``map_coordinates(order=1,
    mode="reflect")``); ``mode="mirror"`` is scipy's whole-sample one (OpenCV's
    ``BORDER_REFLECT_101``).
    """
    h, w = images.shape[-2:]
    if mode == "mirror":
        gx, gy = 2.0 * x / (w - 1) - 1.0, 2.0 * y / (h - 1) - 1.0
    else:
        gx, gy = (2.0 * x + 1.0) / w - 1.0, (2.0 * y + 1.0) / h - 1.0
    grid = torch.stack((gx, gy), -1).to(images.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=(mode == "mirror"))


def _elastic_warp(images: Tensor, inverse_affine: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """Affine warp (mirror boundary) followed by a displacement warp (reflect boundary), both bilinear."""
    x, y = _pixel_grid(images)
    a = inverse_affine.to(torch.float64)
    sx = a[:, 0, 0, None, None] * x + a[:, 1, 0, None, None] * y + a[:, 2, 0, None, None]
    sy = a[:, 0, 1, None, None] * x + a[:, 1, 1, None, None] * y + a[:, 2, 1, None, None]
    warped = _sample(images, sx, sy, "mirror")
    return _sample(warped, x + dx.to(torch.float64), y + dy.to(torch.float64), "reflect")


def elastic_transform(images: Tensor, severity: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Random affine warp followed by a smooth random displacement field (ImageNet-C ``elastic_transform``).

    Published definition, per image: (1) three control points around the centre
    (offset by ``min(H, W) // 3``) are each moved by ``U(-r, r)``; the affine map
    between the two point sets warps the image (OpenCV ``warpAffine``, bilinear,
    ``BORDER_REFLECT_101``); (2) two fields of ``U(-1, 1)`` noise are smoothed with
    ``skimage.filters.gaussian(sigma, mode="reflect", truncate=3)`` and multiplied by
    ``alpha``; they displace the sampling positions (``map_coordinates``, order 1,
    mode ``"reflect"``). Here both warps use ``grid_sample`` with the matching
    reflection; the smoothing uses exact scipy boundary handling.

    General sizes: the constants ``(alpha, sigma, r)`` are in pixels of 224 px
    images. For a view of ``s = min(H, W) / 224`` times that size we use
    ``sigma * s`` and ``r * s`` (same geometry relative to the image) and
    ``alpha * s**2``: smoothing finer-grained noise with a wider kernel lowers the
    field's amplitude by ``s``, and the displacement, in pixels, must grow by ``s``.
    The displacement field then has the same statistics relative to the image size
    at every resolution. For 224 px views this is the published definition.
    Two documented deviations: the published code mixes up (row, column) when it
    places the control points (immaterial for square images), and OpenCV
    interpolates on a 1/32 px grid while ``grid_sample`` does not.

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``, ``H, W >= 3``.
        severity: 1..5.
        generator: optional :class:`torch.Generator`.
    Returns:
        ``(B, 3, H, W)`` in ``[0, 1]``.
    """
    _check(images, severity, generator, min_size=3)  # three distinct affine control points
    inverse_affine, dx, dy = _elastic_fields(images, severity, generator)
    return _elastic_warp(images, inverse_affine, dx, dy).clamp(0.0, 1.0)


# ----------------------------------------------------------------------------- dispatch

_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "zoom_blur": zoom_blur,
    "contrast": contrast,
    "brightness": brightness,
    "saturate": saturate,
    "elastic_transform": elastic_transform,
}


def corrupt(images: Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Apply the corruption ``name`` (one of :data:`CORRUPTIONS`) at ``severity`` 1..5.

    Args:
        images: ``(B, 3, H, W)`` views in ``[0, 1]``.
        name: corruption name.
        severity: 1 (mild) to 5 (strong).
        generator: optional :class:`torch.Generator` for the random corruptions.
    Returns:
        ``(B, 3, H, W)`` corrupted views in ``[0, 1]``.

    >>> x = torch.full((2, 3, 8, 8), 0.5)
    >>> corrupt(x, "contrast", 3).shape
    torch.Size([2, 3, 8, 8])
    >>> g = torch.Generator().manual_seed(0)
    >>> bool((corrupt(x, "gaussian_noise", 1, g) - x).abs().max() > 0)
    True
    """
    check_choice(name, CORRUPTIONS, "name")
    return _FUNCTIONS[name](images, severity, generator)
