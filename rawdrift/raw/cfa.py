"""Bayer colour filter arrays (CFA).

A pattern name lists the colours of one 2x2 tile in raster order, so ``"RGGB"``
means red at (row 0, col 0), green at (0, 1) and (1, 0), blue at (1, 1). In the
paper's 1-indexed notation that is red at odd rows/odd columns, exactly their
``x_RAW`` layout.

Per-site quantities such as black levels are ordered by tile position in raster
order: ``(0, 0), (0, 1), (1, 0), (1, 1)``.

All functions work on ``(B, C, H, W)`` torch tensors with even ``H`` and ``W``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_choice, check_image, check_int

PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
CHANNELS = "RGB"
TILE_POSITIONS = ((0, 0), (0, 1), (1, 0), (1, 1))


def check_pattern(pattern: str, name: str = "pattern") -> str:
    """Raise ``ValueError`` unless ``pattern`` is one of :data:`PATTERNS`."""
    return check_choice(pattern, PATTERNS, name)


def site_channels(pattern: str = "RGGB") -> tuple[int, int, int, int]:
    """Channel index (0=R, 1=G, 2=B) at each tile position, in raster order.

    >>> site_channels("GRBG")
    (1, 0, 2, 1)
    """
    check_pattern(pattern)
    return tuple(CHANNELS.index(c) for c in pattern)


def cfa_masks(height: int, width: int, pattern: str = "RGGB", *, device=None, dtype=torch.float32) -> Tensor:
    """Binary masks ``(3, H, W)`` that are 1 where the sensor samples R, G or B.

    >>> cfa_masks(2, 2).flatten(1).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    """
    check_int(height, "height", minimum=2, even=True)
    check_int(width, "width", minimum=2, even=True)
    masks = torch.zeros(3, height, width, device=device, dtype=dtype)
    for (dy, dx), ch in zip(TILE_POSITIONS, site_channels(pattern)):
        masks[ch, dy::2, dx::2] = 1
    return masks


def site_map(values: Tensor, height: int, width: int) -> Tensor:
    """Tile four per-site values over an ``(H, W)`` image.

    Args:
        values: ``(4,)`` or ``(B, 4)`` values in tile raster order.
    Returns:
        ``(1, 1, H, W)`` or ``(B, 1, H, W)`` map, differentiable in ``values``.
    """
    if values.shape[-1] != 4 or values.ndim not in (1, 2):
        raise ValueError(f"values: expected shape (4,) or (B, 4), got {tuple(values.shape)}")
    v = values.reshape(-1, 1, 2, 2)
    return v.repeat(1, 1, height // 2, width // 2)


def mosaic(rgb: Tensor, pattern: str = "RGGB") -> Tensor:
    """Sample an RGB image through a Bayer CFA.

    Args:
        rgb: ``(B, 3, H, W)`` image, ``H`` and ``W`` even.
        pattern: one of :data:`PATTERNS`.
    Returns:
        ``(B, 1, H, W)`` mosaic holding, at each pixel, the one colour its filter passes.
    """
    check_image(rgb, "rgb", channels=3, even=True)
    masks = cfa_masks(*rgb.shape[-2:], pattern, device=rgb.device, dtype=rgb.dtype)
    return (rgb * masks).sum(dim=1, keepdim=True)


def split_planes(raw: Tensor, pattern: str = "RGGB") -> Tensor:
    """Split a mosaic into sparse R, G, B planes (zeros where a colour was not sampled).

    Args:
        raw: ``(B, 1, H, W)`` mosaic, ``H`` and ``W`` even.
    Returns:
        ``(B, 3, H, W)`` sparse planes; ``split_planes(raw).sum(1, keepdim=True) == raw``.
    """
    check_image(raw, "raw", channels=1, even=True)
    masks = cfa_masks(*raw.shape[-2:], pattern, device=raw.device, dtype=raw.dtype)
    return raw * masks


def crop_to_rggb(raw: Tensor, pattern: str) -> Tensor:
    """Crop a mosaic so that it starts on a red site and reads as ``RGGB``.

    A shift by one row and/or one column turns any Bayer pattern into RGGB. The
    crop removes one row (column) at each end so the size stays even; an RGGB
    input is returned unchanged.

    Args:
        raw: ``(B, 1, H, W)`` mosaic in ``pattern``.
    Returns:
        ``(B, 1, H', W')`` RGGB mosaic with ``H' in {H, H-2}``, ``W' in {W, W-2}``.
    """
    check_image(raw, "raw", channels=1, even=True)
    red = TILE_POSITIONS[site_channels(pattern).index(0)]
    dy, dx = red
    h, w = raw.shape[-2:]
    if (dy and h < 4) or (dx and w < 4):
        raise ValueError(f"raw: a {h}x{w} {pattern} mosaic is too small to crop to RGGB")
    return raw[..., dy : h - dy, dx : w - dx]
