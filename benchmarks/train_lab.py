"""Lab-scale training runs on the synthetic datasets through a static ISP.

    OMP_NUM_THREADS=2 python benchmarks/train_lab.py --task classification --epochs 6
    OMP_NUM_THREADS=2 python benchmarks/train_lab.py --task segmentation --epochs 6

Trains on the first fold of the preset's stratified k-fold split and prints the
validation metrics per epoch, the best epoch, and (classification) the
majority-class rate of the validation fold as the baseline to beat. With
``--out`` the :class:`~rawdrift.train.TrainResult` is saved there.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from rawdrift.data import get_dataset, stratified_kfold
from rawdrift.isp import Pipeline
from rawdrift.presets import get_preset
from rawdrift.train import TrainConfig, train_task_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["classification", "segmentation"], default="classification")
    p.add_argument("--preset", default="lab")
    p.add_argument("--config", default="bi,s,ga")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--n", type=int, default=None, help="number of synthetic samples (default: preset)")
    p.add_argument("--augment", default="crop")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    name = "synthetic-microscopy" if args.task == "classification" else "synthetic-drone"
    kw = {} if args.n is None else {"n": args.n}
    data = get_dataset(name, preset=args.preset, seed=args.seed, **kw)
    t_data = time.perf_counter() - t0
    pipeline = Pipeline.static(args.config, data.camera)
    cfg = TrainConfig(task=args.task, preset=args.preset, epochs=args.epochs, seed=args.seed,
                      device=args.device, augment=None if args.augment == "none" else args.augment,
                      progress=False)
    folds = get_preset(args.preset).folds
    tr, va = stratified_kfold(data.targets, folds, args.seed)[0]
    print(f"{name}: {len(data)} raw {data.size}x{data.size}, train {len(tr)} / val {len(va)}, "
          f"ISP {args.config}, data {t_data:.1f} s", flush=True)
    _, res = train_task_model(data, pipeline, cfg, tr, va,
                              callback=lambda e, r: print(_line(args.task, r), flush=True))
    primary = "accuracy" if args.task == "classification" else "iou"
    print(f"best epoch {res.best_epoch}: {primary} {res.best[primary]:.3f}; "
          f"last: {primary} {res.final[primary]:.3f}")
    if args.task == "classification":
        counts = np.bincount(np.asarray(data.targets)[va], minlength=len(data.classes))
        print(f"majority-class rate on the validation fold: {counts.max() / counts.sum():.3f}; "
              f"balanced accuracy (last) {res.final['balanced_accuracy']:.3f} vs chance {1 / len(data.classes):.3f}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.out:
        res.save(args.out)
    return 0


def _line(task, r):
    v = r["val"]
    if task == "classification":
        return (f"epoch {r['epoch']:3d} train loss {r['train_loss']:.3f} val loss {v['loss']:.3f} "
                f"acc {v['accuracy']:.3f} bal {v['balanced_accuracy']:.3f} f1 {v['macro_f1']:.3f} "
                f"({r['seconds']:.0f} s)")
    return (f"epoch {r['epoch']:3d} train loss {r['train_loss']:.3f} val loss {v['loss']:.3f} "
            f"iou {v['iou']:.3f} dice {v['dice']:.3f} ({r['seconds']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
