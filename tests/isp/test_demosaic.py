"""Parity of the torch demosaicing methods with colour-demosaicing, gradients and errors."""

import math

import colour_demosaicing as cd
import numpy as np
import pytest
import torch

from rawdrift.isp.demosaic import (
    BILINEAR_KERNELS,
    METHODS,
    Demosaic,
    demosaic,
    demosaic_bilinear,
    demosaic_malvar2004,
    demosaic_menon2007,
)
from rawdrift.raw.cfa import PATTERNS, mosaic

from tests.conftest import ATOL  # per-dtype tolerances, defined once in tests/conftest.py

REFERENCE = {
    "bilinear": cd.demosaicing_CFA_Bayer_bilinear,
    "malvar2004": cd.demosaicing_CFA_Bayer_Malvar2004,
    "menon2007": cd.demosaicing_CFA_Bayer_Menon2007,
}
SIZES = [(8, 8), (16, 24), (64, 64)]
DTYPES = [torch.float32, torch.float64]


def _grid(h, w):
    y = torch.arange(h, dtype=torch.float64).reshape(h, 1).expand(h, w)
    x = torch.arange(w, dtype=torch.float64).reshape(1, w).expand(h, w)
    return y, x


def make_input(kind: str, h: int, w: int, pattern: str, seed: int = 0) -> torch.Tensor:
    """A (2, 1, H, W) float64 mosaic of the named kind, made on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    y, x = _grid(h, w)
    if kind == "random":
        return torch.rand(2, 1, h, w, generator=gen, dtype=torch.float64)
    if kind == "gradient":  # a different linear ramp in each channel
        rgb = torch.stack([(x + 0.5 * y) / (w + h), 1 - y / h, 0.2 + 0.3 * x / w])
    elif kind == "edges":  # step edges in three orientations
        rgb = torch.stack([(x >= w / 2).double(), (y >= h / 3).double(), ((x + y) >= (h + w) / 2).double() * 0.8])
    elif kind == "checkerboard":  # pixel-level and 2x2-block checkerboards
        rgb = torch.stack([((x + y) % 2).double(), ((x // 2 + y // 2) % 2).double(), ((x // 3 + y) % 2).double()])
    elif kind == "realistic":  # smooth colourful image with random phases
        ph = torch.rand(3, generator=gen, dtype=torch.float64) * 2 * math.pi
        freq = torch.tensor([0.07, 0.11, 0.05], dtype=torch.float64)
        rgb = torch.stack(
            [0.5 + 0.4 * torch.sin(freq[c] * (x + 1.3 * y) + ph[c]) * torch.cos(0.05 * (y - x)) for c in range(3)]
        )
    else:
        raise AssertionError(kind)
    rgb = torch.stack([rgb, rgb.flip(-1)])  # batch of two
    return mosaic(rgb, pattern)


def reference(method, raw, pattern, **kwargs):
    """Run colour-demosaicing on each image: (B, 1, H, W) -> (B, 3, H, W) float64 numpy."""
    arrays = raw.detach().cpu().double().numpy()[:, 0]
    return np.stack([REFERENCE[method](a, pattern, **kwargs) for a in arrays]).transpose(0, 3, 1, 2)


def assert_parity(method, raw64, pattern, dtype, device, **kwargs):
    raw = raw64.to(dtype).to(device)
    got = demosaic(raw, method, pattern) if not kwargs else demosaic_menon2007(raw, pattern, **kwargs)
    assert got.shape == (raw.shape[0], 3, *raw.shape[-2:])
    assert got.dtype == dtype and got.device == raw.device
    ref = reference(method, raw, pattern, **kwargs)
    err = np.abs(got.cpu().double().numpy() - ref).max()
    assert err <= ATOL[dtype], f"{method} {pattern} {dtype}: max abs error {err}"


KINDS = ["random", "gradient", "edges", "checkerboard", "realistic"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_parity_all_inputs(method, kind, pattern, dtype, device):
    assert_parity(method, make_input(kind, 16, 24, pattern), pattern, dtype, device)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("method", METHODS)
def test_parity_sizes(method, size, dtype, device):
    for i, pattern in enumerate(PATTERNS):
        kind = ("random", "realistic")[i % 2]
        assert_parity(method, make_input(kind, *size, pattern, seed=i), pattern, dtype, device)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_menon_without_refining_step(pattern, device):
    raw = make_input("realistic", 16, 16, pattern)
    for dtype in DTYPES:
        assert_parity("menon2007", raw, pattern, dtype, device, refining_step=False)
    assert_parity("menon2007", make_input("random", 8, 8, pattern), pattern, torch.float64, device, refining_step=False)


def test_menon_decision_is_bit_identical_in_float64():
    raw = make_input("random", 32, 32, "RGGB", seed=3)
    got = demosaic_menon2007(raw).numpy()
    np.testing.assert_array_equal(got, reference("menon2007", raw, "RGGB"))


def test_bilinear_kernels_match_reference_source():
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 4
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]]) / 4
    np.testing.assert_array_equal(BILINEAR_KERNELS.numpy(), np.stack([k_rb, k_g, k_rb]))


def test_bilinear_custom_kernels_match_scipy_convolve():
    import scipy.ndimage as ndi

    raw = make_input("random", 8, 12, "GRBG")
    k = torch.randn(3, 3, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    got = demosaic_bilinear(raw, "GRBG", k).numpy()
    masks = cd.masks_CFA_Bayer((8, 12), "GRBG")
    for c in range(3):
        ref = ndi.convolve(raw[0, 0].numpy() * masks[c], k[c].numpy(), mode="reflect")
        np.testing.assert_allclose(got[0, c], ref, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_flat_image_stays_flat_away_from_borders(method):
    # At the borders, scipy's "reflect" copies samples of the sparse planes onto
    # their own neighbours, so bilinear is not flat there (nor is the reference).
    raw = torch.full((1, 1, 8, 8), 0.3, dtype=torch.float64)
    out = demosaic(raw, method)[..., 2:-2, 2:-2]
    torch.testing.assert_close(out, torch.full_like(out, 0.3))


# ----------------------------------------------------------------------------- module


def test_module_bilinear_buffer_and_parameter():
    fixed = Demosaic("bilinear", "BGGR")
    assert "kernels" in dict(fixed.named_buffers()) and not list(fixed.parameters())
    learn = Demosaic("bilinear", "BGGR", learnable=True)
    assert [n for n, _ in learn.named_parameters()] == ["kernels"]
    raw = make_input("realistic", 8, 8, "BGGR").float()
    torch.testing.assert_close(learn(raw), demosaic(raw, "bilinear", "BGGR"))
    learn(raw).square().mean().backward()
    assert learn.kernels.grad is not None and learn.kernels.grad.abs().sum() > 0


@pytest.mark.parametrize("method", METHODS)
def test_module_matches_function(method):
    mod = Demosaic(method, "GBRG")
    raw = make_input("random", 8, 8, "GBRG").float()
    torch.testing.assert_close(mod(raw), demosaic(raw, method, "GBRG"))
    assert not list(mod.parameters())
    assert method in repr(mod)


def test_module_double_follows_dtype():
    mod = Demosaic().double()
    raw = make_input("random", 8, 8, "RGGB")
    assert mod.kernels.dtype == torch.float64
    np.testing.assert_allclose(mod(raw).numpy(), reference("bilinear", raw, "RGGB"), atol=1e-12)


# ----------------------------------------------------------------------------- gradients


def _raw_for_gradcheck(seed=0):
    return make_input("random", 8, 8, "RGGB", seed=seed)[:1].requires_grad_(True)


@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_raw(method):
    raw = _raw_for_gradcheck()
    assert torch.autograd.gradcheck(lambda r: demosaic(r, method), (raw,), fast_mode=True)


def test_gradcheck_bilinear_kernels():
    raw = _raw_for_gradcheck(1)
    k = BILINEAR_KERNELS.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda r, kk: demosaic_bilinear(r, "GRBG", kk), (raw, k), fast_mode=True)


def test_gradcheck_menon_without_refining():
    raw = _raw_for_gradcheck(2)
    assert torch.autograd.gradcheck(lambda r: demosaic_menon2007(r, "BGGR", False), (raw,), fast_mode=True)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: demosaic_bilinear(torch.rand(1, 3, 8, 8)), r"raw: expected 1 channel"),
        (lambda: demosaic_malvar2004(torch.rand(1, 1, 8, 7)), r"raw: expected even height and width"),
        (lambda: demosaic_menon2007(torch.ones(1, 1, 8, 8, dtype=torch.int32)), r"raw: expected a floating-point"),
        (lambda: demosaic_menon2007(torch.rand(8, 8)), r"raw: expected a \(B, C, H, W\)"),
        (lambda: demosaic(torch.rand(1, 1, 8, 8), "nearest"), r"method: expected one of"),
        (lambda: demosaic(torch.rand(1, 1, 8, 8), "bilinear", "RGBG"), r"pattern: expected one of"),
        (lambda: demosaic_bilinear(torch.rand(1, 1, 8, 8), kernels=torch.rand(3, 5, 5)), r"kernels: expected shape"),
        (lambda: demosaic_bilinear(torch.rand(1, 1, 8, 8), kernels=torch.ones(3, 3, 3, dtype=torch.long)),
         r"kernels: expected a floating-point"),
        (lambda: demosaic_menon2007(torch.rand(1, 1, 8, 8), refining_step=1), r"refining_step: expected a bool"),
        (lambda: Demosaic("menon2007", learnable=True), r"learnable: only the bilinear"),
        (lambda: Demosaic("ahd"), r"method: expected one of"),
    ],
)
def test_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_non_tensor_raw_is_a_type_error():
    with pytest.raises(TypeError, match="raw: expected a torch.Tensor"):
        demosaic_bilinear(np.zeros((1, 1, 8, 8)))


def test_menon_float32_gradient_matches_float64():
    # float32 input takes its decision in float64 without autograd: gradients
    # must still flow through the chosen estimates exactly as in float64.
    raw64 = make_input("realistic", 16, 16, "GRBG", seed=4)
    grads = []
    for dtype in DTYPES:
        raw = raw64.to(dtype).requires_grad_(True)
        (demosaic_menon2007(raw, "GRBG") * torch.linspace(0, 1, 16, dtype=dtype)).sum().backward()
        grads.append(raw.grad.double())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize("size", [(2, 2), (4, 6), (10, 8)])
def test_frozen_bilinear_module_path_matches_reference(pattern, size):
    raw = torch.from_numpy(np.random.default_rng(7).random((2, 1, *size)))
    with torch.no_grad():
        got = Demosaic("bilinear", pattern=pattern).double()(raw).numpy()
    np.testing.assert_allclose(got, reference("bilinear", raw, pattern), atol=1e-12)


@pytest.mark.parametrize("size", [5, 6, 9])
@pytest.mark.parametrize("axis", [-1, -2])
def test_symmetric_filter_without_padding_is_bit_identical(size, axis):
    from rawdrift.isp.demosaic import _symmetric_1d

    x = torch.rand(2, size, size + 1, dtype=torch.float64)
    for half in ([0.0, 0.5, 0.0], [0.5, 0.0, -0.25], [0.0, 0.5], [1 / 3, 1 / 3]):
        with torch.no_grad():
            fast = _symmetric_1d(x, half, axis)
        padded = _symmetric_1d(x.clone().requires_grad_(), half, axis).detach()
        assert torch.equal(fast, padded)


def test_malvar_shared_sums_equal_the_four_kernels():
    from rawdrift.isp.demosaic import _MALVAR_KERNELS, _correlate_taps, _malvar_filters

    x = torch.rand(2, 10, 12, dtype=torch.float64)
    for got, k in zip(_malvar_filters(x), _MALVAR_KERNELS):
        torch.testing.assert_close(got, _correlate_taps(x, k, "reflect"), atol=1e-14, rtol=0)
