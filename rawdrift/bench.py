"""``rawdrift bench``: throughput benchmarks.

``rawdrift bench isp`` times every static configuration in the batched torch
pipeline (CPU, and CUDA when present) against the numpy reference
(:func:`rawdrift.isp.static.process_static`, one image at a time, after one
warm-up call) and prints images per second side by side with the speed-up, the
torch thread count and ``OMP_NUM_THREADS``. ``--threads`` sets torch's thread
count; numpy/scipy read ``OMP_NUM_THREADS`` at import, so set that in the
environment (scipy.ndimage and colour-demosaicing run single-threaded anyway).
On CPU two columns: ``cpu`` is the pipeline as users call it, which runs the
compiled kernels of :mod:`rawdrift.isp.fused` when numba is installed; ``cpu_ops``
is the same pipeline with ``fused = False``, op-by-op torch (the history below).

Compiled kernels (2026-11-23, idle 2-core machine, ``OMP_NUM_THREADS=2 rawdrift bench isp``,
three runs): ``cpu`` 13.4-14.5x the numpy reference (min), median 17.7-26.3x, max 28.2-32.6x;
``cpu_ops`` in the same runs min 4.1-4.7x, median 6.0-6.1x, max 9.2-9.8x. One core each
(``OMP_NUM_THREADS=1 rawdrift bench isp --threads 1``): ``cpu`` min 7.6x, median 14.7x, max
20.3x. The last runs are in ``benchmarks/results/isp-cpu.md``. Per image on one thread
(256x256, ``process_chunk`` alone): bilinear/Malvar configurations 0.28-0.47 ms, Menon
1.25-1.45 ms, plus 0.14 ms for the exact gamma (left to torch's vectorised ``exp(log)``:
numba's scalar ``pow`` took 0.83 ms). What made the difference: one compiled pass per
stage with every plane of one image in cache (no per-op dispatch, no whole-plane
temporaries), and C-contiguous scratch arrays, which alone cut the bilinear DM from 0.45
to 0.09 ms and SH+DN from 0.65 to 0.17 ms (numba does not vectorise loops over sliced,
non-contiguous views). The slowest configurations (``bi,u,ga``, ``bi,s,ga``) now spend
about half their time outside the kernels: allocating the output, splitting the batch,
the gamma pass.

History: the op-by-op torch path.

Where the time goes (2-core shared VM, load 8-12 from other jobs; median ms per
256x256 image, one image, 1 thread, no grad; ``wb+cc+yuv`` is three stages before
and one fused 3x3 matrix after; ``pipeline`` includes everything):

==========  ============  ===========  ============  ============
stage       bi,s,ga       bi,u,me      me,s,ga       ma,u,me
            before/after  before/after before/after  before/after
==========  ============  ===========  ============  ============
bl          0.10 / 0.01   0.10 / 0.01  0.09 / 0.01   0.11 / 0.01
dm          1.60 / 0.82   1.49 / 0.82  22.8 / 10.5   6.70 / 1.10
wb+cc+yuv   0.22 / 0.05   0.20 / 0.04  0.25 / 0.05   0.25 / 0.04
sh          0.67 / 0.09   1.48 / 0.41  0.69 / 0.08   1.48 / 0.39
dn          0.89 / 0.17   22.0 / 0.36  0.85 / 0.17   22.2 / 0.38
rgb         0.07 / 0.04   0.09 / 0.04  0.10 / 0.05   0.09 / 0.04
gc          0.68 / 0.24   0.67 / 0.20  0.63 / 0.19   0.63 / 0.19
pipeline    12.9 / 6.0    32.0 / 7.3   31.0 / 17.7   36.1 / 3.3
==========  ============  ===========  ============  ============

Before, a batch of 64 at 2 torch threads ran at 60-100 ms/image for ``bi,s,ga``
(profile: one-channel/depthwise ``conv2d`` 31%, ``mul`` 18%, ``add`` 15%, ``cat``
14%, ``pow`` 4%): whole-batch tensors do not fit the cache and every op ran
memory-bound (a 3-channel pass cost ~0.5 ms/image vs ~0.06 in cache), and at 2
threads each small op waited on an OpenMP barrier with the other thread often
descheduled. What changed: per-image chunks on one intra-op thread, WB/CC/YUV
fused into one matrix, luma-only filters in place, shifted-slice and separable
filters instead of ``conv2d``, a min/max 3x3 median instead of unfold+sort (22 ->
0.4 ms), ``exp(log)`` gamma with a normal-number floor instead of ``pow`` (and
no ``log(0)``, a 10x slow path), a mosaic-domain bilinear, cached Menon/Malvar
site masks and fewer Menon filterings, Malvar's four filters from five shared
neighbour sums. Image-parallel worker threads (one intra-op thread each) gave no gain at that
load, where the machine had about one core to spare. On an idle machine
(2026-11-23, load < 0.5) they do, once chunks hold four images rather than one:
with one-image chunks the Python side of ~300 torch calls per image held the GIL
half the time and two threads ran slower than one (two *processes* scaled 1.87x).
Four-image chunks, two worker threads and padding with one copy instead of two
concatenations: ``OMP_NUM_THREADS=2 rawdrift bench isp``, two runs back to back,
torch 4.6-4.7x the numpy reference (min), median 5.9-6.0x, max 9.0-9.4x; the
one-image, one-thread version measured 3.3x / 4.6x / 8.1x on the same idle machine
just before. No configuration meets the 10x target; the closest are ``ma,s,me`` and
``bi,s,me`` (8.5-9.4x), the furthest ``me,u,ga`` and ``bi,u,ga`` (4.6-4.9x).
Menon configurations use two-image chunks (their intermediates are about four times
larger); with that, two more idle runs: 4.6-5.0x (min), median 5.8-6.0x, max 8.2-9.4x.
Earlier, loaded-machine run: 3.0-5.7x, median 4.6x (before the CPU work: 0.7-1.6x).
Remaining: Menon's demosaicing (about 40
element-wise passes, a third of them in float64 for the exact decision) is 60-80%
of every ``me,*`` configuration; elsewhere op count and per-op overhead on
65k-pixel tensors. Absolute numbers move 2x with the machine's load; compare the
speed-up column, which times numpy and torch back to back per configuration.

Tried and measured on the idle machine (2026-11-23), without a gain over the reference:

- ``torch.compile`` (inductor, CPU, ``dynamic=False``) of one fused four-image ``bi,s,ga``
  chunk on one thread: 500 images/s against 490 eager (graph breaks at the filter checks). A
  break-free rewrite of the same pipeline with shifted-slice filters compiles to 422 images/s,
  the same with ``conv2d`` to 325: the hand-fused eager path is already ahead.
- glibc's allocator: allocating and touching the 50 MB output of a 64-image batch takes
  10.4 ms (first-touch page faults), 1.1 ms with ``MALLOC_MMAP_THRESHOLD_=1073741824
  MALLOC_TRIM_THRESHOLD_=4294967296`` in the environment. With those set, torch runs 20-40%
  faster (``bi,s,ga`` 922 images/s) but so does the numpy reference (150): min 4.0x, median
  6.1x, max 10.7x. Worth setting for throughput on Linux; it does not move the ratio.
- Menon's float64 decision is 2.2 of its 6.0 ms per image (0.9 in float32). A float32
  decision with a float64 fallback near ties would save at most about 20% of a ``me,*``
  configuration, which needs 2.5x for the 10x target.
- Threads scale worse than processes: in an isolated loop two worker threads give 1.4x one
  thread for ``bi,s,ga`` (1.8x for ``me,u,ga``, whose ops are larger), two processes 1.7x.
"""

from __future__ import annotations

import os
import time


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    p = sub.add_parser("isp", help="images/s of the 12 ISP configurations: torch vs the numpy reference")
    p.add_argument("--batch", type=int, default=64, help="images per torch batch (default 64)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels, even (default 256)")
    p.add_argument("--configs", default="all", help="comma-separated list like 'bi,s,me;ma,u,ga' or 'all'")
    p.add_argument("--device", default="all", help="'cpu', 'cuda' or 'all' (cpu plus cuda when present)")
    p.add_argument("--static-images", type=int, default=None, help="images timed in the numpy reference (default: --batch)")
    p.add_argument("--repeat", type=int, default=2, help="timed torch runs after one warm-up (default 2)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, i.e. OMP_NUM_THREADS)")


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def bench_isp(batch=64, size=256, configs=None, devices=("cpu",), static_images=None, repeat=2, seed=0) -> list[dict]:
    """Time each configuration; returns one dict per config with images/s per backend.

    Keys: ``config``, ``numpy`` (images/s of the reference), ``torch_<device>`` and
    ``speedup_<device>`` (torch images/s / numpy images/s).
    """
    import numpy as np
    import torch

    from ._checks import check_int
    from .isp import fused
    from .isp.camera import RAW_DRONE
    from .isp.configs import CONFIGS, parse_config
    from .isp.pipeline import Pipeline
    from .isp.static import process_static

    check_int(batch, "batch", minimum=1)
    check_int(size, "size", minimum=2, even=True)
    check_int(repeat, "repeat", minimum=1)
    configs = CONFIGS if configs is None else tuple(configs)
    for c in configs:
        parse_config(c)
    n_static = batch if static_images is None else check_int(static_images, "static_images", minimum=1)
    raw = np.random.default_rng(seed).random((batch, size, size)).astype(np.float32)
    raw_t = torch.from_numpy(raw)[:, None]
    rows = []
    for config in configs:
        row = {"config": config}
        process_static(raw[0], config, RAW_DRONE)  # warm-up (imports, caches)
        t0 = time.perf_counter()
        for i in range(n_static):
            process_static(raw[i % batch], config, RAW_DRONE)
        row["numpy"] = n_static / (time.perf_counter() - t0)
        for device in devices:
            p = Pipeline.static(config, RAW_DRONE, device=device)
            x = raw_t.to(device)
            # on CPU the pipeline runs the compiled kernels when it can; "cpu_ops" is op-by-op torch
            variants = [(device, True)] + ([("cpu_ops", False)] if device == "cpu" and fused.enabled() else [])
            for name, use_fused in variants:
                p.fused = use_fused
                with torch.no_grad():
                    p(x)  # warm-up (and, the first time, numba's compilation or cache load)
                    _sync(device)
                    t0 = time.perf_counter()
                    for _ in range(repeat):
                        p(x)
                    _sync(device)
                row[f"torch_{name}"] = batch * repeat / (time.perf_counter() - t0)
                row[f"speedup_{name}"] = row[f"torch_{name}"] / row["numpy"]
        rows.append(row)
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of :func:`bench_isp` results."""
    keys = [k for k in rows[0] if k != "config"]
    lines = ["config    " + "".join(f"{k:>16}" for k in keys)]
    for r in rows:
        lines.append(f"{r['config']:<10}" + "".join(f"{r[k]:>16.1f}" for k in keys))
    return "\n".join(lines)


def main(args) -> int:
    import torch

    from .isp import fused

    if args.bench != "isp":  # pragma: no cover - argparse restricts choices
        raise ValueError(f"bench: unknown benchmark {args.bench!r}")
    if args.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    elif args.device in ("cpu", "cuda"):
        if args.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device: CUDA is not available on this machine")
        devices = [args.device]
    else:
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'all', got {args.device!r}")
    configs = None if args.configs == "all" else [c.strip() for c in args.configs.split(";") if c.strip()]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(
        f"ISP throughput, {args.size}x{args.size}, torch batch {args.batch}, numpy one image at a time "
        f"({args.static_images or args.batch} images); images/s, noisy on a shared machine\n"
        f"threads: torch {torch.get_num_threads()} (as many image-parallel workers, each on 1 intra-op thread), "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} for numpy/scipy "
        f"(scipy.ndimage and colour-demosaicing are single-threaded); {os.cpu_count()} CPUs"
    )
    print(
        "cpu: the Pipeline as users call it ("
        + ("compiled numba kernels, rawdrift.isp.fused" if fused.enabled() else "torch ops: numba missing or RAWDRIFT_FUSED=0")
        + "); cpu_ops: the same Pipeline with fused=False, op-by-op torch"
    )
    rows = bench_isp(args.batch, args.size, configs, devices, args.static_images, args.repeat)
    print(format_rows(rows))
    for d in [k[len("speedup_") :] for k in rows[0] if k.startswith("speedup_")]:
        sp = [r[f"speedup_{d}"] for r in rows]
        print(f"speed-up torch {d} / numpy: min {min(sp):.1f}x, median {sorted(sp)[len(sp) // 2]:.1f}x, max {max(sp):.1f}x")
    return 0
