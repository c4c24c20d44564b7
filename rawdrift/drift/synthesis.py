"""Drift control 1: drift synthesis, compared with common-corruption testing.

The same raw data are rendered through every ISP configuration. One task model
is trained per (training configuration, fold) and tested on the held-out fold
rendered through every configuration (physically faithful drift) and, for
comparison, on the held-out fold of its own configuration damaged by the common
corruptions of :mod:`rawdrift.drift.corruptions` (augmentation testing). Paper
Section 5.1, Figures 4-5, Appendix Tables 7-11.

Everything is cached under ``out``: one model per (training configuration,
fold) and one JSON of evaluations per model, each written atomically, so an
interrupted grid resumes where it stopped and a finished one reloads at once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_int
from ..io import atomic_path, read_json, write_json, write_text
from ..metrics import class_spread
from ..presets import get_preset
from ._config import RunConfig
from ._results import read_result, write_result
from .grid import GridSummary, grid_mean_std, normalised_error

PRIMARY = {"classification": "accuracy", "segmentation": "iou"}
#: Scalar metrics stored per cell besides the primary one.
EXTRA_METRICS = {"classification": ("balanced_accuracy", "macro_f1"), "segmentation": ("dice",)}
#: Metrics derived from the per-class accuracy vectors (classification).
CLASSWISE = ("worst_class_accuracy", "class_range", "class_std", "worst_class_drop")
_NPZ_SEP = "__"

#: Headline means of the paper on the real data (Section 5.1): (tested as trained, under drift).
PAPER_HEADLINE = {
    "classification": {"isp": (0.82, 0.80), "corruptions": (0.82, 0.55)},
    "segmentation": {"isp": (0.71, 0.65), "corruptions": (0.71, 0.49)},
}


#: Reduced grids of the book chapter per preset (``None``: all 12 configurations / the preset's value).
#: ci: a smoke test in seconds; lab: four training configurations that cover every demosaicing,
#: sharpening and denoising code, against all 12 test configurations, with 2 folds and 5 epochs
#: (one lab cell at the preset's 12 epochs took over 5 CPU-minutes on 2 cores, so the full lab
#: protocol, 12 x 3 cells, would take hours; the CLI runs it).
BOOK_GRIDS = {
    "ci": dict(train_configs=("bi,s,ga", "me,u,me", "ma,s,me"), corruptions=("gaussian_noise", "gaussian_blur", "contrast"),
               folds=2, epochs=1),
    "lab": dict(train_configs=("bi,s,ga", "bi,u,me", "me,s,me", "ma,u,ga"), folds=2, epochs=5),
    "paper": dict(),
}


@dataclass
class SynthesisConfig(RunConfig):
    """Settings of one drift-synthesis run; ``None`` fields come from the preset.

    Shared fields (``dataset``, ``preset``, ``seed``, ``n``, ``root``, ``device``,
    ``out``, ``progress``): see :class:`~rawdrift.drift._config.RunConfig`.

    Args:
        task: ``None`` infers it from the dataset.
        train_configs / test_configs: ISP configuration names (default: all 12).
        folds: k of the stratified k-fold cross-validation (preset ``folds``).
        epochs: training epochs per model (preset ``epochs``).
        corruptions: common corruptions for the comparison (default: the 10 ISP-plausible ones).
        severities: corruption severities (the paper's headline uses 3).
        baseline: training configuration used as the reference of the normalised corruption error.
        intensity: raw intensity level of the dataset.
    """

    KIND: ClassVar[str] = "synthesis"

    task: str | None = None
    train_configs: tuple[str, ...] | None = None
    test_configs: tuple[str, ...] | None = None
    folds: int | None = None
    epochs: int | None = None
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] = (3,)
    baseline: str = "bi,s,ga"
    intensity: float = 1.0

    @classmethod
    def for_book(cls, preset: str | None = None, dataset: str = "synthetic-microscopy", **overrides) -> "SynthesisConfig":
        """The grid the book's synthesis chapter runs at ``preset`` (default from ``RAWDRIFT_PRESET``).

        ``paper`` is the full protocol (12 x 12 configurations, every corruption, the preset's folds
        and epochs). ``lab`` and ``ci`` keep all 12 test configurations but train on fewer
        configurations (:data:`BOOK_GRIDS`) so that the chapter runs in minutes on a laptop CPU
        (``lab``) or in seconds as a smoke test (``ci``). Results are cached under
        ``cache_dir("synthesis", "book-<dataset>-<preset>")``. ``overrides`` replace any field.

        >>> cfg = SynthesisConfig.for_book("ci")
        >>> len(cfg.train_configs), cfg.test_configs is None, cfg.epochs
        (3, True, 1)
        """
        from ..io import cache_dir

        p = get_preset(preset)
        fields = dict(BOOK_GRIDS[p.name])
        fields.update(dataset=dataset, preset=p.name, progress=False,
                      out=str(cache_dir("synthesis", f"book-{dataset}-{p.name}")))
        fields.update(overrides)
        return cls(**fields)

    def resolved(self) -> "SynthesisConfig":
        from ..isp.configs import CONFIGS, parse_config
        from .corruptions import CORRUPTIONS

        p, common = self._resolve_common()
        train = tuple(self.train_configs or CONFIGS)
        test = tuple(self.test_configs or CONFIGS)
        for c in (*train, *test, self.baseline):
            parse_config(c)
        cors = tuple(CORRUPTIONS if self.corruptions is None else self.corruptions)
        for c in cors:
            check_choice(c, CORRUPTIONS, "corruptions")
        for s in self.severities:
            check_int(s, "severities", minimum=1)
            if s > 5:
                raise ValueError(f"severities: expected values in 1..5, got {s}")
        folds = check_int(self.folds if self.folds is not None else p.folds, "folds", minimum=2)
        return replace(self, **common, train_configs=train, test_configs=test, corruptions=cors,
                       folds=folds, epochs=self.epochs if self.epochs is not None else p.epochs,
                       severities=tuple(self.severities))


@dataclass
class SynthesisResult:
    """The full grid of one run; saves itself to ``out`` and reloads.

    ``isp_scores[i, j, f]``: primary metric of the model trained on
    ``train_configs[i]`` (fold ``f``) tested on ``test_configs[j]``.
    ``corruption_scores[i, 0, f]`` is the clean score on its own configuration,
    ``corruption_scores[i, 1 + k, f]`` the score under ``conditions[k]``
    (``"name@severity"``). ``per_class`` holds per-class accuracies
    ``(train, test, fold, class)`` for classification, ``corruption_per_class``
    the same for the corruption grid ``(train, 1 + conditions, fold, class)``.
    ``metric_grids`` holds the other scalar metrics of every cell, keyed
    ``"isp:<name>"`` / ``"cor:<name>"`` (balanced accuracy and macro-F1 for
    classification, Dice for segmentation), each shaped like its score grid.
    Results saved before these existed load with them empty (``None`` / ``{}``).
    """

    config: dict
    task: str
    metric: str
    train_configs: list
    test_configs: list
    conditions: list
    isp_scores: np.ndarray
    corruption_scores: np.ndarray
    per_class: np.ndarray | None = None
    classes: list = field(default_factory=list)
    seconds: float = 0.0
    corruption_per_class: np.ndarray | None = None
    metric_grids: dict = field(default_factory=dict)

    # -- analysis ---------------------------------------------------------------------------
    def summary(self) -> GridSummary:
        """Headline numbers; ``classwise`` holds :meth:`classwise_summary` (shown by ``to_text``)."""
        s = GridSummary.from_grids(self.isp_scores, self.corruption_scores, self.train_configs, self.test_configs)
        s.classwise = self.classwise_summary()
        return s

    # -- class-wise analysis ------------------------------------------------------------------
    def _grid(self, which: str) -> np.ndarray:
        return self.isp_scores if check_choice(which, ("isp", "cor"), "which") == "isp" else self.corruption_scores

    def per_class_grid(self, which: str = "isp") -> np.ndarray:
        """Per-class accuracies ``(train, test or condition, fold, class)`` of the ISP (``"isp"``) or
        corruption (``"cor"``, column 0 clean) grid."""
        pc = self.per_class if check_choice(which, ("isp", "cor"), "which") == "isp" else self.corruption_per_class
        if pc is None:
            raise ValueError(f"which: this result holds no per-class accuracies for the {which!r} grid "
                             "(a segmentation run, or a result saved before they were recorded: rerun "
                             "run_synthesis on the same out to rebuild it from the cached evaluations)")
        return np.asarray(pc, dtype=np.float64)

    def metric_names(self) -> list[str]:
        """Names accepted by :meth:`metric_grid` for this result."""
        names = [self.metric] + sorted({k.split(":", 1)[1] for k in self.metric_grids})
        if self.per_class is not None:
            names += list(CLASSWISE)
        return names

    def metric_grid(self, name: str, which: str = "isp") -> np.ndarray:
        """``(train, test, fold)`` grid of any metric, shaped like ``isp_scores`` (``which="isp"``) or
        ``corruption_scores`` (``which="cor"``).

        ``name`` is the primary metric, a stored one (``balanced_accuracy``, ``macro_f1``; ``dice``
        for segmentation) or one derived from the per-class accuracies with
        :func:`rawdrift.metrics.class_spread`: ``worst_class_accuracy``, ``class_range``,
        ``class_std``, and ``worst_class_drop`` (largest per-class drop relative to the same model on
        its training configuration, see :meth:`per_class_drop`).
        """
        grid = self._grid(which)
        if name == self.metric:
            return np.asarray(grid, dtype=np.float64)
        key = f"{which}:{name}"
        if key in self.metric_grids:
            return np.asarray(self.metric_grids[key], dtype=np.float64)
        if name not in CLASSWISE or self.per_class is None:
            raise ValueError(f"name: expected one of {self.metric_names()}, got {name!r}")
        pc = self.per_class_grid(which)
        out = np.full(pc.shape[:3], np.nan)
        if name == "worst_class_drop":
            drop = self.per_class_drop(which)
            for idx in np.ndindex(out.shape):
                if not np.isnan(drop[idx]).all():
                    out[idx] = np.nanmax(drop[idx])
            return out
        for idx in np.ndindex(out.shape):
            if not np.isnan(pc[idx]).all():
                out[idx] = class_spread(pc[idx])[name]
        return out

    def _metric_grid_or_nan(self, name: str, which: str) -> np.ndarray:
        try:
            return self.metric_grid(name, which)
        except ValueError:  # e.g. no per-class corruption vectors in a result saved before they existed
            return np.full(self._grid(which).shape, np.nan)

    def _reference_column(self, which: str, i: int) -> int | None:
        """Column of the "as trained" cell of row ``i``: the diagonal (ISP) or the clean column."""
        if which == "cor":
            return 0
        tr = self.train_configs[i]
        return self.test_configs.index(tr) if tr in self.test_configs else None

    def per_class_drop(self, which: str = "isp") -> np.ndarray:
        """Per-class accuracy drop ``(train, test, fold, class)`` relative to the training configuration.

        ``drop[i, j, f, k] = acc[i, ref, f, k] - acc[i, j, f, k]`` where ``ref`` is the diagonal
        cell (the model's own configuration, ISP grid) or the clean column (corruption grid), same
        model and fold. Positive: the class lost accuracy. ``nan`` where the class has no test
        sample or the training configuration is not a test column.
        """
        pc = self.per_class_grid(which)
        drop = np.full(pc.shape, np.nan)
        for i in range(pc.shape[0]):
            ref = self._reference_column(which, i)
            if ref is None:
                continue
            for j in range(pc.shape[1]):
                for f in range(pc.shape[2]):
                    if not np.isnan(pc[i, j, f]).all():
                        drop[i, j, f] = class_spread(pc[i, j, f], reference=pc[i, ref, f])["per_class_drop"]
        return drop

    def classwise_summary(self) -> list[dict]:
        """Mean of every metric over the four parts of the grids (like :meth:`summary`).

        Rows ``"ISP: training configuration"``, ``"ISP: other configurations"``,
        ``"corruptions: clean"``, ``"corruptions: corrupted"``; columns: every name of
        :meth:`metric_names` (mean over folds, then over the cells of that part).
        """
        parts = []
        same = np.array([[a == b for b in self.test_configs] for a in self.train_configs])
        parts.append(("ISP: training configuration", "isp", same))
        parts.append(("ISP: other configurations", "isp", ~same))
        clean = np.zeros(self.corruption_scores.shape[:2], dtype=bool)
        clean[:, 0] = True
        parts.append(("corruptions: clean", "cor", clean))
        parts.append(("corruptions: corrupted", "cor", ~clean))
        rows = []
        for label, which, mask in parts:
            if not mask.any():
                continue
            row = {"cells": label}
            for name in self.metric_names():
                vals = self._metric_grid_or_nan(name, which)[mask]  # (cells, folds)
                ok = ~np.isnan(vals).all(axis=1)
                row[name] = float(np.nanmean(vals[ok], axis=1).mean()) if ok.any() else float("nan")
            rows.append(row)
        return rows

    def normalised_corruption_error(self) -> dict[str, float]:
        """ImageNet-C style error of each training configuration relative to ``config['baseline']``."""
        base = self.train_configs.index(self.config["baseline"]) if self.config["baseline"] in self.train_configs else 0
        ne = normalised_error(self.corruption_scores[:, 1:], base)
        return dict(zip(self.train_configs, ne.tolist()))

    def per_condition_top3(self, which: str = "isp") -> dict[str, list[str]]:
        """Top-3 training configurations per test condition (Tables 8-11 style)."""
        scores, cols = ((self.isp_scores, self.test_configs) if which == "isp"
                        else (self.corruption_scores, ["clean", *self.conditions]))
        mean, _ = grid_mean_std(scores)
        return {c: [self.train_configs[i] for i in np.argsort(-mean[:, j], kind="stable")[:3]]
                for j, c in enumerate(cols)}

    def worst_pair(self) -> tuple[str, str, float]:
        """(train config, test config, drop) of the largest mean drop off the diagonal."""
        mean, _ = grid_mean_std(self.isp_scores)
        best = (None, None, -np.inf)
        for i, tr in enumerate(self.train_configs):
            diag = mean[i, self.test_configs.index(tr)] if tr in self.test_configs else mean[i].max()
            for j, te in enumerate(self.test_configs):
                if te != tr and diag - mean[i, j] > best[2]:
                    best = (tr, te, float(diag - mean[i, j]))
        return best

    def cell(self, train_config: str, test_config: str) -> tuple[float, float]:
        """(mean, std over folds) of the ISP grid cell trained on ``train_config``, tested on ``test_config``."""
        check_choice(train_config, tuple(self.train_configs), "train_config")
        check_choice(test_config, tuple(self.test_configs), "test_config")
        mean, std = grid_mean_std(self.isp_scores)
        i, j = self.train_configs.index(train_config), self.test_configs.index(test_config)
        return float(mean[i, j]), float(std[i, j])

    def paper_comparison(self) -> list[dict]:
        """Our headline means next to the paper's (:data:`PAPER_HEADLINE`), one row per quantity.

        Rows hold ``quantity``, ``paper`` and ``ours``; the paper's numbers are for the real
        datasets at the ``paper`` preset, ours for whatever data and preset this run used.
        """
        s = self.summary()
        ref = PAPER_HEADLINE[self.task]
        return [
            {"quantity": f"{self.metric}, ISP: on the training configuration", "paper": ref["isp"][0], "ours": s.isp_train},
            {"quantity": f"{self.metric}, ISP: on the other configurations", "paper": ref["isp"][1], "ours": s.isp_test},
            {"quantity": f"{self.metric}, corruptions: clean", "paper": ref["corruptions"][0], "ours": s.corruption_clean},
            {"quantity": f"{self.metric}, corruptions: corrupted", "paper": ref["corruptions"][1], "ours": s.corruption_test},
        ]

    def to_markdown(self) -> str:
        s = self.summary()
        m = self.metric
        lines = [f"# Drift synthesis: {self.config['dataset']} ({self.config['preset']} preset, "
                 f"{len(self.train_configs)} training configurations x {self.isp_scores.shape[2]} folds)", "",
                 "| | on training configuration / clean | under drift |", "|---|---|---|",
                 f"| ISP configurations | {s.isp_train:.3f} | {s.isp_test:.3f} |",
                 f"| common corruptions | {s.corruption_clean:.3f} | {s.corruption_test:.3f} |", "",
                 f"Mean {m} drop under corruptions is {s.ratio:.1f}x the drop under ISP drift. "
                 f"Top-3 overlap of the two rankings: {', '.join(sorted(s.top3_overlap)) or 'none'}.", "",
                 "| rank | ISP ranking | mean | corruption ranking | mean | normalised corruption error |",
                 "|---|---|---|---|---|---|"]
        nce = self.normalised_corruption_error()
        for (r, a, va), (_, b, vb) in zip(s.isp_ranking, s.corruption_ranking):
            lines.append(f"| {r} | {a} | {va:.3f} | {b} | {vb:.3f} | {nce[b]:.3f} |")
        tr, te, d = self.worst_pair()
        lines += ["", f"Worst ISP pair: trained on `{tr}`, tested on `{te}`: {m} drop {d:.3f}."]
        if self.per_class is not None and tr is not None:
            drop = _nanmean(self.per_class_drop("isp")[self.train_configs.index(tr), self.test_configs.index(te)], 0)
            if not np.isnan(drop).all():
                k = int(np.nanargmax(drop))
                lines[-1] += f" The class that pays most there: {self._class_name(k)} (accuracy drop {drop[k]:.3f})."
        cw = self.classwise_summary()
        if cw:
            names = [n for n in self.metric_names() if n in cw[0]]
            lines += ["", "Class-wise view (mean over folds, then over the cells of each part):", "",
                      "| cells | " + " | ".join(n.replace("_", " ") for n in names) + " |",
                      "|---|" + "---|" * len(names)]
            lines += ["| " + r["cells"] + " | " + " | ".join(f"{r[n]:.3f}" for n in names) + " |" for r in cw]
        lines += ["", f"Wall time: {self.seconds:.0f} s."]
        return "\n".join(lines)

    def _class_name(self, k: int) -> str:
        return str(self.classes[k]) if k < len(self.classes) else str(k)

    def classwise_csv(self) -> str:
        """One row per (grid, training configuration, test condition, fold) with every metric of
        :meth:`metric_names`, then the per-class accuracies and per-class drops (classification)."""
        names = self.metric_names()
        K = 0 if self.per_class is None else self.per_class.shape[-1]
        cls = [self._class_name(k) for k in range(K)]
        head = ["grid", "train", "test", "fold", *names, *(f"acc {c}" for c in cls), *(f"drop {c}" for c in cls)]
        lines = [",".join(f'"{h}"' for h in head)]
        for which, cols in (("isp", self.test_configs), ("cor", ["clean", *self.conditions])):
            shape = self._grid(which).shape
            grids = [self._metric_grid_or_nan(n, which) for n in names]
            has_pc = K and (which == "isp" or self.corruption_per_class is not None)
            pc = self.per_class_grid(which) if has_pc else np.full((*shape, K), np.nan)
            drop = self.per_class_drop(which) if has_pc else pc
            for i, tr in enumerate(self.train_configs):
                for j, te in enumerate(cols):
                    for f in range(shape[2]):
                        vals = [g[i, j, f] for g in grids] + list(pc[i, j, f]) + list(drop[i, j, f])
                        lines.append(f'{which},"{tr}","{te}",{f},' + ",".join(f"{v:.6f}" for v in vals))
        return "\n".join(lines) + "\n"

    # -- persistence ------------------------------------------------------------------------
    def save(self, out=None) -> Path:
        arrays = {"isp_scores": self.isp_scores, "corruption_scores": self.corruption_scores}
        for k in ("per_class", "corruption_per_class"):
            if getattr(self, k) is not None:
                arrays[k] = getattr(self, k)
        arrays.update({_NPZ_SEP.join(k.split(":", 1)): np.asarray(v) for k, v in self.metric_grids.items()})
        meta = {k: v for k, v in asdict(self).items()
                if not isinstance(v, np.ndarray) and v is not None and k != "metric_grids"}
        out = write_result(out or self.config["out"], meta, arrays, npz="grid.npz")
        write_text(out / "summary.md", self.to_markdown() + "\n")
        write_text(out / "isp_grid.csv", _csv(self.isp_scores, self.train_configs, self.test_configs))
        write_text(out / "corruption_grid.csv",
                   _csv(self.corruption_scores, self.train_configs, ["clean", *self.conditions]))
        write_text(out / "classwise.csv", self.classwise_csv())
        return out

    @classmethod
    def load(cls, out) -> "SynthesisResult":
        meta, arrays = read_result(out, "run_synthesis", npz="grid.npz")
        grids = {k.replace(_NPZ_SEP, ":", 1): arrays.pop(k) for k in list(arrays) if _NPZ_SEP in k}
        return cls(**meta, **arrays, metric_grids=grids)

    # -- figures ----------------------------------------------------------------------------
    def plot_grids(self):
        """ISP grid and corruption grid side by side (Figures 4-5, top)."""
        import matplotlib.pyplot as plt

        from .grid import heatmap

        t = len(self.train_configs)
        fig, axes = plt.subplots(1, 2, figsize=(0.5 * (len(self.test_configs) + len(self.conditions)) + 7, 0.42 * t + 2.6),
                                 gridspec_kw={"width_ratios": [len(self.test_configs), len(self.conditions) + 1]})
        lo = float(min(np.nanmin(self.isp_scores.mean(2)), np.nanmin(self.corruption_scores.mean(2))))
        heatmap(self.isp_scores, self.train_configs, self.test_configs, ax=axes[0], vmin=lo, vmax=1,
                title=f"ISP drift ({self.metric})")
        heatmap(self.corruption_scores, self.train_configs, ["clean", *self.conditions], ax=axes[1], vmin=lo, vmax=1,
                title=f"common corruptions ({self.metric})")
        fig.tight_layout()
        return fig

    def per_class_drop_figure(self, train_config: str | None = None, test_config: str | None = None):
        """Who pays for a drift: per-class accuracy drops of one train/test pair (default: the worst).

        Left: classes x folds (plus their mean) for the pair, drop = accuracy on the training
        configuration minus accuracy on the test configuration, same model and fold (red: the
        class lost accuracy). Right: the mean drop of every class on every test configuration for
        the same training configuration. Rows are labelled with ``classes``. Returns the Figure.
        """
        import matplotlib.pyplot as plt

        if self.per_class is None:
            raise ValueError("result: per-class drops need a classification result with per-class accuracies")
        if train_config is None or test_config is None:
            tr, te, _ = self.worst_pair()
            train_config, test_config = train_config or tr, test_config or te
        if train_config is None:
            raise ValueError("result: no off-diagonal cell (a single test configuration equal to the training one)")
        check_choice(train_config, tuple(self.train_configs), "train_config")
        check_choice(test_config, tuple(self.test_configs), "test_config")
        if train_config not in self.test_configs:
            raise ValueError(f"train_config: {train_config!r} is not a test configuration, so there is no "
                             "reference accuracy to measure a drop from")
        i, j = self.train_configs.index(train_config), self.test_configs.index(test_config)
        drop = self.per_class_drop("isp")[i]  # (test, fold, class)
        K, F = drop.shape[2], drop.shape[1]
        names = [self._class_name(k) for k in range(K)]
        left = np.concatenate([drop[j].T, _nanmean(drop[j], 0)[:, None]], axis=1)  # (class, fold + 1)
        right = _nanmean(drop, 1).T  # (class, test)
        lim = float(np.nanmax(np.abs(np.concatenate([left.ravel(), right.ravel()])))) if np.isfinite(left).any() else 1.0
        lim = lim or 1.0
        fig, axes = plt.subplots(1, 2, figsize=(3.2 + 0.55 * (F + 1) + 0.55 * len(self.test_configs), 1.4 + 0.32 * K),
                                 gridspec_kw={"width_ratios": [F + 1.5, len(self.test_configs)]}, layout="constrained")
        for ax, data, cols, title in (
                (axes[0], left, [f"fold {f}" for f in range(F)] + ["mean"],
                 f"trained on {train_config}, tested on {test_config}"),
                (axes[1], right, list(self.test_configs), f"trained on {train_config}: mean over folds")):
            im = ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
            ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
            ax.set_yticks(range(K), names, fontsize=8)
            ax.set_title(title, fontsize=9)
            if data.size <= 200:
                for (r, c), v in np.ndenumerate(data):
                    if np.isfinite(v):
                        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6,
                                color="white" if abs(v) > 0.6 * lim else "black")
        axes[1].set_xlabel("tested on")
        cb = fig.colorbar(im, ax=list(axes), shrink=0.9, fraction=0.03)
        cb.set_label("per-class accuracy drop (red: lost)", fontsize=8)
        fig.suptitle("who pays for the drift: per-class accuracy on the training configuration minus on the test one",
                     fontsize=9)
        return fig


def cell_figure(result: SynthesisResult, dataset, train_config: str, test_config: str, index: int = 0):
    """One grid cell as pictures: a raw sample developed by the training and by the test configuration.

    Panels: view A (``train_config``), view B (``test_config``) and ``|A - B|`` for R, G and B on
    one colour scale; the title gives the cell's mean +- std over folds and the score of the same
    models on their own configuration.

    Args:
        result: a :class:`SynthesisResult`.
        dataset: the raw dataset of the run (its sample ``index`` and its ``camera`` are used).
        train_config / test_config: a row and a column of ``result``.
        index: sample of ``dataset`` to show.
    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from ..isp import Pipeline

    mean, std = result.cell(train_config, test_config)
    index = check_int(index, "index", minimum=0)
    if index >= len(dataset):
        raise ValueError(f"index: expected a sample index below {len(dataset)}, got {index}")
    raw = dataset[index][0][None].float()
    with torch.no_grad():
        a = Pipeline.static(train_config, dataset.camera)(raw)[0]
        b = Pipeline.static(test_config, dataset.camera)(raw)[0]
    diff = (a - b).abs()
    vmax = float(diff.max()) or 1.0
    fig, axes = plt.subplots(1, 5, figsize=(11.5, 2.9), layout="constrained")
    for ax, img, title in ((axes[0], a, f"A: trained on {train_config}"), (axes[1], b, f"B: tested on {test_config}")):
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(title, fontsize=9)
    for k, ch in enumerate("RGB"):
        im = axes[2 + k].imshow(diff[k].numpy(), cmap="magma", vmin=0, vmax=vmax)
        axes[2 + k].set_title(f"|A - B|, {ch}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im, ax=list(axes[2:]), shrink=0.8, fraction=0.03)
    m = result.metric
    own = (f"; on {train_config} itself {result.cell(train_config, train_config)[0]:.3f}"
           if train_config in result.test_configs else "")
    fig.suptitle(f"{m} {mean:.3f} +- {std:.3f} over {result.isp_scores.shape[2]} folds{own}  "
                 f"(sample {index}, max |A - B| = {vmax:.3f})", fontsize=10)
    return fig


def worst_case_figure(result: SynthesisResult, dataset, index: int = 0):
    """:func:`cell_figure` of the worst ISP pair (:meth:`SynthesisResult.worst_pair`)."""
    train_config, test_config, _ = result.worst_pair()
    if train_config is None:
        raise ValueError("result: no off-diagonal cell to compare (a single test configuration equal to the training one)")
    return cell_figure(result, dataset, train_config, test_config, index)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without the warning for all-``nan`` slices (a class absent from every test fold)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _csv(scores, rows, cols) -> str:
    mean, std = grid_mean_std(scores)
    lines = ["train," + ",".join(f"{c} mean,{c} std" for c in cols)]
    for i, r in enumerate(rows):
        lines.append(f"\"{r}\"," + ",".join(f"{mean[i, j]:.6f},{std[i, j]:.6f}" for j in range(len(cols))))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- the run


def _corrupted(viewset, idx, corruption: str, severity: int, seed: int):
    """A ViewSet holding only the test images ``idx``, corrupted (deterministic per condition)."""
    from .corruptions import corrupt
    from .views import ViewSet

    idx_t = torch.as_tensor(idx, dtype=torch.long, device=viewset.views.device)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = corrupt(viewset.views[idx_t], corruption, severity, generator=gen)
    sub = _Subset(viewset.source, idx)
    return ViewSet(x, sub, targets=viewset._target[idx_t.to(viewset._target.device)], name=f"{corruption}@{severity}")


class _Subset:
    """Just enough of a dataset for ViewSet over a subset of indices."""

    def __init__(self, source, idx):
        self.idx = np.asarray(idx)
        self.task = source.task
        self.classes = getattr(source, "classes", ())
        self.name = getattr(source, "name", "")
        self._targets = np.asarray(source.targets)[self.idx]

    @property
    def targets(self):
        return self._targets

    def __len__(self):
        return len(self.idx)


def _scalar_metrics(m: dict) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in m.items()}


class _Context:
    """What every grid cell needs: the dataset, its folds, the training config and the views.

    Views are rendered lazily, once per configuration and process, on ``device``.
    """

    def __init__(self, cfg: SynthesisConfig):
        from ..data import get_dataset
        from ..data.base import stratified_kfold
        from ..device import pick_device
        from ..train import TrainConfig

        self.cfg = cfg
        self.device = pick_device(cfg.device)
        kw = {} if cfg.n is None else {"n": cfg.n}
        self.ds = get_dataset(cfg.dataset, preset=cfg.preset, root=cfg.root, intensity=cfg.intensity,
                              seed=cfg.seed, **kw)
        self.task = cfg.task or self.ds.task
        check_choice(self.task, tuple(PRIMARY), "task")
        self.folds = stratified_kfold(self.ds.targets, cfg.folds, cfg.seed)
        self.tcfg = TrainConfig(task=self.task, preset=cfg.preset, epochs=cfg.epochs, seed=cfg.seed,
                                device=str(self.device), progress=False).resolved(self.task)
        self.conditions = [f"{c}@{s}" for s in cfg.severities for c in cfg.corruptions]
        self.n_classes = len(getattr(self.ds, "classes", ()))
        self._raw = None
        self._views = {}

    def views(self, name: str):
        from ..isp import Pipeline
        from .views import ViewSet, render_views

        if name not in self._views:
            if self._raw is None:
                self._raw = self.ds.raw_tensor().to(self.device)
            v = render_views(self._raw, Pipeline.static(name, self.ds.camera, device=self.device))
            self._views[name] = ViewSet(v, self.ds, name=name)
        return self._views[name]


def run_cell(cfg: SynthesisConfig, i: int, f: int, ctx: _Context | None = None) -> Path:
    """Train (or reload) the model of training configuration ``i`` on fold ``f`` and run its evaluations.

    Everything is written under ``cfg.out`` (model, then one JSON of evaluations
    updated after each test condition), so the cell can be interrupted and rerun,
    in this process or on another machine sharing ``cfg.out`` and the dataset
    cache. Returns the evaluation file.
    """
    from ..train import build_task_model, discard_checkpoint, evaluate, fit

    cfg = cfg.resolved()
    ctx = ctx or _Context(cfg)
    out = Path(cfg.out)
    tr_name = cfg.train_configs[i]
    tr_idx, te_idx = ctx.folds[f]
    cell = out / "models" / tr_name / f"fold{f}"
    model_path = cell / "model.pt"
    model = build_task_model(replace(ctx.tcfg, seed=cfg.seed + f), num_classes=max(ctx.n_classes, 1)).to(ctx.device)
    if model_path.exists():
        model.load_state_dict(torch.load(model_path, map_location=ctx.device, weights_only=True))
    else:
        fcfg = replace(ctx.tcfg, seed=cfg.seed + f, checkpoint_dir=str(cell / "checkpoint"))
        res = fit(model, nn.Identity(), (ctx.views(tr_name), tr_idx), None, fcfg)
        model.load_state_dict(res.model_state)
        with atomic_path(model_path) as tmp:
            torch.save(res.model_state, tmp)
        write_json(cell / "train.json", res.summary())
        discard_checkpoint(fcfg.checkpoint_dir)
    eval_path = out / "evals" / tr_name / f"fold{f}.json"
    done = read_json(eval_path) if eval_path.exists() else {}
    todo = [("isp", te) for te in cfg.test_configs] + [("cor", "clean")] + [("cor", c) for c in ctx.conditions]
    for kind, cond in todo:
        key = f"{kind}:{cond}"
        if key in done:
            continue
        if kind == "isp":
            data = (ctx.views(cond), te_idx)
        elif cond == "clean":
            data = (ctx.views(tr_name), te_idx)
        else:
            name, sev = cond.rsplit("@", 1)
            seed = cfg.seed * 1000 + f * 100 + cfg.corruptions.index(name) * 10 + int(sev)
            data = _corrupted(ctx.views(tr_name), te_idx, name, int(sev), seed)
        done[key] = _scalar_metrics(evaluate(model, nn.Identity(), data, ctx.tcfg))
        write_json(eval_path, done)
    return eval_path


def _cell_job(cfg_dict: dict, i: int, f: int) -> str:
    """Picklable entry point for a worker process (Dask): one grid cell."""
    return str(run_cell(SynthesisConfig.from_dict(cfg_dict), i, f))


def assemble(cfg: SynthesisConfig, ctx: _Context | None = None, seconds: float = 0.0) -> SynthesisResult:
    """Build the result from the evaluations under ``cfg.out`` (every cell must be finished)."""
    cfg = cfg.resolved()
    ctx = ctx or _Context(cfg)
    out = Path(cfg.out)
    metric = PRIMARY[ctx.task]
    T, J, F, C = len(cfg.train_configs), len(cfg.test_configs), cfg.folds, len(ctx.conditions)
    isp = np.full((T, J, F), np.nan)
    cor = np.full((T, 1 + C, F), np.nan)
    cls_task = ctx.task == "classification"
    per_class = np.full((T, J, F, ctx.n_classes), np.nan) if cls_task else None
    cor_pc = np.full((T, 1 + C, F, ctx.n_classes), np.nan) if cls_task else None
    extra = EXTRA_METRICS[ctx.task]
    grids = {f"{w}:{n}": np.full(shape, np.nan) for n in extra for w, shape in (("isp", isp.shape), ("cor", cor.shape))}
    for i, tr in enumerate(cfg.train_configs):
        for f in range(F):
            path = out / "evals" / tr / f"fold{f}.json"
            if not path.exists():
                raise FileNotFoundError(f"{path}: grid cell ({tr}, fold {f}) has not been run")
            done = read_json(path)
            cells = [("isp", j, f"isp:{te}") for j, te in enumerate(cfg.test_configs)]
            cells += [("cor", k, f"cor:{c}") for k, c in enumerate(["clean", *ctx.conditions])]
            for which, j, key in cells:
                ev = done[key]
                (isp if which == "isp" else cor)[i, j, f] = ev[metric]
                for n in extra:  # every evaluation ever cached holds these; .get keeps odd files loadable
                    grids[f"{which}:{n}"][i, j, f] = ev.get(n, np.nan)
                if cls_task and "per_class_accuracy" in ev:
                    (per_class if which == "isp" else cor_pc)[i, j, f] = ev["per_class_accuracy"]
    return SynthesisResult(
        config=cfg.to_dict(), task=ctx.task, metric=metric, train_configs=list(cfg.train_configs),
        test_configs=list(cfg.test_configs), conditions=ctx.conditions, isp_scores=isp, corruption_scores=cor,
        per_class=per_class, classes=list(getattr(ctx.ds, "classes", ())), seconds=seconds,
        corruption_per_class=cor_pc, metric_grids=grids,
    )


SCHEDULERS = ("local", "dask")


def run_synthesis(cfg: SynthesisConfig, scheduler: str = "local", client=None) -> SynthesisResult:
    """Train the grid of task models and test each on every ISP configuration and corruption.

    Resumes from ``cfg.out``: trained models (``models/<config>/fold<k>/model.pt``) and
    finished evaluations (``evals/<config>/fold<k>.json``) are reused.

    Args:
        cfg: the run's settings.
        scheduler: ``"local"`` runs the cells one after another in this process;
            ``"dask"`` submits each (training configuration, fold) cell as a job to a
            Dask cluster (``pip install "rawdrift[dist]"``). Workers must see the same
            ``cfg.out`` and dataset cache (``RAWDRIFT_CACHE``), e.g. a shared file system.
        client: a ``distributed.Client``; ``None`` with ``"dask"`` starts a local cluster.
    """
    from tqdm.auto import tqdm

    cfg = cfg.resolved()
    check_choice(scheduler, SCHEDULERS, "scheduler")
    t0 = time.perf_counter()
    out = Path(cfg.out)
    cells = [(i, f) for i in range(len(cfg.train_configs)) for f in range(cfg.folds)]
    if scheduler == "local":
        ctx = _Context(cfg)
        for i, f in tqdm(cells, desc="synthesis grid", disable=not cfg.progress):
            run_cell(cfg, i, f, ctx)
    else:
        ctx = _run_on_dask(cfg, cells, client)
    result = assemble(cfg, ctx, seconds=time.perf_counter() - t0)
    result.save(out)
    _save_figures(result, out)
    return result


def _run_on_dask(cfg: SynthesisConfig, cells, client):
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('scheduler: "dask" needs the dist extra: pip install "rawdrift[dist]"') from err
    own = client is None
    if own:
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True))
    try:
        # the dataset is generated (and cached on disk) once here, before the workers read it
        ctx = _Context(cfg)
        futures = [client.submit(_cell_job, cfg.to_dict(), i, f, pure=False) for i, f in cells]
        client.gather(futures)
    finally:
        if own:
            client.close()
    return ctx


def _save_figures(result: SynthesisResult, out: Path) -> None:
    import matplotlib.pyplot as plt  # never switch the backend: that would stop a notebook's inline figures

    figs = {"grids.png": result.plot_grids()}
    if result.per_class is not None and result.worst_pair()[0] in result.test_configs:
        figs["per_class_drop.png"] = result.per_class_drop_figure()
    for name, fig in figs.items():
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
