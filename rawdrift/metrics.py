"""Metrics for both tasks, computed from scratch in torch (no scikit-learn).

Classification metrics take integer labels and predictions; segmentation
metrics take logits (foreground where > 0) or probabilities (foreground where
>= 0.5) and binary masks, and pool pixels over the whole set (the
"micro" IoU that a dataset-level score usually means).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._checks import check_choice, check_int


def _labels(x, name: str) -> Tensor:
    t = torch.as_tensor(x)
    if t.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of class indices, got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.dtype == torch.bool:
        if t.numel() and not torch.equal(t, t.round()):
            raise ValueError(f"{name}: expected integer class indices")
    return t.long().cpu()


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> Tensor:
    """``(C, C)`` int64 counts; row = true class, column = predicted class.

    >>> confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_pred: expected shape {tuple(t.shape)} like y_true, got {tuple(p.shape)}")
    if t.numel() == 0:
        raise ValueError("y_true: expected at least one sample")
    if (t < 0).any() or (p < 0).any():
        raise ValueError("y_true, y_pred: class indices must be >= 0")
    seen = int(max(t.max(), p.max())) + 1
    if num_classes is None:
        num_classes = seen
    check_int(num_classes, "num_classes", minimum=1)
    if seen > num_classes:
        raise ValueError(f"num_classes: got {num_classes} but labels go up to {seen - 1}")
    flat = t * num_classes + p
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions.

    >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    0.75
    """
    cm = confusion_matrix(y_true, y_pred)
    return float(cm.diag().sum() / cm.sum())


def per_class_accuracy(y_true, y_pred, num_classes: int | None = None) -> list[float]:
    """Recall of each class (correct / true count); ``nan`` for a class absent from ``y_true``.

    >>> per_class_accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    [1.0, 0.5, 1.0]
    """
    cm = confusion_matrix(y_true, y_pred, num_classes).double()
    support = cm.sum(1)
    return [float(d / s) if s > 0 else math.nan for d, s in zip(cm.diag(), support)]


def balanced_accuracy(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean per-class recall over the classes present in ``y_true``.

    >>> balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0])
    0.5
    """
    recalls = [r for r in per_class_accuracy(y_true, y_pred, num_classes) if not math.isnan(r)]
    return float(sum(recalls) / len(recalls))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 = 2TP / (2TP + FP + FN), over the classes that
    occur in ``y_true`` or ``y_pred`` (a class never seen nor predicted is left out).

    >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1]), 4)
    0.7333
    """
    cm = confusion_matrix(y_true, y_pred, num_classes).double()
    tp = cm.diag()
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    denom = 2 * tp + fp + fn
    present = denom > 0
    return float((2 * tp[present] / denom[present]).mean())


def class_spread(per_class, reference=None) -> dict:
    """Who pays for a drift: summary of a per-class accuracy vector.

    Classes with no test samples (``nan``) are ignored. Returns
    ``worst_class_accuracy`` (the minimum), ``worst_class`` (its index),
    ``class_range`` (max - min) and ``class_std`` (population standard
    deviation). With ``reference`` (the per-class accuracy of the same model on
    its training configuration) it adds ``per_class_drop`` = reference - per_class
    (a list, ``nan`` where either is missing) and ``worst_class_drop`` (its maximum).

    >>> r = class_spread([0.9, 0.5, float("nan")], reference=[1.0, 0.8, 0.7])
    >>> r["worst_class"], round(r["class_range"], 2), [round(d, 2) for d in r["per_class_drop"][:2]]
    (1, 0.4, [0.1, 0.3])
    >>> round(r["worst_class_drop"], 2)
    0.3
    """
    import numpy as np

    pc = np.asarray(per_class, dtype=float)
    if pc.ndim != 1 or pc.size == 0:
        raise ValueError(f"per_class: expected a non-empty vector of per-class accuracies, got shape {pc.shape}")
    ok = ~np.isnan(pc)
    if not ok.any():
        raise ValueError("per_class: every class is nan (no test samples in any class)")
    vals = pc[ok]
    worst = int(np.flatnonzero(ok)[np.argmin(vals)])
    out = {"worst_class_accuracy": float(vals.min()), "worst_class": worst,
           "class_range": float(vals.max() - vals.min()), "class_std": float(vals.std())}
    if reference is not None:
        ref = np.asarray(reference, dtype=float)
        if ref.shape != pc.shape:
            raise ValueError(f"reference: shape {ref.shape} does not match per_class {pc.shape}")
        drop = ref - pc
        out["per_class_drop"] = [float(d) for d in drop]
        out["worst_class_drop"] = float(np.nanmax(drop)) if not np.isnan(drop).all() else math.nan
    return out


def classification_metrics(y_true, y_pred, num_classes: int | None = None) -> dict:
    """All classification metrics in one dict (JSON-ready: floats and lists).

    ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``per_class_accuracy``,
    ``confusion_matrix`` and the class-spread summary of :func:`class_spread`
    (``worst_class_accuracy``, ``worst_class``, ``class_range``, ``class_std``).
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    pc = per_class_accuracy(y_true, y_pred, cm.shape[0])
    return {
        "accuracy": accuracy(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy(y_true, y_pred, cm.shape[0]),
        "macro_f1": macro_f1(y_true, y_pred, cm.shape[0]),
        "per_class_accuracy": pc,
        "confusion_matrix": cm.tolist(),
        **(class_spread(pc) if any(not math.isnan(v) for v in pc) else {}),
    }


def binarize(pred: Tensor, from_logits: bool = True) -> Tensor:
    """Foreground mask from logits (``> 0``) or probabilities (``>= 0.5``)."""
    if not isinstance(pred, Tensor):
        pred = torch.as_tensor(pred)
    return pred > 0 if from_logits else pred >= 0.5


def segmentation_counts(pred: Tensor, target: Tensor, from_logits: bool = True) -> dict:
    """Pixel counts ``tp``, ``fp``, ``fn``, ``tn`` (ints) of a prediction against a binary mask."""
    pred, target = torch.as_tensor(pred), torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"target: expected shape {tuple(pred.shape)} like pred, got {tuple(target.shape)}")
    p = binarize(pred, from_logits)
    t = target > 0.5
    tp = int((p & t).sum())
    fp = int((p & ~t).sum())
    fn = int((~p & t).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "tn": p.numel() - tp - fp - fn}


def iou_from_counts(counts: dict) -> float:
    """TP / (TP + FP + FN); 1.0 when prediction and mask are both empty."""
    union = counts["tp"] + counts["fp"] + counts["fn"]
    return 1.0 if union == 0 else counts["tp"] / union


def dice_from_counts(counts: dict) -> float:
    """2TP / (2TP + FP + FN); 1.0 when prediction and mask are both empty."""
    denom = 2 * counts["tp"] + counts["fp"] + counts["fn"]
    return 1.0 if denom == 0 else 2 * counts["tp"] / denom


def iou(pred, target, from_logits: bool = True) -> float:
    """Intersection over union of the foreground, pixels pooled over the whole batch.

    >>> iou(torch.tensor([[1.0, -1.0, 2.0, -3.0]]), torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    0.6666666666666666
    """
    return iou_from_counts(segmentation_counts(pred, target, from_logits))


def dice(pred, target, from_logits: bool = True) -> float:
    """Dice coefficient (F1 of the foreground pixels), pooled over the whole batch.

    >>> dice(torch.tensor([[1.0, -1.0, 2.0, -3.0]]), torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    0.8
    """
    return dice_from_counts(segmentation_counts(pred, target, from_logits))


def segmentation_metrics(counts: dict) -> dict:
    """IoU, Dice and pixel accuracy from pooled counts."""
    total = counts["tp"] + counts["fp"] + counts["fn"] + counts["tn"]
    return {
        "iou": iou_from_counts(counts),
        "dice": dice_from_counts(counts),
        "pixel_accuracy": (counts["tp"] + counts["tn"]) / total if total else math.nan,
    }


PRIMARY = {"classification": "accuracy", "segmentation": "iou"}


def primary_metric(task: str) -> str:
    """Name of the metric used to pick the best epoch for ``task``."""
    return PRIMARY[check_choice(task, tuple(PRIMARY), "task")]
