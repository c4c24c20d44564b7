"""The compiled no-grad CPU path (rawdrift.isp.fused): when it runs, when it steps aside, exactness.

Parity with the static reference for all 12 configurations runs in test_pipeline.py
(``test_static_pipeline_matches_reference``, both paths); here: the plan, the fallbacks,
Menon's decision bit for bit, the median network, agreement with the op-by-op path.
"""

import itertools

import numpy as np
import pytest
import torch

from rawdrift.isp import fused
from rawdrift.isp.camera import RAW_DRONE, RAW_MICROSCOPY
from rawdrift.isp.configs import CONFIGS
from rawdrift.isp.demosaic import _menon_decision, _menon_green, _site_sets
from rawdrift.isp.pipeline import Pipeline
from rawdrift.isp.static import process_static

from ._raw import realistic_raw

pytestmark = pytest.mark.skipif(not fused.HAVE_NUMBA, reason="numba not installed: the torch path runs")


def _plan(p, raw):
    with torch.no_grad():
        return fused.plan(p, raw, p._prepare(raw))


@pytest.mark.parametrize("config", CONFIGS)
def test_every_static_config_takes_the_fused_path(config):
    raw = torch.rand(2, 1, 16, 16)
    assert _plan(Pipeline.static(config, RAW_DRONE), raw) is not None


@pytest.mark.parametrize("size", [4, 6, 8])
def test_small_images_match_the_reference(size):
    """Borders wider than half the image: where the plan accepts a size it must still be exact."""
    raw = np.random.default_rng(size).random((2, size, size)).astype(np.float32)
    taken = 0
    for config in CONFIGS:
        p = Pipeline.static(config, RAW_DRONE)
        t = torch.from_numpy(raw)[:, None]
        taken += _plan(p, t) is not None
        with torch.no_grad():
            out = p(t).permute(0, 2, 3, 1).numpy()
        ref = np.stack([process_static(r, config, RAW_DRONE) for r in raw])
        assert np.abs(out - ref).max() <= 1e-4, (config, size)
    assert taken == (6 if size == 4 else 12)


@pytest.mark.parametrize("config", ["bi,s,ga", "me,u,me", "ma,u,ga"])
@pytest.mark.parametrize("cam", [RAW_DRONE, RAW_MICROSCOPY], ids=["drone", "microscopy"])
def test_fused_equals_torch_ops(config, cam):
    """Same views as op-by-op torch to float32 rounding; a flipped Menon decision would show as ~1e-2."""
    raw = torch.from_numpy(realistic_raw(cam, 3, 64, seed=3))[:, None]
    p = Pipeline.static(config, cam)
    with torch.no_grad():
        out = p(raw)
        p.fused = False
        ops = p(raw)
    assert float((out - ops).abs().max()) <= 2e-5


def test_fused_is_not_used_where_it_does_not_apply(monkeypatch):
    raw = torch.rand(2, 1, 16, 16)
    p = Pipeline.static("bi,u,ga", RAW_DRONE)
    assert _plan(p, raw.double().float()) is not None
    assert _plan(p, raw.double()) is None  # float64: the torch path
    assert _plan(p, torch.rand(1, 1, 4, 4)) is None  # too small for the unsharp Gaussian's border
    assert _plan(Pipeline.static("bi,u,ga", RAW_DRONE, channels="yuv"), raw) is None
    assert _plan(Pipeline.parametrized(RAW_DRONE).freeze(), raw) is None  # differentiable gamma
    p.fused = False
    assert _plan(p, raw) is None
    p.fused = True
    monkeypatch.setenv("RAWDRIFT_FUSED", "0")
    assert not fused.enabled() and _plan(p, raw) is None
    monkeypatch.delenv("RAWDRIFT_FUSED")
    monkeypatch.setattr(fused, "HAVE_NUMBA", False)
    assert _plan(p, raw) is None
    with torch.no_grad():  # and the pipeline still runs, on torch ops
        assert p(raw).shape == (2, 3, 16, 16)


def test_fused_skips_subclassed_stages():
    from rawdrift.isp.sharpen import Sharpen

    class LoudSharpen(Sharpen):
        pass

    p = Pipeline.static("bi,s,ga", RAW_DRONE)
    p.sharpen = LoudSharpen("s")
    assert _plan(p, torch.rand(1, 1, 16, 16)) is None


@pytest.mark.parametrize("pattern", ["RGGB", "BGGR", "GRBG", "GBRG"])
def test_menon_decision_is_bit_identical(pattern):
    """The compiled float64 decision equals the torch one (itself scipy's, bit for bit) everywhere."""
    raw = realistic_raw(RAW_DRONE, 2, 48, seed=1)
    raw[1, 10:30, 5:40] = 0.3  # flat patches: ties, which go to horizontal
    for x in raw:
        x = x - np.float32(0.02)
        t = torch.from_numpy(x)[None]
        m = _site_sets(t, pattern)
        x64 = t.double()
        g_h, g_v = _menon_green(x64, torch.where(m["g"], x64, x64.new_zeros(())), m["g"])
        want = _menon_decision(x64, g_h, g_v, m["r"], m["b"])[0].numpy()
        cls, _ = fused.site_classes(*x.shape, pattern)
        h, w = x.shape
        horiz = np.empty((h, w), np.bool_)
        d = np.empty((3, h, w), np.float32)
        s64 = [np.zeros((h + 4, w + 4)) for _ in range(5)]
        fused._menon_decision(x, cls, horiz, d, *s64)
        np.testing.assert_array_equal(horiz, want)
        assert horiz.any() and not horiz.all()
        np.testing.assert_array_equal(d[0], g_h[0].float().numpy())  # the estimates, rounded once


def test_median_network_is_the_median():
    rng = np.random.default_rng(0)
    values = list(rng.integers(0, 4, size=(400, 9)).astype(np.float32)) + list(rng.random((400, 9), dtype=np.float32))
    values += [np.array(p, np.float32) for p in itertools.islice(itertools.permutations(range(9)), 0, 362880, 997)]
    for v in values:
        assert fused._median9(*v) == np.median(v), v


@pytest.mark.parametrize("pattern", ["RGGB", "GBRG"])
def test_site_classes(pattern):
    cls, colp = fused.site_classes(4, 6, pattern)
    colour = {"R": 0, "G": 1, "B": 2}
    first = [colour[c] for c in pattern]
    assert colp[1, 1] == first[0] and colp[1, 2] == first[1] and colp[2, 1] == first[2]
    assert colp[0, 0] == first[0] and colp[0, 1] == first[0]  # reflect: row -1 is row 0, column -1 column 0
    red_row = 0 if "R" in pattern[:2] else 1
    assert (cls[red_row][cls[red_row] != 0] == 1).all() and set(np.unique(cls)) == {0, 1, 2, 3}
    with pytest.raises(ValueError):
        cls[0, 0] = 2  # cached: read-only


def test_raw_that_requires_grad_under_no_grad():
    p = Pipeline.static("ma,s,me", RAW_DRONE)
    raw = torch.rand(2, 1, 16, 16, requires_grad=True)
    with torch.no_grad():
        out = p(raw)
    assert not out.requires_grad and out.shape == (2, 3, 16, 16)


def test_kernels_compile_without_a_writable_cache(tmp_path):
    """A read-only install with no writable cache location: the kernels still compile and run."""
    import subprocess
    import sys

    code = (
        "import numba\n"
        "real = numba.njit\n"
        "def fake(*a, **k):\n"
        "    if k.get('cache'):\n"
        "        raise RuntimeError('cannot cache function: no locator available')\n"
        "    return real(*a, **k)\n"
        "numba.njit = fake\n"
        "import torch\n"
        "from rawdrift.isp import fused\n"
        "from rawdrift.isp.camera import RAW_DRONE\n"
        "from rawdrift.isp.pipeline import Pipeline\n"
        "p = Pipeline.static('ma,s,me', RAW_DRONE)\n"
        "raw = torch.rand(2, 1, 16, 16)\n"
        "with torch.no_grad():\n"
        "    assert fused.plan(p, raw, p._prepare(raw)) is not None\n"
        "    out = p(raw)\n"
        "    p.fused = False\n"
        "    assert (out - p(raw)).abs().max() < 1e-5\n"
        "print('cached', fused.CACHED)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cached False" in r.stdout
