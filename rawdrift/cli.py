"""The ``rawdrift`` command line.

Each sub-command lives in the module that implements it; that module defines
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported only
when their command runs (or for ``--help``), so the CLI starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("rawdrift.data.cli", "inspect raw files and datasets, write preview contact sheets"),
    "presets": ("rawdrift.cli_presets", "list the experiment presets"),
    "synthesis": ("rawdrift.drift.synthesis_cli", "drift synthesis: train on one ISP configuration, test on all, vs corruptions"),
    "forensics": ("rawdrift.drift.forensics_cli", "drift forensics: gradient search in ISP parameter space"),
    "adjustment": ("rawdrift.drift.adjustment_cli", "drift adjustment: learn the ISP jointly with the task model"),
    "bench": ("rawdrift.bench", "throughput benchmarks (isp: torch pipeline vs numpy reference)"),
    "reliability": ("rawdrift.drift.reliability_cli", "reliability maps: where in ISP parameter space a model stays reliable"),
    "bias": ("rawdrift.drift.bias_cli", "robustness vs dataset bias: training methods x class imbalance, class-wise metrics"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rawdrift",
        description="Physically faithful dataset-drift controls from raw sensor data.",
    )
    parser.add_argument("--version", action="version", version=f"rawdrift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 0
    try:
        return int(args._main(args) or 0)
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"rawdrift {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
