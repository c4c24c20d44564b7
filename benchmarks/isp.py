"""Throughput of the 12 ISP configurations: batched torch (CPU, CUDA) vs the numpy reference.

Run ``python benchmarks/isp.py --batch 64 --size 256`` (same options as ``rawdrift bench isp``).
The per-stage profile (before/after the CPU work) is in the docstring of ``rawdrift/bench.py``.
"""

import sys

from rawdrift.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "isp", *sys.argv[1:]]))
