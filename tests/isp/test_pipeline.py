import numpy as np
import pytest
import torch
from torch import nn

from rawdrift.isp.camera import RAW_DRONE, RAW_MICROSCOPY, Camera
from rawdrift.isp.configs import CONFIGS
from rawdrift.isp.pipeline import TRACKED, Pipeline
from rawdrift.isp.static import process_static

from ._raw import CAMERAS, random_raw, realistic_raw

ATOL = 1e-4  # DESIGN.md: torch float32 vs static reference on [0, 1] views


def _run(p, raw, device):
    with torch.no_grad():
        return p.to(device)(torch.from_numpy(raw)[:, None].to(device)).permute(0, 2, 3, 1).cpu().numpy()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "ops"])
@pytest.mark.parametrize("cam", CAMERAS)
@pytest.mark.parametrize("config", CONFIGS)
def test_static_pipeline_matches_reference(config, cam, device, fused):
    """Both no-grad paths: the compiled kernels (CPU, where numba is installed) and op-by-op torch."""
    camera = CAMERAS[cam]
    for raw in (random_raw(2, 32), realistic_raw(camera, 2, 48)):
        p = Pipeline.static(config, camera)
        p.fused = fused
        out = _run(p, raw, device)
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


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("config", ["bi,s,ga", "me,u,me"])
def test_chunked_workers_equal_one_pass(config, threads, monkeypatch):
    """No-grad CPU batches are split into chunks run by image-parallel threads: same views, threads restored."""
    import rawdrift.isp.pipeline as pipeline_module

    for name in ("CHUNK_PIXELS", "MENON_CHUNK_PIXELS"):
        monkeypatch.setattr(pipeline_module, name, 16 * 16 * 2)  # 2 images per chunk: 3 chunks for 5
    p = Pipeline.static(config, RAW_MICROSCOPY)
    raw = torch.from_numpy(realistic_raw(RAW_MICROSCOPY, 5, 16))[:, None]
    with torch.no_grad():
        whole = p._forward_fused(raw, p._prepare(raw), grad=False)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = p(raw)
        assert torch.get_num_threads() == threads
        learnable = Pipeline.parametrized(RAW_MICROSCOPY)
        with torch.no_grad():  # workers run in their own threads: grad mode must follow the caller
            views = learnable(raw)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-6)
    assert views.grad_fn is None and not views.requires_grad


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


class _Scale(nn.Module):
    """A toy inserted stage with one learnable parameter."""

    def __init__(self, k=1.0):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(float(k)))

    def forward(self, x):
        return x * self.k


@pytest.mark.parametrize("after", ["bl", "dm", "cc", "dn", "gc"])
def test_insert_identity_stage_keeps_the_views(after):
    raw = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(3))
    ref = Pipeline.static("ma,u,me", RAW_MICROSCOPY)(raw)
    p = Pipeline.static("ma,u,me", RAW_MICROSCOPY).insert_stage(nn.Identity(), after=after, name="noop")
    torch.testing.assert_close(p(raw), ref, atol=1e-5, rtol=0)


def test_inserted_stage_runs_at_its_place_and_gets_gradients():
    raw = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    p = Pipeline.static("bi,s,ga", RAW_MICROSCOPY, track_stages=True)
    base = p(raw)
    p.insert_stage(_Scale(0.5), after="gc", name="halve")
    out = p(raw)
    torch.testing.assert_close(out, 0.5 * base)
    assert list(p.stages)[-1] == "halve" and p.extra_after == {"halve": "gc"}
    out.sum().backward()
    k = p.extra["halve"].k
    assert k.grad is not None and torch.isfinite(k.grad) and k.grad > 0
    assert "extra.halve.k" in dict(p.named_parameters())
    assert all(q is not k for g in p.param_groups().values() for q in g)  # in no stage group


def test_inserted_stage_before_gamma_and_order():
    raw = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    p = Pipeline.static("bi,s,ga", RAW_MICROSCOPY).insert_stage(_Scale(0.0), after="dn", name="dark")
    assert float(p(raw).max()) < 1e-2  # everything black before GC: GC's floor 1e-5 ** (1/2.2)
    q = Pipeline.static("bi,s,ga", RAW_MICROSCOPY).insert_stage(_Scale(2.0), "gc", "a").insert_stage(
        nn.Hardtanh(0.0, 1.0), "gc", "b")
    assert float(q(raw).max()) <= 1.0
    assert list(q.extra_after) == ["a", "b"]


def test_insert_stage_errors():
    p = Pipeline.static("bi,s,ga", RAW_MICROSCOPY)
    with pytest.raises(TypeError, match="module: expected a torch.nn.Module"):
        p.insert_stage(lambda x: x)
    with pytest.raises(ValueError, match="after: expected one of"):
        p.insert_stage(nn.Identity(), after="sh")
    with pytest.raises(ValueError, match="name: expected a Python identifier"):
        p.insert_stage(nn.Identity(), name="tone map")
    p.insert_stage(nn.Identity(), name="tone")
    with pytest.raises(ValueError, match="already a stage"):
        p.insert_stage(nn.Identity(), name="tone")
    with pytest.raises(ValueError, match="already a stage"):
        p.insert_stage(nn.Identity(), name="gc")
    with pytest.raises(ValueError, match="is reserved"):
        p.insert_stage(nn.Identity(), name="half")
