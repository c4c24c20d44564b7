"""``rawdrift adjustment``: frozen vs learned ISP vs raw input, curves, tables and figures."""

from __future__ import annotations


def add_arguments(parser):
    from ..data.base import DATASET_NAMES
    from ..presets import PRESET_NAMES

    parser.add_argument("--dataset", default="synthetic-microscopy", choices=DATASET_NAMES)
    parser.add_argument("--preset", choices=PRESET_NAMES, help="default: $RAWDRIFT_PRESET or lab")
    parser.add_argument("--task", choices=("classification", "segmentation"), help="default: the dataset's task")
    parser.add_argument("--out", required=True, help="result folder (resumable: rerun to continue)")
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
    parser.add_argument("--n", type=int, help="dataset size (synthetic data)")
    parser.add_argument("--root", help="folder of a real dataset")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


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
