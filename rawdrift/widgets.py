"""Interactive explorers for the book (ipywidgets, imported lazily).

Explorers: :func:`explore_raw` (raw captures by sample and intensity, chapter 02),
:func:`explore_pipeline` (stage by stage, chapter 03), :func:`explore_synthesis` (grid cells,
chapter 04); forensics and adjustment keep theirs in their modules.

Each explorer ``explore_x(...)`` returns an ipywidgets ``VBox`` whose picture is a PNG
``Image`` widget re-rendered whenever a control changes; each has a twin ``x_figure(...)``
that returns the matplotlib Figure of the same state, so a static page can show the
explorer's default state (widgets on a static page never call back into Python).
"""

from __future__ import annotations

import io
from dataclasses import replace

import torch

from ._checks import check_choice, check_finite
from .isp.camera import Camera
from .isp.configs import DENOISE_CODES, DEMOSAIC_CODES, SHARPEN_CODES


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _adjusted_camera(camera: Camera, black_level_offset: float, r_gain: float, b_gain: float, gamma) -> Camera:
    if not isinstance(camera, Camera):
        raise TypeError(f"camera: expected a rawdrift.isp.Camera, got {type(camera).__name__}")
    for value, name in ((black_level_offset, "black_level_offset"), (r_gain, "r_gain"), (b_gain, "b_gain")):
        check_finite(torch.tensor(float(value)), name)
    if not -0.5 < black_level_offset < 0.5:
        raise ValueError(f"black_level_offset: expected a value in (-0.5, 0.5), got {black_level_offset}")
    if r_gain <= 0 or b_gain <= 0:
        raise ValueError(f"r_gain/b_gain: expected positive multipliers, got {r_gain}, {b_gain}")
    gamma = camera.gamma if gamma is None else float(gamma)
    if not gamma > 0:
        raise ValueError(f"gamma: expected a positive value, got {gamma}")
    wb = camera.white_balance
    return replace(camera, black_level=tuple(min(max(b + black_level_offset, 0.0), 0.99) for b in camera.black_level),
                   white_balance=(wb[0] * r_gain, wb[1], wb[2] * b_gain), gamma=gamma)


def pipeline_figure(raw, camera: Camera, demosaic: str = "bi", sharpen: str = "s", denoise: str = "ga", *,
                    black_level_offset: float = 0.0, r_gain: float = 1.0, b_gain: float = 1.0, gamma=None):
    """Stage-by-stage figure of one raw mosaic through the torch ISP with adjusted camera constants.

    Args:
        raw: ``(H, W)``, ``(1, H, W)`` or ``(B, 1, H, W)`` mosaic (the first image is shown).
        camera: the camera constants to start from.
        demosaic / sharpen / denoise: configuration codes (``bi|me|ma``, ``s|u``, ``ga|me``).
        black_level_offset: added to the black level of all four CFA sites (result kept in [0, 0.99]).
        r_gain / b_gain: multipliers of the camera's red and blue white-balance gains (> 0).
        gamma: gamma of GC (default: the camera's).
    Returns:
        the matplotlib Figure of :func:`rawdrift.plots.stage_strip`.
    """
    from .isp.pipeline import Pipeline
    from .plots import stage_strip

    check_choice(demosaic, tuple(DEMOSAIC_CODES), "demosaic")
    check_choice(sharpen, tuple(SHARPEN_CODES), "sharpen")
    check_choice(denoise, tuple(DENOISE_CODES), "denoise")
    cam = _adjusted_camera(camera, black_level_offset, r_gain, b_gain, gamma)
    pipe = Pipeline.static(f"{demosaic},{sharpen},{denoise}", cam)
    fig = stage_strip(raw, pipe)
    fig.suptitle(f"{demosaic},{sharpen},{denoise}  |  BL {cam.black_level[0]:.4f}, "
                 f"WB ({cam.white_balance[0]:.2f}, {cam.white_balance[1]:.2f}, {cam.white_balance[2]:.2f}), "
                 f"gamma {cam.gamma:.2f}", fontsize=10)
    return fig


def explore_pipeline(raw, camera: Camera):
    """Stage-by-stage ISP viewer: demosaic/sharpen/denoise dropdowns, black level, R/B gain and gamma sliders.

    Returns an ipywidgets ``VBox`` (controls, then the picture); its default state is
    ``pipeline_figure(raw, camera)``.
    """
    import ipywidgets as w

    labels = {"demosaic": DEMOSAIC_CODES, "sharpen": SHARPEN_CODES, "denoise": DENOISE_CODES}
    dd = {k: w.Dropdown(options=[(f"{c} ({v})", c) for c, v in codes.items()], value=default, description=k)
          for (k, codes), default in zip(labels.items(), ("bi", "s", "ga"))}
    sl = {
        "black_level_offset": w.FloatSlider(value=0.0, min=-0.01, max=0.05, step=0.001, readout_format=".3f",
                                            description="BL offset"),
        "r_gain": w.FloatSlider(value=1.0, min=0.25, max=2.5, step=0.05, description="R gain x"),
        "b_gain": w.FloatSlider(value=1.0, min=0.25, max=2.5, step=0.05, description="B gain x"),
        "gamma": w.FloatSlider(value=float(camera.gamma), min=0.5, max=4.0, step=0.1, description="gamma"),
    }
    image = w.Image(format="png")

    def render(_=None):
        image.value = _png(pipeline_figure(raw, camera, **{k: d.value for k, d in dd.items()},
                                           **{k: s.value for k, s in sl.items()}))

    for c in (*dd.values(), *sl.values()):
        c.observe(render, names="value")
    render()
    return w.VBox([w.HBox(list(dd.values())), w.HBox(list(sl.values())[:2]), w.HBox(list(sl.values())[2:]), image])


def _default_cell(result, train_config, test_config):
    if train_config is None or test_config is None:
        tr, te, _ = result.worst_pair()
        train_config = train_config or tr or result.train_configs[0]
        test_config = test_config or te or result.test_configs[0]
    return train_config, test_config


def synthesis_cell_figure(result, dataset, train_config: str | None = None, test_config: str | None = None,
                          index: int = 0):
    """The explorer's picture for one cell (default: the worst ISP pair); see
    :func:`rawdrift.drift.synthesis.cell_figure`."""
    from .drift.synthesis import cell_figure

    return cell_figure(result, dataset, *_default_cell(result, train_config, test_config), index)


def explore_synthesis(result, dataset, index: int = 0):
    """Synthesis grid cell picker: training and test configuration dropdowns and a sample slider.

    Shows the sample developed by both configurations, ``|A - B|`` per channel and the cell's
    mean +- std over folds, from the (cached) ``result``; default state =
    ``synthesis_cell_figure(result, dataset, index=index)``.
    """
    import ipywidgets as w

    tr, te = _default_cell(result, None, None)
    train = w.Dropdown(options=list(result.train_configs), value=tr, description="trained on")
    test = w.Dropdown(options=list(result.test_configs), value=te, description="tested on")
    sample = w.IntSlider(value=index, min=0, max=len(dataset) - 1, description="sample")
    text = w.HTML()
    image = w.Image(format="png")

    def render(_=None):
        mean, std = result.cell(train.value, test.value)
        text.value = f"<b>{result.metric}</b> {mean:.3f} &plusmn; {std:.3f} (trained on {train.value}, tested on {test.value})"
        image.value = _png(synthesis_cell_figure(result, dataset, train.value, test.value, sample.value))

    for c in (train, test, sample):
        c.observe(render, names="value")
    render()
    return w.VBox([w.HBox([train, test, sample]), text, image])


def _capture(dataset, index: int, intensity: float, seed: int) -> torch.Tensor:
    """Sample ``index`` of a synthetic dataset captured at ``intensity`` (deterministic per seed): ``(1, 1, H, W)``."""
    from .raw.sensor import check_intensity

    if not hasattr(dataset, "radiance") or not hasattr(dataset, "sensor"):
        raise TypeError("dataset: expected a synthetic dataset (with radiance and sensor), "
                        f"got {type(dataset).__name__}")
    check_intensity(intensity, "intensity")
    if not 0 <= int(index) < len(dataset):
        raise ValueError(f"index: expected 0 <= index < {len(dataset)}, got {index}")
    gen = torch.Generator().manual_seed(int(seed))
    return dataset.sensor.capture(dataset.radiance([int(index)]), float(intensity), gen)


def raw_capture_figure(dataset, index: int = 0, intensity: float = 1.0, seed: int = 0, raw=None):
    """One scene of a synthetic dataset captured at ``intensity``: the raw mosaic, the
    development at a fixed exposure and the development stretched to its own range.

    Args:
        dataset: a synthetic dataset (``get_dataset("synthetic-...")``).
        index: the sample.
        intensity: photon-budget factor in (0, 1], applied before noise.
        seed: seed of the noise draw.
        raw: a capture already made by :func:`_capture` (the explorer's cache).
    Returns:
        the matplotlib Figure (the static twin of :func:`explore_raw`).
    """
    import matplotlib.pyplot as plt

    from .raw.preview import quick_view

    raw = _capture(dataset, index, intensity, seed) if raw is None else raw
    view = quick_view(raw, dataset.camera)[0].permute(1, 2, 0)
    lo, hi = view.min(), view.max()
    bl = float(dataset.camera.black_level[0])
    signal = float(raw.mean()) - bl
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.9))
    axes[0].imshow(raw[0, 0].numpy(), cmap="gray", interpolation="nearest")
    axes[0].set_title(f"raw mosaic\nmean signal {signal:.4f} above black", fontsize=8)
    axes[1].imshow(view.numpy(), interpolation="nearest")
    axes[1].set_title("developed, fixed exposure", fontsize=8)
    axes[2].imshow(((view - lo) / (hi - lo).clamp_min(1e-8)).numpy(), interpolation="nearest")
    axes[2].set_title("developed, stretched", fontsize=8)
    for ax in axes:
        ax.axis("off")
    target = dataset.targets[int(index)]
    if getattr(dataset, "task", "") == "classification":
        label = dataset.classes[int(target)]
    else:
        label = "with cars" if int(target) else "no cars"
    fig.suptitle(f"{dataset.name} sample {index} ({label}) at intensity {intensity:g}", fontsize=9)
    fig.tight_layout()
    return fig


def explore_raw(dataset, indices=None, intensities=None, seed: int = 0):
    """Raw-capture explorer: a sample picker and an intensity slider over one synthetic dataset.

    Captures are drawn once per (sample, intensity) and their pictures kept, so going back to a
    state is instant. Default state = ``raw_capture_figure(dataset, indices[0], intensities[0], seed)``.

    Args:
        dataset: a synthetic dataset.
        indices: the samples offered (default: the first of each class, else the first 8).
        intensities: the intensities offered (default: the paper's levels and 0.001).
        seed: seed of the noise draws.
    """
    import ipywidgets as w
    import numpy as np

    from .raw.sensor import INTENSITY_LEVELS

    if indices is None:
        t = np.asarray(dataset.targets)
        if getattr(dataset, "task", "") == "classification":
            indices = [int(np.flatnonzero(t == c)[0]) for c in range(len(dataset.classes)) if (t == c).any()]
        else:
            indices = list(range(min(8, len(dataset))))
    indices = [int(i) for i in indices]
    levels = [float(v) for v in (intensities if intensities is not None else (*INTENSITY_LEVELS, 0.001))]
    if not indices or not levels:
        raise ValueError("indices/intensities: expected at least one value each")
    _capture(dataset, indices[0], levels[0], seed)  # validates dataset, index and intensity before any widget

    def label(i):
        if getattr(dataset, "task", "") == "classification":
            return f"{i}: {dataset.classes[int(dataset.targets[i])]}"
        return f"{i}"

    sample = w.Dropdown(options=[(label(i), i) for i in indices], value=indices[0], description="sample")
    level = w.SelectionSlider(options=levels, value=levels[0], description="intensity")
    image = w.Image(format="png")
    pictures: dict = {}

    def render(_=None):
        key = (sample.value, level.value)
        if key not in pictures:
            raw = _capture(dataset, key[0], key[1], seed)
            pictures[key] = _png(raw_capture_figure(dataset, key[0], key[1], seed, raw=raw))
        image.value = pictures[key]

    for c in (sample, level):
        c.observe(render, names="value")
    render()
    return w.VBox([w.HBox([sample, level]), image])
