"""The 12 named static ISP configurations ``dm,sh,dn`` of the paper (Figure 3b)."""

from __future__ import annotations

DEMOSAIC_CODES = {"bi": "bilinear", "me": "menon2007", "ma": "malvar2004"}
SHARPEN_CODES = {"s": "sharpening filter", "u": "unsharp masking"}
DENOISE_CODES = {"me": "median filter", "ga": "gaussian filter"}

#: All configurations, in the paper's order.
CONFIGS = tuple(f"{dm},{sh},{dn}" for dm in DEMOSAIC_CODES for sh in SHARPEN_CODES for dn in DENOISE_CODES)


def parse_config(name: str) -> tuple[str, str, str]:
    """Split a configuration name into its demosaicing, sharpening and denoising codes.

    >>> parse_config("ma,s,me")
    ('ma', 's', 'me')
    """
    if not isinstance(name, str):
        raise TypeError(f"config: expected a string such as 'bi,s,ga', got {type(name).__name__}")
    parts = [p.strip() for p in name.split(",")]
    if len(parts) != 3:
        raise ValueError(f"config: expected 'dm,sh,dn' (three comma-separated codes, e.g. 'bi,s,ga'), got {name!r}")
    for part, codes, stage in zip(parts, (DEMOSAIC_CODES, SHARPEN_CODES, DENOISE_CODES), ("demosaicing", "sharpening", "denoising")):
        if part not in codes:
            raise ValueError(f"config {name!r}: unknown {stage} code {part!r}; expected one of {', '.join(codes)}")
    return tuple(parts)
