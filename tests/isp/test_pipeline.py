import numpy as np
import pytest
import torch

from rawdrift.isp.camera import RAW_DRONE, RAW_MICROSCOPY, Camera
from rawdrift.isp.configs import CONFIGS
from rawdrift.isp.pipeline import TRACKED, Pipeline
from rawdrift.isp.static import process_static

from ._raw import CAMERAS, random_raw, realistic_raw

ATOL = 1e-4  # DESIGN.md: torch float32 vs static reference on [0, 1] views


def _run(p, raw, device):
    with torch.no_grad():
        return p.to(device)(torch.from_numpy(raw)[:, None].to(device)).permute(0, 2, 3, 1).cpu().numpy()


@pytest.mark.parametrize("cam", CAMERAS)
@pytest.mark.parametrize("config", CONFIGS)
def test_static_pipeline_matches_reference(config, cam, device):
    camera = CAMERAS[cam]
    for raw in (random_raw(2, 32), realistic_raw(camera, 2, 48)):
        out = _run(Pipeline.static(config, camera), raw, device)
        ref = np.stack([process_static(r, config, camera) for r in raw])
        assert np.abs(out - ref).max() <= ATOL, (config, cam, np.abs(out - ref).max())


@pytest.mark.parametrize("config", ["bi,u,ga", "me,s,me"])
def test_static_pipeline_yuv_channels_option(config):
    raw = realistic_raw(RAW_DRONE, 1, 32)
    out = _run(Pipeline.static(config, RAW_DRONE, channels="yuv"), raw, "cpu")
    ref = process_static(raw[0], config, RAW_DRONE, channels="yuv")
    assert np.abs(out[0] - ref).max() <= ATOL


@pytest.mark.parametrize("cam", CAMERAS)
def test_parametrized_defaults_equal_static_bi_s_ga(cam):
    camera = CAMERAS[cam]
    raw = realistic_raw(camera, 2, 32)
    out = _run(Pipeline.parametrized(camera), raw, "cpu")
    ref = np.stack([process_static(r, "bi,s,ga", camera) for r in raw])
    assert np.abs(out - ref).max() <= ATOL


def test_parametrized_parameters_and_groups():
    p = Pipeline.parametrized(RAW_DRONE)
    groups = p.param_groups()
    assert list(groups) == ["bl", "dm", "wb", "cc", "sh", "dn", "gc"]
    shapes = {k: [tuple(t.shape) for t in v] for k, v in groups.items()}
    assert shapes == {"bl": [(4,)], "dm": [(3, 3, 3)], "wb": [(3,)], "cc": [(3, 3)], "sh": [(3, 3)], "dn": [(5, 5)], "gc": [()]}
    assert all(isinstance(t, torch.nn.Parameter) for v in groups.values() for t in v)
    assert list(Pipeline.static("bi,s,ga", RAW_DRONE).parameters()) == []


@pytest.mark.parametrize("cam", CAMERAS)
def test_gradients_reach_every_parameter_group(cam):
    p = Pipeline.parametrized(CAMERAS[cam])
    raw = torch.from_numpy(realistic_raw(CAMERAS[cam], 2, 16))[:, None]
    out = p(raw)
    (out * torch.linspace(0, 1, out.numel()).reshape(out.shape)).sum().backward()
    for code, params in p.param_groups().items():
        for t in params:
            assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0, code


def test_parametrized_gradcheck_float64():
    p = Pipeline.parametrized(RAW_DRONE, dtype=torch.float64)
    raw = torch.from_numpy(realistic_raw(RAW_DRONE, 1, 8)).double()[:, None]
    names = [n for n, _ in p.named_parameters()]
    params = [t.detach().clone().requires_grad_() for t in p.parameters()]

    def f(*ps):
        return torch.func.functional_call(p, dict(zip(names, ps)), (raw,))

    assert torch.autograd.gradcheck(f, tuple(params), fast_mode=True)


def test_freeze_unfreeze():
    p = Pipeline.parametrized(RAW_DRONE).freeze()
    assert not any(t.requires_grad for t in p.parameters())
    assert all(t.requires_grad for t in p.unfreeze().parameters())


def test_track_stages_records_every_view():
    p = Pipeline.parametrized(RAW_DRONE, track_stages=True)
    raw = torch.from_numpy(realistic_raw(RAW_DRONE, 1, 16))[:, None]
    out = p(raw)
    assert tuple(p.stages) == TRACKED
    assert p.stages["raw"].shape == (1, 1, 16, 16) and p.stages["bl"].shape == (1, 1, 16, 16)
    assert all(p.stages[k].shape == (1, 3, 16, 16) for k in TRACKED[2:])
    assert torch.equal(p.stages["gc"], out)
    out.sum().backward()
    assert p.stages["cc"].grad is not None


def test_static_pipeline_batched_equals_single():
    p = Pipeline.static("ma,u,me", RAW_MICROSCOPY)
    raw = torch.from_numpy(realistic_raw(RAW_MICROSCOPY, 3, 16))[:, None]
    torch.testing.assert_close(p(raw)[1:2], p(raw[1:2]))


def test_pipeline_odd_size_error():
    with pytest.raises(ValueError, match="Pipeline: raw: expected even height and width"):
        Pipeline.static("bi,s,ga", RAW_DRONE)(torch.rand(1, 1, 7, 8))


def test_pipeline_channels_error():
    with pytest.raises(ValueError, match="Pipeline: raw: expected 1 channel"):
        Pipeline.static("bi,s,ga", RAW_DRONE)(torch.rand(1, 3, 8, 8))


def test_pipeline_config_error():
    with pytest.raises(ValueError, match="unknown denoising code 'tv'"):
        Pipeline.static("bi,s,tv", RAW_DRONE)


def test_pipeline_camera_error():
    with pytest.raises(TypeError, match="camera: expected a rawdrift.isp.Camera"):
        Pipeline.parametrized("raw-drone")


def test_pipeline_nonfinite_parameter_error():
    p = Pipeline.parametrized(RAW_DRONE)
    with torch.no_grad():
        p.color_correction.M[0, 0] = float("nan")
    with pytest.raises(ValueError, match="color_correct: M: expected finite"):
        p(torch.rand(1, 1, 8, 8))


def test_camera_gamma_is_used():
    cam = Camera("g1", (0,) * 4, (1, 1, 1), ((1, 0, 0), (0, 1, 0), (0, 0, 1)), gamma=1.0)
    raw = realistic_raw(RAW_DRONE, 1, 16)
    assert np.abs(_run(Pipeline.static("bi,s,ga", cam), raw, "cpu")[0] - process_static(raw[0], "bi,s,ga", cam)).max() <= ATOL
