"""A physical sensor model: linear radiance -> electrons -> noise -> 16-bit normalised raw counts.

The chain, per pixel of a Bayer mosaic (each pixel sees one colour channel ``c``):

1. expected electrons ``mu = intensity * photons * qe[c] * radiance`` (``photons`` is
   the photon budget per pixel for radiance 1 at intensity 1, ``qe`` the per-channel
   quantum efficiency including the colour filter's transmission);
2. photon shot noise ``e ~ Poisson(mu)``, clipped at the full-well capacity;
3. Gaussian read noise ``e + N(0, read_noise_e^2)``;
4. conversion gain to 16-bit data numbers ``DN = gain_dn_per_e * e + black_level_dn``;
5. analogue-to-digital conversion with ``bit_depth`` bits, left-justified to 16 bits
   (a 12-bit sensor gives multiples of 16, like the paper's drone camera), clipped
   to ``[0, 65535]``;
6. normalisation to ``[0, 1]`` by dividing by ``65535`` (the paper's ``x_RAW``).

**Intensity** scales the photon budget *before* noise (step 1), never a finished
image, so a capture at intensity 0.01 has the shot-noise statistics of 1% of
the light, and the read noise and quantisation of the same sensor. Intensities
must lie in ``(0, 1]``: 1.0 is the reference exposure the synthetic scenes are
rendered for (the paper's ``raw_scale100``); brighter exposures would only add
saturation, and the paper's variants all darken.

Away from saturation and the ADC's ends the normalised raw value has

- mean ``(gain * mu + black_level_dn) / 65535``  (:meth:`SensorModel.expected_mean`)
- variance ``(gain^2 * (mu + read_noise_e^2) + q^2 / 12) / 65535^2`` with ``q = 2^(16 - bit_depth)``
  the quantisation step (:meth:`SensorModel.expected_variance`),

which is the photon transfer curve: variance grows linearly with the mean, with
slope ``gain / 65535`` and an offset set by read noise.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from .._checks import check_finite, check_image, check_int, check_positive, check_range, check_shape
from .cfa import check_pattern, mosaic

WHITE_DN = 65535.0

#: The paper's raw intensity levels (Zenodo folders ``raw_scale100`` ... ``raw_scale001``).
INTENSITY_LEVELS = (1.0, 0.75, 0.5, 0.25, 0.10, 0.05, 0.01)


def check_intensity(intensity, name: str = "intensity") -> float:
    """Raise unless ``intensity`` is a finite number in ``(0, 1]``; return it as float."""
    if isinstance(intensity, numbers.Real) and not isinstance(intensity, bool):
        intensity = float(intensity)  # accept numpy scalars
    check_range(intensity, name)
    if not 0 < intensity <= 1:
        raise ValueError(f"{name}: expected a photon-budget factor in (0, 1], got {intensity!r}")
    return float(intensity)


@dataclass(frozen=True)
class SensorModel:
    """A linear CMOS sensor with shot noise, read noise, black level and an ADC.

    Attributes:
        full_well: full-well capacity in electrons (a pixel saturates there).
        qe: per-channel (R, G, B) quantum efficiency in (0, 1], colour filter included.
        read_noise_e: standard deviation of the read noise in electrons.
        gain_dn_per_e: conversion gain in 16-bit data numbers per electron.
        black_level_dn: offset added before digitisation, in 16-bit DN.
        photons: photons per pixel for radiance 1 at intensity 1 (the photon budget).
        bit_depth: ADC bits (8..16); values are left-justified to 16 bits.
        pattern: Bayer pattern of the mosaic the sensor produces.

    >>> s = SensorModel()
    >>> raw = s.capture(torch.full((1, 3, 4, 4), 0.5), generator=torch.Generator().manual_seed(0))
    >>> raw.shape, raw.dtype
    (torch.Size([1, 1, 4, 4]), torch.float32)
    """

    full_well: float = 30000.0
    qe: tuple[float, float, float] = (0.50, 0.60, 0.45)
    read_noise_e: float = 2.0
    gain_dn_per_e: float = 2.0
    black_level_dn: float = 128.0
    photons: float = 40000.0
    bit_depth: int = 16
    pattern: str = "RGGB"
    name: str = "synthetic-sensor"

    def __post_init__(self):
        check_positive(self.full_well, "full_well")
        qe = check_shape(torch.as_tensor(self.qe, dtype=torch.float64), (3,), "qe")
        check_finite(qe, "qe")
        if ((qe <= 0) | (qe > 1)).any():
            raise ValueError(f"qe: expected three quantum efficiencies in (0, 1], got {qe.tolist()}")
        check_positive(self.read_noise_e, "read_noise_e", strict=False)
        check_positive(self.gain_dn_per_e, "gain_dn_per_e")
        check_range(float(self.black_level_dn), "black_level_dn", 0.0, WHITE_DN - 1)
        check_positive(self.photons, "photons")
        check_int(self.bit_depth, "bit_depth", minimum=8)
        if self.bit_depth > 16:
            raise ValueError(f"bit_depth: expected at most 16 bits, got {self.bit_depth}")
        check_pattern(self.pattern)
        object.__setattr__(self, "qe", tuple(float(v) for v in qe))

    # ----------------------------------------------------------------- helpers
    @property
    def step_dn(self) -> float:
        """Quantisation step in 16-bit DN (``2^(16 - bit_depth)``)."""
        return float(2 ** (16 - self.bit_depth))

    @property
    def max_dn(self) -> float:
        """Largest representable value in 16-bit DN."""
        return WHITE_DN - (self.step_dn - 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["qe"] = list(self.qe)
        return d

    def _electrons(self, radiance_rgb: Tensor, intensity: float) -> Tensor:
        """Expected electrons at each mosaic site, ``(B, 1, H, W)`` float64."""
        check_image(radiance_rgb, "radiance_rgb", channels=3, even=True)
        check_finite(radiance_rgb, "radiance_rgb")
        lo, hi = float(radiance_rgb.min()), float(radiance_rgb.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"radiance_rgb: expected values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
        intensity = check_intensity(intensity)
        qe = torch.tensor(self.qe, dtype=torch.float64, device=radiance_rgb.device)
        per_channel = radiance_rgb.to(torch.float64) * (intensity * self.photons) * qe.view(1, 3, 1, 1)
        return mosaic(per_channel, self.pattern)

    # --------------------------------------------------------------- analytic
    def expected_mean(self, radiance_rgb: Tensor, intensity: float = 1.0) -> Tensor:
        """Mean normalised raw value ``(B, 1, H, W)`` (float64), ignoring clipping."""
        mu = self._electrons(radiance_rgb, intensity)
        return (self.gain_dn_per_e * mu + self.black_level_dn) / WHITE_DN

    def expected_variance(self, radiance_rgb: Tensor, intensity: float = 1.0) -> Tensor:
        """Variance of the normalised raw value ``(B, 1, H, W)`` (float64), ignoring clipping.

        Shot noise (variance = mean electrons), read noise and uniform quantisation noise.
        """
        mu = self._electrons(radiance_rgb, intensity)
        var_dn = self.gain_dn_per_e**2 * (mu + self.read_noise_e**2) + self.step_dn**2 / 12.0
        return var_dn / WHITE_DN**2

    # ----------------------------------------------------------------- sample
    def capture(self, radiance_rgb: Tensor, intensity: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Record a noisy raw mosaic of a linear radiance image.

        Args:
            radiance_rgb: ``(B, 3, H, W)`` linear radiance in [0, 1], ``H`` and ``W`` even
                (a full RGB image; the CFA samples one channel per pixel).
            intensity: photon-budget factor in (0, 1], applied before noise.
            generator: ``torch.Generator`` (CPU) for reproducible noise; ``None`` uses torch's global RNG.
        Returns:
            ``(B, 1, H, W)`` float32 raw mosaic in [0, 1]: 16-bit counts divided by 65535.
        """
        mu = self._electrons(radiance_rgb, intensity)
        dev = mu.device
        mu_cpu = mu.cpu()  # sample on the CPU so one generator gives identical noise on every device
        electrons = torch.poisson(mu_cpu, generator=generator).clamp_(max=self.full_well)
        if self.read_noise_e > 0:
            electrons += self.read_noise_e * torch.randn(mu_cpu.shape, generator=generator, dtype=torch.float64)
        dn = self.gain_dn_per_e * electrons + self.black_level_dn
        q = self.step_dn
        dn = (torch.round(dn / q) * q).clamp_(0.0, self.max_dn)
        return (dn / WHITE_DN).to(device=dev, dtype=torch.float32)

    def capture_counts(self, radiance_rgb: Tensor, intensity: float = 1.0, generator=None) -> Tensor:
        """Like :meth:`capture` but returns the integer 16-bit counts as ``uint16``-valued ``int32``."""
        return torch.round(self.capture(radiance_rgb, intensity, generator).double() * WHITE_DN).to(torch.int32)

    # ----------------------------------------------------------------- camera
    def camera(self, name: str | None = None):
        """A :class:`~rawdrift.isp.camera.Camera` that develops this sensor's raw data sensibly.

        - black level: ``black_level_dn / 65535`` at all four sites;
        - white balance: inverse quantum efficiencies normalised to green,
          ``(qe_G/qe_R, 1, qe_G/qe_B)``, so a grey radiance gives equal R, G, B after WB;
        - colour matrix: identity. The synthetic scenes are rendered directly in the
          sensor's own RGB primaries (no spectral cross-talk is simulated), so no
          camera-to-display correction is needed.
        """
        from ..isp.camera import Camera

        r, g, b = self.qe
        bl = self.black_level_dn / WHITE_DN
        return Camera(
            name=name or self.name,
            black_level=(bl,) * 4,
            white_balance=(g / r, 1.0, g / b),
            color_matrix=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
            gamma=2.2,
            pattern=self.pattern,
            notes="synthetic sensor: wb = inverse QE ratios to green, identity colour matrix",
        )

    def white_level(self, channel: int = 1) -> float:
        """Normalised mean raw value of radiance 1 at intensity 1 in ``channel`` (before clipping)."""
        return (self.gain_dn_per_e * self.photons * self.qe[channel] + self.black_level_dn) / WHITE_DN


def photon_transfer(sensor: SensorModel, levels, intensity: float = 1.0, size: int = 64, channel: int = 1,
                    generator: torch.Generator | None = None) -> dict:
    """Measure a photon transfer curve: mean and variance of flat fields at radiance ``levels``.

    Each level is captured as a ``size`` x ``size`` flat field; statistics use the
    pixels of ``channel`` (0=R, 1=G, 2=B). Returns numpy arrays in 16-bit DN above
    the black level: ``signal``, ``variance`` (measured) and ``signal_model``,
    ``variance_model`` (from :meth:`SensorModel.expected_mean`/``expected_variance``).

    >>> ptc = photon_transfer(MICROSCOPY_SENSOR, [0.1, 0.5], size=16, generator=torch.Generator().manual_seed(0))
    >>> sorted(ptc)
    ['signal', 'signal_model', 'variance', 'variance_model']
    """
    from .cfa import cfa_masks

    check_int(size, "size", minimum=4, even=True)
    check_int(channel, "channel", minimum=0)
    if channel > 2:
        raise ValueError(f"channel: expected 0, 1 or 2, got {channel}")
    lv = torch.as_tensor(levels, dtype=torch.float32).reshape(-1)
    x = lv.view(-1, 1, 1, 1).expand(-1, 3, size, size).contiguous()
    raw = sensor.capture(x, intensity, generator).double() * WHITE_DN
    sel = cfa_masks(size, size, sensor.pattern)[channel].bool()
    vals = raw[:, 0][:, sel]
    mean_m = sensor.expected_mean(x, intensity)[:, 0][:, sel][:, 0] * WHITE_DN
    var_m = sensor.expected_variance(x, intensity)[:, 0][:, sel][:, 0] * WHITE_DN**2
    bl = sensor.black_level_dn
    return {
        "signal": (vals.mean(1) - bl).numpy(), "variance": vals.var(1).numpy(),
        "signal_model": (mean_m - bl).numpy(), "variance_model": var_m.numpy(),
    }


# Bright-field microscope camera, loosely after a scientific CMOS (PCO edge 5.5 class):
# deep well, low read noise, 16-bit ADC, small black level. Background transmission
# ~0.9 lands near 70% of the range in green.
MICROSCOPY_SENSOR = SensorModel(
    full_well=30000.0, qe=(0.50, 0.60, 0.45), read_noise_e=1.5, gain_dn_per_e=2.0,
    black_level_dn=100.0, photons=40000.0, bit_depth=16, name="synthetic-microscopy",
)

# Drone camera after the paper's Sony IMX183 at ISO 200: 12-bit values left-justified
# to 16 bits, gain 8.448 DN/e- on the 16-bit numbers, black level 4096 DN (0.0625).
DRONE_SENSOR = SensorModel(
    full_well=7200.0, qe=(0.45, 0.55, 0.40), read_noise_e=2.5, gain_dn_per_e=8.448,
    black_level_dn=4096.0, photons=12000.0, bit_depth=12, name="synthetic-drone",
)

__all__ = ["SensorModel", "MICROSCOPY_SENSOR", "DRONE_SENSOR", "INTENSITY_LEVELS", "check_intensity", "photon_transfer",
           "WHITE_DN"]
