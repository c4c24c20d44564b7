"""Command-line arguments shared by the drift-control commands (synthesis, forensics, adjustment)."""

from __future__ import annotations


def add_dataset_arguments(parser) -> None:
    """``--dataset --preset --task --out``: what to run on and where the results go."""
    from ..data.base import DATASET_NAMES
    from ..presets import PRESET_NAMES

    parser.add_argument("--dataset", default="synthetic-microscopy", choices=DATASET_NAMES)
    parser.add_argument("--preset", choices=PRESET_NAMES, help="default: $RAWDRIFT_PRESET or lab")
    parser.add_argument("--task", choices=("classification", "segmentation"), help="default: the dataset's task")
    parser.add_argument("--out", required=True, help="result folder (resumable: rerun to continue)")


def add_run_arguments(parser) -> None:
    """``--n --root --device --seed --quiet``: dataset size or location, device, seed, progress bars."""
    parser.add_argument("--n", type=int, help="dataset size (synthetic data)")
    parser.add_argument("--root", help="folder of a real dataset")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
