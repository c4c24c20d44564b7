"""``rawdrift data ...``: dataset and raw-file utilities."""

from __future__ import annotations


def add_arguments(parser):
    sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    p = sub.add_parser("list", help="list the dataset names rawdrift knows")
    p.set_defaults(_data_main=_list)


def main(args) -> int:
    return args._data_main(args)


def _list(args) -> int:
    from .base import DATASET_NAMES

    for name in DATASET_NAMES:
        print(name)
    return 0
