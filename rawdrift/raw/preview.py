"""Quick previews of raw mosaics: a simple fixed development and labelled contact sheets.

:func:`quick_view` is *not* one of the paper's 12 ISP configurations: it is a
small, dependency-free development (black level, bilinear demosaic, white
balance, colour matrix, clip, gamma) for looking at data. Use
:mod:`rawdrift.isp` for experiments.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import check_image, check_int
from .cfa import site_map, split_planes

_K_RB = torch.tensor([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])
_K_G = torch.tensor([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]])


def quick_view(raw: Tensor, camera) -> Tensor:
    """Develop raw mosaics into displayable RGB with ``camera``'s fixed parameters.

    Args:
        raw: ``(B, 1, H, W)`` or ``(1, H, W)`` mosaic in [0, 1], even ``H`` and ``W``.
        camera: a :class:`~rawdrift.isp.camera.Camera` (black level, wb, matrix, gamma, pattern).
    Returns:
        ``(B, 3, H, W)`` (or ``(3, H, W)``) RGB in [0, 1].

    >>> from rawdrift.isp.camera import RAW_DRONE
    >>> quick_view(torch.full((1, 4, 4), 0.3), RAW_DRONE).shape
    torch.Size([3, 4, 4])
    """
    from ..isp.filters import convolve2d

    single = isinstance(raw, Tensor) and raw.ndim == 3
    x = raw[None] if single else raw
    check_image(x, "raw", channels=1, even=True)
    t = camera.tensors(dtype=x.dtype, device=x.device)
    h, w = x.shape[-2:]
    x = x - site_map(t["bl"], h, w)
    planes = split_planes(x, camera.pattern)
    kernels = torch.stack([_K_RB, _K_G, _K_RB]).to(dtype=x.dtype, device=x.device)
    rgb = convolve2d(planes, kernels, mode="mirror")
    rgb = rgb * t["wb"].view(1, 3, 1, 1)
    rgb = torch.einsum("ij,bjhw->bihw", t["M"], rgb)
    rgb = rgb.clamp(0, 1) ** (1.0 / float(camera.gamma))
    return rgb[0] if single else rgb


def contact_sheet(dataset, n: int = 16, path=None, columns: int | None = None, title: str | None = None,
                  indices=None):
    """A labelled grid of samples of ``dataset`` developed by :func:`quick_view`.

    Shows the first ``n`` samples, or the samples ``indices`` when given.
    Segmentation masks are outlined in yellow. Returns the matplotlib figure and,
    when ``path`` is given, writes it there (PNG).
    """
    import matplotlib.pyplot as plt

    check_int(n, "n", minimum=1)
    indices = list(range(min(n, len(dataset)))) if indices is None else [int(i) for i in indices]
    if not indices:
        raise ValueError("indices: expected at least one sample index")
    n = len(indices)
    cols = columns or min(n, 8)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.75 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        raw, target, meta = dataset[indices[k]]
        img = quick_view(raw, dataset.camera).permute(1, 2, 0).numpy()
        ax.imshow(img, interpolation="nearest")
        if isinstance(target, Tensor):
            if target.any():
                ax.contour(target[0].numpy(), levels=[0.5], colors="yellow", linewidths=0.6)
            label = f"{meta.get('car_count', int(target.any()))} car(s)"
        else:
            label = dataset.classes[int(target)]
        ax.set_title(label, fontsize=7)
    fig.suptitle(title or f"{dataset.name}  intensity {getattr(dataset, 'intensity', 1.0):g}", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def intensity_ladder(dataset, index: int = 0, intensities=None, seed: int = 0, path=None):
    """Capture one scene of a synthetic dataset at several photon budgets and show them side by side.

    The noise-free radiance of sample ``index`` is recorded by ``dataset.sensor`` at
    each intensity (default: the paper's levels and 0.001). The top row is developed
    with :func:`quick_view` at a fixed exposure, so darker captures look darker; the
    bottom row stretches each view to its own range to show the noise (as the
    paper's Figure 9 does). Returns ``(figure, raws)`` with ``raws`` ``(K, 1, H, W)``.
    """
    import matplotlib.pyplot as plt

    from .sensor import INTENSITY_LEVELS, check_intensity

    levels = list(INTENSITY_LEVELS) + [0.001] if intensities is None else list(intensities)
    for v in levels:
        check_intensity(v, "intensities")
    rad = dataset.radiance([index])
    gen = torch.Generator().manual_seed(seed)
    raws = torch.cat([dataset.sensor.capture(rad, v, gen) for v in levels])
    views = quick_view(raws, dataset.camera)
    fig, axes = plt.subplots(2, len(levels), figsize=(1.5 * len(levels), 3.3), squeeze=False)
    for k, v in enumerate(levels):
        img = views[k].permute(1, 2, 0)
        lo, hi = img.min(), img.max()
        for row, shown in enumerate((img, (img - lo) / (hi - lo).clamp_min(1e-8))):
            axes[row, k].imshow(shown.numpy(), interpolation="nearest")
            axes[row, k].axis("off")
        axes[0, k].set_title(f"{v:g}", fontsize=8)
    fig.suptitle(f"{dataset.name} sample {index}: intensity (top: fixed exposure, bottom: stretched)", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig, raws


__all__ = ["quick_view", "contact_sheet", "intensity_ladder"]
