"""``rawdrift synthesis``: run the drift-synthesis grid and write tables and figures."""

from __future__ import annotations

from ._cli_common import add_dataset_arguments, add_run_arguments


def add_arguments(parser):
    add_dataset_arguments(parser)
    parser.add_argument("--train-configs", nargs="+", metavar="CFG", help="default: all 12 (e.g. bi,s,ga ma,u,me)")
    parser.add_argument("--test-configs", nargs="+", metavar="CFG", help="default: all 12")
    parser.add_argument("--folds", type=int, help="k of the k-fold cross-validation (default: preset)")
    parser.add_argument("--epochs", type=int, help="training epochs per model (default: preset)")
    parser.add_argument("--severities", nargs="+", type=int, default=[3], help="corruption severities (default: 3)")
    parser.add_argument("--corruptions", nargs="+", help="default: the 10 ISP-plausible ones")
    parser.add_argument("--intensity", type=float, default=1.0)
    parser.add_argument("--scheduler", choices=("local", "dask"), default="local",
                        help="dask: run grid cells as jobs on a Dask cluster (pip install 'rawdrift[dist]')")
    parser.add_argument("--dask-address", help="scheduler address of an existing Dask cluster (default: start a local one)")
    add_run_arguments(parser)


def main(args) -> int:
    from .synthesis import SynthesisConfig, run_synthesis

    cfg = SynthesisConfig(
        dataset=args.dataset, preset=args.preset, task=args.task, out=args.out,
        train_configs=tuple(args.train_configs) if args.train_configs else None,
        test_configs=tuple(args.test_configs) if args.test_configs else None,
        folds=args.folds, epochs=args.epochs, severities=tuple(args.severities),
        corruptions=tuple(args.corruptions) if args.corruptions else None, intensity=args.intensity,
        n=args.n, root=args.root, device=args.device, seed=args.seed, progress=not args.quiet,
    )
    client = None
    if args.dask_address:
        from distributed import Client

        client = Client(args.dask_address)
    result = run_synthesis(cfg, scheduler=args.scheduler, client=client)
    print(result.to_markdown())
    print(f"\nwritten to {cfg.out}: result.json, grid.npz, summary.md, isp_grid.csv, corruption_grid.csv, grids.png")
    return 0
