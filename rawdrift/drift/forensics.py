"""Drift control 2: drift forensics by gradient search in the ISP parameter space.

A task model is trained on views of the default parametrized data model
``Pipeline.parametrized(camera)`` and then frozen. For each parameter group
(``bl dm wb cc sh dn gc``, or ``all`` of them) and each weight ``lambda >= 0``,
a copy of the data model whose only trainable parameters are that group's is
optimised with Adam to minimise (paper Section 5.2, eq. (6))::

    lambda * ||V - V~||^2  -  L(V~, Y)

where ``V`` are the default views, ``V~`` the views of the perturbed data model
and ``L`` the task loss (cross-entropy, or binary cross-entropy with logits for
segmentation). Normalisation: ``||V - V~||^2`` is the mean over the batch of the
squared difference *averaged over channels and pixels* (a per-pixel mean squared
error), so ``lambda`` does not depend on the image size. A visible view change
has a mean squared error of about 1e-3 to 1e-2 while the task loss is of order
one, so the interesting weights lie around 1e1 to 1e4 (the default sweep is
1e4 ... 1 and 0). Nothing else is added:
the authors' released code also added an SSIM term with the wrong sign; here
there is none.

At the defaults the penalty and its gradient are zero, and Adam's first steps
move every free parameter by about ``lr`` whatever their gradient's scale, so
``lambda`` only acts once the search has left the defaults: give the search
enough steps (``epochs``, a smaller ``batch_size``) for the sweep to separate.

Constraints (``ForensicsConfig.constraint``):

- ``"l2_penalty"``: eq. (6) as printed, the relaxed l2 constraint.
- ``"box"``: eq. (6) plus, after every Adam step, each parameter is clamped to
  ``theta0 +- epsilon * max(max|theta0|, 0.05)`` (per parameter tensor; the floor
  keeps the box open for parameters whose default is ~0, such as the microscopy
  black level). ``epsilon`` is relative (default 0.1).
- ``"linf_view"``: eq. (6) plus an l-infinity budget on the views,
  ``max |V - V~| <= epsilon`` (default 0.05). Views are a nonlinear function of
  theta, so there is no closed-form projection; instead, after each step, if the
  current batch violates the budget the parameters are pulled back along the
  segment to the defaults, ``theta0 + t (theta - theta0)``, with ``t`` found by
  bisection (``t = 0``, the defaults, is always feasible). The same shrinking is
  applied once more at the end over every image that is evaluated (training and
  test fold), so the reported views satisfy the budget everywhere.

Reported per (group, lambda) on the held-out test fold: the task metric
(accuracy, balanced accuracy and macro-F1, the per-class accuracy vector, the
worst-class accuracy, the class spread and each class's accuracy drop relative
to the clean default data model; or IoU and Dice), the loss, the
**mean over images of the per-image l2 norm** ``||V_i - V~_i||_2`` (sum over
channels and pixels), the per-pixel RMS difference ``sqrt(mean (V - V~)^2)``, the
largest absolute difference, the final theta~ (lists per parameter) and
``||theta~ - theta0||_2`` over the group's parameters.

Everything is cached under ``out``: the task model (``model/model.pt``,
atomically, its training resumable from ``model/checkpoint``) and one JSON (+ a
few sample views) per (constraint, group, lambda) cell, so a sweep resumes.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_range
from ..io import atomic_path, read_json, write_json, write_npz, write_text
from ..metrics import class_spread
from ..presets import get_preset
from ._config import RunConfig
from ._results import read_result, write_result

#: Parameter groups: the ISP stage codes, and ``all`` (every parameter at once).
GROUPS = ("bl", "dm", "wb", "cc", "sh", "dn", "gc", "all")
GROUP_NAMES = {"bl": "black level", "dm": "demosaicing", "wb": "white balance", "cc": "colour correction",
               "sh": "sharpening", "dn": "denoising", "gc": "gamma", "all": "all parameters"}
CONSTRAINTS = ("l2_penalty", "box", "linf_view")
DEFAULT_EPSILON = {"l2_penalty": None, "box": 0.1, "linf_view": 0.05}
DEFAULT_LAMBDAS = (1e4, 1e3, 1e2, 1e1, 1.0, 0.0)
PRIMARY = {"classification": "accuracy", "segmentation": "iou"}
#: What a classification record keeps of :func:`rawdrift.metrics.classification_metrics`.
CLASSIFICATION_KEYS = ("accuracy", "balanced_accuracy", "macro_f1", "per_class_accuracy", "worst_class_accuracy",
                       "worst_class", "class_range", "class_std")
BOX_FLOOR = 0.05
_BISECTION_STEPS = 14


@dataclass
class ForensicsConfig(RunConfig):
    """Settings of one drift-forensics sweep; ``None`` fields come from the preset.

    Shared fields (``dataset``, ``preset``, ``seed``, ``n``, ``root``, ``device``,
    ``out``, ``progress``): see :class:`~rawdrift.drift._config.RunConfig`.

    Args:
        task: ``None`` infers it from the dataset.
        groups: parameter groups to attack one at a time (see :data:`GROUPS`).
        lambdas: weights of the view penalty, each ``>= 0``; ``0`` is unconstrained ascent.
        epochs: passes of the adversarial search over the training fold (preset ``forensics_epochs``).
        lr: Adam learning rate of the data-model parameters.
        constraint: ``"l2_penalty"``, ``"box"`` or ``"linf_view"`` (see the module docstring).
        epsilon: box half-width (relative) or l-inf view budget; ``None``: 0.1 / 0.05.
        model_epochs: epochs to train the task model (preset ``epochs``).
        batch_size: batch size of the search (preset's task batch size).
        model_path: a task-model state dict to reuse (written there if missing);
            default ``out/model/model.pt``.
        n_samples: test images whose perturbed views are kept for figures.
        intensity: raw intensity of the dataset, as in :func:`rawdrift.data.get_dataset`.
    """

    KIND: ClassVar[str] = "forensics"

    task: str | None = None
    groups: tuple[str, ...] = GROUPS
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    epochs: int | None = None
    lr: float = 5e-3
    constraint: str = "l2_penalty"
    epsilon: float | None = None
    model_epochs: int | None = None
    batch_size: int | None = None
    model_path: str | None = None
    n_samples: int = 4
    intensity: float = 1.0

    def resolved(self) -> "ForensicsConfig":
        """A validated copy with every ``None`` field filled from the preset.

        >>> c = ForensicsConfig(preset="paper", groups=("bl", "all"), lambdas=(10, 0)).resolved()
        >>> (c.epochs, c.lambdas, c.out)
        (20, (10.0, 0.0), 'runs/forensics-synthetic-microscopy-paper')
        """
        p, common = self._resolve_common()
        groups = (self.groups,) if isinstance(self.groups, str) else tuple(self.groups)
        if not groups:
            raise ValueError("groups: expected at least one group")
        for g in groups:
            check_choice(g, GROUPS, "groups")
        lambdas = (self.lambdas,) if isinstance(self.lambdas, (int, float)) else tuple(self.lambdas)
        if not lambdas:
            raise ValueError("lambdas: expected at least one value")
        for lam in lambdas:
            if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
                raise ValueError(f"lambdas: expected finite values >= 0, got {lam!r}")
        check_choice(self.constraint, CONSTRAINTS, "constraint")
        eps = self.epsilon if self.epsilon is not None else DEFAULT_EPSILON[self.constraint]
        if eps is not None:
            check_range(eps, "epsilon", low=0.0)
            if eps <= 0:
                raise ValueError(f"epsilon: expected a value > 0, got {eps!r}")
        check_range(self.lr, "lr", low=0.0)
        if self.lr <= 0:
            raise ValueError(f"lr: expected a value > 0, got {self.lr!r}")
        epochs = check_int(self.epochs if self.epochs is not None else p.forensics_epochs, "epochs", minimum=1)
        model_epochs = check_int(self.model_epochs if self.model_epochs is not None else p.epochs,
                                 "model_epochs", minimum=1)
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", minimum=1)
        check_int(self.n_samples, "n_samples", minimum=0)
        if self.task is not None:
            check_choice(self.task, tuple(PRIMARY), "task")
        return replace(self, **common, groups=tuple(dict.fromkeys(groups)),
                       lambdas=tuple(dict.fromkeys(float(x) for x in lambdas)), epsilon=eps, epochs=epochs,
                       model_epochs=model_epochs)


# ----------------------------------------------------------------------------- result


@dataclass
class ForensicsResult:
    """One sweep: a record per (group, lambda) plus the clean reference.

    ``records[i]`` has ``group``, ``lambda``, the test metrics (``accuracy`` ...
    or ``iou`` ...), ``loss`` (test), ``train_loss`` (training fold, end of the
    search), ``l2`` (mean per-image l2 of ``V - V~``), ``rms`` (per-pixel RMS),
    ``linf``, ``theta`` ({parameter: nested list}), ``theta_change`` and ``history``
    (objective per epoch). Classification records also hold ``per_class_accuracy``,
    ``worst_class_accuracy``, ``worst_class``, ``class_range``, ``class_std`` and, relative
    to ``clean``, ``per_class_drop`` and ``worst_class_drop``
    (:func:`rawdrift.metrics.class_spread`). ``clean`` holds the same metrics for the
    defaults; ``samples`` maps ``"group|lambda"`` (and ``"clean"``) to uint8 views
    ``(n, H, W, 3)``; ``classes`` names the classes.
    """

    config: dict
    task: str
    metric: str
    groups: list
    lambdas: list
    clean: dict
    default_theta: dict
    records: list
    samples: dict = field(default_factory=dict, repr=False)
    seconds: float = 0.0
    classes: list = field(default_factory=list)

    # -- access -----------------------------------------------------------------------------
    def record(self, group: str, lam: float) -> dict:
        """The record of ``group`` at ``lam``."""
        for r in self.records:
            if r["group"] == group and r["lambda"] == float(lam):
                return r
        raise KeyError(f"group/lambda: no record for {group!r} at {lam!r}")

    def table(self, key: str | None = None) -> np.ndarray:
        """``(groups, lambdas)`` array of ``key`` (default: the primary metric), e.g. ``"l2"``,
        ``"balanced_accuracy"``, ``"worst_class_accuracy"`` or ``"worst_class_drop"``;
        ``(groups, lambdas, classes)`` for the vectors ``"per_class_accuracy"`` and ``"per_class_drop"``."""
        key = key or self.metric
        missing = [r["group"] for r in self.records if key not in r]
        if missing:
            raise KeyError(f"key: {key!r} is not in the records (of groups {sorted(set(missing))}); "
                           f"available: {sorted(k for k in self.records[0] if k not in ('theta', 'history'))}")
        return np.array([[self.record(g, lam)[key] for lam in self.lambdas] for g in self.groups], dtype=float)

    def has_classwise(self) -> bool:
        """Whether every record holds per-class accuracies (classification, any result saved since)."""
        return self.task == "classification" and all("per_class_accuracy" in r for r in self.records)

    def _class_name(self, k: int) -> str:
        return str(self.classes[k]) if k < len(self.classes) else str(k)

    def largest_budget(self) -> float:
        """The weakest constraint of the sweep: the smallest lambda (0 = unconstrained)."""
        return float(min(self.lambdas))

    def drops(self) -> dict[str, float]:
        """Largest drop of the primary metric below the clean value, per group."""
        t = self.table()
        return {g: float(self.clean[self.metric] - t[i].min()) for i, g in enumerate(self.groups)}

    def to_markdown(self) -> str:
        m = self.metric
        cfg = self.config
        lines = [f"# Drift forensics: {cfg['dataset']} ({cfg['preset']} preset, constraint {cfg['constraint']}"
                 + (f", epsilon {cfg['epsilon']:g}" if cfg.get("epsilon") is not None else "")
                 + f", {cfg['epochs']} epochs)", "",
                 f"Clean test {m} with the default data model: {self.clean[m]:.3f}. Cells: {m} after the "
                 "search / mean per-image l2 of the view change.", "",
                 "| group | " + " | ".join(f"lambda={lam:g}" for lam in self.lambdas) + " | largest drop |",
                 "|---|" + "---|" * (len(self.lambdas) + 1)]
        drops = self.drops()
        for g in self.groups:
            cells = [f"{self.record(g, lam)[m]:.3f} / {self.record(g, lam)['l2']:.3g}" for lam in self.lambdas]
            lines.append(f"| {g} ({GROUP_NAMES[g]}) | " + " | ".join(cells) + f" | {drops[g]:.3f} |")
        order = sorted(drops, key=lambda g: -drops[g])
        lines += ["", "Groups by largest drop: " + ", ".join(f"{g} ({drops[g]:.3f})" for g in order) + "."]
        if self.has_classwise():
            lam = self.largest_budget()
            lines += ["", f"Who pays, at lambda={lam:g} (the largest budget): clean worst-class accuracy "
                      f"{self.clean['worst_class_accuracy']:.3f}.", "",
                      "| group | accuracy | balanced accuracy | macro-F1 | worst-class accuracy | "
                      "largest class drop (class) |", "|---|---|---|---|---|---|"]
            for g in self.groups:
                r = self.record(g, lam)
                drop = np.asarray(r["per_class_drop"], dtype=float)
                who = self._class_name(int(np.nanargmax(drop))) if not np.isnan(drop).all() else "-"
                lines.append(f"| {g} | {r['accuracy']:.3f} | {r['balanced_accuracy']:.3f} | {r['macro_f1']:.3f} | "
                             f"{r['worst_class_accuracy']:.3f} | {r['worst_class_drop']:.3f} ({who}) |")
            lines.append("")
        lines.append(f"Wall time: {self.seconds:.0f} s.")
        return "\n".join(lines)

    # -- persistence ------------------------------------------------------------------------
    def save(self, out=None) -> Path:
        meta = {k: v for k, v in asdict(self).items() if k != "samples"}
        out = write_result(out or self.config["out"], meta, self.samples, npz="samples.npz")
        write_text(out / "summary.md", self.to_markdown() + "\n")
        write_text(out / "sweep.csv", self._csv())
        return out

    def _csv(self) -> str:
        keys = [k for k in ("accuracy", "balanced_accuracy", "macro_f1", "worst_class_accuracy", "class_range",
                            "class_std", "worst_class_drop", "iou", "dice")
                if all(k in r for r in self.records) and (k in self.clean or k == "worst_class_drop")]
        lines = ["group,lambda," + ",".join(keys) + ",loss,l2,rms,linf,theta_change"]
        for r in self.records:
            lines.append(f"{r['group']},{r['lambda']:g}," + ",".join(f"{r[k]:.6f}" for k in keys)
                         + f",{r['loss']:.6f},{r['l2']:.6g},{r['rms']:.6g},{r['linf']:.6g},{r['theta_change']:.6g}")
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, out) -> "ForensicsResult":
        meta, samples = read_result(out, "run_forensics", npz="samples.npz")
        return cls(**meta, samples=samples)

    # -- figures ----------------------------------------------------------------------------
    def _x(self) -> tuple[np.ndarray, float | None]:
        """Lambda positions on a log axis; lambda = 0 sits one decade left of the smallest positive one."""
        lam = np.asarray(self.lambdas, dtype=float)
        pos = lam[lam > 0]
        zero_at = (pos.min() / 10 if pos.size else 1.0) if (lam == 0).any() else None
        return np.where(lam > 0, lam, zero_at if zero_at is not None else 1.0), zero_at

    def plot_sweep(self, ax=None):
        """Test metric against lambda per group, log x (Figure 6, top left)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.6))
        x, zero_at = self._x()
        order = np.argsort(x)
        t = self.table()
        for i, g in enumerate(self.groups):
            ax.plot(x[order], t[i][order], "o-", ms=4, label=g)
        ax.axhline(self.clean[self.metric], color="k", lw=0.8, ls="--", label="clean")
        ax.set_xscale("log")
        if zero_at is not None:
            ticks = sorted(set(x.tolist()))
            ax.set_xticks(ticks)
            ax.set_xticklabels(["0" if v == zero_at else f"{v:g}" for v in ticks])
        ax.set_xlabel("lambda (weight of the view penalty)")
        ax.set_ylabel(f"test {self.metric}")
        ax.legend(fontsize=7, ncol=2)
        ax.set_title("adversarial search per parameter group", fontsize=9)
        return ax.figure

    def plot_l2(self, ax=None):
        """Mean per-image l2 of the view change against the test metric, per group (Figure 6, top right)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5.5, 3.6))
        t, l2 = self.table(), self.table("l2")
        for i, g in enumerate(self.groups):
            order = np.argsort(l2[i])
            ax.plot(np.maximum(l2[i][order], 1e-8), t[i][order], "o-", ms=4, label=g)
        ax.axhline(self.clean[self.metric], color="k", lw=0.8, ls="--", label="clean")
        ax.set_xscale("log")
        ax.set_xlabel("mean per-image l2 of V - V~")
        ax.set_ylabel(f"test {self.metric}")
        ax.legend(fontsize=7, ncol=2)
        ax.set_title("size of the view change vs damage", fontsize=9)
        return ax.figure

    def plot_figure6(self):
        """The two top panels of Figure 6 side by side."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        self.plot_sweep(axes[0])
        self.plot_l2(axes[1])
        fig.tight_layout()
        return fig

    def plot_class_drops(self, lam: float | None = None, ax=None):
        """Who pays: per-class accuracy drop (clean minus searched) as a groups x classes heatmap at ``lam``
        (default: the largest budget, the smallest lambda). Red: the class lost accuracy."""
        import matplotlib.pyplot as plt

        if not self.has_classwise():
            raise ValueError("result: per-class drops need a classification sweep with per-class accuracies")
        lam = self.largest_budget() if lam is None else float(lam)
        check_choice(lam, self.lambdas, "lam")
        drop = np.array([self.record(g, lam)["per_class_drop"] for g in self.groups], dtype=float)
        K = drop.shape[1]
        if ax is None:
            _, ax = plt.subplots(figsize=(2.2 + 0.55 * K, 1.4 + 0.38 * len(self.groups)), layout="constrained")
        lim = float(np.nanmax(np.abs(drop))) if np.isfinite(drop).any() else 1.0
        lim = lim or 1.0
        im = ax.imshow(drop, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        for (r, c), v in np.ndenumerate(drop):
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 * lim else "black")
        ax.set_xticks(range(K), [self._class_name(k) for k in range(K)], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(self.groups)), [f"{g} ({GROUP_NAMES[g]})" for g in self.groups], fontsize=8)
        ax.set_title(f"per-class accuracy drop at lambda={lam:g} (clean minus searched)", fontsize=9)
        ax.figure.colorbar(im, ax=ax, fraction=0.04).set_label("drop (red: lost)", fontsize=8)
        return ax.figure

    def plot_samples(self, group: str | None = None, sample: int = 0):
        """One test image processed by the searched data model of ``group`` at each lambda (Figure 6, bottom)."""
        import matplotlib.pyplot as plt

        group = group or ("all" if "all" in self.groups else self.groups[0])
        check_choice(group, self.groups, "group")
        if "clean" not in self.samples:
            raise ValueError("samples: this result holds no sample views (n_samples=0)")
        check_int(sample, "sample", minimum=0)
        if sample >= len(self.samples["clean"]):
            raise ValueError(f"sample: expected < {len(self.samples['clean'])}, got {sample}")
        lams = sorted(self.lambdas, reverse=True)
        fig, axes = plt.subplots(1, len(lams) + 1, figsize=(1.7 * (len(lams) + 1), 2.1))
        axes[0].imshow(self.samples["clean"][sample])
        axes[0].set_title(f"default\n{self.metric} {self.clean[self.metric]:.2f}", fontsize=8)
        for ax, lam in zip(axes[1:], lams):
            r = self.record(group, lam)
            ax.imshow(self.samples[f"{group}|{lam:g}"][sample])
            ax.set_title(f"lambda={lam:g}\n{self.metric} {r[self.metric]:.2f}", fontsize=8)
        for ax in axes:
            ax.axis("off")
        fig.suptitle(f"searched data model: {GROUP_NAMES[group]} ({group})", fontsize=9)
        fig.tight_layout()
        return fig


# ----------------------------------------------------------------------------- signature


@dataclass
class ForensicSignature:
    """What a model provider hands to a user: which data-model changes are safe, which to avoid.

    ``groups[g]`` holds ``safe`` (the largest change found that keeps the metric
    within ``tolerance`` of ``clean``: ``l2``, ``rms``, ``theta_change``, ``lambda``,
    ``metric``; ``None`` if no run of the group stayed within tolerance) and
    ``avoid`` (every searched configuration that broke the model: ``lambda``,
    ``metric``, ``l2``, ``theta_change``, ``theta``), worst first.
    """

    dataset: str
    task: str
    metric: str
    clean: float
    tolerance: float
    constraint: str
    groups: dict

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> Path:
        """Write the signature as JSON (``path``) and Markdown (same name, ``.md``)."""
        path = Path(path)
        write_json(path, self.to_dict())
        write_text(path.with_suffix(".md"), self.to_markdown() + "\n")
        return path

    @classmethod
    def load(cls, path) -> "ForensicSignature":
        return cls(**read_json(path))

    def to_markdown(self) -> str:
        m = self.metric
        lines = [f"# Forensic signature: {self.task} model on {self.dataset}", "",
                 f"Clean test {m} {self.clean:.3f}; a data model is *safe* while {m} stays >= "
                 f"{self.clean - self.tolerance:.3f} (tolerance {self.tolerance:g}). Search constraint: "
                 f"{self.constraint}.", "",
                 "| group | largest safe view change (l2 / RMS) | largest safe parameter change | "
                 f"configurations to avoid | worst {m} |", "|---|---|---|---|---|"]
        for g, s in self.groups.items():
            safe = s["safe"]
            sv = "none found" if safe is None else f"{safe['l2']:.3g} / {safe['rms']:.3g}"
            sp = "-" if safe is None else f"{safe['theta_change']:.3g}"
            worst = f"{s['avoid'][0]['metric']:.3f}" if s["avoid"] else "-"
            lines.append(f"| {g} ({GROUP_NAMES.get(g, g)}) | {sv} | {sp} | {len(s['avoid'])} | {worst} |")
        lines += ["", "Do not deploy with:"]
        bad = [(g, a) for g, s in self.groups.items() for a in s["avoid"]]
        if not bad:
            lines.append("- nothing found: no searched configuration dropped the metric beyond the tolerance.")
        for g, a in sorted(bad, key=lambda t: t[1]["metric"]):
            lines.append(f"- {g}: searched at lambda={a['lambda']:g}, {m} {a['metric']:.3f}, view l2 {a['l2']:.3g}, "
                         f"parameter change {a['theta_change']:.3g}")
        return "\n".join(lines)


def signature(result: ForensicsResult, tolerance: float = 0.05) -> ForensicSignature:
    """The :class:`ForensicSignature` of a sweep at ``tolerance`` (absolute, in metric units).

    >>> rec = lambda lam, acc, l2: {"group": "bl", "lambda": lam, "accuracy": acc, "l2": l2, "rms": l2 / 10,
    ...                             "theta_change": l2 / 2, "theta": {}}
    >>> res = ForensicsResult({"dataset": "d", "constraint": "l2_penalty"}, "classification", "accuracy",
    ...                       ["bl"], [10.0, 0.0], {"accuracy": 0.9}, {}, [rec(10.0, 0.88, 1.0), rec(0.0, 0.5, 4.0)])
    >>> s = signature(res, 0.05).groups["bl"]
    >>> s["safe"]["l2"], [a["metric"] for a in s["avoid"]]
    (1.0, [0.5])
    """
    check_range(tolerance, "tolerance", low=0.0)
    if not isinstance(result, ForensicsResult):
        raise TypeError(f"result: expected a ForensicsResult, got {type(result).__name__}")
    m = result.metric
    clean = float(result.clean[m])
    groups = {}
    for g in result.groups:
        recs = [r for r in result.records if r["group"] == g]
        ok = [r for r in recs if r[m] >= clean - tolerance]
        bad = [r for r in recs if r[m] < clean - tolerance]
        safe = None
        if ok:
            best = max(ok, key=lambda r: (r["l2"], r["theta_change"]))
            safe = {"lambda": best["lambda"], "metric": best[m], "l2": best["l2"], "rms": best["rms"],
                    "theta_change": best["theta_change"]}
        avoid = [{"lambda": r["lambda"], "metric": r[m], "l2": r["l2"], "theta_change": r["theta_change"],
                  "theta": r["theta"]} for r in sorted(bad, key=lambda r: r[m])]
        groups[g] = {"safe": safe, "avoid": avoid}
    cfg = result.config
    return ForensicSignature(dataset=cfg.get("dataset", ""), task=result.task, metric=m, clean=clean,
                             tolerance=float(tolerance), constraint=cfg.get("constraint", ""), groups=groups)


# ----------------------------------------------------------------------------- the search


def _group_of(name: str) -> str | None:
    """The stage code of parameter ``name`` (``None`` for stages added with ``Pipeline.insert_stage``)."""
    from ..isp.pipeline import STAGE_MODULES

    mod = name.split(".", 1)[0]
    return next((code for code, m in STAGE_MODULES.items() if m == mod), None)


def group_parameters(pipeline, group: str) -> dict[str, nn.Parameter]:
    """``{name: parameter}`` of ``pipeline`` in ``group`` (``"all"``: every parameter).

    >>> from rawdrift.isp import Pipeline
    >>> from rawdrift.isp.camera import RAW_DRONE
    >>> sorted(group_parameters(Pipeline.parametrized(RAW_DRONE), "gc"))
    ['gamma_correction.gamma']
    """
    check_choice(group, GROUPS, "group")
    return {n: p for n, p in pipeline.named_parameters() if group == "all" or _group_of(n) == group}


def theta_dict(pipeline) -> dict[str, list]:
    """Every parameter of ``pipeline`` as nested lists (JSON-ready)."""
    return {n: p.detach().cpu().tolist() for n, p in pipeline.named_parameters()}


class _Data:
    """Raw crops with a margin, targets and default views of one fold, on the device."""

    def __init__(self, raw: Tensor, target: Tensor, size: int, pipeline, batch_size: int):
        from ..train import center_crop_offset

        h, w = raw.shape[-2:]
        oy, ox = center_crop_offset(h, size), center_crop_offset(w, size)
        # 4 px of context make the crop exact (3x3 demosaic and sharpening, 5x5 blur); keep it even.
        my = min(8, oy, h - oy - size) // 2 * 2
        mx = min(8, ox, w - ox - size) // 2 * 2
        self.raw = raw[..., oy - my : oy + size + my, ox - mx : ox + size + mx].contiguous()
        self.margin = (my, mx)
        self.size = size
        self.target = target
        if target.ndim == 4:
            self.target = target[..., oy : oy + size, ox : ox + size].contiguous()
        self.batch_size = batch_size
        with torch.no_grad():
            self.views = torch.cat([self.render(pipeline, self.raw[i : i + batch_size])
                                    for i in range(0, len(self.raw), batch_size)])

    def render(self, pipeline, raw: Tensor) -> Tensor:
        my, mx = self.margin
        v = pipeline(raw)
        return v[..., my : my + self.size, mx : mx + self.size]

    def __len__(self):
        return len(self.raw)


class _Task:
    """The frozen task model with its input normalisation and loss."""

    def __init__(self, model, task: str, norm, device):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.task = task
        self.mean = self.std = None
        if norm is not None:
            self.mean = torch.tensor(norm[0], device=device).reshape(1, 3, 1, 1)
            self.std = torch.tensor(norm[1], device=device).reshape(1, 3, 1, 1)

    def logits(self, view: Tensor) -> Tensor:
        if self.mean is not None:
            view = (view - self.mean) / self.std
        return self.model(view)

    def loss(self, logits: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
        if self.task == "classification":
            return F.cross_entropy(logits, target, reduction=reduction)
        return F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)


@torch.no_grad()
def _evaluate(task: _Task, pipeline, data: _Data, num_classes: int, n_samples: int = 0) -> tuple[dict, np.ndarray]:
    """Metrics of the views of ``pipeline`` on ``data``, view-change norms, and uint8 sample views."""
    from .. import metrics as M

    pipeline.eval()
    total, preds = 0.0, []
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    l2, sq, linf, samples = [], 0.0, 0.0, []
    for s in range(0, len(data), data.batch_size):
        v = data.render(pipeline, data.raw[s : s + data.batch_size])
        t = data.target[s : s + data.batch_size]
        d = v - data.views[s : s + data.batch_size]
        l2.append(d.flatten(1).norm(dim=1).cpu())
        sq += float((d**2).sum())
        linf = max(linf, float(d.abs().max()))
        logits = task.logits(v)
        total += float(task.loss(logits, t, reduction="sum" if task.task == "classification" else "mean")) * (
            1 if task.task == "classification" else len(v))
        if task.task == "classification":
            preds.append(logits.argmax(1).cpu())
        else:
            c = M.segmentation_counts(logits, t)
            counts = {k: counts[k] + c[k] for k in counts}
        have = sum(len(x) for x in samples)
        if have < n_samples:
            samples.append(v[: n_samples - have].cpu())
    n = len(data)
    out = {"loss": total / n}
    if task.task == "classification":
        m = M.classification_metrics(data.target.cpu(), torch.cat(preds), num_classes)
        out.update({k: m[k] for k in CLASSIFICATION_KEYS if k in m})
    else:
        m = M.segmentation_metrics(counts)
        out.update({k: m[k] for k in ("iou", "dice")})
    out.update({"l2": float(torch.cat(l2).mean()), "rms": math.sqrt(sq / data.views.numel()), "linf": linf})
    arr = (torch.cat(samples).clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8) if samples \
        else np.zeros((0, data.size, data.size, 3), np.uint8)
    return out, arr


def _box_bounds(theta0: dict[str, Tensor], eps: float) -> dict[str, tuple[Tensor, Tensor]]:
    out = {}
    for n, t in theta0.items():
        half = eps * max(float(t.abs().max()), BOX_FLOOR)
        out[n] = (t - half, t + half)
    return out


@torch.no_grad()
def _shrink_to_budget(params: dict[str, nn.Parameter], theta0: dict[str, Tensor], max_diff, eps: float) -> float:
    """Pull ``params`` toward ``theta0`` along the segment until ``max_diff() <= eps``; returns the kept fraction t."""
    if max_diff() <= eps:
        return 1.0
    target = {n: p.detach().clone() for n, p in params.items()}

    def set_t(t):
        for n, p in params.items():
            p.copy_(theta0[n] + t * (target[n] - theta0[n]))

    lo, hi = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        set_t(mid)
        if max_diff() <= eps:
            lo = mid
        else:
            hi = mid
    set_t(lo)
    return lo


def search(task: _Task, default, train: _Data, group: str, lam: float, cfg: ForensicsConfig,
           generator: torch.Generator) -> tuple[nn.Module, list[dict]]:
    """Optimise a copy of ``default`` on eq. (6) for ``group`` at ``lam``; returns it and the per-epoch history."""
    pipe = copy.deepcopy(default).freeze()
    params = group_parameters(pipe, group)
    for p in params.values():
        p.requires_grad_(True)
    theta0 = {n: p.detach().clone() for n, p in params.items()}
    bounds = _box_bounds(theta0, cfg.epsilon) if cfg.constraint == "box" else None
    opt = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    bs = cfg.batch_size
    history = []
    for epoch in range(cfg.epochs):
        pipe.train()
        perm = torch.randperm(len(train), generator=generator).to(train.raw.device)
        tot = {"objective": 0.0, "penalty": 0.0, "loss": 0.0}
        for s in range(0, len(train), bs):
            idx = perm[s : s + bs]
            raw, v0, y = train.raw[idx], train.views[idx], train.target[idx]
            v = train.render(pipe, raw)
            penalty = ((v - v0) ** 2).flatten(1).mean(1).mean()
            loss = task.loss(task.logits(v), y)
            objective = lam * penalty - loss
            opt.zero_grad(set_to_none=True)
            objective.backward()
            opt.step()
            with torch.no_grad():
                if bounds is not None:
                    for n, p in params.items():
                        p.copy_(torch.maximum(torch.minimum(p, bounds[n][1]), bounds[n][0]))
                elif cfg.constraint == "linf_view":
                    _shrink_to_budget(params, theta0, lambda: float((train.render(pipe, raw) - v0).abs().max()),
                                      cfg.epsilon)
            for k, val in (("objective", objective), ("penalty", penalty), ("loss", loss)):
                tot[k] += float(val.detach()) * len(idx)
        history.append({"epoch": epoch + 1, **{k: v / len(train) for k, v in tot.items()}})
    pipe.freeze()
    return pipe, history


def _max_diff_all(pipe, datas) -> float:
    m = 0.0
    with torch.no_grad():
        for d in datas:
            for s in range(0, len(d), d.batch_size):
                v = d.render(pipe, d.raw[s : s + d.batch_size])
                m = max(m, float((v - d.views[s : s + d.batch_size]).abs().max()))
    return m


def _add_classwise(rec: dict, task, default, test, num_classes: int, group: str) -> dict:
    """A cell cached before per-class metrics were recorded: evaluate its stored theta again (no new search)."""
    pipe = copy.deepcopy(default).freeze()
    with torch.no_grad():
        for n, p in group_parameters(pipe, group).items():
            p.copy_(torch.as_tensor(rec["theta"][n], dtype=p.dtype, device=p.device))
    ev, _ = _evaluate(task, pipe, test, num_classes)
    return {**rec, **{k: ev[k] for k in CLASSIFICATION_KEYS if k in ev}}


def _fingerprint(cfg: ForensicsConfig) -> dict:
    keep = ("dataset", "preset", "task", "epochs", "lr", "constraint", "epsilon", "model_epochs", "batch_size",
            "seed", "intensity", "n", "root", "n_samples")
    return {k: getattr(cfg, k) for k in keep}


def _cell_path(out: Path, cfg: ForensicsConfig, group: str, lam: float) -> Path:
    tag = cfg.constraint if cfg.epsilon is None else f"{cfg.constraint}-eps{cfg.epsilon:g}"
    return out / "cells" / tag / group / f"lambda={lam:g}.json"


def _task_model(ds, views, tr_idx, te_idx, tcfg, cfg: ForensicsConfig, out: Path, device, num_classes):
    """Load the cached task model or train it on the default views (resumable, atomic)."""
    from .. import train as T

    model = T.build_task_model(tcfg, num_classes=num_classes).to(device)
    path = Path(cfg.model_path) if cfg.model_path else out / "model" / "model.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        return model
    ckpt = path.parent / "checkpoint"
    res = T.fit(model, nn.Identity(), (views, tr_idx), (views, te_idx), replace(tcfg, checkpoint_dir=str(ckpt)))
    model.load_state_dict(res.model_state)
    with atomic_path(path) as tmp:
        torch.save(res.model_state, tmp)
    write_json(path.parent / "train.json", res.summary())
    T.discard_checkpoint(ckpt)
    return model


def run_forensics(cfg: ForensicsConfig) -> ForensicsResult:
    """Train (or reuse) the task model, then run the adversarial search for every group and lambda.

    Uses the first fold of a stratified split (``preset.folds`` folds) for
    training/search and its held-out fold for every reported number. Resumes from
    ``cfg.out``.
    """
    from tqdm.auto import tqdm

    from ..data import get_dataset
    from ..data.base import stratified_kfold
    from ..device import pick_device
    from ..isp import Pipeline
    from ..train import TrainConfig, normalization_for
    from .views import ViewSet, render_views

    cfg = cfg.resolved()
    t0 = time.perf_counter()
    out = Path(cfg.out)
    device = pick_device(cfg.device)
    kw = {} if cfg.n is None else {"n": cfg.n}
    ds = get_dataset(cfg.dataset, preset=cfg.preset, root=cfg.root, intensity=cfg.intensity, seed=cfg.seed, **kw)
    task = cfg.task or ds.task
    check_choice(task, tuple(PRIMARY), "task")
    metric = PRIMARY[task]
    tcfg = TrainConfig(task=task, preset=cfg.preset, epochs=cfg.model_epochs, seed=cfg.seed, device=str(device),
                       progress=cfg.progress).resolved(task)
    cfg = replace(cfg, batch_size=cfg.batch_size or tcfg.batch_size)
    folds = get_preset(cfg.preset).folds
    tr_idx, te_idx = stratified_kfold(ds.targets, folds, cfg.seed)[0]
    num_classes = len(getattr(ds, "classes", ())) or 1

    torch.manual_seed(cfg.seed)
    default = Pipeline.parametrized(ds.camera, device=device).freeze()
    raw = ds.raw_tensor().to(device)
    views = ViewSet(render_views(raw, default), ds)
    model = _task_model(ds, views, tr_idx, te_idx, tcfg, cfg, out, device, num_classes)
    task_m = _Task(model, task, normalization_for(tcfg.normalize, ds.name), device)

    target = views.mask_tensor().to(device) if task == "segmentation" else \
        torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64, device=device)
    tr_t, te_t = (torch.as_tensor(i, dtype=torch.long, device=device) for i in (tr_idx, te_idx))
    train = _Data(raw[tr_t], target[tr_t], tcfg.size, default, cfg.batch_size)
    test = _Data(raw[te_t], target[te_t], tcfg.size, default, cfg.batch_size)
    del views, raw

    clean, clean_samples = _evaluate(task_m, default, test, num_classes, cfg.n_samples)
    clean["train_loss"] = _evaluate(task_m, default, train, num_classes)[0]["loss"]
    samples = {"clean": clean_samples}
    fp = _fingerprint(cfg)
    records = []
    cells = [(g, lam) for g in cfg.groups for lam in cfg.lambdas]
    for g, lam in tqdm(cells, desc="forensics sweep", disable=not cfg.progress):
        path = _cell_path(out, cfg, g, lam)
        rec = read_json(path) if path.exists() else None
        if rec is not None and (rec.get("fingerprint") != fp or not path.with_suffix(".npz").exists()):
            rec = None
        if rec is None:
            gen = torch.Generator().manual_seed(cfg.seed * 1000 + GROUPS.index(g))
            pipe, history = search(task_m, default, train, g, lam, cfg, gen)
            if cfg.constraint == "linf_view":
                params = group_parameters(pipe, g)
                theta0 = {n: p.detach().clone() for n, p in group_parameters(default, g).items()}
                _shrink_to_budget(params, theta0, lambda: _max_diff_all(pipe, (train, test)), cfg.epsilon)
            ev, smp = _evaluate(task_m, pipe, test, num_classes, cfg.n_samples)
            ev["train_loss"] = _evaluate(task_m, pipe, train, num_classes)[0]["loss"]
            d0 = dict(default.named_parameters())
            change = math.sqrt(sum(float(((p - d0[n]) ** 2).sum()) for n, p in group_parameters(pipe, g).items()))
            rec = {"group": g, "lambda": float(lam), **ev, "theta_change": change,
                   "theta": {n: p.detach().cpu().tolist() for n, p in group_parameters(pipe, g).items()},
                   "history": history, "fingerprint": fp}
            write_npz(path.with_suffix(".npz"), views=smp)
            write_json(path, rec)
        elif task == "classification" and "per_class_accuracy" not in rec:
            rec = _add_classwise(rec, task_m, default, test, num_classes, g)
            write_json(path, rec)
        with np.load(path.with_suffix(".npz")) as z:
            samples[f"{g}|{lam:g}"] = z["views"]
        rec = {k: v for k, v in rec.items() if k != "fingerprint"}
        if task == "classification":
            spread = class_spread(rec["per_class_accuracy"], reference=clean["per_class_accuracy"])
            rec.update(per_class_drop=spread["per_class_drop"], worst_class_drop=spread["worst_class_drop"])
        records.append(rec)

    result = ForensicsResult(
        config=cfg.to_dict(), task=task, metric=metric, groups=list(cfg.groups), lambdas=list(cfg.lambdas),
        clean=clean, default_theta=theta_dict(default), records=records, samples=samples,
        seconds=time.perf_counter() - t0, classes=list(getattr(ds, "classes", ())) if task == "classification" else [],
    )
    result.save(out)
    _save_figures(result, out)
    return result


def _save_figures(result: ForensicsResult, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figs = {"figure6.png": result.plot_figure6()}
    if result.has_classwise():
        figs["class_drops.png"] = result.plot_class_drops()
    if "clean" in result.samples and len(result.samples["clean"]):
        figs["samples.png"] = result.plot_samples()
    for name, fig in figs.items():
        with atomic_path(out / name) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)


def explorer_figure(result: ForensicsResult, group: str | None = None, lam: float | None = None, sample: int = 0):
    """The explorer's picture: the default view and the view of ``group``'s searched data model at ``lam``.

    Defaults (the explorer's initial state): group ``all`` (else the first), the smallest lambda.
    """
    import matplotlib.pyplot as plt

    group = group or ("all" if "all" in result.groups else result.groups[0])
    check_choice(group, result.groups, "group")
    lam = min(result.lambdas) if lam is None else float(lam)
    check_choice(lam, result.lambdas, "lam")
    if "clean" not in result.samples:
        raise ValueError("samples: this result holds no sample views (n_samples=0)")
    r = result.record(group, lam)
    fig, axes = plt.subplots(1, 2, figsize=(5, 2.8))
    axes[0].imshow(result.samples["clean"][sample])
    axes[0].set_title(f"default data model\n{result.metric} {result.clean[result.metric]:.3f}", fontsize=8)
    axes[1].imshow(result.samples[f"{group}|{lam:g}"][sample])
    axes[1].set_title(f"{group} searched at lambda={lam:g}\n{result.metric} {r[result.metric]:.3f}, "
                      f"view l2 {r['l2']:.3g}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def forensics_explorer(result: ForensicsResult, sample: int = 0):
    """An ipywidgets explorer: pick a group and a lambda, see the perturbed test view and the metric.

    Its initial state is :func:`explorer_figure` with default arguments.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    group = W.Dropdown(options=list(result.groups), value="all" if "all" in result.groups else result.groups[0],
                       description="group")
    lam = W.SelectionSlider(options=sorted(result.lambdas, reverse=True), value=min(result.lambdas),
                            description="lambda")
    out = W.Output()

    def draw(*_):
        with out:
            out.clear_output(wait=True)
            explorer_figure(result, group.value, lam.value, sample)
            plt.show()

    group.observe(draw, "value")
    lam.observe(draw, "value")
    draw()
    return W.VBox([W.HBox([group, lam]), out])


__all__ = [
    "CONSTRAINTS", "GROUPS", "ForensicSignature", "ForensicsConfig", "ForensicsResult", "explorer_figure",
    "forensics_explorer",
    "group_parameters", "run_forensics", "search", "signature", "theta_dict",
]
