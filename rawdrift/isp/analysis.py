"""Checks of the torch data model that the book shows live: parity with the numpy
reference and gradient flow through the parametrized pipeline.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .._checks import check_choice
from .camera import Camera
from .configs import CONFIGS, parse_config


def _raw_hw(raw, name: str = "raw") -> np.ndarray:
    """``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)`` mosaic -> float64 ``(H, W)`` array."""
    a = raw.detach().cpu().double().numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw, dtype=np.float64)
    a = a.reshape(a.shape[-2:]) if a.ndim > 2 and int(np.prod(a.shape[:-2])) == 1 else a
    if a.ndim != 2:
        raise ValueError(f"{name}: expected one mosaic (H, W), (1, H, W) or (1, 1, H, W), got shape {a.shape}")
    if a.shape[0] % 2 or a.shape[1] % 2 or min(a.shape) < 2:
        raise ValueError(f"{name}: expected even height and width, got {a.shape[0]}x{a.shape[1]}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: expected finite values")
    return a


def parity_table(raw, camera: Camera, configs=None) -> list[dict]:
    """Compare ``Pipeline.static(c, camera)`` (torch, float32) with ``process_static`` (numpy) per configuration.

    Args:
        raw: one Bayer mosaic, ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)``, values in [0, 1].
        camera: the camera whose constants both pipelines use.
        configs: configuration names (default: all 12).
    Returns:
        one dict per configuration: ``config``, ``max_abs_error`` and ``mean_abs_error`` over the
        ``(H, W, 3)`` view, ``torch_ms`` and ``numpy_ms`` (wall time of one call).

    >>> from rawdrift.isp.camera import RAW_DRONE
    >>> row = parity_table(np.full((8, 8), 0.3), RAW_DRONE, ["bi,s,ga"])[0]
    >>> row["config"], row["max_abs_error"] < 1e-4
    ('bi,s,ga', True)
    """
    from .pipeline import Pipeline
    from .static import process_static

    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a rawdrift.isp.Camera, got {type(camera).__name__}")
    x = _raw_hw(raw)
    configs = CONFIGS if configs is None else tuple(configs)
    if not configs:
        raise ValueError("configs: expected at least one configuration name")
    xt = torch.as_tensor(x, dtype=torch.float32)[None, None]
    rows = []
    for c in configs:
        parse_config(c)
        t0 = time.perf_counter()
        ref = process_static(x, c, camera)
        t1 = time.perf_counter()
        with torch.no_grad():
            out = Pipeline.static(c, camera)(xt)[0].permute(1, 2, 0).double().numpy()
        t2 = time.perf_counter()
        err = np.abs(out - ref)
        rows.append({"config": c, "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
                     "torch_ms": 1e3 * (t2 - t1), "numpy_ms": 1e3 * (t1 - t0)})
    return rows


LOSSES = ("mean", "contrast", "target")


def gradient_norms(raw, camera: Camera, loss: str = "contrast", target=None) -> dict[str, float]:
    """L2 norm of the gradient of a loss on the view, per parameter group of the parametrized pipeline.

    Args:
        raw: ``(B, 1, H, W)`` (or one ``(H, W)`` / ``(1, H, W)``) mosaic batch in [0, 1].
        camera: constants of ``Pipeline.parametrized(camera)``.
        loss: ``"mean"`` (mean brightness of the view), ``"contrast"`` (minus the standard
            deviation of the view) or ``"target"`` (mean squared error to ``target``).
        target: ``(B, 3, H, W)`` view, required for ``loss="target"``.
    Returns:
        ``{group: norm}`` for the groups ``bl, dm, wb, cc, sh, dn, gc`` (0.0 for a group without
        parameters or without gradient).

    >>> from rawdrift.isp.camera import RAW_DRONE
    >>> g = gradient_norms(torch.rand(1, 1, 8, 8), RAW_DRONE, "mean")
    >>> sorted(g) == ['bl', 'cc', 'dm', 'dn', 'gc', 'sh', 'wb'] and g["gc"] > 0
    True
    """
    from .pipeline import Pipeline

    check_choice(loss, LOSSES, "loss")
    x = torch.as_tensor(raw).float() if not isinstance(raw, torch.Tensor) else raw.float()
    while x.ndim < 4:
        x = x.unsqueeze(0)
    pipe = Pipeline.parametrized(camera)
    view = pipe(x)
    if loss == "mean":
        value = view.mean()
    elif loss == "contrast":
        value = -view.std()
    else:
        if target is None:
            raise ValueError("target: required when loss='target'")
        target = torch.as_tensor(target, dtype=view.dtype)
        if target.shape != view.shape:
            raise ValueError(f"target: expected shape {tuple(view.shape)}, got {tuple(target.shape)}")
        value = torch.mean((view - target) ** 2)
    value.backward()
    norms = {}
    for group, params in pipe.param_groups().items():
        sq = sum(float((p.grad ** 2).sum()) for p in params if p.grad is not None)
        norms[group] = float(np.sqrt(sq))
    return norms
