"""Training-time augmentations on batches: AugMix-style view mixing and ISP randomisation.

- :func:`augmix`: an AugMix-style augmentation (Hendrycks et al., ICLR 2020) of
  ``(B, 3, H, W)`` views in [0, 1], batched, every random draw from one
  ``torch.Generator``. Each sample mixes ``width`` chains of 1-3 simple
  label-preserving operations with Dirichlet(``alpha``) weights, then blends the
  mixture with the original image with a Beta(``alpha``, ``alpha``) weight. The
  operation set follows the paper's choice of operations that do not overlap the
  ImageNet-C corruptions: autocontrast, equalize, posterize, solarize, rotate,
  shear and translate (no contrast, brightness, colour or sharpness changes).
  The Jensen-Shannon consistency loss of the paper is not part of this function;
  the training engine (``TrainConfig(augment="augmix")``) trains on the mixed
  images with cross-entropy only.
- :class:`RandomISP`: a pipeline module that develops each raw mosaic with a
  randomly chosen static ISP configuration while training (given a generator)
  and with one fixed ``default`` configuration otherwise. It augments in the
  *pipeline* stage, on raw data, so the model sees physically plausible views.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_choice, check_image, check_int, check_range

#: AugMix operations implemented here (the AugMix paper's set, without the ImageNet-C overlaps).
AUGMIX_OPS = ("autocontrast", "equalize", "posterize", "solarize", "rotate", "shear_x", "shear_y",
              "translate_x", "translate_y")
_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


# ------------------------------------------------------------------ single operations


def autocontrast(x: Tensor) -> Tensor:
    """Stretch each channel of each image to span [0, 1] (constant channels are kept).

    Args:
        x: (B, C, H, W) in [0, 1].
    Returns:
        (B, C, H, W).

    >>> autocontrast(torch.tensor([0.2, 0.6]).reshape(1, 1, 1, 2)).flatten().tolist()
    [0.0, 1.0]
    """
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), x)


def equalize(x: Tensor, bins: int = 256) -> Tensor:
    """Histogram equalisation per image and channel on ``bins`` grey levels.

    Each level maps to the fraction of pixels at or below it (the empirical CDF),
    shifted so the darkest occupied level goes to 0.

    Args:
        x: (B, C, H, W) in [0, 1].
    Returns:
        (B, C, H, W) in [0, 1].
    """
    b, c, h, w = x.shape
    q = (x.clamp(0, 1) * (bins - 1)).round().long().reshape(b * c, h * w)
    hist = torch.zeros(b * c, bins, device=x.device, dtype=x.dtype).scatter_add_(1, q, torch.ones_like(q, dtype=x.dtype))
    cdf = hist.cumsum(1)
    first = cdf.gather(1, q.amin(1, keepdim=True))  # pixels at the darkest occupied level
    denom = (h * w - first).clamp_min(1)
    lut = ((cdf - first) / denom).clamp(0, 1)
    flat = torch.where(first == h * w, x.reshape(b * c, h * w), lut.gather(1, q))
    return flat.reshape(b, c, h, w)


def posterize(x: Tensor, bits: Tensor) -> Tensor:
    """Keep the top ``bits`` (per sample, 1..8) of the 8-bit code of ``x`` (0..255 / 255).

    >>> round(posterize(torch.full((1, 1, 1, 1), 0.7), torch.tensor([1])).item() * 255)
    128
    """
    step = (2.0 ** (8 - bits.to(x.dtype))).reshape(-1, 1, 1, 1)
    code = (x.clamp(0, 1) * 255).round()
    return torch.floor(code / step) * step / 255


def solarize(x: Tensor, threshold: Tensor) -> Tensor:
    """Invert pixels strictly above ``threshold`` (per sample, in [0, 1]).

    >>> [round(v, 3) for v in solarize(torch.tensor([0.2, 0.9]).reshape(1, 1, 1, 2), torch.tensor([0.5])).flatten().tolist()]
    [0.2, 0.1]
    """
    t = threshold.to(x.dtype).reshape(-1, 1, 1, 1)
    return torch.where(x > t, 1 - x, x)


def affine(x: Tensor, matrices: Tensor) -> Tensor:
    """Warp each image by its 2x3 affine matrix in normalised coordinates (reflecting borders).

    ``matrices[i]`` maps output to input coordinates in [-1, 1] (``F.affine_grid``).
    The identity matrix returns ``x`` up to float rounding.
    """
    grid = F.affine_grid(matrices.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _affine_matrices(op: str, magnitude: Tensor) -> Tensor:
    """(B, 2, 3) matrices of a geometric op; ``magnitude`` in [0, 1] signed, per sample."""
    n = magnitude.shape[0]
    m = torch.zeros(n, 2, 3, dtype=magnitude.dtype)
    m[:, 0, 0] = m[:, 1, 1] = 1.0
    if op == "rotate":  # up to 30 degrees
        a = magnitude * math.radians(30)
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
    elif op == "shear_x":  # shear factor up to 0.3
        m[:, 0, 1] = 0.3 * magnitude
    elif op == "shear_y":
        m[:, 1, 0] = 0.3 * magnitude
    elif op == "translate_x":  # up to a third of the width (2/3 in normalised units)
        m[:, 0, 2] = (2 / 3) * magnitude
    else:
        m[:, 1, 2] = (2 / 3) * magnitude
    return m


def apply_op(x: Tensor, op: str, level: Tensor, sign: Tensor | None = None) -> Tensor:
    """Apply one AugMix operation to a batch at per-sample strength ``level`` in [0, 1].

    Args:
        x: (B, 3, H, W) in [0, 1].
        op: one of :data:`AUGMIX_OPS`.
        level: (B,) strengths in [0, 1]; 0 leaves posterize, solarize and the geometric
            operations as the identity (autocontrast and equalize have no strength).
        sign: (B,) of +-1 for the direction of geometric operations (default +1).
    Returns:
        (B, 3, H, W) in [0, 1].
    """
    check_choice(op, AUGMIX_OPS, "op")
    level = level.to(torch.float32).cpu()
    if op == "autocontrast":
        return autocontrast(x)
    if op == "equalize":
        return equalize(x)
    if op == "posterize":  # 8 bits at level 0 down to 4 bits at level 1
        return posterize(x, (8 - torch.floor(4 * level)).to(x.device))
    if op == "solarize":  # threshold 1 (nothing inverted) down to 0
        return solarize(x, (1 - level).to(x.device))
    mag = level if sign is None else level * sign.to(torch.float32).cpu()
    return affine(x, _affine_matrices(op, mag).to(x.device))


# ------------------------------------------------------------------ AugMix


def _numpy_rng(gen: torch.Generator | None) -> np.random.Generator:
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return np.random.default_rng(seed)


def augmix(x: Tensor, gen: torch.Generator | None = None, severity: float = 3, width: int = 3, depth: int = -1,
           alpha: float = 1.0, ops: tuple[str, ...] = AUGMIX_OPS) -> Tensor:
    """AugMix-style augmentation of a batch of views (module docstring).

    For each sample: ``width`` chains, each of ``depth`` operations (1 to 3 at random
    when ``depth`` is -1) drawn uniformly from ``ops`` at strength
    ``severity / 10 * u`` with ``u ~ U(0, 1]``; the chains are mixed with weights
    ``w ~ Dirichlet(alpha)`` and the result is ``m * x + (1 - m) * mixture`` with
    ``m ~ Beta(alpha, alpha)``. The output is a convex combination of images in [0, 1].

    Args:
        x: (B, 3, H, W) views in [0, 1].
        gen: CPU ``torch.Generator`` for every draw (``None``: torch's global one).
        severity: strength of the operations, 0 to 10 (the AugMix default is 3).
        width: chains per sample (>= 1).
        depth: operations per chain (>= 1), or -1 for 1 to 3 at random.
        alpha: Dirichlet and Beta concentration (> 0).
        ops: the operations to draw from (a subset of :data:`AUGMIX_OPS`).
    Returns:
        (B, 3, H, W) in [0, 1], same dtype and device as ``x``.

    >>> g = torch.Generator().manual_seed(0)
    >>> augmix(torch.rand(2, 3, 8, 8), g).shape
    torch.Size([2, 3, 8, 8])
    """
    check_image(x, "x", channels=3)
    check_range(severity, "severity", 0.0, 10.0)
    check_int(width, "width", minimum=1)
    if depth != -1:
        check_int(depth, "depth", minimum=1)
    check_range(alpha, "alpha", low=0.0)
    if alpha <= 0:
        raise ValueError(f"alpha: expected a value > 0, got {alpha!r}")
    if not ops:
        raise ValueError("ops: expected at least one operation")
    for op in ops:
        check_choice(op, AUGMIX_OPS, "ops")
    rng = _numpy_rng(gen)
    b = x.shape[0]
    weights = torch.as_tensor(rng.dirichlet([alpha] * width, size=b), dtype=x.dtype, device=x.device)
    keep = torch.as_tensor(rng.beta(alpha, alpha, size=b), dtype=x.dtype, device=x.device).reshape(b, 1, 1, 1)
    mix = torch.zeros_like(x)
    for i in range(width):
        chain = x
        steps = rng.integers(1, 4, size=b) if depth == -1 else np.full(b, depth)
        for s in range(int(steps.max())):
            active = steps > s
            op_idx = rng.integers(0, len(ops), size=b)
            level = torch.as_tensor(severity / 10 * (1 - rng.random(b)), dtype=torch.float32)
            sign = torch.as_tensor(rng.choice([-1.0, 1.0], size=b), dtype=torch.float32)
            nxt = chain.clone()
            for k in np.unique(op_idx[active]):
                sel = np.flatnonzero(active & (op_idx == k))
                st = torch.as_tensor(sel, device=x.device)
                nxt[st] = apply_op(chain[st], ops[int(k)], level[sel], sign[sel])
            chain = nxt
        mix = mix + weights[:, i].reshape(b, 1, 1, 1) * chain
    return (keep * x + (1 - keep) * mix).clamp(0, 1)


# ------------------------------------------------------------------ ISP randomisation


class RandomISP(nn.Module):
    """Develop raw mosaics with a random static ISP configuration per sample while training.

    Args:
        camera: the dataset's :class:`~rawdrift.isp.camera.Camera`.
        configs: static configurations to draw from (default: all 12).
        default: the configuration used in evaluation mode or without a generator;
            it need not be among ``configs``.
        device: where the pipelines live.

    ``forward(raw, generator=None)``: ``(B, 1, H, W)`` raw -> ``(B, 3, H, W)`` views. In
    training mode and with a ``generator`` each sample gets ``configs[k]`` with ``k``
    drawn uniformly; otherwise every sample gets ``default`` (deterministic). The
    training engine passes its generator while training (attribute ``randomised``) and
    keeps this module in training mode then, so runs stay seeded and resumable. The
    module has no trainable parameters.
    """

    randomised = True

    def __init__(self, camera, configs=None, default: str = "bi,s,ga", device=None):
        super().__init__()
        from .isp import Pipeline
        from .isp.configs import CONFIGS, parse_config

        configs = tuple(CONFIGS if configs is None else configs)
        if not configs:
            raise ValueError("configs: expected at least one ISP configuration")
        for c in (*configs, default):
            parse_config(c)
        self.configs = configs
        self.default = default
        names = tuple(dict.fromkeys((*configs, default)))
        self.pipelines = nn.ModuleDict({n.replace(",", "_"): Pipeline.static(n, camera, device=device) for n in names})

    def _pipe(self, name: str) -> nn.Module:
        return self.pipelines[name.replace(",", "_")]

    def draw(self, n: int, generator: torch.Generator) -> list[str]:
        """The configurations of ``n`` samples (consumes ``generator``)."""
        idx = torch.randint(0, len(self.configs), (n,), generator=generator)
        return [self.configs[i] for i in idx.tolist()]

    def forward(self, raw: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if not (self.training and generator is not None):
            return self._pipe(self.default)(raw)
        names = self.draw(raw.shape[0], generator)
        out = None
        for name in dict.fromkeys(names):
            sel = torch.as_tensor([i for i, nm in enumerate(names) if nm == name], device=raw.device)
            v = self._pipe(name)(raw[sel])
            if out is None:
                out = v.new_empty((raw.shape[0], *v.shape[1:]))
            out[sel] = v
        return out


__all__ = ["AUGMIX_OPS", "RandomISP", "affine", "apply_op", "augmix", "autocontrast", "equalize", "posterize", "solarize"]
