"""``rawdrift bias``: robustness methods x class imbalance; tables, figures and the plain answer."""

from __future__ import annotations

from ._cli_common import add_dataset_arguments, add_run_arguments


def add_arguments(parser):
    from .bias import LEVELS, METHODS

    add_dataset_arguments(parser)
    parser.add_argument("--levels", nargs="+", choices=LEVELS, default=list(LEVELS), help="imbalance levels")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="training methods")
    parser.add_argument("--seeds", type=int, help="seeds per cell (default: per preset)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: per preset)")
    parser.add_argument("--imbalance-ratio", type=float, help="n_max / n_min (default: per preset)")
    parser.add_argument("--test-per-class", type=int, help="balanced test samples per class (default: per preset)")
    parser.add_argument("--drift-configs", nargs="+", metavar="CFG", help="ISP drift test configurations")
    parser.add_argument("--corruptions", nargs="+", help="corruption test sets (default: gaussian_noise gaussian_blur contrast)")
    parser.add_argument("--intensity", type=float, default=1.0)
    add_run_arguments(parser)


def main(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    from .bias import BiasConfig, run_bias_study

    if args.task not in (None, "classification"):
        raise ValueError("task: the bias study is for classification")
    extra = {}
    if args.drift_configs:
        extra["drift_configs"] = tuple(args.drift_configs)
    if args.corruptions:
        extra["corruptions"] = tuple(args.corruptions)
    cfg = BiasConfig(
        dataset=args.dataset, preset=args.preset, out=args.out, levels=tuple(args.levels), methods=tuple(args.methods),
        seeds=args.seeds, epochs=args.epochs, imbalance_ratio=args.imbalance_ratio, test_per_class=args.test_per_class,
        n=args.n, root=args.root, device=args.device, seed=args.seed, intensity=args.intensity,
        progress=not args.quiet, **extra,
    )
    result = run_bias_study(cfg)
    out = Path(args.out)
    result.plot_accuracy().savefig(out / "accuracy.png", dpi=120)
    result.plot_class_drop().savefig(out / "class_drop.png", dpi=120)
    print(result.to_markdown())
    print(f"\nwritten to {out}: result.json, summary.md, cells.csv, accuracy.png, class_drop.png")
    return 0
