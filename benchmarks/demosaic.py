"""Throughput of the torch demosaicing methods against colour-demosaicing.

Run from the repository root::

    OMP_NUM_THREADS=2 python benchmarks/demosaic.py            # 256x256, batch 16, CPU
    python benchmarks/demosaic.py --device cuda --dtype float32

For each method it times the batched torch function on one ``(B, 1, S, S)`` batch
and the reference (one ``colour_demosaicing`` call per image, float64 numpy), and
prints images per second side by side with their ratio. Each figure is the best
of ``--repeats`` timed runs after one warm-up run, which damps (but does not
remove) the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import colour_demosaicing as cd  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from rawdrift.isp.demosaic import METHODS, demosaic  # noqa: E402

REFERENCE = {
    "bilinear": cd.demosaicing_CFA_Bayer_bilinear,
    "menon2007": cd.demosaicing_CFA_Bayer_Menon2007,
    "malvar2004": cd.demosaicing_CFA_Bayer_Malvar2004,
}


def best_time(fn, repeats: int, sync=lambda: None) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = p.parse_args(argv)

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    raw = torch.rand(args.batch, 1, args.size, args.size, generator=torch.Generator().manual_seed(0))
    raw_np = raw.double().numpy()[:, 0]
    raw_t = raw.to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    print(
        f"demosaic {args.batch}x{args.size}x{args.size}, torch {args.dtype} on {device} "
        f"({torch.get_num_threads()} threads) vs colour-demosaicing float64 numpy"
    )
    print(f"{'method':<12}{'torch img/s':>14}{'reference img/s':>18}{'ratio':>9}")
    for method in METHODS:
        ref_fn = REFERENCE[method]

        def run_torch():
            with torch.no_grad():
                demosaic(raw_t, method)

        def run_reference():
            for a in raw_np:
                ref_fn(a)

        t_torch = best_time(run_torch, args.repeats, sync)
        t_ref = best_time(run_reference, args.repeats)
        ips_t, ips_r = args.batch / t_torch, args.batch / t_ref
        print(f"{method:<12}{ips_t:>14.1f}{ips_r:>18.1f}{ips_t / ips_r:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
