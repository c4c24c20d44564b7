"""``rawdrift adjustment``: frozen vs learned ISP vs raw input, curves, tables and figures."""

from __future__ import annotations

from ._cli_common import add_dataset_arguments, add_run_arguments


def add_arguments(parser):
    add_dataset_arguments(parser)
    parser.add_argument("--intensities", nargs="+", type=float, default=[0.001, 1.0],
                        help="raw photon-budget factors in (0, 1] (default: 0.001 1.0, the paper's low and high)")
    parser.add_argument("--modes", nargs="+", default=["frozen", "learned", "raw"],
                        help="any of frozen learned raw (default: all three)")
    parser.add_argument("--folds", type=int, help="k of the stratified k-fold cross-validation (default: preset)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: preset)")
    parser.add_argument("--lr", type=float, help="task-model learning rate (default: preset)")
    parser.add_argument("--pipeline-lr", type=float, help="learning rate of the ISP parameters (default: --lr)")
    parser.add_argument("--batch-size", type=int, help="default: preset")
    parser.add_argument("--size", type=int, help="crop side the models see (default: preset)")
    parser.add_argument("--eval-every", type=int, help="validate every N optimisation steps (default: every epoch)")
    add_run_arguments(parser)


def main(args) -> int:
    from .adjustment import AdjustmentConfig, run_adjustment

    cfg = AdjustmentConfig(
        dataset=args.dataset, preset=args.preset, task=args.task, out=args.out,
        intensities=tuple(args.intensities), modes=tuple(args.modes), folds=args.folds, epochs=args.epochs,
        lr=args.lr, pipeline_lr=args.pipeline_lr, batch_size=args.batch_size, size=args.size,
        eval_every=args.eval_every, n=args.n, root=args.root, device=args.device, seed=args.seed,
        progress=not args.quiet,
    )
    result = run_adjustment(cfg)
    print(result.to_markdown())
    print(f"\nwritten to {cfg.out}: result.json, curves.npz, summary.md, curves.csv, adjustment*.png")
    return 0
