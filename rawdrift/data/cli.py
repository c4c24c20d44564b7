"""``rawdrift data ...``: dataset and raw-file utilities."""

from __future__ import annotations


def add_arguments(parser):
    sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    p = sub.add_parser("list", help="list the dataset names rawdrift knows")
    p.set_defaults(_data_main=_list)
    p = sub.add_parser("preview", help="write a labelled contact sheet (PNG) of a dataset")
    p.add_argument("--dataset", default="synthetic-microscopy", help="dataset name (see `rawdrift data list`)")
    p.add_argument("--preset", default=None, help="preset giving sizes (default: $RAWDRIFT_PRESET, else lab)")
    p.add_argument("--root", default=None, help="folder of a real dataset")
    p.add_argument("--intensity", type=float, default=1.0, help="raw intensity level in (0, 1]")
    p.add_argument("--seed", type=int, default=0, help="seed of a synthetic dataset")
    p.add_argument("-n", "--count", type=int, default=16, help="number of samples shown")
    p.add_argument("--out", default="preview.png", help="PNG file to write")
    p.set_defaults(_data_main=_preview)


def main(args) -> int:
    return args._data_main(args)


def _list(args) -> int:
    from .base import DATASET_NAMES

    for name in DATASET_NAMES:
        print(name)
    return 0


def _preview(args) -> int:
    from ..raw.preview import contact_sheet
    from .registry import get_dataset

    ds = get_dataset(args.dataset, preset=args.preset, root=args.root, intensity=args.intensity, seed=args.seed)
    contact_sheet(ds, n=args.count, path=args.out)
    print(f"wrote {args.out} ({min(args.count, len(ds))} samples of {args.dataset}, intensity {args.intensity:g})")
    return 0
