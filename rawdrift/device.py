"""Device selection: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import torch

from ._checks import check_choice

DEVICES = ("auto", "cuda", "mps", "cpu")


def pick_device(name: str = "auto") -> torch.device:
    """Return the requested device, or the best available one for ``"auto"``.

    Raises ``ValueError`` when a device is asked for by name but is not available.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    base = str(name).split(":")[0]
    check_choice(base, DEVICES, "device")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was requested but torch sees no CUDA GPU")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device: 'mps' was requested but this torch build has no MPS support")
    return torch.device(name)
