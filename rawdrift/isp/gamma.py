"""GC: clip to [0, 1], then ``v ** (1 / gamma)`` (paper Section 4.2.1).

Two forms:

* exact (``differentiable=False``): ``clip(v, 0, 1) ** (1 / gamma)``, the static
  reference. Its derivative is infinite at 0.
* differentiable (``differentiable=True``): the paper authors' torch code clamps to
  ``[1e-5, 1]`` and computes ``exp(log(v) / gamma)`` so the gradient in ``gamma``
  stays finite. Clamping from below maps black (0) to ``1e-5 ** (1/2.2) = 0.0053``,
  which breaks parity with the static pipeline. With ``floor="ramp"`` (default)
  we compute ``v * exp((1/gamma - 1) * log(max(v, eps)))`` instead: equal to
  ``v ** (1/gamma)`` for ``v >= eps``, linear on ``[0, eps]`` so 0 stays 0, and
  with finite gradients in ``v`` and ``gamma`` everywhere. ``floor="clamp"``
  reproduces the authors' clamp. In both forms values outside [0, 1] are clipped
  and get zero gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_finite, check_image, check_positive
from ._params import as_param_tensor, store

#: Smallest gamma a learnable :class:`GammaCorrection` lets through.
GAMMA_MIN = 1e-2
FLOORS = ("ramp", "clamp")


def gamma_correct(v: Tensor, gamma, differentiable: bool = False, eps: float = 1e-5, floor: str = "ramp") -> Tensor:
    """Clip to [0, 1] and apply the display gamma.

    Args:
        v: ``(B, 3, H, W)`` RGB (any real values).
        gamma: scalar or ``()``/``(1,)`` tensor, > 0.
        differentiable: use the gradient-safe form (see module docstring).
        eps: log floor of the differentiable form.
        floor: ``"ramp"`` (0 stays 0) or ``"clamp"`` (the authors' clamp to ``[eps, 1]``).
    Returns:
        ``(B, 3, H, W)`` in [0, 1].

    >>> gamma_correct(torch.tensor([-0.5, 0.25, 2.0]).reshape(1, 3, 1, 1), 2.0).flatten().tolist()
    [0.0, 0.5, 1.0]
    """
    check_image(v, "gamma_correct: v")
    check_choice(floor, FLOORS, "gamma_correct: floor")
    if not isinstance(gamma, Tensor):
        gamma = torch.as_tensor(float(gamma), dtype=v.dtype, device=v.device)
    if gamma.numel() != 1:
        raise ValueError(f"gamma_correct: gamma: expected a scalar, got shape {tuple(gamma.shape)}")
    check_finite(gamma, "gamma_correct: gamma")
    check_positive(gamma.detach(), "gamma_correct: gamma")
    inv = 1.0 / gamma.to(v).reshape(())
    if not differentiable:
        return v.clamp(0.0, 1.0).pow(inv)
    if floor == "clamp":
        return torch.exp(inv * torch.log(v.clamp(eps, 1.0)))
    vc = v.clamp(0.0, 1.0)
    return vc * torch.exp((inv - 1.0) * torch.log(vc.clamp_min(eps)))


def _display_gamma_(v: Tensor, gamma: Tensor, out: Tensor | None = None) -> Tensor:
    """The exact form ``clip(v, 0, 1) ** (1 / gamma)`` for frozen pipelines, overwriting ``v``.

    Computed as ``exp(log(max(v, tiny)) / gamma)`` with ``tiny`` the smallest
    normal number of the dtype: on CPU a scalar-exponent ``pow`` is several times
    slower than ``log`` and ``exp``, and so are ``log(0)`` and ``exp(-inf)``, hence
    the floor. It moves black from 0 to ``tiny ** (1 / gamma)`` (3e-10 in float32
    for gamma 4, less below); for gamma > 4 the plain ``pow`` is used. Elsewhere
    the two forms agree to a few ulps. No gradient: use :func:`gamma_correct`
    where one is needed. ``out`` receives the result if given.
    """
    check_positive(gamma.detach(), "gamma_correct: gamma")
    inv = 1.0 / float(gamma)
    if inv < 0.25:
        v = v.clamp_(0.0, 1.0).pow_(inv)
        return out.copy_(v) if out is not None else v
    v = v.clamp_(torch.finfo(v.dtype).tiny, 1.0).log_().mul_(inv)
    return torch.exp(v, out=out) if out is not None else v.exp_()


class GammaCorrection(nn.Module):
    """Owns ``gamma ()``; a parameter when ``learnable``.

    A learnable gamma is clamped to ``>= GAMMA_MIN`` in ``forward`` (gamma > 0 is the
    physical range; zero gradient below the bound). ``differentiable`` selects the
    gradient-safe form of :func:`gamma_correct`.
    """

    def __init__(self, gamma=2.2, learnable: bool = False, differentiable: bool | None = None, eps: float = 1e-5, floor: str = "ramp"):
        super().__init__()
        t = as_param_tensor(gamma, (), "GC: gamma")
        check_positive(t, "GC: gamma")
        check_choice(floor, FLOORS, "GC: floor")
        store(self, "gamma", t, learnable)
        self.differentiable = learnable if differentiable is None else bool(differentiable)
        self.eps = float(eps)
        self.floor = floor

    def forward(self, v: Tensor) -> Tensor:
        gamma = self.gamma.clamp_min(GAMMA_MIN) if isinstance(self.gamma, nn.Parameter) else self.gamma
        return gamma_correct(v, gamma, self.differentiable, self.eps, self.floor)
