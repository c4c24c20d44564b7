"""Robustness versus dataset bias: which robustness methods pay for it with the tail classes?

The study (issue #12, after the pre-registered proposal of Pradhan, Rawal and
Kishan) crosses three class-imbalance levels of the training set (``balanced``,
``linear``, ``exponential`` = long-tailed; :func:`rawdrift.data.make_imbalanced`)
with five training methods:

- ``plain``: no augmentation;
- ``standard``: random even-offset crops plus flips and 90-degree rotations (``augment="crop"``);
- ``augmix``: ``standard`` plus AugMix-style view mixing (:func:`rawdrift.augment.augmix`);
- ``isp_aug``: ``standard`` plus a random static ISP configuration per training
  sample (:class:`rawdrift.augment.RandomISP`, drawn from ``aug_configs``, which by
  default leaves out the drift test configurations so that ISP drift stays unseen);
- ``adjustment``: ``standard`` with a learnable parametrized ISP trained jointly
  with the task model (drift adjustment, paper Section 5.3).

Every cell (level, method, seed) trains a fresh task model (the preset's ResNet-18)
on the imbalanced training set and tests it on a *balanced* held-out test set
(``test_per_class`` samples per class, drawn once with ``cfg.seed``; the training
pool is the rest): clean (the training configuration ``train_config``; for
``adjustment`` the learned pipeline), under ISP drift (``drift_configs``) and
under common corruptions of the clean test views (``corruptions`` at ``severity``).
Seeds change the model initialisation, the training draws and which samples the
imbalanced set keeps. Each cell's metrics are written atomically to
``out/cells/<level>/<method>/seed<k>.json``; a rerun skips finished cells.

Tail classes are the last third of the head-to-tail ranking used by
:func:`~rawdrift.data.make_imbalanced` (class index order on the balanced
synthetic pool), the same class identities at every level.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_int
from ..io import read_json, write_json, write_text
from ..presets import get_preset
from ._config import RunConfig
from ._results import read_result, write_result

LEVELS = ("balanced", "linear", "exponential")
METHODS = ("plain", "standard", "augmix", "isp_aug", "adjustment")
METHOD_AUGMENT = {"plain": None, "standard": "crop", "augmix": "augmix", "isp_aug": "crop", "adjustment": "crop"}
#: Condition groups of the tables: clean, mean over ISP drift configurations, mean over corruptions.
GROUPS = ("clean", "isp", "corruptions")
METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "worst_class_accuracy", "class_range", "class_std")

#: Per-preset sizes. ``n``: balanced synthetic pool; ``test_per_class``: held-out samples per class.
#: ci is a smoke test (seconds per cell); lab runs on a laptop CPU (minutes per cell); paper on a GPU.
BIAS_PRESETS = {
    "ci": dict(n=126, test_per_class=4, seeds=2, epochs=1, imbalance_ratio=4.0),
    "lab": dict(n=900, test_per_class=30, seeds=3, epochs=8, imbalance_ratio=10.0),
    "paper": dict(n=1800, test_per_class=50, seeds=5, epochs=None, imbalance_ratio=10.0),
}


#: Reduced grids of the book chapter per preset (the CLI runs the full grid by default): the balanced
#: and the long-tailed level, standard training against the two augmentations, 12 cells at ci (a smoke
#: test) and 18 at lab (3 seeds, 4 epochs: a lab cell takes about a CPU-minute on 2 cores).
BOOK_GRIDS = {
    "ci": dict(levels=("balanced", "exponential"), methods=("standard", "augmix", "isp_aug")),
    "lab": dict(levels=("balanced", "exponential"), methods=("standard", "augmix", "isp_aug"), epochs=4),
    "paper": dict(),
}


@dataclass
class BiasConfig(RunConfig):
    """Settings of one bias study; ``None`` fields come from :data:`BIAS_PRESETS` and the preset.

    Shared fields (``dataset``, ``preset``, ``seed``, ``n``, ``root``, ``device``,
    ``out``, ``progress``): see :class:`~rawdrift.drift._config.RunConfig`.

    ``dataset`` must be a classification dataset (synthetic microscopy is drawn as a
    balanced pool); ``n`` is the size of that synthetic pool.

    Args:
        levels: imbalance levels (subset of :data:`LEVELS`).
        methods: training methods (subset of :data:`METHODS`).
        imbalance_ratio: ``n_max / n_min`` of the ``linear`` and ``exponential`` levels.
        seeds: number of seeds per cell (seeds ``seed``, ``seed + 1``, ...).
        epochs: training epochs (``None``: from :data:`BIAS_PRESETS`, else the preset).
        test_per_class: held-out test samples per class.
        train_config: the static ISP configuration of the clean training data.
        drift_configs: static ISP configurations of the ISP-drift test sets.
        aug_configs: configurations ``isp_aug`` draws from (default: the 12 minus ``drift_configs``).
        corruptions: common corruptions of the corruption test sets.
        severity: their severity (1-5).
        intensity: raw intensity of the dataset.

    ``seed`` is the base seed: the test split and the first seed of the cells.
    """

    KIND: ClassVar[str] = "bias"

    levels: tuple[str, ...] = LEVELS
    methods: tuple[str, ...] = METHODS
    imbalance_ratio: float | None = None
    seeds: int | None = None
    epochs: int | None = None
    test_per_class: int | None = None
    train_config: str = "bi,s,ga"
    drift_configs: tuple[str, ...] = ("ma,u,me", "me,s,me", "bi,u,me")
    aug_configs: tuple[str, ...] | None = None
    corruptions: tuple[str, ...] = ("gaussian_noise", "gaussian_blur", "contrast")
    severity: int = 3
    intensity: float = 1.0

    @classmethod
    def for_book(cls, preset: str | None = None, **overrides) -> "BiasConfig":
        """The book chapter's study at ``preset``, cached under ``cache_dir("bias", "book-<preset>")``.

        >>> c = BiasConfig.for_book("ci").resolved()
        >>> c.seeds, c.levels, c.methods
        (2, ('balanced', 'exponential'), ('standard', 'augmix', 'isp_aug'))
        """
        from ..io import cache_dir

        p = get_preset(preset)
        fields = dict(BOOK_GRIDS[p.name])
        fields.update(preset=p.name, progress=False, out=str(cache_dir("bias", f"book-{p.name}")))
        fields.update(overrides)
        return cls(**fields)

    def resolved(self) -> "BiasConfig":
        """A copy with every ``None`` field filled and every field checked.

        >>> c = BiasConfig(preset="ci").resolved()
        >>> c.seeds, c.imbalance_ratio, len(c.aug_configs)
        (2, 4.0, 9)
        """
        from ..isp.configs import CONFIGS, parse_config
        from .corruptions import CORRUPTIONS

        p, common = self._resolve_common()
        d = BIAS_PRESETS[p.name]
        levels, methods = tuple(self.levels), tuple(self.methods)
        if not levels:
            raise ValueError("levels: expected at least one imbalance level")
        if not methods:
            raise ValueError("methods: expected at least one training method")
        for lv in levels:
            check_choice(lv, LEVELS, "levels")
        for m in methods:
            check_choice(m, METHODS, "methods")
        for c in (self.train_config, *self.drift_configs, *(self.aug_configs or ())):
            parse_config(c)
        for c in self.corruptions:
            check_choice(c, CORRUPTIONS, "corruptions")
        check_int(self.severity, "severity", minimum=1)
        if self.severity > 5:
            raise ValueError(f"severity: expected 1..5, got {self.severity}")
        if not self.drift_configs and not self.corruptions:
            raise ValueError("drift_configs: expected at least one drift condition (drift_configs or corruptions)")
        aug = tuple(self.aug_configs) if self.aug_configs else tuple(c for c in CONFIGS if c not in self.drift_configs)
        ratio = float(self.imbalance_ratio if self.imbalance_ratio is not None else d["imbalance_ratio"])
        if not math.isfinite(ratio) or ratio < 1:
            raise ValueError(f"imbalance_ratio: expected a finite value >= 1, got {self.imbalance_ratio!r}")
        epochs = self.epochs if self.epochs is not None else (d["epochs"] or p.epochs)
        return replace(
            self, **common, levels=levels, methods=methods, imbalance_ratio=ratio,
            seeds=check_int(self.seeds if self.seeds is not None else d["seeds"], "seeds", minimum=1),
            epochs=check_int(epochs, "epochs", minimum=1),
            n=check_int(self.n if self.n is not None else d["n"], "n", minimum=1),
            test_per_class=check_int(self.test_per_class if self.test_per_class is not None else d["test_per_class"],
                                     "test_per_class", minimum=1),
            drift_configs=tuple(self.drift_configs), aug_configs=aug, corruptions=tuple(self.corruptions),
        )


# ------------------------------------------------------------------------------ statistics


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided Student-t confidence interval (``nan`` half-width for one value).

    >>> m, h = mean_ci([1.0, 2.0, 3.0])
    >>> m, round(h, 3)
    (2.0, 2.484)
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1:
        return float(v[0]), math.nan
    half = stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return float(v.mean()), float(half)


def _fmt(m: float, h: float) -> str:
    return f"{m:.3f}" if math.isnan(h) else f"{m:.3f} ± {h:.3f}"


# ------------------------------------------------------------------------------ result


@dataclass
class BiasResult:
    """All cells of one study: ``cells[level][method][seed]`` maps condition -> metrics.

    Conditions are ``clean``, ``isp:<config>`` and ``cor:<corruption>@<severity>``;
    metrics are those of :func:`rawdrift.train.evaluate` plus, under drift,
    :func:`rawdrift.metrics.class_spread` against the same model's clean per-class
    accuracy (``per_class_drop``, ``worst_class_drop``). ``profiles[level]`` holds
    the training set's class profile (``counts`` per class, ``order``, ``ratio``).
    """

    config: dict
    classes: list
    profiles: dict
    cells: dict
    seconds: float = 0.0
    test_counts: list = field(default_factory=list)

    # -- access ---------------------------------------------------------------------------
    @property
    def levels(self) -> list[str]:
        return [lv for lv in self.config["levels"] if lv in self.cells]

    @property
    def methods(self) -> list[str]:
        return [m for m in self.config["methods"] if any(m in self.cells[lv] for lv in self.levels)]

    def conditions(self, group: str) -> list[str]:
        """Condition keys of ``group`` (``clean``, ``isp`` or ``corruptions``)."""
        check_choice(group, GROUPS, "group")
        if group == "clean":
            return ["clean"]
        if group == "isp":
            return [f"isp:{c}" for c in self.config["drift_configs"]]
        return [f"cor:{c}@{self.config['severity']}" for c in self.config["corruptions"]]

    def tail_classes(self) -> list[int]:
        """The last third (at least one) of the head-to-tail ranking of the classes."""
        order = next(iter(self.profiles.values()))["order"]
        k = max(1, len(order) // 3)
        return list(order[-k:])

    def values(self, level: str, method: str, metric: str, group: str = "clean") -> np.ndarray:
        """Per-seed values of ``metric`` averaged over the conditions of ``group``.

        ``metric`` may be any scalar metric, ``tail_accuracy`` (mean accuracy of
        :meth:`tail_classes`) or ``head_accuracy`` (mean of the other classes).
        """
        conds = self.conditions(group)
        out = []
        for seed_cells in self.cells[level][method]:
            vals = [self._metric(seed_cells[c], metric) for c in conds if c in seed_cells]
            out.append(float(np.mean(vals)) if vals else math.nan)
        return np.asarray(out)

    def _metric(self, m: dict, metric: str) -> float:
        if metric in ("tail_accuracy", "head_accuracy"):
            pc = np.asarray(m["per_class_accuracy"], dtype=float)
            tail = np.zeros(pc.size, dtype=bool)
            tail[self.tail_classes()] = True
            sel = tail if metric == "tail_accuracy" else ~tail
            return float(np.nanmean(pc[sel]))
        return float(m[metric])

    def per_class(self, level: str, method: str, group: str = "clean") -> np.ndarray:
        """Mean per-class accuracy over seeds and the conditions of ``group`` (one value per class)."""
        conds = self.conditions(group)
        rows = [np.asarray(s[c]["per_class_accuracy"], dtype=float) for s in self.cells[level][method] for c in conds
                if c in s]
        return np.nanmean(np.stack(rows), axis=0)

    def table(self, metric: str = "balanced_accuracy") -> list[dict]:
        """One row per (level, method): mean and 95 % t-interval half-width over seeds per group."""
        rows = []
        for lv in self.levels:
            for m in self.methods:
                if m not in self.cells[lv]:
                    continue
                row = {"level": lv, "method": m, "seeds": len(self.cells[lv][m])}
                for g in GROUPS:
                    row[g], row[f"{g}_ci"] = mean_ci(self.values(lv, m, metric, g))
                rows.append(row)
        return rows

    def comparison(self, baseline: str | None = None) -> list[dict]:
        """Each method against ``baseline`` (default ``standard``, else ``plain``) at each level.

        Per row: paired differences over seeds (method - baseline; mean and 95 % half-width) of
        balanced accuracy under drift (``robustness``: mean of the ISP and corruption groups),
        of the clean tail-class accuracy (``tail_clean``) and of the drifted tail-class
        accuracy (``tail_drift``).
        """
        base = baseline or ("standard" if "standard" in self.methods else "plain")
        check_choice(base, tuple(self.methods), "baseline")
        rows = []
        for lv in self.levels:
            if base not in self.cells[lv]:
                continue
            for m in self.methods:
                if m == base or m not in self.cells[lv]:
                    continue
                row = {"level": lv, "method": m, "baseline": base}
                for key, metric, groups in (("robustness", "balanced_accuracy", ("isp", "corruptions")),
                                            ("tail_clean", "tail_accuracy", ("clean",)),
                                            ("tail_drift", "tail_accuracy", ("isp", "corruptions"))):
                    a = np.mean([self.values(lv, m, metric, g) for g in groups], axis=0)
                    b = np.mean([self.values(lv, base, metric, g) for g in groups], axis=0)
                    n = min(a.size, b.size)
                    row[key], row[f"{key}_ci"] = mean_ci(a[:n] - b[:n])
                rows.append(row)
        return rows

    def answer(self, baseline: str | None = None) -> str:
        """The study's question answered from the numbers: which methods buy robustness at the tail's expense?

        A method *buys robustness at the tail's expense* at a level when its mean drifted
        balanced accuracy is above the baseline's and its clean tail-class accuracy below;
        a difference counts as clear when its 95 % interval over at least 3 seeds excludes zero
        (with fewer seeds nothing is called clear).
        """
        rows = self.comparison(baseline)
        if not rows:
            return "No method to compare: the study needs the baseline and at least one other method."
        base = rows[0]["baseline"]

        few = self.config["seeds"] < 3

        def clear(r, key):
            h = r[f"{key}_ci"]
            return not few and not math.isnan(h) and abs(r[key]) > h

        lines = [f"Compared with `{base}` training (differences paired by seed; tail = classes "
                 f"{', '.join(self.classes[c] if c < len(self.classes) else str(c) for c in self.tail_classes())}):"]
        costly = []
        for r in rows:
            gain, tail = r["robustness"], r["tail_clean"]
            verdict = ("buys robustness at the tail's expense" if gain > 0 and tail < 0 else
                       "gains robustness without costing the tail" if gain > 0 else
                       "costs robustness and the tail" if tail < 0 else "costs robustness, not the tail")
            sure = ("too few seeds to tell" if few else "clear on both"
                    if clear(r, "robustness") and clear(r, "tail_clean") else "within seed noise on at least one")
            lines.append(f"- {r['level']}, `{r['method']}`: drifted balanced accuracy {r['robustness']:+.3f}, "
                         f"clean tail-class accuracy {r['tail_clean']:+.3f}, drifted tail-class accuracy "
                         f"{r['tail_drift']:+.3f}: {verdict} ({sure}).")
            if gain > 0 and tail < 0:
                costly.append((r["method"], r["level"], clear(r, "robustness") and clear(r, "tail_clean")))
        if costly:
            names = sorted({m for m, _, _ in costly})
            firm = sorted({f"{m} ({lv})" for m, lv, ok in costly if ok})
            lines.append(f"Answer: {', '.join(f'`{n}`' for n in names)} bought robustness at the tail classes' "
                         f"expense in at least one level; "
                         + (f"clearly beyond seed noise for {', '.join(firm)}." if firm else
                            "with fewer than 3 seeds no difference can be called clear." if few else
                            "no such trade-off is beyond the seed noise of this run."))
        else:
            lines.append("Answer: no method raised drifted balanced accuracy while lowering clean tail-class accuracy.")
        return "\n".join(lines)

    def to_markdown(self, metric: str = "balanced_accuracy") -> str:
        c = self.config
        lines = [f"# Robustness vs dataset bias: {c['dataset']} ({c['preset']} preset, {c['seeds']} seeds, "
                 f"imbalance ratio {c['imbalance_ratio']:g})", "",
                 "Training class profiles (samples per class, head to tail):", ""]
        for lv, p in self.profiles.items():
            counts = [p["counts"][k] for k in p["order"]]
            lines.append(f"- {lv}: {counts} (n_max/n_min = {p['ratio']:.2f}, {sum(counts)} samples)")
        lines += ["", f"Test set: balanced, {c['test_per_class']} per class. ISP drift: {', '.join(c['drift_configs'])}; "
                  f"corruptions: {', '.join(c['corruptions'])} at severity {c['severity']}.", ""]
        for mt in (metric, "macro_f1", "tail_accuracy", "worst_class_accuracy"):
            lines += [f"## {mt} (mean ± 95% CI over seeds)", "", "| level | method | clean | ISP drift | corruptions |",
                      "|---|---|---|---|---|"]
            for r in self.table(mt):
                lines.append(f"| {r['level']} | {r['method']} | {_fmt(r['clean'], r['clean_ci'])} | "
                             f"{_fmt(r['isp'], r['isp_ci'])} | {_fmt(r['corruptions'], r['corruptions_ci'])} |")
            lines.append("")
        lines += ["## Answer", "", self.answer(), "", f"Wall time: {self.seconds:.0f} s."]
        return "\n".join(lines)

    def to_csv(self) -> str:
        """Long table: one line per (level, method, seed, condition) with the scalar metrics."""
        head = ["level", "method", "seed", "condition", *METRICS, "tail_accuracy", "worst_class_drop"]
        lines = [",".join(head)]
        for lv in self.levels:
            for m in self.methods:
                for s, cells in enumerate(self.cells[lv].get(m, [])):
                    for cond, met in cells.items():
                        vals = [met.get(k, math.nan) for k in METRICS]
                        vals += [self._metric(met, "tail_accuracy"), met.get("worst_class_drop", math.nan)]
                        lines.append(f"{lv},{m},{s},\"{cond}\"," + ",".join(f"{float(v):.6f}" for v in vals))
        return "\n".join(lines) + "\n"

    # -- persistence ----------------------------------------------------------------------
    def save(self, out=None) -> Path:
        out = write_result(out or self.config["out"], asdict(self))
        write_text(out / "summary.md", self.to_markdown() + "\n")
        write_text(out / "cells.csv", self.to_csv())
        return out

    @classmethod
    def load(cls, out) -> "BiasResult":
        return cls(**read_result(out, "run_bias_study")[0])

    # -- figures --------------------------------------------------------------------------
    def plot_accuracy(self, metric: str = "balanced_accuracy"):
        """Bars of ``metric`` per method (clean, ISP drift, corruptions), one panel per level, 95 % CIs."""
        import matplotlib.pyplot as plt

        levels, methods = self.levels, self.methods
        fig, axes = plt.subplots(1, len(levels), figsize=(3.6 * len(levels) + 0.6, 3.4), sharey=True, squeeze=False)
        width = 0.8 / len(GROUPS)
        x = np.arange(len(methods))
        for ax, lv in zip(axes[0], levels):
            rows = {r["method"]: r for r in self.table(metric) if r["level"] == lv}
            for k, g in enumerate(GROUPS):
                means = [rows[m][g] if m in rows else np.nan for m in methods]
                err = [0 if m not in rows or math.isnan(rows[m][f"{g}_ci"]) else rows[m][f"{g}_ci"] for m in methods]
                ax.bar(x + (k - 1) * width, means, width, yerr=err, capsize=2, label=g)
            ax.set_xticks(x, methods, rotation=35, ha="right", fontsize=8)
            ax.set_title(lv)
            ax.set_ylim(0, 1)
        axes[0][0].set_ylabel(metric.replace("_", " "))
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=8, loc="upper center", ncol=len(GROUPS), frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.92))
        return fig

    def plot_class_drop(self, group: str = "isp"):
        """Heatmap of the mean per-class accuracy drop (clean - drifted), classes head to tail."""
        import matplotlib.pyplot as plt

        order = next(iter(self.profiles.values()))["order"]
        rows, labels = [], []
        for lv in self.levels:
            for m in self.methods:
                if m in self.cells[lv]:
                    drop = self.per_class(lv, m, "clean") - self.per_class(lv, m, group)
                    rows.append(drop[order])
                    labels.append(f"{lv} / {m}")
        z = np.stack(rows)
        lim = max(float(np.nanmax(np.abs(z))), 1e-3)
        fig, ax = plt.subplots(figsize=(0.55 * len(order) + 3, 0.3 * len(rows) + 1.6))
        im = ax.imshow(z, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        names = [self.classes[c] if c < len(self.classes) else str(c) for c in order]
        ax.set_xticks(range(len(order)), names, rotation=45, fontsize=8)
        ax.set_yticks(range(len(rows)), labels, fontsize=8)
        ax.set_xlabel("class (head → tail of the imbalanced profiles)")
        ax.set_title(f"per-class accuracy drop, clean → {group} (positive: worse under drift)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        return fig

    def explorer(self):
        """ipywidgets explorer: pick a metric, see :meth:`plot_accuracy` for it (needs a live kernel)."""
        import ipywidgets as widgets
        import matplotlib.pyplot as plt

        pick = widgets.Dropdown(options=["balanced_accuracy", "macro_f1", "accuracy", "tail_accuracy",
                                         "worst_class_accuracy"], value="balanced_accuracy", description="metric")
        out = widgets.Output()

        def draw(*_):
            with out:
                out.clear_output(wait=True)
                self.plot_accuracy(pick.value)
                plt.show()

        pick.observe(draw, names="value")
        draw()
        return widgets.VBox([pick, out])


def profile_figure(profiles: dict, classes=()):
    """Bar plot of the training class profiles (samples per class, head to tail), one bar group per level."""
    import matplotlib.pyplot as plt

    levels = list(profiles)
    order = profiles[levels[0]]["order"]
    x = np.arange(len(order))
    width = 0.8 / len(levels)
    fig, ax = plt.subplots(figsize=(6.5, 3))
    for k, lv in enumerate(levels):
        p = profiles[lv]
        ax.bar(x + (k - (len(levels) - 1) / 2) * width, [p["counts"][c] for c in p["order"]], width,
               label=f"{lv} (n_max/n_min = {p['ratio']:.1f})")
    ax.set_xticks(x, [classes[c] if c < len(classes) else str(c) for c in order])
    ax.set_ylabel("training samples")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ the run


class _Context:
    """Dataset, split, imbalanced training sets and rendered views shared by the cells."""

    def __init__(self, cfg: BiasConfig):
        from ..data import get_dataset
        from ..device import pick_device
        from ..train import TrainConfig

        self.cfg = cfg
        self.device = pick_device(cfg.device)
        kw = {}
        if cfg.dataset.startswith("synthetic"):
            kw = {"n": cfg.n, "proportions": "uniform"}
        self.ds = get_dataset(cfg.dataset, preset=cfg.preset, root=cfg.root, intensity=cfg.intensity,
                              seed=cfg.seed, **kw)
        if self.ds.task != "classification":
            raise ValueError(f"dataset: the bias study needs a classification dataset, {cfg.dataset!r} is for {self.ds.task}")
        self.classes = list(self.ds.classes)
        targets = np.asarray(self.ds.targets)
        rng = np.random.default_rng([cfg.seed, 12])
        test = []
        for c in range(len(self.classes)):
            members = np.flatnonzero(targets == c)
            if members.size <= cfg.test_per_class:
                raise ValueError(f"test_per_class: class {self.classes[c]!r} has {members.size} samples, "
                                 f"needs more than {cfg.test_per_class} (test samples plus training samples)")
            test.append(rng.permutation(members)[: cfg.test_per_class])
        self.test_idx = np.sort(np.concatenate(test))
        self.pool_idx = np.setdiff1d(np.arange(len(targets)), self.test_idx)
        self.tcfg = TrainConfig(task="classification", preset=cfg.preset, epochs=cfg.epochs, seed=cfg.seed,
                                device=str(self.device), progress=False).resolved("classification")
        self._views = {}

    def train_set(self, level: str, seed: int):
        from ..data import make_imbalanced

        return make_imbalanced(self.ds, level, self.cfg.imbalance_ratio, seed=seed, indices=self.pool_idx,
                               order=list(range(len(self.classes))))

    def views(self, name: str):
        from ..isp import Pipeline
        from .views import ViewSet, render_views

        if name not in self._views:
            raw = self.ds.raw_tensor().to(self.device)
            with torch.no_grad():
                v = render_views(raw, Pipeline.static(name, self.ds.camera, device=self.device))
            self._views[name] = ViewSet(v, self.ds, name=name)
        return self._views[name]


def _json_ready(m: dict) -> dict:
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in m.items()}


def run_cell(cfg: BiasConfig, level: str, method: str, seed_index: int, ctx: _Context | None = None) -> dict:
    """Train and test one cell, or reload it from ``cfg.out``; returns condition -> metrics."""
    from ..augment import RandomISP
    from ..metrics import class_spread
    from ..train import build_task_model, discard_checkpoint, evaluate, fit
    from .adjustment import build_pipeline
    from .corruptions import corrupt
    from .synthesis import _Subset
    from .views import ViewSet, render_views

    cfg = cfg.resolved()
    path = Path(cfg.out) / "cells" / level / method / f"seed{seed_index}.json"
    if path.exists():
        return read_json(path)
    ctx = ctx or _Context(cfg)
    seed = cfg.seed + seed_index
    train = ctx.train_set(level, seed)
    ckpt = path.parent / f"checkpoint-seed{seed_index}"
    tcfg = replace(ctx.tcfg, seed=seed, augment=METHOD_AUGMENT[method], checkpoint_dir=str(ckpt))
    model = build_task_model(tcfg, num_classes=len(ctx.classes))
    if method == "isp_aug":
        pipe, data = RandomISP(ctx.ds.camera, cfg.aug_configs, default=cfg.train_config), (ctx.ds, train.indices)
    elif method == "adjustment":
        pipe, data = build_pipeline("learned", ctx.ds.camera), (ctx.ds, train.indices)
    else:
        pipe, data = nn.Identity(), (ctx.views(cfg.train_config), train.indices)
    fit(model, pipe, data, None, tcfg)
    eval_cfg = replace(tcfg, checkpoint_dir=None)
    if method == "adjustment":
        pipe.eval()
        with torch.no_grad():
            own = ViewSet(render_views(ctx.ds.raw_tensor(ctx.test_idx.tolist()).to(ctx.device), pipe),
                          _Subset(ctx.ds, ctx.test_idx))
        own_idx = np.arange(len(ctx.test_idx))
    else:
        own, own_idx = ctx.views(cfg.train_config), ctx.test_idx
    results = {"clean": _json_ready(evaluate(model, nn.Identity(), (own, own_idx), eval_cfg))}
    ref = results["clean"]["per_class_accuracy"]
    sub = _Subset(ctx.ds, ctx.test_idx)
    own_idx_t = torch.as_tensor(own_idx, dtype=torch.long, device=own.views.device)
    for k, c in enumerate(cfg.corruptions):
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + k)
        x = corrupt(own.views[own_idx_t], c, cfg.severity, generator=gen)
        m = evaluate(model, nn.Identity(), ViewSet(x, sub), eval_cfg)
        results[f"cor:{c}@{cfg.severity}"] = _json_ready(m)
    for c in cfg.drift_configs:
        results[f"isp:{c}"] = _json_ready(evaluate(model, nn.Identity(), (ctx.views(c), ctx.test_idx), eval_cfg))
    for key, m in results.items():
        if key != "clean":
            m.update(class_spread(m["per_class_accuracy"], reference=ref))
    results["_profile"] = train.profile()
    write_json(path, results)
    discard_checkpoint(ckpt)
    return results


def run_bias_study(cfg: BiasConfig) -> BiasResult:
    """Run (or resume) every (level, method, seed) cell and assemble, save and return the result."""
    from tqdm.auto import tqdm

    cfg = cfg.resolved()
    t0 = time.perf_counter()
    ctx = None
    cells, profiles = {}, {}
    jobs = [(lv, m, s) for lv in cfg.levels for m in cfg.methods for s in range(cfg.seeds)]
    for lv, m, s in tqdm(jobs, desc="bias cells", disable=not cfg.progress):
        path = Path(cfg.out) / "cells" / lv / m / f"seed{s}.json"
        if ctx is None and not path.exists():
            ctx = _Context(cfg)
        res = run_cell(cfg, lv, m, s, ctx)
        if s == 0:
            profiles.setdefault(lv, {k: res["_profile"][k] for k in ("counts", "order", "ratio", "n")})
        cells.setdefault(lv, {}).setdefault(m, []).append({k: v for k, v in res.items() if k != "_profile"})
    ctx = ctx or _Context(cfg)
    test_counts = np.bincount(np.asarray(ctx.ds.targets)[ctx.test_idx], minlength=len(ctx.classes)).tolist()
    prev = Path(cfg.out) / "result.json"
    seconds = time.perf_counter() - t0
    if prev.exists():  # keep the wall time of the run that computed the cells
        seconds = max(seconds, float(read_json(prev).get("seconds", 0.0)))
    result = BiasResult(config=cfg.to_dict(), classes=ctx.classes, profiles=profiles, cells=cells, seconds=seconds,
                        test_counts=test_counts)
    result.save()
    return result


__all__ = ["BIAS_PRESETS", "BOOK_GRIDS", "GROUPS", "LEVELS", "METHODS", "BiasConfig", "BiasResult", "mean_ci", "profile_figure",
           "run_bias_study", "run_cell"]
