import math

import pytest
import torch

from rawdrift.isp.camera import Camera
from rawdrift.raw.cfa import cfa_masks
from rawdrift.raw.sensor import DRONE_SENSOR, MICROSCOPY_SENSOR, SensorModel, check_intensity

INTENSITIES = [1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, 0.001]


def flat(value, size=256, batch=1):
    return torch.full((batch, 3, size, size), float(value))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("sensor", [MICROSCOPY_SENSOR, DRONE_SENSOR], ids=["microscopy", "drone"])
@pytest.mark.parametrize("intensity", INTENSITIES)
def test_photon_transfer_matches_model(sensor, intensity):
    x = flat(0.6, size=256)
    raw = sensor.capture(x, intensity, gen(1)).double()
    mean = sensor.expected_mean(x, intensity)
    var = sensor.expected_variance(x, intensity)
    masks = cfa_masks(256, 256).bool()
    for ch in range(3):
        sel = masks[ch]
        vals = raw[0, 0][sel]
        n = vals.numel()
        m, v = mean[0, 0][sel][0].item(), var[0, 0][sel][0].item()
        # sample mean within 5 standard errors; sample variance within 5 sd of its estimator (~sqrt(2/n))
        assert abs(vals.mean().item() - m) < 5 * math.sqrt(v / n) + 1e-12
        assert abs(vals.var().item() / v - 1) < 5 * math.sqrt(2 / n) + 0.01


def test_variance_grows_linearly_with_signal():
    s = MICROSCOPY_SENSOR
    levels = torch.tensor([0.05, 0.2, 0.4, 0.6, 0.8])
    means, variances = [], []
    for lv in levels:
        raw = s.capture(flat(lv, 128), 1.0, gen(2)).double()[0, 0, 1::2, 0::2]  # green sites
        means.append(raw.mean())
        variances.append(raw.var())
    means, variances = torch.stack(means), torch.stack(variances)
    slope = ((variances[-1] - variances[0]) / (means[-1] - means[0])).item()
    assert slope == pytest.approx(s.gain_dn_per_e / 65535, rel=0.1)


def test_clipping_at_full_well_and_16_bits():
    s = SensorModel(full_well=1000, photons=5000, gain_dn_per_e=80.0, black_level_dn=100)
    raw = s.capture(flat(1.0, 16), 1.0, gen())
    assert raw.max().item() <= 1.0
    # 80 DN/e * 1000 e + 100 = 80100 DN > 65535: the ADC clips
    assert torch.all(raw == 1.0)
    s2 = SensorModel(full_well=1000, photons=5000, gain_dn_per_e=10.0, black_level_dn=100, read_noise_e=0)
    raw2 = s2.capture(flat(1.0, 16), 1.0, gen())
    assert torch.allclose(raw2, torch.full_like(raw2, (10.0 * 1000 + 100) / 65535))  # full well


def test_quantisation_and_black_level():
    s = DRONE_SENSOR
    raw = s.capture(flat(0.0, 64), 1.0, gen())
    counts = torch.round(raw.double() * 65535)
    assert torch.all(counts % 16 == 0)  # 12-bit left-justified
    assert counts.mean().item() == pytest.approx(4096, abs=2)
    assert torch.allclose(raw.double() * 65535, counts, atol=1e-3)
    s16 = MICROSCOPY_SENSOR
    dark = s16.capture(flat(0.0, 128), 1.0, gen()).double() * 65535
    assert dark.mean().item() == pytest.approx(s16.black_level_dn, abs=0.2)
    assert torch.allclose(dark, dark.round(), atol=1e-3)


def test_determinism_and_generator():
    x = torch.rand(2, 3, 16, 16, generator=gen(5))
    a = MICROSCOPY_SENSOR.capture(x, 0.1, gen(3))
    b = MICROSCOPY_SENSOR.capture(x, 0.1, gen(3))
    c = MICROSCOPY_SENSOR.capture(x, 0.1, gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (2, 1, 16, 16) and a.dtype == torch.float32


def test_intensity_scales_photons_not_image():
    x = flat(0.5, 128)
    s = MICROSCOPY_SENSOR
    hi = s.capture(x, 1.0, gen()).double()
    lo = s.capture(x, 0.01, gen()).double()
    bl = s.black_level_dn / 65535
    ratio = (lo.mean() - bl) / (hi.mean() - bl)
    assert ratio.item() == pytest.approx(0.01, rel=0.02)
    # relative noise grows like 1/sqrt(intensity) (shot-noise limited), not constant as for a scaled image
    snr_hi = (hi.mean() - bl) / hi[..., 1::2, 0::2].std()
    snr_lo = (lo.mean() - bl) / lo[..., 1::2, 0::2].std()
    assert snr_hi / snr_lo > 5


def test_camera_matches_sensor():
    cam = MICROSCOPY_SENSOR.camera()
    assert isinstance(cam, Camera)
    assert cam.black_level == pytest.approx((100 / 65535,) * 4)
    r, g, b = MICROSCOPY_SENSOR.qe
    assert cam.white_balance == pytest.approx((g / r, 1.0, g / b))
    assert cam.pattern == "RGGB"
    assert MICROSCOPY_SENSOR.white_level(1) == pytest.approx((2 * 40000 * 0.6 + 100) / 65535)


def test_errors():
    s = MICROSCOPY_SENSOR
    x = flat(0.5, 8)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="intensity: expected a photon-budget factor"):
            s.capture(x, bad)
    with pytest.raises(ValueError, match="intensity: expected a finite number"):
        check_intensity(float("nan"))
    with pytest.raises(ValueError, match="radiance_rgb: expected finite"):
        s.capture(torch.full((1, 3, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="radiance_rgb: expected values in \\[0, 1\\]"):
        s.capture(flat(1.5, 8))
    with pytest.raises(ValueError, match="radiance_rgb: expected 3 channel"):
        s.capture(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="radiance_rgb: expected even"):
        s.capture(torch.zeros(1, 3, 7, 8))
    with pytest.raises(ValueError, match="radiance_rgb: expected a \\(B, C, H, W\\)"):
        s.capture(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="qe: expected three"):
        SensorModel(qe=(0.5, 1.5, 0.5))
    with pytest.raises(ValueError, match="qe: expected shape"):
        SensorModel(qe=(0.5, 0.5))
    with pytest.raises(ValueError, match="bit_depth: expected at most 16"):
        SensorModel(bit_depth=20)
    with pytest.raises(ValueError, match="full_well"):
        SensorModel(full_well=0)
    with pytest.raises(ValueError, match="gain_dn_per_e"):
        SensorModel(gain_dn_per_e=-1)
    with pytest.raises(ValueError, match="pattern"):
        SensorModel(pattern="RGBG")


def test_photon_transfer_helper():
    from rawdrift.raw.sensor import photon_transfer

    ptc = photon_transfer(MICROSCOPY_SENSOR, [0.01, 0.1, 0.5], size=128, generator=gen(9))
    assert ptc["signal"] == pytest.approx(ptc["signal_model"], rel=0.02)
    assert ptc["variance"] == pytest.approx(ptc["variance_model"], rel=0.1)
    with pytest.raises(ValueError, match="channel"):
        photon_transfer(MICROSCOPY_SENSOR, [0.1], channel=3)
