"""Analysis of a train x test drift grid (paper Section 5.1, Figures 4-5, Tables 7-11).

A grid holds one metric (accuracy or IoU) per training condition, test condition
and fold: ``scores[i, j, f]`` is the metric of the model trained on condition
``i`` (fold ``f``) when tested on condition ``j``. For ISP drift the rows and
columns are the same 12 configurations and the diagonal is "tested as trained".
For the corruption comparison the first column is the clean test set processed
by the training configuration and the other columns are corruptions.

Everything here is plain numpy on such arrays, so it works the same on fresh
results and on results reloaded from disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _check_grid(scores, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 3:
        raise ValueError(f"{name}: expected an array (train, test, fold), got shape {s.shape}")
    if s.shape[0] < 1 or s.shape[1] < 1 or s.shape[2] < 1:
        raise ValueError(f"{name}: every axis needs at least one entry, got shape {s.shape}")
    return s


def grid_mean_std(scores) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation over folds, each ``(train, test)``."""
    s = _check_grid(scores)
    return np.nanmean(s, axis=2), np.nanstd(s, axis=2)


def isp_drop(scores, train_names=None, test_names=None) -> tuple[float, float]:
    """(mean on the training configuration, mean under the other configurations) for an ISP grid.

    Without names the grid must be square with the training configuration on the
    diagonal; with names, "tested as trained" is the cell whose test name equals
    the training name (every training configuration must also be a test column).

    >>> isp_drop(np.array([[[1.0], [0.5]], [[0.7], [0.9]]]))
    (0.95, 0.6)
    >>> isp_drop(np.array([[[1.0], [0.5], [0.2]]]), ["a"], ["b", "a", "c"])
    (0.5, 0.6)
    """
    s = _check_grid(scores)
    if train_names is None or test_names is None:
        if s.shape[0] != s.shape[1]:
            raise ValueError(f"scores: an ISP grid must be square (train == test configurations), got {s.shape[:2]}")
        same = np.eye(s.shape[0], dtype=bool)
    else:
        train_names, test_names = list(train_names), list(test_names)
        if (len(train_names), len(test_names)) != s.shape[:2]:
            raise ValueError(f"train_names/test_names: {len(train_names)}x{len(test_names)} names for a grid of {s.shape[:2]}")
        missing = [n for n in train_names if n not in test_names]
        if missing:
            raise ValueError(f"test_names: training configurations {missing} are not among the test configurations")
        same = np.array([[a == b for b in test_names] for a in train_names])
    mean, _ = grid_mean_std(s)
    off = mean[~same]
    return float(mean[same].mean()), float(off.mean()) if off.size else float("nan")


def drop_ratio(isp_scores, corruption_scores, train_names=None, test_names=None) -> float:
    """How many times larger the mean corruption drop is than the mean ISP drop (paper: >13 and >4)."""
    d_isp = np.subtract(*isp_drop(isp_scores, train_names, test_names))
    d_cor = np.subtract(*corruption_drop(corruption_scores))
    return float(d_cor / d_isp) if d_isp != 0 else float("inf")


def corruption_drop(scores) -> tuple[float, float]:
    """(mean clean score, mean score under corruptions) for a corruption grid whose column 0 is clean."""
    s = _check_grid(scores)
    if s.shape[1] < 2:
        raise ValueError("scores: a corruption grid needs the clean column plus at least one corruption")
    mean, _ = grid_mean_std(s)
    return float(mean[:, 0].mean()), float(mean[:, 1:].mean())


def ranking(scores, names) -> list[tuple[int, str, float]]:
    """Training conditions ranked by their mean score over all test conditions (rank 1 = best).

    Returns ``(rank, name, mean score)`` tuples, best first; ties keep the input order.
    """
    mean, _ = grid_mean_std(scores)
    names = list(names)
    if len(names) != mean.shape[0]:
        raise ValueError(f"names: expected {mean.shape[0]} training names, got {len(names)}")
    avg = mean.mean(axis=1)
    order = np.argsort(-avg, kind="stable")
    return [(r + 1, names[i], float(avg[i])) for r, i in enumerate(order)]


def best_per_test(scores) -> np.ndarray:
    """Index of the best training condition for each test column (the stars of Figures 4-5)."""
    mean, _ = grid_mean_std(scores)
    return np.argmax(mean, axis=0)


def top_k_overlap(ranking_a, ranking_b, k: int = 3) -> set[str]:
    """Names in the top ``k`` of both rankings (the paper found none for classification)."""
    return {n for _, n, _ in ranking_a[:k]} & {n for _, n, _ in ranking_b[:k]}


def normalised_error(scores, baseline: int) -> np.ndarray:
    """ImageNet-C style normalised error per training condition.

    For each model (row) the error ``1 - score`` is summed over the test columns
    (excluding column 0, the clean one, for corruption grids pass them all) and
    divided by the same sum for the ``baseline`` row: 1.0 means "as robust as the
    baseline", below 1 better. ``scores`` must already hold only the columns to
    aggregate (e.g. corruptions x severities).
    """
    mean, _ = grid_mean_std(scores)
    if not 0 <= baseline < mean.shape[0]:
        raise ValueError(f"baseline: expected a row index in [0, {mean.shape[0]}), got {baseline}")
    err = (1.0 - mean).sum(axis=1)
    if err[baseline] == 0:
        raise ValueError("baseline: the baseline row has zero error, the ratio is undefined")
    return err / err[baseline]


@dataclass
class GridSummary:
    """The headline numbers of one synthesis run (ISP grid and corruption grid).

    ``classwise`` (optional) holds one dict per part of the grids (key ``cells``) with the mean of
    further metrics (balanced accuracy, macro-F1, worst-class accuracy, ...), as made by
    ``SynthesisResult.classwise_summary``; ``to_text`` prints it when present.
    """

    isp_train: float
    isp_test: float
    corruption_clean: float
    corruption_test: float
    ratio: float
    isp_ranking: list
    corruption_ranking: list
    top3_overlap: set
    classwise: list = field(default_factory=list)

    @classmethod
    def from_grids(cls, isp_scores, corruption_scores, train_names, test_names=None) -> "GridSummary":
        if test_names is None:
            test_names = train_names
        a, b = isp_drop(isp_scores, train_names, test_names)
        c, d = corruption_drop(corruption_scores)
        r_isp = ranking(isp_scores, train_names)
        r_cor = ranking(corruption_scores, train_names)
        return cls(a, b, c, d, drop_ratio(isp_scores, corruption_scores, train_names, test_names), r_isp, r_cor, top_k_overlap(r_isp, r_cor))

    def to_text(self, metric: str = "accuracy") -> str:
        return (
            f"ISP drift:   {metric} {self.isp_train:.3f} on the training configuration -> "
            f"{self.isp_test:.3f} under the other configurations\n"
            f"corruptions: {metric} {self.corruption_clean:.3f} clean -> {self.corruption_test:.3f} corrupted\n"
            f"the corruption drop is {self.ratio:.1f}x the ISP drop; top-3 overlap: "
            f"{', '.join(sorted(self.top3_overlap)) or 'none'}"
        ) + self._classwise_text()

    def _classwise_text(self) -> str:
        if not self.classwise:
            return ""
        names = [k for k in self.classwise[0] if k != "cells"]
        width = max(len(r["cells"]) for r in self.classwise)
        lines = ["", "class-wise (mean over cells): " + ", ".join(names)]
        lines += [f"  {r['cells']:<{width}}  " + "  ".join(f"{r.get(n, float('nan')):.3f}" for n in names)
                  for r in self.classwise]
        return "\n".join(lines)


def heatmap(scores, train_names, test_names, ax=None, title: str = "", vmin=None, vmax=None, cmap="viridis"):
    """Draw a train x test grid as in Figures 4-5.

    Each cell shows the mean over folds; the cell border colour encodes the
    standard deviation (legend on the colour bar); numbers 1-3 left of the rows
    give the ranking by mean score; a star marks the best training condition of
    each column. Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    mean, std = grid_mean_std(scores)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.55 * mean.shape[1] + 2.5, 0.45 * mean.shape[0] + 1.5))
    im = ax.imshow(mean, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    smax = float(std.max()) if std.size and std.max() > 0 else 1.0
    border_cmap = plt.get_cmap("Reds")
    stars = best_per_test(scores)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            ax.add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, lw=2.0,
                                   edgecolor=border_cmap(0.25 + 0.75 * std[i, j] / smax)))
            label = f"{mean[i, j]:.2f}" + ("*" if stars[j] == i else "")
            ax.text(j, i, label, ha="center", va="center", fontsize=7,
                    color="white" if mean[i, j] < np.nanmean(mean) else "black")
    ranks = {train_names.index(n): r for r, n, _ in ranking(scores, train_names)[:3]}
    ax.set_yticks(range(len(train_names)),
                  [f"{ranks[i]}  {n}" if i in ranks else n for i, n in enumerate(train_names)], fontsize=8)
    ax.set_xticks(range(len(test_names)), test_names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("trained on")
    ax.set_xlabel("tested on")
    if title:
        ax.set_title(title, fontsize=10)
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.04)
    cb.set_label(f"mean over folds (border: std, max {smax:.3f})", fontsize=8)
    return ax
