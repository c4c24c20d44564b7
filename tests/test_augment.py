"""AugMix-style view augmentation and ISP randomisation, and their hooks in the training engine."""

import pytest
import torch
from torch import nn

from rawdrift.augment import AUGMIX_OPS, RandomISP, apply_op, augmix, autocontrast, equalize, posterize, solarize
from rawdrift.isp import Pipeline
from rawdrift.isp.camera import RAW_MICROSCOPY


def views(n=4, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.2 + 0.6 * torch.rand(n, 3, s, s, generator=g)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_augmix_shape_range_and_changes_input():
    x = views()
    y = augmix(x, gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert (y - x).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every sample changed


def test_augmix_deterministic_with_seed():
    x = views()
    assert torch.equal(augmix(x, gen(5)), augmix(x, gen(5)))
    assert not torch.equal(augmix(x, gen(5)), augmix(x, gen(6)))


@pytest.mark.parametrize("op", ["posterize", "solarize", "rotate", "shear_x", "shear_y", "translate_x", "translate_y"])
def test_zero_severity_ops_are_identity(op):
    x = (views() * 255).round() / 255  # on the 8-bit grid, so posterize at 8 bits is exact
    y = augmix(x, gen(), severity=0, ops=(op,))
    assert torch.allclose(y, x, atol=1e-5)


def test_zero_severity_with_autocontrast_is_not_identity():
    x = views()
    assert not torch.allclose(augmix(x, gen(), severity=0, ops=("autocontrast",)), x, atol=1e-3)


def test_autocontrast_spans_unit_range_per_channel():
    y = autocontrast(views())
    assert torch.allclose(y.amin(dim=(-2, -1)), torch.zeros(4, 3))
    assert torch.allclose(y.amax(dim=(-2, -1)), torch.ones(4, 3))


def test_equalize_flattens_histogram():
    x = views(1, 32) ** 3  # skewed
    y = equalize(x)
    hist = torch.histc(y[0, 0], bins=4, min=0, max=1)
    assert hist.max() - hist.min() <= 0.1 * y[0, 0].numel()


def test_equalize_constant_image_unchanged():
    x = torch.full((1, 3, 4, 4), 0.3)
    assert torch.equal(equalize(x), x)


def test_posterize_and_solarize_values():
    x = torch.tensor([0.1, 0.8]).reshape(1, 1, 1, 2)
    assert torch.allclose(posterize(x, torch.tensor([2])).flatten(), torch.tensor([0.0, 192 / 255]))
    assert torch.allclose(solarize(x, torch.tensor([0.5])).flatten(), torch.tensor([0.1, 0.2]))


def test_rotate_quarter_range_moves_pixels():
    x = views(1)
    y = apply_op(x, "rotate", torch.tensor([1.0]))
    assert not torch.allclose(x, y, atol=1e-2)


def test_augmix_errors():
    with pytest.raises(ValueError, match="severity"):
        augmix(views(), gen(), severity=11)
    with pytest.raises(ValueError, match="alpha: expected a value > 0"):
        augmix(views(), gen(), alpha=0.0)
    with pytest.raises(ValueError, match="ops"):
        augmix(views(), gen(), ops=("cutout",))
    with pytest.raises(ValueError, match="x"):
        augmix(torch.rand(2, 1, 8, 8), gen())
    with pytest.raises(ValueError, match="op"):
        apply_op(views(), "blur", torch.zeros(4))


def raws(n=6, s=16):
    return torch.rand(n, 1, s, s, generator=gen(1))


def test_random_isp_varies_views_in_train_mode():
    aug = RandomISP(RAW_MICROSCOPY, configs=("bi,s,ga", "ma,u,me", "me,s,me"))
    x = raws()
    with torch.no_grad():
        a = aug.train()(x, generator=gen(0))
        b = aug.train()(x, generator=gen(1))
        names = aug.draw(6, gen(0))
        ref = torch.stack([Pipeline.static(nm, RAW_MICROSCOPY)(x[i : i + 1])[0] for i, nm in enumerate(names)])
    assert len(set(names)) > 1
    assert torch.allclose(a, ref, atol=1e-6)
    assert not torch.allclose(a, b)


def test_random_isp_deterministic_default_in_eval():
    aug = RandomISP(RAW_MICROSCOPY, configs=("ma,u,me", "me,s,me"), default="bi,s,ga")
    x = raws()
    with torch.no_grad():
        ref = Pipeline.static("bi,s,ga", RAW_MICROSCOPY)(x)
        assert torch.equal(aug.eval()(x, generator=gen(0)), ref)
        assert torch.equal(aug.train()(x), ref)  # no generator: no randomness


def test_random_isp_errors():
    with pytest.raises(ValueError, match="configs"):
        RandomISP(RAW_MICROSCOPY, configs=())
    with pytest.raises(ValueError):
        RandomISP(RAW_MICROSCOPY, configs=("xx,s,ga",))


# ------------------------------------------------------------------ engine hooks


class _Spy(nn.Module):
    """Randomised stand-in pipeline recording how the engine calls it."""

    randomised = True

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, raw, generator=None):
        self.calls.append((self.training, generator is not None))
        return raw.expand(-1, 3, -1, -1).clamp(0, 1)


def _data():
    from rawdrift.data import get_dataset

    return get_dataset("synthetic-microscopy", preset="ci", n=18, size=32, proportions="uniform")


def test_engine_passes_generator_to_randomised_pipeline_only_in_training():
    from rawdrift.train import TrainConfig, build_task_model, fit

    ds = _data()
    cfg = TrainConfig(preset="ci", epochs=1, batch_size=9, size=32, device="cpu", progress=False, augment=None)
    spy = _Spy()
    fit(build_task_model(cfg.resolved("classification")), spy, (ds, list(range(9))), (ds, list(range(9, 18))), cfg)
    assert (True, True) in spy.calls and (False, False) in spy.calls
    assert all(train == given for train, given in spy.calls)


def test_engine_augmix_runs_and_is_seeded():
    from rawdrift.train import TrainConfig, build_task_model, fit

    ds = _data()
    pipe = Pipeline.static("bi,s,ga", ds.camera)
    cfg = TrainConfig(preset="ci", epochs=1, batch_size=9, size=32, device="cpu", progress=False, augment="augmix")
    losses = []
    for _ in range(2):
        res = fit(build_task_model(cfg.resolved("classification")), pipe, ds, None, cfg)
        losses.append(res.history[0]["train_loss"])
    assert losses[0] == losses[1]
    base = fit(build_task_model(cfg.resolved("classification")), pipe, ds, None,
               TrainConfig(preset="ci", epochs=1, batch_size=9, size=32, device="cpu", progress=False, augment="crop"))
    assert base.history[0]["train_loss"] != losses[0]


def test_augmix_rejected_for_segmentation():
    from rawdrift.train import TrainConfig

    with pytest.raises(ValueError, match="augment: 'augmix' is for classification"):
        TrainConfig(task="segmentation", augment="augmix")


def test_all_ops_listed():
    assert len(AUGMIX_OPS) == 9
