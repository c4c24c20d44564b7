import numpy as np
import pytest
import rawpy
import tifffile
import torch

from rawdrift.isp.camera import Camera
from rawdrift.raw.cfa import PATTERNS, mosaic
from rawdrift.raw.dng import RawImage, read_raw, write_dng


def _smooth_rgb(h=64, w=80):
    """A smooth, colourful linear image (B, 3, H, W) in [0.05, 0.9]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h, dtype=torch.float64), torch.linspace(0, 1, w, dtype=torch.float64), indexing="ij")
    r = 0.1 + 0.8 * x
    g = 0.1 + 0.8 * y
    b = 0.1 + 0.8 * (1 - x) * (1 - y)
    return torch.stack([r, g, b])[None]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_write_read_roundtrip_bit_exact(tmp_path, pattern):
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 65536, (24, 36)).astype(np.uint16)
    bl = (100, 200, 300, 400)
    path = write_dng(tmp_path / "x.dng", counts, pattern=pattern, black_level=bl, white_level=60000,
                     white_balance=(2.0, 1.0, 1.6), camera_model="test cam")
    with rawpy.imread(str(path)) as r:
        assert np.array_equal(r.raw_image_visible, counts)
        assert r.white_level == 60000
        letters = "".join(r.color_desc.decode()[i] for i in r.raw_pattern.ravel())
        assert letters == pattern
        per_site = [r.black_level_per_channel[r.raw_pattern[dy, dx]] for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
        assert per_site == list(bl)
        np.testing.assert_allclose(np.asarray(r.camera_whitebalance[:3]) / r.camera_whitebalance[1], [2.0, 1.0, 1.6], rtol=1e-5)

    img = read_raw(path, rggb=False)
    assert img.pattern == pattern and img.source_pattern == pattern and img.model == "test cam"
    assert img.white_level == 60000 and img.white_balance_source == "as-shot"
    np.testing.assert_allclose(np.asarray(img.black_level) * 60000, bl, atol=1e-6)
    np.testing.assert_allclose(img.white_balance, (2.0, 1.0, 1.6), rtol=1e-5)
    np.testing.assert_allclose(img.color_matrix, np.eye(3), atol=1e-5)
    expect = np.clip(counts / 60000.0, 0, 1).astype(np.float32)
    assert img.raw.dtype == torch.float32 and img.raw.shape == (1, 24, 36)
    assert torch.equal(img.raw[0], torch.from_numpy(expect))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_read_crops_to_rggb_and_reorders_black_levels(tmp_path, pattern):
    counts = np.zeros((24, 26), np.uint16)
    # tag each site with its colour so the crop can be checked: R=1000, G=2000, B=3000
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        counts[dy::2, dx::2] = {"R": 1000, "G": 2000, "B": 3000}[pattern[k]]
    bl = {"R": 10, "G": 20, "B": 30}
    path = write_dng(tmp_path / "x.dng", counts, pattern=pattern, black_level=[bl[c] for c in pattern])
    img = read_raw(path)
    assert img.pattern == "RGGB" and img.source_pattern == pattern
    tile = (img.raw[0, :2, :2] * 65535).round().tolist()
    assert tile == [[1000, 2000], [2000, 3000]]
    np.testing.assert_allclose(np.asarray(img.black_level) * 65535, [10, 20, 20, 30], atol=1e-6)
    cam = img.camera()
    assert isinstance(cam, Camera) and cam.pattern == "RGGB" and cam.black_level == img.black_level
    rows, cols = img.shape
    assert rows == (24 if pattern.index("R") < 2 else 22)
    assert cols == (26 if pattern.index("R") % 2 == 0 else 24)
    assert img.offset == (pattern.index("R") // 2, pattern.index("R") % 2)


def test_float_roundtrip_and_color_matrix(tmp_path):
    x = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    m = np.array([[1.6, -0.4, -0.2], [-0.3, 1.5, -0.2], [0.0, -0.5, 1.5]])  # rows sum to 1
    path = write_dng(tmp_path / "f.dng", x, black_level=0.0625, white_level=4095, color_matrix=m)
    img = read_raw(path)
    assert torch.allclose(img.raw, (x[0] * 4095).round() / 4095, atol=1e-7)
    np.testing.assert_allclose(np.asarray(img.black_level) * 4095, [256] * 4)  # 0.0625 * 4095 rounded
    np.testing.assert_allclose(img.color_matrix, m, atol=1e-5)
    assert img.matrix_source == "color_matrix"


def test_postprocess_of_written_dng_is_sensible(tmp_path):
    rgb = _smooth_rgb()
    counts = (mosaic(rgb) * 60000 + 1000).round().to(torch.int64)[0, 0].numpy()
    path = write_dng(tmp_path / "s.dng", counts, black_level=1000)
    with rawpy.imread(str(path)) as r:
        out = r.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True, user_flip=0,
                            demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, adjust_maximum_thr=0.0)
    out = out.astype(np.float64) / 65535
    src = rgb[0].permute(1, 2, 0).numpy()
    assert out.shape == src.shape
    inner = (slice(4, -4), slice(4, -4))
    for c in range(3):
        corr = np.corrcoef(out[inner][..., c].ravel(), src[inner][..., c].ravel())[0, 1]
        assert corr > 0.9, (c, corr)
    # and the level is right, not merely correlated
    # LibRaw scales by 1 / (white - black)
    np.testing.assert_allclose(out[inner].mean(axis=(0, 1)), src[inner].mean(axis=(0, 1)) * 60000 / 64535, atol=0.02)


def test_read_raw_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such raw file"):
        read_raw(tmp_path / "missing.dng")
    junk = tmp_path / "junk.dng"
    junk.write_text("not a raw file")
    with pytest.raises(ValueError, match=r"junk\.dng: not a raw file rawpy/LibRaw can read"):
        read_raw(junk)


def _cfa_dng(path, dim, cfa, planes):
    tags = [(254, 4, 1, 0, True), (33421, 3, 2, dim, True), (33422, 1, len(cfa), cfa, True),
            (50706, 1, 4, (1, 4, 0, 0), True), (50708, 2, None, "odd", True), (50710, 1, len(planes), planes, True),
            (50717, 4, 1, 65535, True)]
    tifffile.imwrite(path, np.full((36, 36), 1000, np.uint16), photometric=32803, extratags=tags, metadata=None)


def test_read_raw_rejects_non_bayer(tmp_path):
    xtrans = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1, 1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
    _cfa_dng(tmp_path / "xt.dng", (6, 6), xtrans, (0, 1, 2))
    with pytest.raises(ValueError, match=r"xt\.dng: an X-Trans colour filter array is not supported"):
        read_raw(tmp_path / "xt.dng")
    _cfa_dng(tmp_path / "cmyg.dng", (2, 2), (0, 1, 2, 3), (3, 4, 5, 1))
    with pytest.raises(ValueError, match=r"cmyg\.dng: colour filter array .* is not an RGB Bayer pattern"):
        read_raw(tmp_path / "cmyg.dng")


def test_write_dng_errors(tmp_path):
    p = tmp_path / "e.dng"
    good = np.zeros((22, 22), np.uint16)
    with pytest.raises(ValueError, match="raw: expected even height and width"):
        write_dng(p, np.zeros((23, 24), np.uint16))
    with pytest.raises(ValueError, match="raw: expected at least 22x22 pixels"):
        write_dng(p, np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match="raw: expected an"):
        write_dng(p, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"raw: float values must be finite and in \[0, 1\]"):
        write_dng(p, np.full((22, 22), 1.5))
    with pytest.raises(ValueError, match=r"raw: integer counts must lie in \[0, 65535\]"):
        write_dng(p, np.full((22, 22), 70000))
    with pytest.raises(ValueError, match="pattern: expected one of"):
        write_dng(p, good, pattern="RGBG")
    with pytest.raises(ValueError, match="black_level: expected 1 or 4 values"):
        write_dng(p, good, black_level=(1, 2))
    with pytest.raises(ValueError, match="black_level: expected values below the white level"):
        write_dng(p, good, black_level=5000, white_level=4095)
    with pytest.raises(ValueError, match=r"white_level: expected an integer in \[1, 65535\]"):
        write_dng(p, good, white_level=70000)
    with pytest.raises(ValueError, match="white_balance: expected 3 finite gains > 0"):
        write_dng(p, good, white_balance=(1, 0, 1))
    with pytest.raises(ValueError, match="color_matrix: expected an invertible"):
        write_dng(p, good, color_matrix=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="camera_model: expected an ASCII string"):
        write_dng(p, good, camera_model="caméra")
    assert not p.exists() and list(tmp_path.iterdir()) == []


def test_summary_is_plain(tmp_path):
    path = write_dng(tmp_path / "s.dng", np.full((22, 24), 1000, np.uint16), black_level=64)
    s = read_raw(path).summary()
    assert s["pattern"] == "RGGB" and s["black_level_counts"] == [64.0] * 4 and s["width"] == 24
    assert isinstance(read_raw(path), RawImage)


def test_matrix_from_rgb_xyz_matches_libraw(tmp_path):
    """When a file gives only the XYZ->camera matrix, we derive rgb_cam as LibRaw does."""
    from rawdrift.raw.dng import XYZ_FROM_SRGB, _color_matrix

    cam_xyz = np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.246, 0.2028], [-0.0908, 0.2162, 0.5668]])
    # write the same XYZ->camera matrix through the DNG writer and let LibRaw compute rgb_cam
    m_in = np.linalg.inv(cam_xyz @ XYZ_FROM_SRGB)
    path = write_dng(tmp_path / "m.dng", np.zeros((22, 22), np.uint16), color_matrix=m_in)
    with rawpy.imread(str(path)) as r:
        libraw = np.asarray(r.color_matrix)[:, :3]
    derived, source = _color_matrix(np.zeros((3, 4)), np.vstack([cam_xyz, np.zeros(3)]))
    assert source == "rgb_xyz_matrix"
    np.testing.assert_allclose(derived, libraw, atol=1e-5)
    assert _color_matrix(np.zeros((3, 4)), np.zeros((4, 3))) == (tuple(map(tuple, np.eye(3))), "none")
