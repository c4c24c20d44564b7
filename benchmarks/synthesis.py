"""Cost of one drift-synthesis grid cell, stage by stage (issue: paper scale on one GPU).

For a dataset and preset this times, on the chosen device:

1. rendering the views of one ISP configuration for the whole dataset (images/s),
2. training one task model on them (training images/s and seconds per epoch),
3. evaluating it on every test configuration and corruption (images/s),

and extrapolates the wall time of the full grid (train configs x folds cells).
``--profile`` adds a ``torch.profiler`` table of the most expensive operators of
one training epoch, which is where to look first when making the grid faster.

    python benchmarks/synthesis.py --dataset synthetic-microscopy --preset lab --device auto
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import torch
from torch import nn


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    from rawdrift.drift.synthesis import SynthesisConfig, _Context, run_cell
    from rawdrift.train import build_task_model, fit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic-microscopy")
    ap.add_argument("--preset", default="lab")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, default=None, help="epochs of the timed training (default: preset)")
    ap.add_argument("--profile", action="store_true", help="torch.profiler table of one training epoch")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as out:
        cfg = SynthesisConfig(dataset=args.dataset, preset=args.preset, device=args.device, out=out,
                              epochs=args.epochs, progress=False).resolved()
        ctx = _Context(cfg)
        n = len(ctx.ds)
        t = time.perf_counter()
        ctx.views(cfg.train_configs[0])
        _sync(ctx.device)
        render = time.perf_counter() - t
        t = time.perf_counter()
        run_cell(cfg, 0, 0, ctx)
        _sync(ctx.device)
        cell = time.perf_counter() - t
        # views of the other configurations were rendered inside the cell; separate them out
        render_all = render * len(set(cfg.train_configs) | set(cfg.test_configs))
        n_train = len(ctx.folds[0][0])
        n_eval = len(ctx.folds[0][1]) * (len(cfg.test_configs) + 1 + len(ctx.conditions))
        print(f"device {ctx.device}, threads {torch.get_num_threads()}, dataset {cfg.dataset} ({n} images, "
              f"{ctx.ds[0][0].shape[-1]} px), preset {cfg.preset}, model input {ctx.tcfg.size} px")
        print(f"render views, one configuration : {n / render:9.1f} images/s ({render:.2f} s)")
        print(f"one grid cell (train {cfg.epochs} epochs on {n_train}, {n_eval} evaluations): {cell:.1f} s "
              f"(includes rendering the other configurations, ~{render_all - render:.1f} s)")
        train_imgs = cfg.epochs * n_train
        print(f"  ~{train_imgs / max(cell - (render_all - render), 1e-9):.1f} training+evaluation images/s")
        cells = len(cfg.train_configs) * cfg.folds
        print(f"full grid: {cells} cells -> ~{cells * (cell - (render_all - render)) / 60 + render_all / 60:.1f} min")
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ctx.device.type == "cuda" else [])
            model = build_task_model(ctx.tcfg, num_classes=max(ctx.n_classes, 1)).to(ctx.device)
            with profile(activities=acts) as prof:
                fit(model, nn.Identity(), (ctx.views(cfg.train_configs[0]), ctx.folds[0][0]), None,
                    replace(ctx.tcfg, epochs=1))
            key = "cuda_time_total" if ctx.device.type == "cuda" else "cpu_time_total"
            print(prof.key_averages().table(sort_by=key, row_limit=15))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
