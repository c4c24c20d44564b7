"""Tests of rawdrift.drift.corruptions against the published ImageNet-C definitions.

The ``ref_*`` functions below are straightforward numpy/scipy/skimage versions of
the published formulas, one ``(H, W, 3)`` image at a time like the reference
code; ``benchmarks/corruptions.py`` reuses them as its baseline.

The parity tests against the ``imagecorruptions`` package (ImageNet-C constants)
are skipped unless it imports. It needs OpenCV and ``pkg_resources``, so install
it into a throwaway folder, not the project environment::

    pip install --no-deps --target /tmp/ic imagecorruptions opencv-python-headless "setuptools<80"
    PYTHONPATH=/tmp/ic pytest tests/drift/test_corruptions.py -k package
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats
import skimage.color
import skimage.filters
import skimage.util
import torch

from rawdrift.drift import corruptions as C
from rawdrift.drift.corruptions import CORRUPTIONS, corrupt, hsv_to_rgb, rgb_to_hsv, severity_constants

SEVERITIES = (1, 2, 3, 4, 5)


# ----------------------------------------------------------------------------- reference oracles (HWC numpy)


def ref_gaussian_noise(x, severity, rng):
    c = severity_constants()["gaussian_noise"]["values"][severity - 1]
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1)


def ref_shot_noise(x, severity, rng):
    c = severity_constants()["shot_noise"]["values"][severity - 1]
    return np.clip(rng.poisson(x * c) / c, 0, 1)


def ref_impulse_noise(x, severity, rng):
    c = severity_constants()["impulse_noise"]["values"][severity - 1]
    return np.clip(skimage.util.random_noise(x, mode="s&p", amount=c, rng=rng), 0, 1)


def ref_speckle_noise(x, severity, rng):
    c = severity_constants()["speckle_noise"]["values"][severity - 1]
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1)


def ref_gaussian_blur(x, severity, rng=None):
    c = severity_constants()["gaussian_blur"]["values"][severity - 1]
    # ImageNet-C: gaussian(x, sigma=c, multichannel=True); channel_axis is today's spelling.
    return np.clip(skimage.filters.gaussian(x, sigma=c, channel_axis=-1), 0, 1)


def ref_clipped_zoom(img, z):
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / z)), int(np.ceil(w / z))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = ndi.zoom(img[top:top + ch, left:left + cw], (z, z, 1), order=1)
    th, tw = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[th:th + h, tw:tw + w]


def ref_zoom_blur(x, severity, rng=None):
    factors = np.arange(*severity_constants()["zoom_blur"]["values"][severity - 1])
    x = x.astype(np.float32)
    out = np.zeros_like(x)
    for z in factors:
        out += ref_clipped_zoom(x, z)
    return np.clip((x + out) / (len(factors) + 1), 0, 1)


def ref_contrast(x, severity, rng=None):
    c = severity_constants()["contrast"]["values"][severity - 1]
    means = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1)


def ref_brightness(x, severity, rng=None):
    c = severity_constants()["brightness"]["values"][severity - 1]
    hsv = skimage.color.rgb2hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(skimage.color.hsv2rgb(hsv), 0, 1)


def ref_saturate(x, severity, rng=None):
    a, b = severity_constants()["saturate"]["values"][severity - 1]
    hsv = skimage.color.rgb2hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * a + b, 0, 1)
    return np.clip(skimage.color.hsv2rgb(hsv), 0, 1)


def ref_elastic_warp(x, inverse_affine, dx, dy):
    """Affine (bilinear, whole-sample mirror like BORDER_REFLECT_101) then displacement (order 1, reflect)."""
    h, w = x.shape[:2]
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    a = inverse_affine
    sx = a[0, 0] * xx + a[1, 0] * yy + a[2, 0]
    sy = a[0, 1] * xx + a[1, 1] * yy + a[2, 1]
    warped = np.stack([ndi.map_coordinates(x[..., k], [sy, sx], order=1, mode="mirror") for k in range(3)], -1)
    return np.stack(
        [ndi.map_coordinates(warped[..., k], [yy + dy, xx + dx], order=1, mode="reflect") for k in range(3)], -1
    )


def ref_elastic_transform(x, severity, rng):
    """The published recipe for one 224-scaled image, random parts from ``rng`` (numpy)."""
    h, w = x.shape[:2]
    alpha, sigma, r = severity_constants()["elastic_transform"]["values"][severity - 1]
    s = min(h, w) / 224
    alpha, sigma, r = alpha * s * s, sigma * s, r * s
    cx, cy, half = w // 2, h // 2, min(h, w) // 3
    pts1 = np.array([[cx + half, cy + half], [cx + half, cy - half], [cx - half, cy - half]], float)
    pts2 = pts1 + rng.uniform(-r, r, size=pts1.shape)
    inverse_affine = np.linalg.solve(np.c_[pts2, np.ones(3)], pts1)
    dx = ndi.gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = ndi.gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    return np.clip(ref_elastic_warp(x, inverse_affine, dx, dy), 0, 1)


REFERENCES = {
    "gaussian_noise": ref_gaussian_noise,
    "shot_noise": ref_shot_noise,
    "impulse_noise": ref_impulse_noise,
    "speckle_noise": ref_speckle_noise,
    "gaussian_blur": ref_gaussian_blur,
    "zoom_blur": ref_zoom_blur,
    "contrast": ref_contrast,
    "brightness": ref_brightness,
    "saturate": ref_saturate,
    "elastic_transform": ref_elastic_transform,
}
DETERMINISTIC = ("gaussian_blur", "zoom_blur", "contrast", "brightness", "saturate")
RANDOM = tuple(n for n in CORRUPTIONS if n not in DETERMINISTIC)


# ----------------------------------------------------------------------------- helpers


def images(b=2, h=40, w=48, seed=0, dtype=torch.float32):
    """Smooth random colour images with some saturated and grey pixels (ties in HSV)."""
    g = np.random.default_rng(seed)
    x = ndi.gaussian_filter(g.random((b, 3, h, w)), (0, 0, 2, 2)) * 3 - 1
    x = np.clip(x, 0, 1)
    x[:, :, :3, :3] = 0.25  # grey block
    x[:, 1, -3:, -3:] = x[:, 0, -3:, -3:]  # red/green ties
    return torch.from_numpy(x).to(dtype)


def to_hwc(t):
    return t.detach().cpu().double().numpy().transpose(0, 2, 3, 1)


# ----------------------------------------------------------------------------- table and API


def test_constants_table_is_imagenet_c():
    t = severity_constants()
    assert tuple(t) == CORRUPTIONS
    for entry in t.values():
        assert len(entry["values"]) == 5 and "make_imagenet_c.py" in entry["source"]
    # Spot checks against ImageNet-C (CIFAR-10-C uses e.g. gaussian 0.04.., blur sigma 0.4..).
    assert t["gaussian_noise"]["values"][0] == 0.08 and t["gaussian_blur"]["values"] == (1, 2, 3, 4, 6)
    assert t["shot_noise"]["values"] == (60, 25, 12, 5, 3)
    assert [len(np.arange(*v)) for v in t["zoom_blur"]["values"]] == [12, 16, 11, 13, 11]  # float arange: 1.11 is reached
    t["contrast"]["values"] = ()
    assert severity_constants()["contrast"]["values"] == (0.4, 0.3, 0.2, 0.1, 0.05)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_all_run_shape_range_dtype(name, device):
    x = images(2, 24, 20).to(device)
    g = torch.Generator().manual_seed(1)
    for s in SEVERITIES:
        y = corrupt(x, name, s, g)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert getattr(C, name)(x, 3, g).shape == x.shape
    assert getattr(C, name)(x.double()).dtype == torch.float64


def test_unknown_name():
    with pytest.raises(ValueError, match="name: expected one of"):
        corrupt(images(), "fog", 1)


@pytest.mark.parametrize("severity", [0, 6, -1])
def test_severity_out_of_range(severity):
    with pytest.raises(ValueError, match="severity"):
        corrupt(images(), "contrast", severity)


@pytest.mark.parametrize("severity", [2.0, True, "3"])
def test_severity_not_int(severity):
    with pytest.raises(ValueError, match="severity: expected an integer"):
        C.gaussian_noise(images(), severity)


def test_wrong_shape_channels_dtype():
    with pytest.raises(ValueError, match=r"images: expected a \(B, C, H, W\)"):
        C.contrast(torch.rand(3, 8, 8), 1)
    with pytest.raises(ValueError, match="images: expected 3 channel"):
        C.brightness(torch.rand(1, 1, 8, 8), 1)
    with pytest.raises(ValueError, match="images: expected a floating-point"):
        C.saturate(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 1)
    with pytest.raises(ValueError, match="images: expected height and width >= 2"):
        C.zoom_blur(torch.rand(1, 3, 1, 8), 1)
    with pytest.raises(ValueError, match="images: expected height and width >= 3"):
        C.elastic_transform(torch.rand(1, 3, 2, 8), 1)
    with pytest.raises(TypeError, match="images: expected a torch.Tensor"):
        C.zoom_blur(np.zeros((1, 3, 8, 8)), 1)


def test_generator_type():
    with pytest.raises(TypeError, match="generator: expected a torch.Generator"):
        C.shot_noise(images(), 1, generator=np.random.default_rng(0))


# ----------------------------------------------------------------------------- colour space vs skimage


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_hsv_round_trip_matches_skimage(dtype, atol):
    g = np.random.default_rng(3)
    x = g.random((2, 3, 17, 13))
    x[:, :, :4] = np.round(x[:, :, :4] * 4) / 4  # many exact ties and greys
    x[0, :, 5, 5] = 0.0
    x[0, :, 6, 6] = 1.0
    t = torch.from_numpy(x).to(dtype)
    hsv = rgb_to_hsv(t)
    want = skimage.color.rgb2hsv(x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(to_hwc(hsv), want, atol=atol)
    # hsv_to_rgb on skimage's own HSV values, including hue exactly 1.0 (sector 6 -> 0).
    want_hsv = want.copy()
    want_hsv[0, 0, 0] = (1.0, 0.5, 0.8)
    got = hsv_to_rgb(torch.from_numpy(want_hsv.transpose(0, 3, 1, 2)).to(dtype))
    np.testing.assert_allclose(to_hwc(got), skimage.color.hsv2rgb(want_hsv), atol=atol)
    np.testing.assert_allclose(to_hwc(hsv_to_rgb(hsv)), x.transpose(0, 2, 3, 1), atol=atol * 5)


# ----------------------------------------------------------------------------- deterministic parity


@pytest.mark.parametrize("name", DETERMINISTIC)
@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_deterministic_match_reference(name, severity, dtype, atol):
    x = images(2, 40, 48, dtype=dtype)
    got = to_hwc(corrupt(x, name, severity))
    if name == "zoom_blur":
        atol = max(atol, 2e-6)  # the reference itself works in float32
    for b in range(x.shape[0]):
        want = REFERENCES[name](to_hwc(x)[b], severity)
        np.testing.assert_allclose(got[b], want, atol=atol, err_msg=f"{name} severity {severity} image {b}")


@pytest.mark.parametrize("severity", SEVERITIES)
def test_zoom_blur_square_like_imagenet_c(severity):
    # On square images the published code (height-only crop, centred trim) and ours coincide.
    x = images(1, 64, 64)
    np.testing.assert_allclose(to_hwc(C.zoom_blur(x, severity))[0], ref_zoom_blur(to_hwc(x)[0], severity),
                               atol=2e-6)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_blur_equals_correlate2d_with_truncated_kernel(severity):
    from rawdrift.isp.filters import correlate2d

    sigma = severity_constants()["gaussian_blur"]["values"][severity - 1]
    radius = int(4 * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k = torch.from_numpy(k / k.sum())
    x = images(2, 21, 30, dtype=torch.float64)
    want = correlate2d(correlate2d(x, k.reshape(1, -1), "nearest"), k.reshape(-1, 1), "nearest").clamp(0, 1)
    torch.testing.assert_close(C.gaussian_blur(x, severity), want, rtol=0, atol=1e-12)


def test_deterministic_ones_ignore_generator():
    x = images()
    for name in DETERMINISTIC:
        a = corrupt(x, name, 3, torch.Generator().manual_seed(0))
        torch.testing.assert_close(a, corrupt(x, name, 3), rtol=0, atol=0)


# ----------------------------------------------------------------------------- noise statistics


def _clipped_normal_moments(mean, sd):
    """Mean and variance of clip(mean + sd * Z, 0, 1) by quadrature."""
    z = np.linspace(-12, 12, 200001)
    w = scipy.stats.norm.pdf(z) * (z[1] - z[0])
    v = np.clip(mean + sd * z, 0, 1)
    m = np.sum(w * v)
    return m, np.sum(w * (v - m) ** 2)


def _clipped_poisson_moments(x, c):
    k = np.arange(0, 2000)
    p = scipy.stats.poisson.pmf(k, x * c)
    v = np.clip(k / c, 0, 1)
    m = np.sum(p * v)
    return m, np.sum(p * (v - m) ** 2)


N = 200_000  # values per statistic: 3 * 258 * 258 ~ 2e5


def flat(value, h=258, w=258):
    return torch.full((1, 3, h, w), value, dtype=torch.float64)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_noise_statistics(severity):
    c = severity_constants()["gaussian_noise"]["values"][severity - 1]
    y = C.gaussian_noise(flat(0.3), severity, torch.Generator().manual_seed(severity))
    m, v = _clipped_normal_moments(0.3, c)
    assert abs(y.mean().item() - m) < 5 * math.sqrt(v / y.numel())
    assert y.var().item() == pytest.approx(v, rel=0.02)
    if severity <= 2:  # no clipping in practice: the mean is preserved and the std is c
        assert y.mean().item() == pytest.approx(0.3, abs=1e-3) and y.std().item() == pytest.approx(c, rel=0.01)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_shot_noise_statistics(severity):
    c = severity_constants()["shot_noise"]["values"][severity - 1]
    y = C.shot_noise(flat(0.3), severity, torch.Generator().manual_seed(severity))
    m, v = _clipped_poisson_moments(0.3, c)
    assert abs(y.mean().item() - m) < 5 * math.sqrt(v / y.numel())
    assert y.var().item() == pytest.approx(v, rel=0.02)
    # Values on the lattice k / c.
    k = y * c
    assert torch.allclose(k, k.round(), atol=1e-9)
    if severity == 1:  # unclipped regime: variance x / c
        assert y.var().item() == pytest.approx(0.3 / c, rel=0.02)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_impulse_noise_statistics(severity):
    c = severity_constants()["impulse_noise"]["values"][severity - 1]
    x = flat(0.4)
    y = C.impulse_noise(x, severity, torch.Generator().manual_seed(severity))
    changed = y != x
    frac = changed.double().mean().item()
    assert abs(frac - c) < 5 * math.sqrt(c * (1 - c) / x.numel())
    assert set(torch.unique(y[changed]).tolist()) == {0.0, 1.0}
    salt = (y[changed] == 1).double().mean().item()
    assert abs(salt - 0.5) < 5 * math.sqrt(0.25 / changed.sum().item())
    # Channels are hit independently, as skimage does.
    both = (changed[:, 0] & changed[:, 1]).double().mean().item()
    assert both == pytest.approx(c * c, abs=5 * math.sqrt(c * c / changed[:, 0].numel()) + 1e-4)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_speckle_noise_statistics(severity):
    c = severity_constants()["speckle_noise"]["values"][severity - 1]
    y = C.speckle_noise(flat(0.4), severity, torch.Generator().manual_seed(severity))
    m, v = _clipped_normal_moments(0.4, 0.4 * c)
    assert abs(y.mean().item() - m) < 5 * math.sqrt(v / y.numel())
    assert y.var().item() == pytest.approx(v, rel=0.02)
    # Multiplicative: black stays black.
    assert (C.speckle_noise(flat(0.0, 8, 8), severity, torch.Generator().manual_seed(0)) == 0).all()


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_noise_matches_reference_distribution(name):
    # Same distribution as the numpy reference on a real image: compare histograms of the output.
    x = images(1, 96, 96, seed=5, dtype=torch.float64)
    got = corrupt(x, name, 3, torch.Generator().manual_seed(0)).numpy().ravel()
    want = REFERENCES[name](to_hwc(x)[0], 3, np.random.default_rng(0)).ravel()
    assert got.mean() == pytest.approx(want.mean(), abs=4e-3)
    assert got.std() == pytest.approx(want.std(), rel=0.03)
    assert scipy.stats.ks_2samp(got, want).statistic < 0.02


# ----------------------------------------------------------------------------- randomness: seeds and devices


@pytest.mark.parametrize("name", RANDOM)
def test_seeded_and_batched(name):
    x = images(3, 24, 28)
    a = corrupt(x, name, 4, torch.Generator().manual_seed(7))
    b = corrupt(x, name, 4, torch.Generator().manual_seed(7))
    c = corrupt(x, name, 4, torch.Generator().manual_seed(8))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # independent randomness per image
    torch.manual_seed(0)
    d = corrupt(x, name, 4)
    torch.manual_seed(0)
    torch.testing.assert_close(corrupt(x, name, 4), d, rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", CORRUPTIONS)
def test_cpu_generator_same_result_on_cuda(name):
    x = images(2, 32, 32)
    a = corrupt(x, name, 3, torch.Generator().manual_seed(3))
    b = corrupt(x.cuda(), name, 3, torch.Generator().manual_seed(3))
    torch.testing.assert_close(b.cpu(), a, rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- elastic transform


@pytest.mark.parametrize("mode", ["reflect", "mirror"])
@pytest.mark.parametrize("sigma, n", [(1.3, 20), (2.44, 31), (170.8, 24), (40.0, 7)])
def test_smoothing_matrix_matches_scipy(mode, sigma, n):
    x = np.random.default_rng(0).uniform(-1, 1, (5, n))
    mat = C._smoothing_matrix(n, sigma, 3.0, mode, torch.float64, "cpu").numpy()
    want = ndi.gaussian_filter1d(x, sigma, axis=-1, mode=mode, truncate=3.0)
    np.testing.assert_allclose(x @ mat.T, want, atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "mirror"])
def test_bilinear_sampling_matches_map_coordinates(mode):
    g = np.random.default_rng(1)
    x = g.random((1, 3, 9, 12))
    sy = g.uniform(-12, 20, (1, 7, 8))
    sx = g.uniform(-15, 26, (1, 7, 8))
    got = C._sample(torch.from_numpy(x), torch.from_numpy(sx), torch.from_numpy(sy), mode).numpy()
    for k in range(3):
        want = ndi.map_coordinates(x[0, k], [sy[0], sx[0]], order=1, mode=mode)
        np.testing.assert_allclose(got[0, k], want, atol=1e-10)


def test_elastic_identity_at_zero_displacement():
    x = images(2, 30, 34, dtype=torch.float64)
    ident = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64).expand(2, 3, 2)
    zero = torch.zeros(2, 30, 34, dtype=torch.float64)
    torch.testing.assert_close(C._elastic_warp(x, ident, zero, zero), x, rtol=0, atol=1e-12)
    # A whole-pixel shift moves the image and reflects at the border.
    shifted = C._elastic_warp(x, ident, zero + 2.0, zero)
    torch.testing.assert_close(shifted[..., :-2], x[..., 2:], rtol=0, atol=1e-12)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_elastic_warp_matches_reference_given_fields(severity):
    x = images(2, 36, 40, dtype=torch.float64)
    inv, dx, dy = C._elastic_fields(x, severity, torch.Generator().manual_seed(severity))
    got = to_hwc(C._elastic_warp(x, inv, dx, dy))
    for b in range(2):
        want = ref_elastic_warp(to_hwc(x)[b], inv[b].numpy(), dx[b].numpy(), dy[b].numpy())
        np.testing.assert_allclose(got[b], want, atol=1e-9)


def test_elastic_fields_definition():
    # Affine: maps the perturbed control points back onto the original ones, perturbation within range.
    x = images(64, 224, 224)
    for severity in (1, 3):
        alpha, sigma, r = severity_constants()["elastic_transform"]["values"][severity - 1]
        inv, dx, dy = C._elastic_fields(x, severity, torch.Generator().manual_seed(0))
        pts1 = torch.tensor([[112.0 + 74, 112 + 74], [112 + 74, 112 - 74], [112 - 74, 112 - 74]], dtype=torch.float64)
        fwd = torch.linalg.inv(torch.cat((inv, torch.tensor([0.0, 0, 1], dtype=torch.float64).reshape(1, 3, 1).expand(64, 3, 1)), -1))
        pts2 = torch.cat((pts1, torch.ones(3, 1, dtype=torch.float64)), -1) @ fwd[..., :2]
        jitter = pts2 - pts1
        assert jitter.abs().max() <= r and jitter.abs().max() > 0.8 * r
        assert jitter.mean().abs() < 0.1 * r


@pytest.mark.parametrize("severity", [3, 4, 5])
def test_elastic_displacement_std_matches_formula(severity):
    # Interior std of alpha * (Gaussian-smoothed U(-1, 1)) is alpha * sqrt(1/3) * sum(taps^2).
    alpha, sigma, _ = severity_constants()["elastic_transform"]["values"][severity - 1]
    x = images(8, 224, 224)
    _, dx, dy = C._elastic_fields(x, severity, torch.Generator().manual_seed(severity))
    taps = C._gaussian_taps(sigma, 3.0)
    expected = alpha * math.sqrt(1 / 3) * float((taps ** 2).sum())
    inner = torch.stack((dx, dy))[..., 10:-10, 10:-10]
    assert inner.std().item() == pytest.approx(expected, rel=0.05)
    assert inner.mean().abs().item() < 0.05 * expected


@pytest.mark.parametrize("severity", [1, 5])
def test_elastic_displacement_scales_with_image(severity):
    # The displacement field, relative to the image size, has the same spread at 112 and 224 px.
    spreads = []
    for n in (112, 224):
        _, dx, dy = C._elastic_fields(images(16, n, n), severity, torch.Generator().manual_seed(0))
        spreads.append(torch.stack((dx, dy)).std().item() / n)
    assert spreads[0] == pytest.approx(spreads[1], rel=0.15)


def test_elastic_matches_reference_distribution():
    # Published recipe in numpy with numpy randomness vs ours: similar change to the image.
    x = images(6, 64, 64, seed=2, dtype=torch.float64)
    for severity in (1, 5):
        got = (C.elastic_transform(x, severity, torch.Generator().manual_seed(0)) - x).abs().mean().item()
        rng = np.random.default_rng(0)
        want = np.mean([np.abs(ref_elastic_transform(xi, severity, rng) - xi).mean() for xi in to_hwc(x)])
        assert got == pytest.approx(want, rel=0.35)


# ----------------------------------------------------------------------------- the imagecorruptions package


def _imagecorruptions():
    try:
        import imagecorruptions.corruptions as ic  # noqa: PLC0415
    except Exception:  # ImportError, or its pkg_resources/cv2 imports failing
        pytest.skip("imagecorruptions not importable (see this module's docstring)")
    return ic


@pytest.mark.parametrize("name", ["contrast", "brightness", "saturate", "zoom_blur"])
@pytest.mark.parametrize("severity", SEVERITIES)
def test_matches_imagecorruptions_package(name, severity):
    ic = _imagecorruptions()
    x = (images(1, 64, 64, seed=4, dtype=torch.float64) * 255).round().to(torch.uint8)
    want = np.asarray(getattr(ic, name)(to_hwc(x)[0].astype(np.uint8), severity), dtype=np.float64) / 255
    got = to_hwc(corrupt(x.double() / 255, name, severity))[0]
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize("severity", SEVERITIES)
def test_gaussian_blur_matches_imagecorruptions_package(severity, monkeypatch):
    ic = _imagecorruptions()
    # The package still passes skimage's removed `multichannel=True`; translate it to `channel_axis=-1`.
    def gaussian(image, sigma, multichannel=False, **kw):
        return skimage.filters.gaussian(image, sigma=sigma, channel_axis=-1 if multichannel else None, **kw)

    monkeypatch.setattr(ic, "gaussian", gaussian)
    x = (images(1, 48, 56, seed=4, dtype=torch.float64) * 255).round().to(torch.uint8)
    want = np.asarray(ic.gaussian_blur(to_hwc(x)[0].astype(np.uint8), severity), dtype=np.float64) / 255
    np.testing.assert_allclose(to_hwc(C.gaussian_blur(x.double() / 255, severity))[0], want, atol=1e-10)


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_noise_distribution_matches_imagecorruptions_package(name):
    ic = _imagecorruptions()
    x = (images(1, 96, 96, seed=6, dtype=torch.float64) * 255).round().to(torch.uint8)
    np.random.seed(0)
    want = np.asarray(getattr(ic, name)(to_hwc(x)[0].astype(np.uint8), 3), dtype=np.float64).ravel() / 255
    got = corrupt(x.double() / 255, name, 3, torch.Generator().manual_seed(0)).numpy().ravel()
    assert got.std() == pytest.approx(want.std(), rel=0.03)
    assert scipy.stats.ks_2samp(got, want).statistic < 0.02
