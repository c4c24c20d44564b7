import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
import torch
from skimage.filters import unsharp_mask as sk_unsharp_mask

from rawdrift.isp.sharpen import SHARPEN_KERNEL, Sharpen, sharpen_filter, unsharp_mask


def _yuv(seed=0, shape=(2, 3, 9, 10), scale=1.0, offset=0.0):
    return torch.from_numpy(np.random.default_rng(seed).random(shape) * scale + offset)


def test_sharpen_filter_matches_authors_convolve2d_fill():
    x = _yuv()
    out = sharpen_filter(x)
    for b in range(2):
        ref = scipy.signal.convolve2d(x[b, 0].numpy(), SHARPEN_KERNEL.numpy(), "same", boundary="fill", fillvalue=0)
        np.testing.assert_allclose(out[b, 0].numpy(), ref, atol=1e-12)
    torch.testing.assert_close(out[:, 1:], x[:, 1:])  # U, V untouched


def test_sharpen_filter_yuv_and_asymmetric_kernel_is_convolution():
    x = _yuv(1)
    k = torch.from_numpy(np.random.default_rng(2).normal(size=(3, 3)))
    out = sharpen_filter(x, k, channels="yuv", mode="reflect")
    for c in range(3):
        np.testing.assert_allclose(out[0, c].numpy(), ndi.convolve(x[0, c].numpy(), k.numpy(), mode="reflect"), atol=1e-12)


@pytest.mark.parametrize("preserve_range", [True, False])
@pytest.mark.parametrize("scale, offset", [(1.0, 0.0), (3.0, -1.0), (0.5, 0.6)])
def test_unsharp_mask_matches_skimage(preserve_range, scale, offset):
    x = _yuv(3, scale=scale, offset=offset)
    out = unsharp_mask(x, preserve_range=preserve_range, channels="yuv")
    for b in range(2):
        for c in range(3):
            ref = sk_unsharp_mask(x[b, c].numpy(), radius=1, amount=1, preserve_range=preserve_range)
            np.testing.assert_allclose(out[b, c].numpy(), ref, atol=1e-12)


def test_unsharp_mask_luma_only_by_default():
    x = _yuv(4)
    out = unsharp_mask(x)
    torch.testing.assert_close(out[:, 1:], x[:, 1:])
    np.testing.assert_allclose(out[0, 0].numpy(), sk_unsharp_mask(x[0, 0].numpy(), 1, 1, preserve_range=True), atol=1e-12)


def test_sharpen_gradcheck():
    x = torch.rand(1, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    k = SHARPEN_KERNEL.clone().requires_grad_()
    assert torch.autograd.gradcheck(sharpen_filter, (x, k), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: unsharp_mask(a, channels="yuv"), (x,), fast_mode=True)


def test_sharpen_module_learnable_kernel():
    m = Sharpen("s", learnable=True)
    assert isinstance(m.kernel, torch.nn.Parameter) and m.kernel.shape == (3, 3)
    assert list(Sharpen("u").parameters()) == []


def test_sharpen_kernel_shape_error():
    with pytest.raises(ValueError, match="sharpen_filter: kernel: expected a 2-D kernel with odd sizes"):
        sharpen_filter(torch.rand(1, 3, 4, 4), torch.ones(2, 2))


def test_sharpen_channels_error():
    with pytest.raises(ValueError, match="sharpen_filter: channels: expected one of 'y', 'yuv'"):
        sharpen_filter(torch.rand(1, 3, 4, 4), channels="rgb")


def test_sharpen_method_error():
    with pytest.raises(ValueError, match="SH: method"):
        Sharpen("x")


def test_sharpen_unsharp_has_no_kernel_error():
    with pytest.raises(ValueError, match="SH: kernel: unsharp masking"):
        Sharpen("u", learnable=True)


def test_unsharp_radius_error():
    with pytest.raises(ValueError, match="unsharp_mask: radius: expected values > 0"):
        unsharp_mask(torch.rand(1, 3, 4, 4), radius=0)
