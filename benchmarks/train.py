"""Training throughput (images/s) of the task models with the ISP on the same device.

Each row times whole training steps of :mod:`rawdrift.train` (raw batch -> ISP ->
normalisation -> task model -> loss -> backward -> Adam step) on random raw
mosaics held on the device, after one warm-up step.

    OMP_NUM_THREADS=2 python benchmarks/train.py --size 64 --batch 16 --steps 5
    python benchmarks/train.py --device cuda --size 256 --batch 128 --steps 20

The ISP is ``Pipeline.static(--config, camera)`` (frozen) and
``Pipeline.parametrized(camera)`` (learnable) when ``rawdrift.isp.Pipeline``
exists; otherwise a 3x3-convolution stand-in (marked ``stand-in`` in the table).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn

from rawdrift.models import ResNet18, UNet
from rawdrift.raw.cfa import split_planes
from rawdrift.train import TrainConfig, _Runner, _Tensors, normalization_for


class _StandIn(nn.Module):
    def __init__(self, learnable: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.conv.weight.requires_grad_(learnable)

    def forward(self, raw):
        return self.conv(split_planes(raw)).clamp(0, 1)


def make_pipeline(config: str, dataset: str, learnable: bool):
    try:
        from rawdrift.isp import RAW_DRONE, RAW_MICROSCOPY, Pipeline
    except ImportError:
        return _StandIn(learnable), "stand-in" + ("+learn" if learnable else "")
    camera = RAW_MICROSCOPY if dataset == "microscopy" else RAW_DRONE
    if learnable:
        return Pipeline.parametrized(camera), "parametrized"
    return Pipeline.static(config, camera), config


def bench_one(task: str, learnable: bool, args) -> dict:
    dataset = "microscopy" if task == "classification" else "drone"
    pipeline, pname = make_pipeline(args.config, dataset, learnable)
    torch.manual_seed(0)
    model = ResNet18(9) if task == "classification" else UNet(width=args.unet_width)
    cfg = TrainConfig(task=task, preset="ci", size=args.size, batch_size=args.batch, lr=1e-4,
                      device=args.device, augment="weak", progress=False).resolved()
    runner = _Runner(model, pipeline, cfg, normalization_for(dataset))
    n = args.batch * args.steps
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(n, 1, args.size, args.size, generator=g)
    if task == "classification":
        target = torch.randint(0, 9, (n,), generator=g)
    else:
        target = (torch.rand(n, 1, args.size, args.size, generator=g) > 0.9).float()
    data = runner.to_device(_Tensors(raw, target, dataset, task, 9))
    warm = runner.to_device(_Tensors(raw[: args.batch], target[: args.batch], dataset, task, 9))
    groups = [{"params": list(model.parameters())}]
    if runner.learnable:
        groups.append({"params": [p for p in pipeline.parameters() if p.requires_grad]})
    opt = torch.optim.Adam(groups, lr=1e-4)
    for _ in range(2):  # warm-up: allocator, kernels, autotuning
        runner.train_epoch(warm, opt, g)
    if runner.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    runner.train_epoch(data, opt, g)
    if runner.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"model": type(model).__name__, "pipeline": pname, "device": str(runner.device),
            "amp": runner.amp, "size": args.size, "batch": args.batch, "images_per_s": n / dt}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=5, help="timed training steps per row")
    p.add_argument("--device", default="auto")
    p.add_argument("--config", default="bi,s,ga", help="static ISP configuration")
    p.add_argument("--unet-width", type=int, default=16)
    p.add_argument("--tasks", nargs="+", default=["classification", "segmentation"])
    args = p.parse_args(argv)
    rows = [bench_one(task, learnable, args) for task in args.tasks for learnable in (False, True)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'model':10s} {'pipeline':14s} {'device':8s} {'amp':5s} {'size':>5s} {'batch':>6s} {'img/s':>9s}")
    for r in rows:
        print(f"{r['model']:10s} {r['pipeline']:14s} {r['device']:8s} {str(r['amp']):5s} {r['size']:5d} "
              f"{r['batch']:6d} {r['images_per_s']:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
