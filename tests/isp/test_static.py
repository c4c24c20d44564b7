import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal
from colour_demosaicing import demosaicing_CFA_Bayer_Malvar2004
from skimage.color import rgb2yuv, yuv2rgb

from rawdrift.isp.camera import RAW_DRONE, RAW_MICROSCOPY
from rawdrift.isp.configs import CONFIGS
from rawdrift.isp.static import process_static

from ._raw import realistic_raw


def _authors_chain(raw, cam):
    """The released code's order of calls for 'ma,s,ga': YUV round trip per filter, zero-filled sharpening."""
    x = raw.astype(np.float64).copy()
    for i, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        x[dy::2, dx::2] -= cam.black_level[i]
    img = demosaicing_CFA_Bayer_Malvar2004(x) * np.array(cam.white_balance)
    img = np.einsum("ijk,lk->ijl", img, np.array(cam.color_matrix))
    yuv = rgb2yuv(img)
    yuv[..., 0] = scipy.signal.convolve2d(yuv[..., 0], [[0, -1, 0], [-1, 5, -1], [0, -1, 0]], "same", boundary="fill")
    yuv = rgb2yuv(yuv2rgb(yuv))
    yuv[..., 0] = ndi.gaussian_filter(yuv[..., 0], 0.5)
    return np.clip(yuv2rgb(yuv), 0, 1) ** (1 / cam.gamma)


@pytest.mark.parametrize("cam", [RAW_DRONE, RAW_MICROSCOPY])
def test_static_matches_the_authors_call_sequence(cam):
    raw = realistic_raw(cam, n=1, size=24)[0]
    np.testing.assert_allclose(process_static(raw, "ma,s,ga", cam), _authors_chain(raw, cam), atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS)
def test_static_every_config_in_unit_range_and_input_untouched(config):
    raw = realistic_raw(RAW_DRONE, n=1, size=16)[0]
    before = raw.copy()
    out = process_static(raw, config, RAW_DRONE)
    assert out.shape == (16, 16, 3) and out.dtype == np.float64
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(raw, before)


def test_static_configs_differ():
    raw = realistic_raw(RAW_DRONE, n=1, size=16)[0]
    outs = {c: process_static(raw, c, RAW_DRONE) for c in ("bi,s,me", "bi,u,me", "me,s,me", "bi,s,ga")}
    assert all(np.abs(outs["bi,s,me"] - outs[c]).max() > 1e-3 for c in outs if c != "bi,s,me")


def test_static_yuv_channels_option_changes_chroma():
    raw = realistic_raw(RAW_DRONE, n=1, size=16)[0]
    assert np.abs(process_static(raw, "bi,s,ga", RAW_DRONE) - process_static(raw, "bi,s,ga", RAW_DRONE, channels="yuv")).max() > 1e-4


def test_static_odd_size_error():
    with pytest.raises(ValueError, match="raw_hw: expected even height and width"):
        process_static(np.zeros((5, 6)), "bi,s,ga", RAW_DRONE)


def test_static_ndim_error():
    with pytest.raises(ValueError, match=r"raw_hw: expected an \(H, W\) mosaic"):
        process_static(np.zeros((1, 4, 4)), "bi,s,ga", RAW_DRONE)


def test_static_config_error():
    with pytest.raises(ValueError, match="unknown demosaicing code 'xx'"):
        process_static(np.zeros((4, 4)), "xx,s,ga", RAW_DRONE)


def test_static_camera_error():
    with pytest.raises(TypeError, match="camera: expected a rawdrift.isp.Camera"):
        process_static(np.zeros((4, 4)), "bi,s,ga", {"bl": 0})
