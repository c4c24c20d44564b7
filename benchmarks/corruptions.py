"""Throughput of the torch corruptions vs the numpy reference-style implementation.

The baseline is the per-image numpy/scipy/skimage code of the published
definitions that the tests use as their oracle (``tests/drift/test_corruptions.py``).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python benchmarks/corruptions.py --batch 16 --size 256 --severity 3
    python benchmarks/corruptions.py --device cuda --skip-numpy

Prints images/s per corruption and, with ``--out``, writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's rawdrift, not another installed copy

from rawdrift.drift.corruptions import CORRUPTIONS, corrupt  # noqa: E402


def load_references():
    spec = importlib.util.spec_from_file_location("corruption_oracles", ROOT / "tests" / "drift" / "test_corruptions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.REFERENCES


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--severity", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-numpy", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size, generator=gen).to(device)
    x_np = x.cpu().double().numpy().transpose(0, 2, 3, 1)
    refs = None if args.skip_numpy else load_references()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    rows = []
    print(f"{'corruption':<18} {'torch img/s':>12} {'numpy img/s':>12} {'speed-up':>9}")
    for name in CORRUPTIONS:
        corrupt(x[:2], name, args.severity, gen)  # warm-up

        def run_torch():
            corrupt(x, name, args.severity, gen)
            sync()

        t_torch = best_time(run_torch, args.repeats)
        row = {"name": name, "torch_images_per_s": args.batch / t_torch}
        if refs is not None:
            rng = np.random.default_rng(0)
            t_np = best_time(lambda: [refs[name](img, args.severity, rng) for img in x_np], 1)
            row["numpy_images_per_s"] = args.batch / t_np
            row["speedup"] = t_np / t_torch
        rows.append(row)
        np_col = f"{row['numpy_images_per_s']:12.1f} {row['speedup']:8.1f}x" if refs is not None else ""
        print(f"{name:<18} {row['torch_images_per_s']:12.1f} {np_col}", flush=True)

    if args.out:
        meta = {"batch": args.batch, "size": args.size, "severity": args.severity, "device": str(device),
                "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
        args.out.write_text(json.dumps({"config": meta, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
