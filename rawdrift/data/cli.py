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

    # --- real data: info, download (realdata branch) ---
    p = sub.add_parser("info", help="print the metadata of a raw file (DNG, any rawpy format) or a dataset folder")
    p.add_argument("path", help="a raw file, or a folder holding microscopy/ and/or drone/")
    p.add_argument("--intensity", type=float, default=1.0, help="intensity level to inspect in a dataset folder")
    p.add_argument("--tile-size", type=int, default=256, help="Raw-Drone tile size")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(_data_main=_info)
    p = sub.add_parser("download", help="download a real dataset from Zenodo (record 5235536)")
    p.add_argument("dataset", choices=("raw-microscopy", "raw-drone"))
    p.add_argument("--root", default=None, help="data folder (default: $RAWDRIFT_DATA or the cache)")
    p.set_defaults(_data_main=_download)
    # --- end real data ---


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


# --- real data: info, download (realdata branch) ---


def _info(args) -> int:
    import json
    from pathlib import Path

    path = Path(args.path)
    if path.is_file():
        from ..raw.dng import read_raw

        info = {"file": read_raw(path).summary()}
    elif path.is_dir():
        info = _folder_info(path, args.intensity, args.tile_size)
    else:
        raise FileNotFoundError(f"path: no such file or folder: {path}")
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_tree(info)
    return 0


def _folder_info(path, intensity: float, tile_size: int) -> dict:
    from .real import RawDrone, RawMicroscopy, find_dataset_dir

    info = {}
    for key, cls, marker in (
        ("raw-microscopy", RawMicroscopy, "labels/Ma190c_annotations.dat"),
        ("raw-drone", RawDrone, "masks_full"),
    ):
        kw = {"tile_size": tile_size} if cls is RawDrone else {}
        found = find_dataset_dir(path, key.split("-")[1], marker)
        if cls is RawDrone and found is None:
            found = find_dataset_dir(path, "drone", f"masks_tiles_{tile_size}")
        if found is None:
            info[key] = "not found"
            continue
        try:
            info[key] = cls(path, intensity=intensity, **kw).summary()
        except (ValueError, FileNotFoundError) as err:
            info[key] = f"found at {found}, but: {err}"
    if all(v == "not found" for v in info.values()):
        from .real import DRONE_LAYOUT, MICROSCOPY_LAYOUT

        raise FileNotFoundError(
            f"path: {path} holds neither dataset; expected (an extra top-level folder is fine):\n"
            f"{MICROSCOPY_LAYOUT}\n{DRONE_LAYOUT}"
        )
    return info


def _print_tree(info, indent: int = 0) -> None:
    pad = "  " * indent
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{pad}{key}:")
            _print_tree(value, indent + 1)
        else:
            print(f"{pad}{key}: {value}")


def _download(args) -> int:
    from .download import download_dataset
    from .real import default_root

    root = args.root or default_root()
    try:
        download_dataset(args.dataset.split("-")[1], root)
    except ConnectionError as err:
        raise ValueError(str(err)) from None
    print(f"{args.dataset}: ready under {root}")
    return 0


# --- end real data ---
