import pytest
import torch

from rawdrift.isp.white_balance import WhiteBalance, white_balance


def test_white_balance_scales_channels():
    rgb = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    wb = torch.tensor([2.0, 1.0, -0.5], dtype=torch.float64)
    out = white_balance(rgb, wb)
    for c in range(3):
        torch.testing.assert_close(out[:, c], rgb[:, c] * wb[c])


def test_white_balance_gradcheck():
    rgb = torch.rand(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    wb = torch.rand(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(white_balance, (rgb, wb), fast_mode=True)


def test_white_balance_keeps_negative_gains_unless_positive():
    rgb = torch.ones(1, 3, 1, 1)
    assert WhiteBalance([-0.5, 1, 1])(rgb)[0, 0, 0, 0] == -0.5
    m = WhiteBalance([0.5, 1, 1], learnable=True, positive=True)
    with torch.no_grad():
        m.wb[0] = -1.0
    assert m(rgb)[0, 0, 0, 0] > 0


def test_white_balance_shape_error():
    with pytest.raises(ValueError, match=r"white_balance: wb: expected shape \(3,\)"):
        white_balance(torch.rand(1, 3, 2, 2), torch.ones(4))


def test_white_balance_channels_error():
    with pytest.raises(ValueError, match="white_balance: rgb: expected 3 channel"):
        white_balance(torch.rand(1, 1, 2, 2), torch.ones(3))


def test_white_balance_module_positive_error():
    with pytest.raises(ValueError, match="WB: wb: positive=True needs gains > 0"):
        WhiteBalance([-1.0, 1.0, 1.0], positive=True)


def test_white_balance_module_nonfinite_error():
    with pytest.raises(ValueError, match="WB: wb: expected finite"):
        WhiteBalance([float("inf"), 1.0, 1.0])
