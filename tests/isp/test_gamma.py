import pytest
import torch

from rawdrift.isp.gamma import GammaCorrection, gamma_correct


def test_gamma_exact():
    v = torch.tensor([-1.0, 0.0, 0.04, 0.5, 1.0, 3.0], dtype=torch.float64).reshape(1, 3, 1, 2)
    ref = v.clamp(0, 1) ** (1 / 2.2)
    torch.testing.assert_close(gamma_correct(v, 2.2), ref)


def test_gamma_differentiable_ramp_agrees_above_eps_and_keeps_zero():
    v = torch.tensor([-1.0, 0.0, 2e-5, 0.5, 1.0, 3.0], dtype=torch.float64).reshape(1, 3, 1, 2)
    out = gamma_correct(v, 2.2, differentiable=True)
    torch.testing.assert_close(out, v.clamp(0, 1) ** (1 / 2.2))


def test_gamma_differentiable_clamp_is_the_authors_form():
    v = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    out = gamma_correct(v, 2.2, differentiable=True, floor="clamp")
    torch.testing.assert_close(out, torch.full_like(v, 1e-5 ** (1 / 2.2)))


@pytest.mark.parametrize("floor", ["ramp", "clamp"])
def test_gamma_gradcheck(floor):
    v = (torch.rand(1, 3, 4, 4, dtype=torch.float64) * 1.4 - 0.2).requires_grad_()
    g = torch.tensor(2.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: gamma_correct(a, b, True, floor=floor), (v, g), fast_mode=True)


def test_gamma_gradient_finite_at_zero():
    v = torch.zeros(1, 3, 2, 2, requires_grad=True)
    g = torch.tensor(2.2, requires_grad=True)
    gamma_correct(v, g, differentiable=True).sum().backward()
    assert torch.isfinite(v.grad).all() and torch.isfinite(g.grad)


def test_gamma_nonpositive_error():
    with pytest.raises(ValueError, match="gamma_correct: gamma: expected values > 0"):
        gamma_correct(torch.rand(1, 3, 2, 2), 0.0)


def test_gamma_nonfinite_error():
    with pytest.raises(ValueError, match="gamma_correct: gamma: expected finite"):
        gamma_correct(torch.rand(1, 3, 2, 2), float("nan"))


def test_gamma_module_error():
    with pytest.raises(ValueError, match="GC: gamma: expected values > 0"):
        GammaCorrection(-2.2)


def test_gamma_module_learnable_clamped():
    m = GammaCorrection(2.2, learnable=True)
    with torch.no_grad():
        m.gamma.fill_(-1.0)
    assert torch.isfinite(m(torch.rand(1, 3, 2, 2))).all()


@pytest.mark.parametrize("gamma", [1.0, 2.2, 4.0, 7.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_frozen_fast_gamma_matches_pow(gamma, dtype):
    from rawdrift.isp.gamma import _display_gamma_

    v = torch.cat([torch.linspace(-0.5, 1.5, 1001, dtype=dtype), torch.tensor([0.0, 1e-40, 1e-30, 1.0], dtype=dtype)])
    v = v.reshape(1, 1, 1, -1)
    ref = v.clamp(0, 1) ** (1 / gamma)
    got = _display_gamma_(v.clone(), torch.tensor(gamma, dtype=dtype))
    assert (got - ref).abs().max() <= (1e-6 if dtype == torch.float32 else 1e-12)
    assert got.min() >= 0 and got.max() <= 1
