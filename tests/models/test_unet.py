import pytest
import torch

from rawdrift.models import UNet, build_model


@pytest.mark.parametrize("size", [32, 48, 64, 96, 34])
def test_output_shape(size):
    model = build_model("segmentation", width=4).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, size, size))
    assert y.shape == (2, 1, size, size)
    assert torch.isfinite(y).all()


def test_non_square_and_depth():
    model = UNet(width=2, depth=2).eval()
    assert model(torch.rand(1, 3, 32, 50)).shape == (1, 1, 32, 50)


def test_width_controls_channels():
    assert UNet(width=4).down[0][0].out_channels == 4
    assert UNet(width=4).bottleneck[0].out_channels == 64


def test_padding_does_not_leak_between_samples():
    # Each sample's output depends only on itself (eval mode: BN uses running stats).
    model = UNet(width=2).eval()
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        both = model(x)
        first = model(x[:1])
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-5)


def test_gradient_reaches_input():
    model = UNet(width=2)
    x = torch.rand(1, 3, 36, 36, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_width():
    with pytest.raises(ValueError, match="width"):
        UNet(width=0)


def test_bad_input():
    with pytest.raises(ValueError, match="x: expected 3 channel"):
        UNet(width=2)(torch.rand(1, 1, 32, 32))
