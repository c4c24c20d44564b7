"""Input validation shared by every public function.

Each helper raises :class:`ValueError` (or :class:`TypeError` for a wrong type)
with a message that names the argument and says what was expected, so a bad
input never turns into a silently wrong image.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import Tensor


def check_tensor(x, name: str) -> Tensor:
    """Return ``x`` if it is a tensor, else raise ``TypeError`` naming ``name``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    return x


def check_image(
    x,
    name: str,
    channels: int | Sequence[int] | None = None,
    even: bool = False,
    min_size: int = 1,
) -> Tensor:
    """Validate a batch of images of shape ``(B, C, H, W)`` with a float dtype.

    Args:
        x: the tensor to check.
        name: argument name used in error messages.
        channels: required channel count (or allowed counts), ``None`` for any.
        even: require even ``H`` and ``W`` (Bayer mosaics tile in 2x2 blocks).
        min_size: smallest allowed ``H`` and ``W``.
    """
    check_tensor(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if channels is not None:
        allowed = (channels,) if isinstance(channels, int) else tuple(channels)
        if x.shape[1] not in allowed:
            want = " or ".join(str(c) for c in allowed)
            raise ValueError(f"{name}: expected {want} channel(s), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(f"{name}: expected height and width >= {min_size}, got {h}x{w}")
    if even and (h % 2 or w % 2):
        raise ValueError(f"{name}: expected even height and width (Bayer 2x2 tiles), got {h}x{w}")
    return x


def check_finite(x, name: str) -> Tensor:
    """Raise if ``x`` holds NaN or infinite values."""
    t = torch.as_tensor(x)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: expected finite values, got {t.detach().cpu().flatten()[:8].tolist()}")
    return t


def check_shape(x, shape: Sequence[int], name: str) -> Tensor:
    """Raise unless ``x`` has exactly ``shape``."""
    t = torch.as_tensor(x)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(t.shape)}")
    return t


def check_positive(value, name: str, strict: bool = True):
    """Raise unless every element of ``value`` is > 0 (or >= 0 when ``strict`` is False)."""
    t = torch.as_tensor(value, dtype=torch.float64)
    check_finite(t, name)
    bad = (t <= 0) if strict else (t < 0)
    if bad.any():
        rel = ">" if strict else ">="
        raise ValueError(f"{name}: expected values {rel} 0, got {t.flatten()[:8].tolist()}")
    return value


def check_range(value: float, name: str, low: float | None = None, high: float | None = None):
    """Raise unless the scalar ``value`` is finite and lies in ``[low, high]``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: expected a value in [{low}, {high}], got {value!r}")
    return value


def check_int(value, name: str, minimum: int | None = None, even: bool = False) -> int:
    """Raise unless ``value`` is an int (not bool) >= ``minimum`` (and even if asked)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    if even and value % 2:
        raise ValueError(f"{name}: expected an even integer, got {value}")
    return value


def check_choice(value, choices: Iterable, name: str):
    """Raise unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
