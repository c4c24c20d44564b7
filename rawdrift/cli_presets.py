"""``rawdrift presets``: print the presets as a table."""

from __future__ import annotations

from dataclasses import asdict, fields

from .presets import PRESETS, Preset


def add_arguments(parser):
    parser.add_argument("--name", choices=sorted(PRESETS), help="show one preset only")


def main(args) -> int:
    names = [args.name] if args.name else list(PRESETS)
    cols = [f.name for f in fields(Preset)]
    print("  ".join(f"{c:>15}" for c in cols))
    for n in names:
        d = asdict(PRESETS[n])
        print("  ".join(f"{d[c]!s:>15}" for c in cols))
    return 0
