import math

import numpy as np
import pytest
import torch

from rawdrift import metrics as M

# A small hand-worked example (3 classes, 10 samples).
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]
# confusion: row 0 -> [2,1,1]; row 1 -> [1,2,0]; row 2 -> [0,1,2]


def test_confusion_matrix_hand():
    assert M.confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]


def test_confusion_matrix_num_classes_pads():
    assert M.confusion_matrix([0, 1], [1, 1], num_classes=3).tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]


def test_accuracy_hand():
    assert M.accuracy(Y_TRUE, Y_PRED) == pytest.approx(6 / 10)


def test_per_class_and_balanced_hand():
    assert M.per_class_accuracy(Y_TRUE, Y_PRED) == pytest.approx([2 / 4, 2 / 3, 2 / 3])
    assert M.balanced_accuracy(Y_TRUE, Y_PRED) == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)


def test_per_class_absent_is_nan_and_ignored_by_balanced():
    pcs = M.per_class_accuracy([0, 0, 2], [0, 1, 2], num_classes=3)
    assert pcs[0] == 0.5 and math.isnan(pcs[1]) and pcs[2] == 1.0
    assert M.balanced_accuracy([0, 0, 2], [0, 1, 2], num_classes=3) == pytest.approx(0.75)


def test_macro_f1_hand():
    # class 0: tp 2, fp 1, fn 2 -> 4/7; class 1: tp 2, fp 2, fn 1 -> 4/7; class 2: tp 2, fp 1, fn 1 -> 4/6
    expected = (4 / 7 + 4 / 7 + 4 / 6) / 3
    assert M.macro_f1(Y_TRUE, Y_PRED) == pytest.approx(expected)


def test_macro_f1_against_brute_force_random():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, t, rng.integers(0, 5, 200))
    f1s = []
    for c in range(5):
        tp = np.sum((t == c) & (p == c))
        fp = np.sum((t != c) & (p == c))
        fn = np.sum((t == c) & (p != c))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    assert M.macro_f1(torch.tensor(t), torch.tensor(p)) == pytest.approx(np.mean(f1s))
    assert M.accuracy(t, p) == pytest.approx(np.mean(t == p))


def test_classification_metrics_dict():
    d = M.classification_metrics(Y_TRUE, Y_PRED, num_classes=4)
    assert d["accuracy"] == pytest.approx(0.6)
    assert len(d["confusion_matrix"]) == 4
    assert math.isnan(d["per_class_accuracy"][3])


def test_class_spread_against_numpy():
    rng = np.random.default_rng(0)
    pc = rng.random(9)
    pc[3] = np.nan
    ref = rng.random(9)
    r = M.class_spread(pc.tolist(), reference=ref)
    v = pc[~np.isnan(pc)]
    assert r["worst_class_accuracy"] == v.min() and pc[r["worst_class"]] == v.min()
    assert r["class_range"] == pytest.approx(v.max() - v.min()) and r["class_std"] == pytest.approx(np.std(v))
    np.testing.assert_allclose(r["per_class_drop"], ref - pc)
    assert r["worst_class_drop"] == pytest.approx(np.nanmax(ref - pc))
    d = M.classification_metrics(Y_TRUE, Y_PRED, num_classes=4)
    assert d["worst_class_accuracy"] == min(x for x in d["per_class_accuracy"] if x == x)


def test_class_spread_errors():
    with pytest.raises(ValueError, match="per_class: every class is nan"):
        M.class_spread([float("nan")] * 3)
    with pytest.raises(ValueError, match="reference: shape"):
        M.class_spread([0.5, 0.5], reference=[1.0])
    with pytest.raises(ValueError, match="per_class: expected"):
        M.class_spread([])


def test_perfect_predictions():
    assert M.macro_f1([0, 1, 2], [0, 1, 2]) == 1.0
    assert M.balanced_accuracy([0, 1, 2], [0, 1, 2]) == 1.0


def test_iou_dice_hand():
    logits = torch.tensor([[[[3.0, -1.0], [0.5, -2.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    # pred fg: (0,0), (1,0); mask fg: (0,0), (0,1) -> tp 1, fp 1, fn 1
    assert M.segmentation_counts(logits, mask) == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert M.iou(logits, mask) == pytest.approx(1 / 3)
    assert M.dice(logits, mask) == pytest.approx(2 / 4)


def test_iou_from_probabilities_matches_logits():
    logits = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    mask = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    assert M.iou(torch.sigmoid(logits), mask, from_logits=False) == M.iou(logits, mask)
    assert M.dice(torch.sigmoid(logits), mask, from_logits=False) == M.dice(logits, mask)


def test_dice_iou_relation():
    logits = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    mask = (torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(4)) > 0.7).float()
    i, d = M.iou(logits, mask), M.dice(logits, mask)
    assert d == pytest.approx(2 * i / (1 + i))


def test_empty_prediction_and_mask_is_perfect():
    z = torch.zeros(1, 1, 4, 4)
    assert M.iou(z - 1, z) == 1.0 and M.dice(z - 1, z) == 1.0


def test_segmentation_metrics_pixel_accuracy():
    d = M.segmentation_metrics({"tp": 1, "fp": 1, "fn": 1, "tn": 1})
    assert d["pixel_accuracy"] == 0.5 and d["iou"] == pytest.approx(1 / 3)


def test_errors():
    with pytest.raises(ValueError, match="y_pred: expected shape"):
        M.confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="y_true: expected a 1-D"):
        M.accuracy([[0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="num_classes: got 2"):
        M.confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match="must be >= 0"):
        M.confusion_matrix([0, -1], [0, 1])
    with pytest.raises(ValueError, match="y_true: expected at least one"):
        M.confusion_matrix([], [])
    with pytest.raises(ValueError, match="integer class"):
        M.accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="target: expected shape"):
        M.iou(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="task: expected one of"):
        M.primary_metric("detection")
