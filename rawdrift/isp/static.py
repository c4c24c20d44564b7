"""The static reference data model Phi_Proc^stat in numpy (paper Section 4.2.1).

Written to be read next to the paper: every stage calls the library the paper
names (colour-demosaicing, scikit-image, scipy.ndimage) on ``H x W (x 3)``
float64 arrays. This is the oracle that the torch :class:`~rawdrift.isp.pipeline.Pipeline`
is tested against; it processes one image at a time and is slow.

    BL -> DM (bi/me/ma) -> WB -> CC -> YUV -> SH (s/u) -> DN (ga/me) -> RGB -> clip -> GC

As in the authors' released code, SH and DN filter the luma (Y) only by default
(``channels="yuv"`` filters all three channels, the formula as printed); the
sharpening filter zero-fills the border (``boundary="fill"`` in their code); the
unsharp mask is called with ``preserve_range=True`` (no clipping).
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
from colour_demosaicing import (
    demosaicing_CFA_Bayer_bilinear,
    demosaicing_CFA_Bayer_Malvar2004,
    demosaicing_CFA_Bayer_Menon2007,
)
from skimage.color import rgb2yuv, yuv2rgb
from skimage.filters import unsharp_mask

from .._checks import check_choice
from .camera import Camera
from .configs import parse_config

SHARPEN_FILTER = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)

_DEMOSAIC = {
    "bi": demosaicing_CFA_Bayer_bilinear,
    "me": demosaicing_CFA_Bayer_Menon2007,
    "ma": demosaicing_CFA_Bayer_Malvar2004,
}


def _sharpen(y: np.ndarray, code: str, preserve_range: bool) -> np.ndarray:
    if code == "s":
        return ndi.convolve(y, SHARPEN_FILTER, mode="constant", cval=0.0)
    return unsharp_mask(y, radius=1, amount=1, preserve_range=preserve_range)


def _denoise(y: np.ndarray, code: str) -> np.ndarray:
    if code == "ga":
        return ndi.gaussian_filter(y, sigma=0.5)
    return ndi.median_filter(y, size=3)


def process_static(
    raw_hw: np.ndarray,
    config: str,
    camera: Camera,
    *,
    channels: str = "y",
    preserve_range: bool = True,
) -> np.ndarray:
    """Process one raw mosaic through a named static configuration.

    Args:
        raw_hw: ``(H, W)`` Bayer mosaic in [0, 1] (16-bit counts / (2^16 - 1)), ``H``, ``W`` even,
            in ``camera.pattern``.
        config: one of :data:`~rawdrift.isp.configs.CONFIGS`, e.g. ``"bi,s,ga"``.
        camera: black level, white balance, colour matrix, gamma and pattern.
        channels: ``"y"`` (luma only, default) or ``"yuv"`` for SH and DN.
        preserve_range: passed to ``skimage.filters.unsharp_mask``.
    Returns:
        ``(H, W, 3)`` float64 view in [0, 1].

    >>> from rawdrift.isp.camera import RAW_DRONE
    >>> process_static(np.full((8, 8), 0.3), "bi,s,ga", RAW_DRONE).shape
    (8, 8, 3)
    """
    dm, sh, dn = parse_config(config)
    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a rawdrift.isp.Camera, got {type(camera).__name__}")
    check_choice(channels, ("y", "yuv"), "channels")
    x = np.array(raw_hw, dtype=np.float64)  # a copy: the input is never modified
    if x.ndim != 2:
        raise ValueError(f"raw_hw: expected an (H, W) mosaic, got shape {x.shape}")
    if x.shape[0] % 2 or x.shape[1] % 2:
        raise ValueError(f"raw_hw: expected even height and width (Bayer 2x2 tiles), got {x.shape[0]}x{x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError("raw_hw: expected finite values")

    # BL: one offset per site, tile raster order
    bl = camera.black_level
    x[0::2, 0::2] -= bl[0]
    x[0::2, 1::2] -= bl[1]
    x[1::2, 0::2] -= bl[2]
    x[1::2, 1::2] -= bl[3]
    # DM
    rgb = np.asarray(_DEMOSAIC[dm](x, camera.pattern), dtype=np.float64)
    # WB
    rgb = rgb * np.asarray(camera.white_balance)
    # CC: v_CC = M v_WB at each pixel
    rgb = np.einsum("hwc,kc->hwk", rgb, np.asarray(camera.color_matrix))
    # SH and DN in YUV
    yuv = rgb2yuv(rgb)
    idx = [0] if channels == "y" else [0, 1, 2]
    for c in idx:
        yuv[..., c] = _sharpen(yuv[..., c], sh, preserve_range)
    for c in idx:
        yuv[..., c] = _denoise(yuv[..., c], dn)
    rgb = yuv2rgb(yuv)
    # clip and GC
    return np.clip(rgb, 0.0, 1.0) ** (1.0 / camera.gamma)
