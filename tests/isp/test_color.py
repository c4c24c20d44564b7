import numpy as np
import pytest
import torch
from skimage.color import rgb2yuv, yuv2rgb
from skimage.color.colorconv import rgb_from_yuv, yuv_from_rgb

from rawdrift.isp.color import RGB_FROM_YUV, YUV_FROM_RGB, ColorCorrection, color_correct, rgb_to_yuv, yuv_to_rgb


def test_matrices_equal_skimage():
    np.testing.assert_array_equal(YUV_FROM_RGB.numpy(), yuv_from_rgb)
    np.testing.assert_allclose(RGB_FROM_YUV.numpy(), rgb_from_yuv, rtol=0, atol=1e-15)


@pytest.mark.parametrize("fn, ref", [(rgb_to_yuv, rgb2yuv), (yuv_to_rgb, yuv2rgb)])
def test_yuv_matches_skimage_outside_unit_range(fn, ref):
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)) * 2
    got = fn(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    for b in range(2):
        np.testing.assert_allclose(got[b], ref(x[b]), atol=1e-12)


def test_color_correct_matches_matrix_product():
    g = np.random.default_rng(1)
    x, m = g.random((1, 4, 4, 3)), g.normal(size=(3, 3))
    got = color_correct(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(m)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, x @ m.T, atol=1e-12)


def test_color_correct_batched_matrix():
    x = torch.ones(2, 3, 1, 1)
    m = torch.stack([torch.eye(3), 2 * torch.eye(3)])
    assert color_correct(x, m)[1].flatten().tolist() == [2.0, 2.0, 2.0]


def test_color_correct_gradcheck():
    x = torch.rand(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    m = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(color_correct, (x, m), fast_mode=True)


def test_color_correct_shape_error():
    with pytest.raises(ValueError, match=r"color_correct: M: expected shape \(3, 3\)"):
        color_correct(torch.rand(1, 3, 2, 2), torch.eye(4))


def test_color_module_nonfinite_error():
    with pytest.raises(ValueError, match="CC: M: expected finite"):
        ColorCorrection(torch.full((3, 3), float("nan")))
