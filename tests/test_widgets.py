"""Explorers: built on tiny data, a control changed programmatically re-renders the picture."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("ipywidgets")

from rawdrift.data import get_dataset  # noqa: E402
from rawdrift.drift.synthesis import SynthesisResult  # noqa: E402
from rawdrift.isp.camera import RAW_DRONE  # noqa: E402
from rawdrift.widgets import explore_pipeline, explore_synthesis, pipeline_figure, synthesis_cell_figure  # noqa: E402


def _find(box, cls_name):
    found = []
    for c in box.children:
        if type(c).__name__ == cls_name:
            found.append(c)
        if hasattr(c, "children"):
            found += _find(c, cls_name)
    return found


def _raw():
    return torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))


def test_explore_pipeline_rerenders_on_every_control():
    box = explore_pipeline(_raw(), RAW_DRONE)
    (image,) = _find(box, "Image")
    seen = {bytes(image.value)}
    assert image.value[:4] == b"\x89PNG"
    dropdowns = {d.description: d for d in _find(box, "Dropdown")}
    sliders = {s.description: s for s in _find(box, "FloatSlider")}
    assert set(dropdowns) == {"demosaic", "sharpen", "denoise"}
    assert set(sliders) == {"BL offset", "R gain x", "B gain x", "gamma"}
    dropdowns["demosaic"].value = "ma"
    sliders["gamma"].value = 1.0
    sliders["R gain x"].value = 2.0
    assert bytes(image.value) not in seen


def test_explore_pipeline_shows_its_static_figure():
    """The explorer's picture is exactly the static figure of the same state (default and changed)."""
    from rawdrift.widgets import _png

    box = explore_pipeline(_raw(), RAW_DRONE)
    (image,) = _find(box, "Image")
    assert bytes(image.value) == _png(pipeline_figure(_raw(), RAW_DRONE))
    {d.description: d for d in _find(box, "Dropdown")}["sharpen"].value = "u"
    {s.description: s for s in _find(box, "FloatSlider")}["B gain x"].value = 0.5
    assert bytes(image.value) == _png(pipeline_figure(_raw(), RAW_DRONE, "bi", "u", "ga", b_gain=0.5))


@pytest.mark.parametrize("control", ["demosaic", "gamma", "BL offset"])
def test_explore_pipeline_each_control_changes_picture(control):
    box = explore_pipeline(_raw(), RAW_DRONE)
    (image,) = _find(box, "Image")
    before = bytes(image.value)
    widgets = {w.description: w for w in _find(box, "Dropdown") + _find(box, "FloatSlider")}
    widgets[control].value = {"demosaic": "me", "gamma": 1.2, "BL offset": 0.03}[control]
    assert bytes(image.value) != before


def test_pipeline_figure_matches_parameters():
    fig = pipeline_figure(_raw(), RAW_DRONE, "ma", "u", "me", gamma=1.5, r_gain=2.0)
    title = fig._suptitle.get_text()
    assert title.startswith("ma,u,me") and "gamma 1.50" in title and f"{2 * RAW_DRONE.white_balance[0]:.2f}" in title
    assert len(fig.axes) == 8
    plt.close(fig)


def test_pipeline_figure_errors():
    with pytest.raises(ValueError, match="demosaic: expected one of"):
        pipeline_figure(_raw(), RAW_DRONE, "xx")
    with pytest.raises(ValueError, match="r_gain/b_gain"):
        pipeline_figure(_raw(), RAW_DRONE, r_gain=0)
    with pytest.raises(ValueError, match="black_level_offset"):
        pipeline_figure(_raw(), RAW_DRONE, black_level_offset=0.7)
    with pytest.raises(ValueError, match="gamma"):
        pipeline_figure(_raw(), RAW_DRONE, gamma=0)
    with pytest.raises(TypeError, match="camera"):
        pipeline_figure(_raw(), "drone")


@pytest.fixture(scope="module")
def fake_result():
    """A synthesis result with known scores (no training): cell (i, j) = 0.9 - 0.1 i - 0.01 j, folds +-0.02."""
    tr, te = ["bi,s,ga", "ma,u,me"], ["bi,s,ga", "ma,u,me", "me,s,me"]
    base = 0.9 - 0.1 * np.arange(2)[:, None] - 0.01 * np.arange(3)[None, :]
    isp = np.stack([base - 0.02, base + 0.02], axis=2)
    isp[0, 2] = [0.3, 0.5]  # the worst pair: bi,s,ga -> me,s,me
    cor = np.full((2, 2, 2), 0.5)
    cfg = {"dataset": "synthetic-microscopy", "preset": "ci", "baseline": "bi,s,ga"}
    return SynthesisResult(cfg, "classification", "accuracy", tr, te, ["contrast@3"], isp, cor)


@pytest.fixture(scope="module")
def tiny_data():
    return get_dataset("synthetic-microscopy", preset="ci", n=8)


def test_explore_synthesis_updates_text_and_picture(fake_result, tiny_data):
    box = explore_synthesis(fake_result, tiny_data)
    (image,) = _find(box, "Image")
    (text,) = _find(box, "HTML")
    train, test = _find(box, "Dropdown")
    assert (train.value, test.value) == ("bi,s,ga", "me,s,me")  # default = worst pair
    assert "0.400 &plusmn; 0.100" in text.value
    before = bytes(image.value)
    train.value = "ma,u,me"
    test.value = "bi,s,ga"
    assert "0.800 &plusmn; 0.020" in text.value
    assert bytes(image.value) != before
    before = bytes(image.value)
    (sample,) = _find(box, "IntSlider")
    sample.value = 3
    assert bytes(image.value) != before


def test_synthesis_cell_figure_default_is_worst_pair(fake_result, tiny_data):
    fig = synthesis_cell_figure(fake_result, tiny_data)
    title = fig._suptitle.get_text()
    assert title.startswith("accuracy 0.400 +- 0.100 over 2 folds") and "on bi,s,ga itself 0.900" in title
    assert [a.get_title() for a in fig.axes[:2]] == ["A: trained on bi,s,ga", "B: tested on me,s,me"]
    plt.close(fig)


# -- reliability maps ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reliability_runs(tmp_path_factory):
    pytest.importorskip("sklearn")
    pytest.importorskip("imblearn")
    from rawdrift.drift import reliability as rel

    f, box = rel.analytic_oracle(2)
    cfg = rel.ReliabilityConfig(preset="ci", box=box, points_per_dim=6, budgets=(6, 12), seeds=(0,),
                                rebalancers=("smote_gp",), classifiers=("random_forest",), n_candidates=100,
                                oracle="toy", out=tmp_path_factory.mktemp("rel"))
    return rel.reliability_sweep(cfg, rel.MemoOracle(f), [0.7, 0.8, 0.9])


def test_explore_reliability_shows_its_static_figure_and_reacts(reliability_runs):
    from rawdrift.drift.reliability import explore_reliability, reliability_figure
    from rawdrift.widgets import _png

    box = explore_reliability(reliability_runs, mark=(1.0, 2.2))
    (image,) = _find(box, "Image")
    assert bytes(image.value) == _png(reliability_figure(reliability_runs, mark=(1.0, 2.2)))
    sliders = {s.description: s for s in _find(box, "SelectionSlider")}
    assert set(sliders) == {"h", "budget"}
    assert sliders["h"].value == 0.8 and sliders["budget"].value == 12
    seen = {bytes(image.value)}
    sliders["h"].value = 0.9
    assert bytes(image.value) not in seen
    seen.add(bytes(image.value))
    sliders["budget"].value = 6
    assert bytes(image.value) not in seen
    assert bytes(image.value) == _png(reliability_figure(reliability_runs, 0.9, 6, mark=(1.0, 2.2)))
    (text,) = _find(box, "HTML")
    assert "h = 0.9, budget 6" in text.value


def test_reliability_static_figure_is_not_blank(reliability_runs):
    from rawdrift.drift.reliability import reliability_figure

    fig = reliability_figure(reliability_runs)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float)
    assert pixels.std() > 10
    plt.close(fig)


def test_explore_raw_rerenders_and_matches_its_static_figure():
    from rawdrift.widgets import _png, explore_raw, raw_capture_figure

    ds = get_dataset("synthetic-microscopy", preset="ci", n=18)
    box = explore_raw(ds, indices=[0, 3], intensities=[1.0, 0.01])
    (image,) = _find(box, "Image")
    assert bytes(image.value) == _png(raw_capture_figure(ds, 0, 1.0))
    (level,) = _find(box, "SelectionSlider")
    level.value = 0.01
    assert bytes(image.value) == _png(raw_capture_figure(ds, 0, 0.01))
    (sample,) = _find(box, "Dropdown")
    sample.value = 3
    assert bytes(image.value) == _png(raw_capture_figure(ds, 3, 0.01))
    plt.close("all")


def test_explore_raw_default_samples_one_per_class_and_drone():
    from rawdrift.widgets import explore_raw

    ds = get_dataset("synthetic-microscopy", preset="ci", n=18)
    (sample,) = _find(explore_raw(ds, intensities=[1.0]), "Dropdown")
    assert len(sample.options) == len(set(np.asarray(ds.targets).tolist()))
    drone = get_dataset("synthetic-drone", preset="ci", n=4)
    (sample,) = _find(explore_raw(drone, intensities=[0.5]), "Dropdown")
    assert [v for _, v in sample.options] == [0, 1, 2, 3]
    plt.close("all")


def test_explore_raw_errors():
    from rawdrift.widgets import explore_raw, raw_capture_figure

    ds = get_dataset("synthetic-microscopy", preset="ci", n=18)
    with pytest.raises(TypeError, match="dataset: expected a synthetic dataset"):
        raw_capture_figure(object())
    with pytest.raises(ValueError, match="index: expected 0 <= index < 18"):
        raw_capture_figure(ds, 18)
    with pytest.raises(ValueError, match="intensity"):
        explore_raw(ds, intensities=[2.0])
    with pytest.raises(ValueError, match="indices/intensities: expected at least one"):
        explore_raw(ds, indices=[])
