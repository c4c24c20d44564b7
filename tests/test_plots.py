import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from rawdrift.isp.camera import RAW_DRONE  # noqa: E402
from rawdrift.isp.pipeline import TRACKED, Pipeline  # noqa: E402
from rawdrift.plots import config_grid, stage_strip  # noqa: E402


def test_stage_strip_returns_figure_with_every_stage():
    p = Pipeline.parametrized(RAW_DRONE)
    fig = stage_strip(torch.rand(16, 16), p)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == len(TRACKED)
    assert p.track_stages is False
    plt.close(fig)


def test_config_grid_returns_figure():
    fig = config_grid(torch.rand(1, 1, 16, 16), RAW_DRONE, configs=("bi,s,ga", "bi,u,me"))
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) >= 8
    plt.close(fig)


def test_markdown_table():
    import pytest

    from rawdrift.plots import markdown_table

    text = markdown_table([{"a": 1, "b": 0.123456}, {"a": 2, "b": 2.0}], floatfmt=".2f")
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.12 |", "| 2 | 2.00 |"]
    assert markdown_table([{"a": 1, "b": 2}], columns=["b"]).splitlines()[-1] == "| 2 |"
    with pytest.raises(ValueError, match="rows: expected at least one row"):
        markdown_table([])
