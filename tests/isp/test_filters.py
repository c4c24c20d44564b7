import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from rawdrift.isp.filters import MODES, boundary_indices, convolve2d, correlate2d, pad2d


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n, before, after", [(5, 2, 2), (4, 1, 3), (3, 7, 5), (1, 2, 2)])
def test_pad_matches_numpy(mode, n, before, after):
    x = torch.arange(float(n)).reshape(1, 1, 1, n).expand(1, 1, 2, n)
    got = pad2d(x, (0, 0, before, after), mode)[0, 0, 0].numpy()
    np_mode = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap", "constant": "constant"}[mode]
    if mode == "mirror" and n == 1:
        expected = np.zeros(n + before + after)
    else:
        expected = np.pad(np.arange(float(n)), (before, after), mode=np_mode)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(3, 3), (5, 5), (3, 5), (4, 4), (2, 3)])
def test_correlate_matches_scipy(mode, shape):
    g = np.random.default_rng(0)
    img = g.random((2, 3, 9, 11))
    k = g.standard_normal(shape)
    got = correlate2d(torch.from_numpy(img), torch.from_numpy(k), mode=mode, cval=0.5).numpy()
    for b in range(2):
        for c in range(3):
            ref = ndi.correlate(img[b, c], k, mode=mode, cval=0.5)
            np.testing.assert_allclose(got[b, c], ref, atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest"])
def test_convolve_matches_scipy_per_channel_kernels(mode):
    g = np.random.default_rng(1)
    img = g.random((1, 3, 8, 8))
    k = g.standard_normal((3, 3, 3))
    got = convolve2d(torch.from_numpy(img), torch.from_numpy(k), mode=mode).numpy()
    for c in range(3):
        np.testing.assert_allclose(got[0, c], ndi.convolve(img[0, c], k[c], mode=mode), atol=1e-12)


def test_correlate_gradcheck():
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    k = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: correlate2d(a, b, "reflect"), (x, k), fast_mode=True)


@pytest.mark.parametrize("grad", [False, True])  # one preallocated copy without autograd, concatenation with it
@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap"])
@pytest.mark.parametrize("size", [(2, 2), (2, 6), (4, 3), (7, 5)])
def test_slice_padding_equals_index_gathering(mode, size, grad):
    x = torch.rand(2, 1, *size, dtype=torch.float64, requires_grad=grad)
    h, w = size
    for pad in [(1, 1, 1, 1), (2, 2, 2, 2), (0, 2, 0, 0), (0, 0, 0, 2), (2, 0, 1, 3)]:
        rows = boundary_indices(h, pad[0], pad[1], mode)
        cols = boundary_indices(w, pad[2], pad[3], mode)
        gathered = x.index_select(-2, rows).index_select(-1, cols)
        torch.testing.assert_close(pad2d(x, pad, mode), gathered, rtol=0, atol=0)


def test_boundary_indices_reflect_wider_than_image():
    assert boundary_indices(2, 3, 3, "reflect").tolist() == [1, 1, 0, 0, 1, 1, 0, 0]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: pad2d(torch.rand(1, 1, 3, 3), (1, 1, 1, 1), "symmetric"), "mode: expected one of"),
        (lambda: pad2d(torch.rand(1, 1, 3, 3), (1, -1, 1, 1), "reflect"), r"pad\[bottom\]"),
        (lambda: correlate2d(torch.rand(1, 2, 3, 3), torch.rand(3, 3, 3)), "weight: expected shape"),
        (lambda: convolve2d(torch.rand(1, 1, 3, 3), torch.rand(2, 2)), "odd kernel sizes"),
    ],
)
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("grad", [False, True])
def test_correlate_shifted_matches_scipy(mode, grad):
    from rawdrift.isp.filters import correlate_shifted

    g = np.random.default_rng(3)
    img = g.random((2, 2, 7, 9))
    k = g.standard_normal((3, 5))
    k[0, 1] = 0.0
    k[1, 2] = 1.0
    got = correlate_shifted(torch.from_numpy(img), torch.from_numpy(k).requires_grad_(grad), mode=mode, cval=0.5).detach().numpy()
    for b in range(2):
        for c in range(2):
            np.testing.assert_allclose(got[b, c], ndi.correlate(img[b, c], k, mode=mode, cval=0.5), atol=1e-12)


def test_correlate1d_symmetric_matches_scipy_and_gradcheck():
    from rawdrift.isp.filters import correlate1d_symmetric

    g = np.random.default_rng(4)
    img = g.random((1, 1, 6, 7))
    half = np.array([0.5, 0.2, -0.1])
    full = np.concatenate([half[::-1], half[1:]])
    for axis in (-1, -2):
        got = correlate1d_symmetric(torch.from_numpy(img), torch.from_numpy(half), axis).numpy()
        np.testing.assert_allclose(got[0, 0], ndi.correlate1d(img[0, 0], full, axis=axis, mode="reflect"), atol=1e-12)
    x = torch.from_numpy(img).requires_grad_()
    h = torch.from_numpy(half).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: correlate1d_symmetric(a, b, -1, "mirror"), (x, h), fast_mode=True)
