"""The book's per-preset synthesis grids and the cell / worst-case figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rawdrift.data import get_dataset  # noqa: E402
from rawdrift.drift.synthesis import (  # noqa: E402
    BOOK_GRIDS,
    SynthesisConfig,
    SynthesisResult,
    cell_figure,
    worst_case_figure,
)
from rawdrift.isp import CONFIGS  # noqa: E402


def test_for_book_per_preset(monkeypatch, tmp_path):
    monkeypatch.setenv("RAWDRIFT_CACHE", str(tmp_path))
    ci = SynthesisConfig.for_book("ci").resolved()
    assert len(ci.train_configs) == 3 and ci.test_configs == CONFIGS and len(ci.corruptions) == 3
    assert (ci.folds, ci.epochs) == (2, 1) and ci.out.startswith(str(tmp_path))
    lab = SynthesisConfig.for_book("lab").resolved()
    assert len(lab.train_configs) == 4 and lab.test_configs == CONFIGS and (lab.folds, lab.epochs) == (2, 5)
    # the lab training configurations cover every demosaicing, sharpening and denoising code
    codes = [set(c.split(",")[k] for c in lab.train_configs) for k in range(3)]
    assert codes == [{"bi", "me", "ma"}, {"s", "u"}, {"ga", "me"}]
    paper = SynthesisConfig.for_book("paper").resolved()
    assert paper.train_configs == CONFIGS and paper.folds == 5 and paper.epochs == 100
    assert SynthesisConfig.for_book("ci", dataset="synthetic-drone", epochs=2).resolved().epochs == 2
    assert "synthetic-drone" in SynthesisConfig.for_book("ci", dataset="synthetic-drone").out
    monkeypatch.setenv("RAWDRIFT_PRESET", "lab")
    assert SynthesisConfig.for_book().preset == "lab"
    assert set(BOOK_GRIDS) == {"ci", "lab", "paper"}


@pytest.fixture(scope="module")
def result():
    tr, te = ["bi,s,ga", "ma,u,me"], ["bi,s,ga", "ma,u,me", "me,s,me"]
    isp = np.array([[[0.9, 0.9], [0.8, 0.7], [0.2, 0.4]], [[0.6, 0.6], [0.7, 0.9], [0.5, 0.5]]])
    cfg = {"dataset": "synthetic-microscopy", "preset": "ci", "baseline": "bi,s,ga"}
    return SynthesisResult(cfg, "classification", "accuracy", tr, te, ["contrast@3"], isp, np.full((2, 2, 2), 0.5))


@pytest.fixture(scope="module")
def data():
    return get_dataset("synthetic-microscopy", preset="ci", n=8)


def test_cell(result):
    assert result.cell("bi,s,ga", "me,s,me") == pytest.approx((0.3, 0.1))
    assert result.cell("ma,u,me", "ma,u,me") == pytest.approx((0.8, 0.1))
    with pytest.raises(ValueError, match="train_config: expected one of"):
        result.cell("me,s,me", "bi,s,ga")
    with pytest.raises(ValueError, match="test_config: expected one of"):
        result.cell("bi,s,ga", "ma,s,ga")


def test_cell_figure_shows_the_difference_of_the_two_views(result, data):
    from rawdrift.isp import Pipeline

    fig = cell_figure(result, data, "ma,u,me", "bi,s,ga", index=2)
    raw = data[2][0][None]
    a = Pipeline.static("ma,u,me", data.camera)(raw)[0]
    b = Pipeline.static("bi,s,ga", data.camera)(raw)[0]
    shown = fig.axes[3].images[0].get_array()  # |A - B| of the green channel
    np.testing.assert_allclose(np.asarray(shown), (a - b).abs()[1].numpy(), atol=1e-6)
    assert fig._suptitle.get_text().startswith("accuracy 0.600 +- 0.000 over 2 folds; on ma,u,me itself 0.800")
    plt.close(fig)


def test_worst_case_figure_picks_worst_pair(result, data):
    assert result.worst_pair()[:2] == ("bi,s,ga", "me,s,me")
    fig = worst_case_figure(result, data)
    assert [a.get_title() for a in fig.axes[:2]] == ["A: trained on bi,s,ga", "B: tested on me,s,me"]
    plt.close(fig)


def test_figure_errors(result, data):
    with pytest.raises(ValueError, match="index: expected a sample index below 8"):
        cell_figure(result, data, "bi,s,ga", "ma,u,me", index=8)
    one = SynthesisResult(result.config, "classification", "accuracy", ["bi,s,ga"], ["bi,s,ga"], ["contrast@3"],
                          np.full((1, 1, 2), 0.5), np.full((1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="result: no off-diagonal cell"):
        worst_case_figure(one, data)


def test_paper_comparison(result):
    rows = result.paper_comparison()
    assert [r["paper"] for r in rows] == [0.82, 0.80, 0.82, 0.55]
    s = result.summary()
    assert [r["ours"] for r in rows] == pytest.approx([s.isp_train, s.isp_test, s.corruption_clean, s.corruption_test])
    assert rows[0]["ours"] == pytest.approx((0.9 + 0.8) / 2)
    seg = SynthesisResult(result.config, "segmentation", "iou", result.train_configs, result.test_configs,
                          result.conditions, result.isp_scores, result.corruption_scores)
    assert [r["paper"] for r in seg.paper_comparison()] == [0.71, 0.65, 0.71, 0.49]
    assert seg.paper_comparison()[0]["quantity"].startswith("iou")


def test_saving_figures_keeps_the_matplotlib_backend(result, tmp_path):
    """A notebook's inline backend must survive run_synthesis (it saves grids.png at the end)."""
    import matplotlib

    from rawdrift.drift.synthesis import _save_figures

    matplotlib.use("pdf")
    try:
        _save_figures(result, tmp_path)
        assert matplotlib.get_backend() == "pdf"
    finally:
        matplotlib.use("Agg")
    assert (tmp_path / "grids.png").stat().st_size > 0
