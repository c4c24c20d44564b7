import pytest
import torch

from rawdrift.isp.black_level import BlackLevel, black_level


def test_black_level_subtracts_per_site():
    raw = torch.rand(2, 1, 4, 6, dtype=torch.float64)
    bl = torch.tensor([0.01, 0.02, 0.03, 0.04], dtype=torch.float64)
    out = black_level(raw, bl)
    for i, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        torch.testing.assert_close(out[..., dy::2, dx::2], raw[..., dy::2, dx::2] - bl[i])


def test_black_level_batched_values():
    raw = torch.zeros(2, 1, 2, 2)
    bl = torch.tensor([[0.0, 0.0, 0.0, 0.5], [0.25, 0.0, 0.0, 0.0]])
    out = black_level(raw, bl)
    assert out[0, 0, 1, 1] == -0.5 and out[1, 0, 0, 0] == -0.25


def test_black_level_gradcheck():
    raw = torch.rand(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    bl = torch.rand(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(black_level, (raw, bl), fast_mode=True)


def test_black_level_module_clamps_into_physical_range():
    m = BlackLevel([0.1, 0.1, 0.1, 0.1], learnable=True)
    with torch.no_grad():
        m.bl.fill_(-0.3)
    assert torch.equal(m(torch.full((1, 1, 2, 2), 0.5)), torch.full((1, 1, 2, 2), 0.5))


def test_black_level_odd_size_error():
    with pytest.raises(ValueError, match="black_level: raw: expected even height and width"):
        black_level(torch.rand(1, 1, 3, 4), torch.zeros(4))


def test_black_level_shape_error():
    with pytest.raises(ValueError, match=r"black_level: bl: expected shape \(4,\)"):
        black_level(torch.rand(1, 1, 4, 4), torch.zeros(3))


def test_black_level_nonfinite_error():
    with pytest.raises(ValueError, match="black_level: bl: expected finite"):
        black_level(torch.rand(1, 1, 4, 4), torch.tensor([0.0, float("nan"), 0.0, 0.0]))


def test_black_level_module_range_error():
    with pytest.raises(ValueError, match=r"BL: bl: expected values in \[0, 1\)"):
        BlackLevel([0.0, 0.0, 0.0, 1.0])
