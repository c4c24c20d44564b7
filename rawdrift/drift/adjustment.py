"""Drift control 3: drift adjustment, learning the ISP jointly with the task model.

Paper Section 5.3 (Figure 7) and Appendix A.4.3 (Figure 16). The raw data are
rendered at a low and a high photon budget (``intensities``); at each one a
task model is trained by stratified k-fold cross-validation in three modes:

- ``frozen``: raw -> :meth:`Pipeline.parametrized <rawdrift.isp.pipeline.Pipeline.parametrized>`
  kept at its defaults (the static ``bi,s,ga`` configuration) -> task model;
- ``learned``: the same pipeline, its parameters optimised jointly with the
  task model (Adam, their own learning rate ``pipeline_lr``);
- ``raw``: no ISP at all, the task model reads the Bayer mosaic
  (:class:`PackedRaw`, see there for how a 1-channel mosaic feeds the same
  3-channel ResNet18 / U-Net).

The validation metric is recorded along training (every ``eval_every``
optimisation steps, or after every epoch with its step number), and the
result compares the mean and one-std band of the three modes, the gap
``learned - frozen`` at each step, how far the learned ISP parameters moved
from their defaults, and sample views before and after learning.

Everything is cached under ``out``: one folder per (intensity, mode, fold)
holding ``cell.json`` (its curve and final metrics), written atomically when
the cell is done, and the engine's per-epoch checkpoint while it trains, so an
interrupted study resumes and a finished one reloads without training.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_choice, check_image, check_int, check_range
from ..io import atomic_path, read_json, write_json, write_text
from ..metrics import class_spread
from ._config import RunConfig
from ._results import read_result, write_result

MODES = ("frozen", "learned", "raw")
PRIMARY = {"classification": "accuracy", "segmentation": "iou"}
#: Final scalar metrics kept besides the primary one.
EXTRA_METRICS = {"classification": ("balanced_accuracy", "macro_f1"), "segmentation": ("dice",)}
#: Final metrics derived from the per-class accuracy vectors (classification).
CLASSWISE = ("worst_class_accuracy", "class_range", "class_std")
#: Colours of the three modes in every figure (learned blue and frozen red, as in the paper).
COLORS = {"frozen": "tab:red", "learned": "tab:blue", "raw": "tab:gray"}


def intensity_tag(intensity: float) -> str:
    """Folder/JSON key of an intensity.

    >>> intensity_tag(0.001), intensity_tag(1.0)
    ('0.001', '1')
    """
    return f"{float(intensity):g}"


@dataclass
class AdjustmentConfig(RunConfig):
    """Settings of one drift-adjustment study; ``None`` fields come from the preset.

    Shared fields (``dataset``, ``preset``, ``seed``, ``n``, ``root``, ``device``,
    ``out``, ``progress``): see :class:`~rawdrift.drift._config.RunConfig`.

    Args:
        task: ``None`` takes the dataset's.
        intensities: raw photon-budget factors in (0, 1]; the paper's low and high are 0.001 and 1.0.
        modes: any of ``frozen``, ``learned``, ``raw``.
        folds: k of the stratified k-fold cross-validation (preset ``folds``; the paper used 5).
        epochs: training epochs (preset ``epochs``).
        lr: task-model learning rate (preset ``lr_cls``/``lr_seg``).
        pipeline_lr: learning rate of the ISP parameters in ``learned`` mode (default: ``lr``).
        batch_size, size: preset values unless given.
        augment: the engine's augmentation (``"weak"``: flips and rotations of views, as the paper).
        eval_every: validate every this many optimisation steps; ``None``: after every epoch.
        n_samples: validation images of fold 0 stored as processed sample views per intensity.
    """

    KIND: ClassVar[str] = "adjustment"

    task: str | None = None
    intensities: tuple[float, ...] = (0.001, 1.0)
    modes: tuple[str, ...] = MODES
    folds: int | None = None
    epochs: int | None = None
    lr: float | None = None
    pipeline_lr: float | None = None
    batch_size: int | None = None
    size: int | None = None
    augment: str | None = "weak"
    eval_every: int | None = None
    n_samples: int = 2

    def resolved(self) -> "AdjustmentConfig":
        """A validated copy with preset values filled in."""
        from ..raw.sensor import check_intensity

        p, common = self._resolve_common()
        if self.task is not None:
            check_choice(self.task, tuple(PRIMARY), "task")
        if isinstance(self.intensities, (int, float)) or len(self.intensities) == 0:
            raise ValueError(f"intensities: expected a non-empty sequence of values in (0, 1], got {self.intensities!r}")
        intensities = tuple(check_intensity(x, "intensities") for x in self.intensities)
        if len(set(map(intensity_tag, intensities))) != len(intensities):
            raise ValueError(f"intensities: values repeat: {intensities}")
        if isinstance(self.modes, str) or len(self.modes) == 0:
            raise ValueError(f"modes: expected a non-empty sequence of {MODES}, got {self.modes!r}")
        modes = tuple(check_choice(m, MODES, "modes") for m in self.modes)
        if len(set(modes)) != len(modes):
            raise ValueError(f"modes: values repeat: {modes}")
        folds = check_int(self.folds if self.folds is not None else p.folds, "folds", minimum=2)
        epochs = check_int(self.epochs if self.epochs is not None else p.epochs, "epochs", minimum=1)
        for name in ("lr", "pipeline_lr"):
            v = getattr(self, name)
            if v is not None:
                check_range(v, name, low=0.0)
                if v <= 0:
                    raise ValueError(f"{name}: expected a value > 0, got {v!r}")
        for name in ("batch_size", "eval_every"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1)
        if self.size is not None:
            check_int(self.size, "size", minimum=32, even=True)
        check_int(self.n_samples, "n_samples", minimum=0)
        return replace(self, **common, intensities=intensities, modes=modes, folds=folds, epochs=epochs)


# ------------------------------------------------------------------------------- raw mode


def pack_mosaic(raw: Tensor, pattern: str = "RGGB") -> Tensor:
    """Read a Bayer mosaic as colour without processing it: each 2x2 tile's R, mean G and B.

    Every pixel of a tile gets that tile's three samples (no interpolation, no black
    level, white balance, colour matrix or tone curve), so the output has the
    mosaic's size and flips/90-degree rotations of it are still colour images.

    Args:
        raw: ``(B, 1, H, W)`` mosaic, ``H`` and ``W`` even.
        pattern: CFA pattern.
    Returns:
        ``(B, 3, H, W)``.

    >>> raw = torch.tensor([[[[1., 2.], [4., 8.]]]])
    >>> pack_mosaic(raw)[0, :, 0, 0].tolist()
    [1.0, 3.0, 8.0]
    """
    from ..raw.cfa import site_channels

    check_image(raw, "raw", channels=1, even=True, min_size=2)
    sites = site_channels(pattern)
    tiles = [raw[..., dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)]  # raster order of the 2x2 tile
    planes = []
    for c in range(3):
        members = [t for t, s in zip(tiles, sites) if s == c]
        planes.append(sum(members) / len(members))
    packed = torch.cat(planes, dim=1)
    return packed.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


class PackedRaw(nn.Module):
    """The ``raw`` mode's input: :func:`pack_mosaic`, then fixed per-channel standardisation.

    No ISP stage and no learnable parameter: the only processing is reading the
    three colour sites of each tile and an affine standardisation with fixed
    statistics of the training mosaics (the task model's input side, like the
    per-dataset normalisation of processed views). It keeps the task model
    family unchanged (3-channel ResNet18 or U-Net). Packing rather than
    repeating the 1-channel mosaic is deliberate: the engine flips and rotates
    its inputs, which would silently move the colour sites of a bare mosaic.

    Args:
        mean, std: ``(3,)`` statistics of packed training mosaics (see :meth:`from_raw`).
        pattern: CFA pattern.
    """

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), pattern: str = "RGGB"):
        super().__init__()
        self.pattern = pattern
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1).clamp_min(1e-8))

    @classmethod
    def from_raw(cls, raw: Tensor, pattern: str = "RGGB") -> "PackedRaw":
        """Standardisation statistics from training mosaics ``raw (N, 1, H, W)``."""
        packed = pack_mosaic(raw, pattern)
        return cls(packed.mean((0, 2, 3)), packed.std((0, 2, 3)), pattern)

    def forward(self, raw: Tensor) -> Tensor:
        return (pack_mosaic(raw, self.pattern) - self.mean) / self.std


def build_pipeline(mode: str, camera, raw_train: Tensor | None = None) -> nn.Module:
    """The input side of one mode: frozen or learnable parametrized ISP, or :class:`PackedRaw`.

    ``raw_train`` (training mosaics) gives :class:`PackedRaw` its statistics.

    >>> from rawdrift.isp.camera import RAW_MICROSCOPY
    >>> [sum(p.requires_grad for p in build_pipeline(m, RAW_MICROSCOPY).parameters()) > 0 for m in MODES]
    [False, True, False]
    """
    from ..isp import Pipeline

    check_choice(mode, MODES, "mode")
    if mode == "raw":
        return PackedRaw() if raw_train is None else PackedRaw.from_raw(raw_train, camera.pattern)
    pipe = Pipeline.parametrized(camera)
    return pipe.freeze() if mode == "frozen" else pipe


def pipeline_vector(pipeline) -> dict[str, np.ndarray]:
    """The parametrized pipeline's parameters flattened per stage group (``bl``, ``dm``, ...)."""
    return {g: (torch.cat([p.detach().cpu().flatten() for p in ps]).double().numpy() if ps else np.zeros(0))
            for g, ps in pipeline.param_groups().items()}


def parameter_change(theta: dict, theta0: dict) -> dict[str, dict[str, float]]:
    """Per group ``abs`` = ||theta - theta0|| and ``rel`` = abs / ||theta0|| (``nan`` when theta0 = 0).

    >>> parameter_change({"wb": [2.0, 0.0]}, {"wb": [1.0, 0.0]})
    {'wb': {'abs': 1.0, 'rel': 1.0}}
    """
    out = {}
    for g, v0 in theta0.items():
        if g not in theta:
            raise ValueError(f"theta: missing parameter group {g!r}")
        v, v0 = np.asarray(theta[g], dtype=np.float64), np.asarray(v0, dtype=np.float64)
        if v.shape != v0.shape:
            raise ValueError(f"theta: group {g!r} has shape {v.shape}, theta0 has {v0.shape}")
        d, n0 = float(np.linalg.norm(v - v0)), float(np.linalg.norm(v0))
        out[g] = {"abs": d, "rel": d / n0 if n0 > 0 else float("nan")}
    return out


# ------------------------------------------------------------------------------- curves


def band(values) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation over folds of ``values (F, T)``."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values: expected shape (folds, steps), got {v.shape}")
    return v.mean(0), v.std(0)


def curve_gap(steps, learned, frozen) -> dict:
    """The gap ``mean(learned) - mean(frozen)`` along training and its maximum.

    Args:
        steps: ``(T,)`` optimisation steps.
        learned, frozen: ``(F, T)`` per-fold validation curves (or ``(T,)`` for one fold).
    Returns:
        dict with ``steps``, ``gap`` (T,), ``max_gap``, ``at_step`` (the first step where
        it is largest), ``mean_gap``, and ``std_learned``/``std_frozen`` (mean over steps of
        the across-fold standard deviation).

    >>> g = curve_gap([10, 20, 30], [[0.5, 0.7, 0.8]], [[0.4, 0.4, 0.75]])
    >>> round(g["max_gap"], 3), g["at_step"]
    (0.3, 20)
    """
    steps = np.asarray(steps)
    if steps.ndim != 1 or len(steps) == 0:
        raise ValueError(f"steps: expected a non-empty (T,) array, got shape {steps.shape}")
    curves = {}
    for name, given in (("learned", learned), ("frozen", frozen)):
        v = np.asarray(given, dtype=np.float64)
        v = v[None] if v.ndim == 1 else v
        if v.ndim != 2 or v.shape[1] != len(steps):
            raise ValueError(f"{name}: expected shape (folds, {len(steps)}) or ({len(steps)},), "
                             f"got {np.asarray(given).shape}")
        curves[name] = band(v)
    gap = curves["learned"][0] - curves["frozen"][0]
    k = int(np.argmax(gap))
    return {"steps": steps.tolist(), "gap": gap.tolist(), "max_gap": float(gap[k]), "at_step": int(steps[k]),
            "mean_gap": float(gap.mean()), "std_learned": float(curves["learned"][1].mean()),
            "std_frozen": float(curves["frozen"][1].mean())}


def _curve(res, metric: str, stepwise: bool) -> tuple[list[int], list[float]]:
    recs = res.steps if stepwise else res.history
    return [int(r["step"]) for r in recs], [float(r["val"][metric]) for r in recs]


# ------------------------------------------------------------------------------- result


@dataclass
class AdjustmentResult:
    """All curves of one study; saves itself to ``out`` and reloads.

    ``steps[i, m, f]`` and ``values[i, m, f]`` (shape ``(I, M, F, T)``): the
    optimisation steps and validation metric of mode ``modes[m]``, fold ``f`` at
    ``intensities[i]`` (curves cut to the shortest one, so folds whose training
    split is one batch shorter line up). ``final[i, m, f]`` is the metric after the
    last epoch. ``params[tag][f]`` holds the learned ISP parameters of each fold
    per group and ``defaults`` their initial values; ``samples_frozen`` /
    ``samples_learned`` (``(I, S, H, W, 3)``) are validation images of fold 0
    processed by the default and by fold 0's learned pipeline.

    Class-wise view (classification): ``final_per_class[i, m, f]`` is the per-class
    accuracy vector after the last epoch (``(I, M, F, C)``, named by ``classes``) and
    ``final_metrics`` the other final scalars (``balanced_accuracy``, ``macro_f1``;
    ``dice`` for segmentation) as nested ``(I, M, F)`` lists; see :meth:`final_metric`.
    Cells cached before per-class vectors were recorded give ``nan`` there.
    """

    config: dict
    task: str
    metric: str
    intensities: list
    modes: list
    steps: np.ndarray
    values: np.ndarray
    final: np.ndarray
    params: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    samples_frozen: np.ndarray | None = None
    samples_learned: np.ndarray | None = None
    seconds: float = 0.0
    final_per_class: np.ndarray | None = None
    final_metrics: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)

    # -- analysis ---------------------------------------------------------------------------
    def _index(self, intensity, mode: str | None = None) -> tuple[int, int | None]:
        tags = [intensity_tag(x) for x in self.intensities]
        i = tags.index(check_choice(intensity_tag(intensity), tags, "intensity"))
        return i, (None if mode is None else self.modes.index(check_choice(mode, self.modes, "mode")))

    def metric_names(self) -> list[str]:
        """Names accepted by :meth:`final_metric` for this result."""
        return [self.metric, *self.final_metrics, *(CLASSWISE if self.final_per_class is not None else ())]

    def final_metric(self, name: str) -> np.ndarray:
        """``(intensities, modes, folds)`` array of a final validation metric.

        ``name``: the primary metric (:attr:`final`), a stored one (``balanced_accuracy``,
        ``macro_f1`` or ``dice``) or one derived from ``final_per_class`` with
        :func:`rawdrift.metrics.class_spread` (``worst_class_accuracy``, ``class_range``,
        ``class_std``); ``nan`` for a cell without a per-class vector.
        """
        if name == self.metric:
            return np.asarray(self.final, dtype=np.float64)
        if name in self.final_metrics:
            return np.asarray(self.final_metrics[name], dtype=np.float64)
        if name not in CLASSWISE or self.final_per_class is None:
            raise ValueError(f"name: expected one of {self.metric_names()}, got {name!r}")
        pc = np.asarray(self.final_per_class, dtype=np.float64)
        out = np.full(pc.shape[:3], np.nan)
        for idx in np.ndindex(out.shape):
            if not np.isnan(pc[idx]).all():
                out[idx] = class_spread(pc[idx])[name]
        return out

    def band(self, intensity, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, mean, std)`` of one mode's validation curve over folds."""
        i, m = self._index(intensity, mode)
        mean, std = band(self.values[i, m])
        return self.steps[i, m, 0], mean, std

    def gap(self, intensity) -> dict:
        """:func:`curve_gap` of ``learned`` vs ``frozen`` at ``intensity``."""
        i, _ = self._index(intensity)
        for m in ("learned", "frozen"):
            if m not in self.modes:
                raise ValueError(f"modes: the gap needs 'learned' and 'frozen', this study ran {self.modes}")
        li, fi = self.modes.index("learned"), self.modes.index("frozen")
        return curve_gap(self.steps[i, li, 0], self.values[i, li], self.values[i, fi])

    def parameter_change(self, intensity) -> dict[str, dict[str, float]]:
        """Mean over folds of :func:`parameter_change` of the learned pipelines at ``intensity``."""
        folds = self.params.get(intensity_tag(intensity), [])
        if not folds:
            raise ValueError(f"intensity: no learned parameters at {intensity!r} (was 'learned' in modes?)")
        per = [parameter_change(p, self.defaults) for p in folds]
        return {g: {k: float(np.mean([d[g][k] for d in per])) for k in ("abs", "rel")} for g in self.defaults}

    def to_markdown(self) -> str:
        c = self.config
        m = self.metric
        lines = [f"# Drift adjustment: {c['dataset']} ({c['preset']} preset, {self.values.shape[2]} folds, "
                 f"{c['epochs']} epochs, {self.steps.shape[-1]} validation points)", "",
                 f"Validation {m} by mode: final = after the last epoch, best = highest point of the mean "
                 "curve, band = mean over steps of the across-fold std.", ""]
        extra = [n for n in ("balanced_accuracy", "worst_class_accuracy", "dice") if n in self.metric_names()]
        finals = {n: self.final_metric(n) for n in extra}
        head = "".join(f" final {n.replace('_', ' ')} |" for n in extra)
        for i, x in enumerate(self.intensities):
            lines += [f"## Intensity {intensity_tag(x)}", "", f"| mode | final {m} |{head} best {m} (step) | band |",
                      "|---|---|---|---|" + "---|" * len(extra)]
            for k, mode in enumerate(self.modes):
                mean, std = band(self.values[i, k])
                b = int(np.argmax(mean))
                cells = "".join(f" {_mean_std(finals[n][i, k])} |" for n in extra)
                lines.append(f"| {mode} | {self.final[i, k].mean():.3f} ± {self.final[i, k].std():.3f} |{cells} "
                             f"{mean[b]:.3f} ({int(self.steps[i, k, 0, b])}) | {std.mean():.3f} |")
            if "learned" in self.modes and "frozen" in self.modes:
                g = self.gap(x)
                lines += ["", f"Gap learned - frozen: max {100 * g['max_gap']:+.1f} points at step {g['at_step']}, "
                              f"mean {100 * g['mean_gap']:+.1f} points; band learned {g['std_learned']:.3f} vs "
                              f"frozen {g['std_frozen']:.3f}."]
            if self.params.get(intensity_tag(x)):
                lines += ["", "| ISP group | ‖θ − θ₀‖ | relative |", "|---|---|---|"]
                for grp, d in self.parameter_change(x).items():
                    lines.append(f"| {grp} | {d['abs']:.4g} | {d['rel']:.3g} |")
            lines.append("")
        if self.final_per_class is not None:
            stale = int(np.isnan(np.asarray(self.final_per_class, dtype=np.float64)).all(-1).sum())
            if stale:
                lines += [f"Class-wise values leave out {stale} cell(s) cached before per-class accuracies were "
                          "recorded (n/a where no fold has them); delete their `cell.json` to retrain them.", ""]
        lines.append(f"Wall time: {self.seconds:.0f} s.")
        return "\n".join(lines)

    def curves_csv(self) -> str:
        lines = ["intensity,mode,step,mean,std"]
        for i, x in enumerate(self.intensities):
            for k, mode in enumerate(self.modes):
                mean, std = band(self.values[i, k])
                lines += [f"{intensity_tag(x)},{mode},{int(s)},{a:.6f},{b:.6f}"
                          for s, a, b in zip(self.steps[i, k, 0], mean, std)]
        return "\n".join(lines) + "\n"

    # -- persistence ------------------------------------------------------------------------
    _ARRAYS = ("steps", "values", "final", "samples_frozen", "samples_learned", "final_per_class")

    def save(self, out=None) -> Path:
        """Write ``result.json``, ``curves.npz``, ``summary.md`` and ``curves.csv`` into ``out``."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS if getattr(self, k) is not None}
        meta = {k: v for k, v in asdict(self).items() if k not in self._ARRAYS}
        out = write_result(out or self.config["out"], meta, arrays, npz="curves.npz")
        write_text(out / "summary.md", self.to_markdown() + "\n")
        write_text(out / "curves.csv", self.curves_csv())
        return out

    @classmethod
    def load(cls, out) -> "AdjustmentResult":
        meta, arrays = read_result(out, "run_adjustment", npz="curves.npz")
        return cls(**meta, **arrays)

    # -- figures ----------------------------------------------------------------------------
    def plot_block(self, intensity, axes=None, stretch: bool = True):
        """One block of Figure 7: frozen and learned sample views, and the three validation curves.

        ``stretch`` rescales each sample to its own min-max for display (low-intensity
        views are otherwise nearly black). Returns the figure.
        """
        import matplotlib.pyplot as plt

        i, _ = self._index(intensity)
        if axes is None:
            fig, axes = plt.subplots(1, 3, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 1, 2.4]})
        fig = axes[0].figure
        for ax, name, s in ((axes[0], "frozen", self.samples_frozen), (axes[1], "learned", self.samples_learned)):
            ax.axis("off")
            if s is None or s.shape[1] == 0:
                ax.set_title(f"{name}: no samples", fontsize=8)
                continue
            imgs = [_display(im, stretch) for im in s[i]]
            ax.imshow(np.concatenate(imgs, axis=0), interpolation="nearest")
            ax.set_title(f"{name}" + (" (stretched)" if stretch else ""), fontsize=8)
        ax = axes[2]
        for mode in self.modes:
            st, mean, std = self.band(intensity, mode)
            ax.plot(st, mean, color=COLORS[mode], label=mode, lw=1.5)
            ax.fill_between(st, mean - std, mean + std, color=COLORS[mode], alpha=0.2, lw=0)
        ax.set_xlabel("optimisation step")
        ax.set_ylabel(f"validation {self.metric}")
        ax.set_title(f"intensity {intensity_tag(intensity)} (mean ± std, {self.values.shape[2]} folds)", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        return fig

    def plot(self, stretch: bool = True):
        """Figure 7: one block (row) per intensity."""
        import matplotlib.pyplot as plt

        n = len(self.intensities)
        fig, axes = plt.subplots(n, 3, figsize=(9, 3.2 * n), squeeze=False,
                                 gridspec_kw={"width_ratios": [1, 1, 2.4]})
        for i, x in enumerate(self.intensities):
            self.plot_block(x, axes=axes[i], stretch=stretch)
        fig.tight_layout()
        return fig

    def explorer(self):
        """An ipywidgets intensity picker showing :meth:`plot_block` (needs a live kernel)."""
        import ipywidgets as W
        import matplotlib.pyplot as plt
        from IPython.display import display

        pick = W.Dropdown(options=[(intensity_tag(x), x) for x in self.intensities], description="intensity")
        stretch = W.Checkbox(value=True, description="stretch samples")
        out = W.Output()

        def show(*_):
            out.clear_output(wait=True)
            with out:
                fig = self.plot_block(pick.value, stretch=stretch.value)
                display(fig)
                plt.close(fig)

        pick.observe(show, names="value")
        stretch.observe(show, names="value")
        show()
        return W.VBox([W.HBox([pick, stretch]), out])


def _mean_std(v: np.ndarray) -> str:
    """``mean ± std`` over folds, ``n/a`` when no fold has the value (cells cached before it was recorded)."""
    v = np.asarray(v, dtype=np.float64)
    v = v[~np.isnan(v)]
    return f"{v.mean():.3f} ± {v.std():.3f}" if v.size else "n/a"


def _display(img: np.ndarray, stretch: bool) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if stretch:
        lo, hi = np.percentile(img, 1), np.percentile(img, 99)
        img = (img - lo) / max(hi - lo, 1e-12)
    return np.clip(img, 0, 1)


# ------------------------------------------------------------------------------- the run


def _cell_dir(out: Path, intensity: float, mode: str, fold: int) -> Path:
    return out / "cells" / f"intensity{intensity_tag(intensity)}" / mode / f"fold{fold}"


def _run_cell(cell: Path, ds, mode: str, tr_idx, va_idx, tcfg, n_classes: int, metric: str, stepwise: bool,
              device) -> dict:
    """Train one (intensity, mode, fold) cell, or read it back when it is done."""
    from ..train import build_task_model, discard_checkpoint, fit

    done = cell / "cell.json"
    if done.exists():
        return read_json(done)
    raw_train = ds.raw_tensor(np.asarray(tr_idx).tolist()) if mode == "raw" else None
    pipe = build_pipeline(mode, ds.camera, raw_train)
    model = build_task_model(tcfg, num_classes=max(n_classes, 1))
    cfg = replace(tcfg, normalize=None if mode == "raw" else tcfg.normalize, checkpoint_dir=str(cell / "checkpoint"))
    res = fit(model, pipe, (ds, tr_idx), (ds, va_idx), cfg)
    steps, values = _curve(res, metric, stepwise)
    if not steps:
        raise ValueError(f"eval_every: {tcfg.eval_every} is more than the {res.history[-1]['step']} optimisation "
                         "steps of training; no validation point was recorded")
    record = {"mode": mode, "steps": steps, "values": values,
              "final": {k: v for k, v in res.final.items() if isinstance(v, (int, float))},
              "final_per_class": res.final.get("per_class_accuracy"),
              "seconds": float(sum(h["seconds"] for h in res.history))}
    if mode != "raw":
        pipe.load_state_dict(res.pipeline_state)
        record["params"] = {g: v.tolist() for g, v in pipeline_vector(pipe).items()}
        with atomic_path(cell / "pipeline.pt") as tmp:
            torch.save(res.pipeline_state, tmp)
    write_json(done, record)
    discard_checkpoint(cfg.checkpoint_dir)
    return record


@torch.no_grad()
def _samples(ds, idx, out: Path, intensity: float, size: int, learned: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Frozen and (fold 0's) learned views of validation images ``idx``, centre-cropped, ``(S, H, W, 3)``."""
    if len(idx) == 0:
        return np.zeros((0, size, size, 3), np.float32), (np.zeros((0, size, size, 3), np.float32) if learned else None)
    raw = ds.raw_tensor(np.asarray(idx).tolist())
    o = 2 * ((raw.shape[-1] - size) // 4)
    p = 2 * ((raw.shape[-2] - size) // 4)
    raw = raw[..., p:p + size, o:o + size]
    pipe = build_pipeline("frozen", ds.camera)
    frozen = pipe(raw).permute(0, 2, 3, 1).numpy()
    if not learned:
        return frozen, None
    pipe.load_state_dict(torch.load(_cell_dir(out, intensity, "learned", 0) / "pipeline.pt", map_location="cpu",
                                    weights_only=True))
    return frozen, pipe(raw).permute(0, 2, 3, 1).numpy()


def run_adjustment(cfg: AdjustmentConfig) -> AdjustmentResult:
    """Train every (intensity, mode, fold) cell and collect the validation curves.

    Resumes from ``cfg.out``: finished cells (``cells/intensity<x>/<mode>/fold<k>/cell.json``)
    are read back, an interrupted one continues from its last epoch's checkpoint.
    Writes ``result.json``, ``curves.npz``, ``summary.md``, ``curves.csv`` and
    ``adjustment.png`` (plus one ``adjustment_<intensity>.png`` per intensity).
    """
    from tqdm.auto import tqdm

    from ..data import get_dataset
    from ..data.base import stratified_kfold
    from ..device import pick_device
    from ..train import TrainConfig

    cfg = cfg.resolved()
    t0 = time.perf_counter()
    out = Path(cfg.out)
    device = pick_device(cfg.device)
    kw = {} if cfg.n is None else {"n": cfg.n}
    stepwise = cfg.eval_every is not None
    I, M, F = len(cfg.intensities), len(cfg.modes), cfg.folds
    records: dict = {}
    params: dict = {}
    frozen_s, learned_s = [], []
    task = metric = None
    defaults = {}
    bar = tqdm(total=I * M * F, desc="adjustment cells", disable=not cfg.progress)
    for x in cfg.intensities:
        ds = get_dataset(cfg.dataset, preset=cfg.preset, root=cfg.root, intensity=x, seed=cfg.seed, **kw)
        task = cfg.task or ds.task
        check_choice(task, tuple(PRIMARY), "task")
        metric = PRIMARY[task]
        folds = stratified_kfold(ds.targets, cfg.folds, cfg.seed)
        tcfg = TrainConfig(task=task, preset=cfg.preset, epochs=cfg.epochs, lr=cfg.lr, pipeline_lr=cfg.pipeline_lr,
                           batch_size=cfg.batch_size, size=cfg.size, augment=cfg.augment, seed=cfg.seed,
                           device=str(device), progress=False, eval_every=cfg.eval_every).resolved(task)
        n_classes = len(getattr(ds, "classes", ())) if task == "classification" else 1
        defaults = {g: v.tolist() for g, v in pipeline_vector(build_pipeline("frozen", ds.camera)).items()}
        for mode in cfg.modes:
            for f, (tr, va) in enumerate(folds):
                bar.set_postfix(intensity=intensity_tag(x), mode=mode, fold=f)
                fcfg = replace(tcfg, seed=cfg.seed + f)
                rec = _run_cell(_cell_dir(out, x, mode, f), ds, mode, tr, va, fcfg, n_classes, metric, stepwise,
                                device)
                records[(intensity_tag(x), mode, f)] = rec
                if mode == "learned":
                    params.setdefault(intensity_tag(x), []).append(rec["params"])
                bar.update(1)
        fs, ls = _samples(ds, folds[0][1][: cfg.n_samples], out, x, tcfg.size, "learned" in cfg.modes)
        frozen_s.append(fs)
        learned_s.append(ls)
    bar.close()

    T = min(len(r["steps"]) for r in records.values())
    steps = np.zeros((I, M, F, T), dtype=np.int64)
    values = np.zeros((I, M, F, T))
    final = np.zeros((I, M, F))
    extra = EXTRA_METRICS[task]
    finals = {n: np.full((I, M, F), np.nan) for n in extra}
    per_class = np.full((I, M, F, n_classes), np.nan) if task == "classification" else None
    for i, x in enumerate(cfg.intensities):
        for m, mode in enumerate(cfg.modes):
            for f in range(F):
                r = records[(intensity_tag(x), mode, f)]
                steps[i, m, f], values[i, m, f] = r["steps"][:T], r["values"][:T]
                final[i, m, f] = r["final"][metric]
                for n in extra:
                    finals[n][i, m, f] = r["final"].get(n, np.nan)
                if per_class is not None and r.get("final_per_class") is not None:
                    per_class[i, m, f] = r["final_per_class"]  # cells cached before it was recorded: nan
    result = AdjustmentResult(
        config=cfg.to_dict(), task=task, metric=metric, intensities=list(cfg.intensities), modes=list(cfg.modes),
        steps=steps, values=values, final=final, params=params, defaults=defaults,
        samples_frozen=np.stack(frozen_s).astype(np.float32),
        samples_learned=None if learned_s[0] is None else np.stack(learned_s).astype(np.float32),
        seconds=time.perf_counter() - t0, final_per_class=per_class,
        final_metrics={n: v.tolist() for n, v in finals.items()},
        classes=list(getattr(ds, "classes", ())) if task == "classification" else [],
    )
    result.save(out)
    save_figures(result, out)
    return result


def save_figures(result: AdjustmentResult, out) -> list[Path]:
    """Write ``adjustment.png`` (all blocks) and ``adjustment_<intensity>.png`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out)
    written = []
    figs = [("adjustment.png", result.plot())]
    figs += [(f"adjustment_{intensity_tag(x)}.png", result.plot_block(x)) for x in result.intensities]
    for name, fig in figs:
        fig.tight_layout()
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(out / name)
    return written


__all__ = [
    "MODES", "AdjustmentConfig", "AdjustmentResult", "PackedRaw", "band", "build_pipeline", "curve_gap",
    "intensity_tag", "pack_mosaic", "parameter_change", "pipeline_vector", "run_adjustment", "save_figures",
]
