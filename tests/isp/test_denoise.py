import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from rawdrift.isp.denoise import K_BLUR, Denoise, gaussian_denoise, median_denoise, median_filter

# the paper's K_BLUR (Appendix A.1), printed to 5 significant digits
PAPER_K_BLUR = np.array(
    [
        [6.9625e-08, 2.8089e-05, 2.0755e-04, 2.8089e-05, 6.9625e-08],
        [2.8089e-05, 1.1332e-02, 8.3731e-02, 1.1332e-02, 2.8089e-05],
        [2.0755e-04, 8.3731e-02, 6.1869e-01, 8.3731e-02, 2.0755e-04],
        [2.8089e-05, 1.1332e-02, 8.3731e-02, 1.1332e-02, 2.8089e-05],
        [6.9625e-08, 2.8089e-05, 2.0755e-04, 2.8089e-05, 6.9625e-08],
    ]
)


def test_k_blur_equals_the_papers_and_scipys_impulse_response():
    np.testing.assert_allclose(K_BLUR.numpy(), PAPER_K_BLUR, rtol=1e-4, atol=1e-9)
    impulse = np.zeros((11, 11))
    impulse[5, 5] = 1
    np.testing.assert_allclose(K_BLUR.numpy(), ndi.gaussian_filter(impulse, 0.5)[3:8, 3:8], atol=1e-15)


@pytest.mark.parametrize("channels", ["y", "yuv"])
def test_gaussian_denoise_matches_scipy(channels):
    x = np.random.default_rng(0).normal(size=(2, 3, 9, 8))
    out = gaussian_denoise(torch.from_numpy(x), channels=channels).numpy()
    for b in range(2):
        for c in range(3):
            ref = ndi.gaussian_filter(x[b, c], 0.5) if (c == 0 or channels == "yuv") else x[b, c]
            np.testing.assert_allclose(out[b, c], ref, atol=1e-12)


@pytest.mark.parametrize("channels", ["y", "yuv"])
def test_median_denoise_matches_scipy(channels):
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 10))
    out = median_denoise(torch.from_numpy(x), channels=channels).numpy()
    for b in range(2):
        for c in range(3):
            ref = ndi.median_filter(x[b, c], size=3) if (c == 0 or channels == "yuv") else x[b, c]
            np.testing.assert_array_equal(out[b, c], ref)


def test_median_filter_size5():
    x = np.random.default_rng(2).random((1, 1, 6, 6))
    np.testing.assert_array_equal(median_filter(torch.from_numpy(x), 5)[0, 0].numpy(), ndi.median_filter(x[0, 0], 5))


def test_denoise_gradcheck():
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    k = K_BLUR.clone().requires_grad_()
    assert torch.autograd.gradcheck(gaussian_denoise, (x, k), fast_mode=True)
    assert torch.autograd.gradcheck(median_denoise, (x,), fast_mode=True)


def test_denoise_module():
    assert isinstance(Denoise("ga", learnable=True).kernel, torch.nn.Parameter)
    assert list(Denoise("me").parameters()) == []


def test_denoise_kernel_shape_error():
    with pytest.raises(ValueError, match=r"DN: kernel: expected shape \(5, 5\)"):
        Denoise("ga", kernel=torch.ones(3, 3))


def test_median_size_error():
    with pytest.raises(ValueError, match="median_filter: size: expected an odd integer"):
        median_filter(torch.rand(1, 1, 4, 4), 4)


def test_denoise_method_error():
    with pytest.raises(ValueError, match="DN: method"):
        Denoise("bilateral")


def test_median3x3_network_matches_scipy_with_ties():
    # few distinct values: many ties inside each window
    x = np.random.default_rng(5).integers(0, 3, size=(2, 1, 9, 12)).astype(np.float64)
    out = median_filter(torch.from_numpy(x), 3).numpy()
    for b in range(2):
        np.testing.assert_array_equal(out[b, 0], ndi.median_filter(x[b, 0], size=3))


def test_gaussian_denoise_frozen_separable_equals_2d_kernel():
    x = torch.rand(1, 3, 8, 9, dtype=torch.float64)
    separable = gaussian_denoise(x, K_BLUR, channels="yuv")
    two_d = gaussian_denoise(x, K_BLUR.clone().requires_grad_(), channels="yuv").detach()
    torch.testing.assert_close(separable, two_d, atol=1e-14, rtol=0)
